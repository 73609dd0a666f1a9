// Floating point through the Linux user-mode runner: C programs under test/native/user/fp/ are built twice,
// once doing all float/double arithmetic on the x87 (-mfpmath=387) and once on SSE2 (-msse2 -mfpmath=sse),
// and each build's output on the vCPU must equal the host CPU's byte for byte. long double is x87 in both
// builds. libm.c explains the one allowance: results of x87 transcendental instructions are printed with
// fewer digits, since the SDM bounds their error instead of defining their bits.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, openSync, closeSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runUser } from '../src/user/process.ts';

// Every program runs on both vCPU engines; the translator with a low threshold, so that nearly every
// block is translated (with the default, short programs would mostly run on the interpreter).
type Engine = 'interp' | 'jit';
const ENGINES: Engine[] = ['interp', 'jit'];
const engine = (cpu: Engine = 'interp') => (cpu === 'jit' ? { cpu, hot: 2, reviewRuns: 3, groupRuns: 6 } as const : { cpu } as const);
import { fetchDefaultGuest } from '../src/guest/fetch.ts';
import { i386Command, qemuDiffers } from '../src/guest/i386-host.mjs';

const SRC = join(dirname(fileURLToPath(import.meta.url)), 'native', 'user', 'fp');

/** The two code generators every program is checked under. */
const BUILDS = {
  x87: ['-mfpmath=387'],
  sse: ['-msse2', '-mfpmath=sse'],
} as const;
type Build = keyof typeof BUILDS;

interface Program {
  name: string; what: string; args?: string[]; intrinsics?: boolean; check?: (out: string) => void;
  /** Where qemu-i386 is the oracle (src/guest/i386-host.mjs): how QEMU's output differs from the hardware's. */
  qemu?: Partial<Record<Build, string>>;
}

const PROGRAMS: Program[] = [
  { name: 'arith', what: '+ - * / in float, double and long double under all four rounding modes',
    check: (o) => assert.match(o, /^== zero\n/m) },
  { name: 'rounding', what: 'sqrt fabs floor ceil trunc round rint nearbyint lrint llrint under all rounding modes',
    check: (o) => assert.match(o, /^24 lrint -2147483648\n {3} flags=I----\n/m) },
  { name: 'convert', what: 'int/long long/unsigned ↔ float ↔ double ↔ long double, overflow and NaN to integer indefinite',
    check: (o) => assert.match(o, /^d26 int -2147483648 ll -9223372036854775808 /m) },
  { name: 'compare', what: 'comparisons, isnan/isinf/fpclassify/signbit, fmin/fmax with NaNs, infinities and signed zeros' },
  { name: 'libm', what: 'libm transcendentals, fmod/remainder (FPREM/FPREM1), frexp/ldexp/modf',
    qemu: { x87: "computes FPREM's quotient bits (remquo's q) otherwise", sse: "computes FPREM's quotient bits (remquo's q) otherwise" } },
  { name: 'fenv', what: 'fenv exception flags of each kind, fegetenv/fesetenv/feholdexcept',
    check: (o) => {
      for (const l of ['divbyzero 1/0 flags=-Z---', 'invalid 0/0 flags=I----', 'overflow big*big flags=--O-P', 'underflow tiny*tiny flags=---UP', 'inexact 1/3 flags=----P']) assert.ok(o.includes(l + '\n'), l);
    } },
  { name: 'strtod', what: 'printf/strtod/strtold round trips of awkward decimals and the format extremes',
    check: (o) => assert.match(o, /^1e23 -> 9.9999999999999992e\+22 /m) },
  { name: 'kernel', what: 'matrix multiply, Newton iteration, Kahan sum and a Mandelbrot checksum', args: ['48'],
    check: (o) => assert.match(o, /^mandelbrot 48x48 checksum 16125456524669721499 /m) },
  // Intrinsics need -msse2 in both builds; the "x87" build still does its scalar arithmetic on the x87.
  { name: 'sse2', what: 'SSE/SSE2 intrinsics: packed FP, MXCSR rounding and flags, conversions, shuffles, integer SIMD', intrinsics: true,
    qemu: { x87: 'sets no MXCSR.DE for denormal operands', sse: 'sets no MXCSR.DE for denormal operands' } },
  { name: 'mmx', what: 'MMX intrinsics, then x87 arithmetic after _mm_empty', intrinsics: true },
  { name: 'random', what: 'random hard-case operands through each operation and rounding mode, hashed',
    check: (o) => assert.equal(o.split('\n').length, 61), qemu: { sse: 'hashes other SSE results and MXCSR flags for these cases' } },
  // Run separately below, once per argument.
  { name: 'trap', what: 'unmasked exceptions and x87 precision control', args: ['precision'] },
];

let work = '';
const exe = new Map<string, string>();
let gccError = '';

function compile(p: Program, build: Build): Promise<void> {
  const out = join(work, `${p.name}-${build}`);
  const flags = [...(p.intrinsics && build === 'x87' ? ['-msse2'] : []), ...BUILDS[build]];
  return new Promise((resolve) => {
    const child = spawn('gcc', ['-m32', '-static', '-O2', ...flags, '-o', out, join(SRC, `${p.name}.c`), '-lm'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    child.on('error', (e) => { gccError ||= `gcc unavailable: ${e.message}`; resolve(); });
    child.on('close', (code) => {
      if (code === 0) exe.set(`${p.name}-${build}`, out);
      else gccError ||= `gcc -m32 -static ${flags.join(' ')} failed for ${p.name}.c: ${err}`;
      resolve();
    });
  });
}

before(async () => {
  work = mkdtempSync(join(tmpdir(), 'trapeze-user-fp-'));
  // Two compilers at a time (the machines this runs on have two cores); twenty static links otherwise
  // take a good part of the time budget.
  const jobs = PROGRAMS.flatMap((p) => (Object.keys(BUILDS) as Build[]).map((b) => () => compile(p, b)));
  const worker = async (): Promise<void> => { for (let j = jobs.shift(); j; j = jobs.shift()) await j(); };
  await Promise.all([worker(), worker()]);
});

after(() => { if (work) rmSync(work, { recursive: true, force: true }); });

interface Outcome { status: number; stdout: string; stderr: string; log: string[] }

let runCount = 0;
function emulate(path: string, args: string[], cpu?: Engine): Outcome {
  const n = runCount++;
  const outPath = join(work, `out${n}`), errPath = join(work, `err${n}`), inPath = join(work, `in${n}`);
  writeFileSync(inPath, '');
  const fds: [number, number, number] = [openSync(inPath, 'r'), openSync(outPath, 'w'), openSync(errPath, 'w')];
  const log: string[] = [];
  try {
    const r = runUser({ path, argv: [path, ...args], env: ['PATH=/usr/bin:/bin', 'LC_ALL=C', 'HOME=/'], stdio: fds, log: (l) => log.push(l), ...engine(cpu) });
    return { status: r.status, stdout: readFileSync(outPath, 'latin1'), stderr: readFileSync(errPath, 'latin1'), log };
  } finally {
    fds.forEach((fd) => closeSync(fd));
  }
}

function native(path: string, args: string[]): Outcome {
  const x = i386Command(path, args);
  const r = spawnSync(x.cmd, x.args, { env: { PATH: '/usr/bin:/bin', LC_ALL: 'C', HOME: '/' }, maxBuffer: 64 << 20, encoding: 'latin1' });
  if (r.error) throw r.error;
  const status = r.status ?? 128 + ({ SIGFPE: 8, SIGSEGV: 11, SIGILL: 4 } as Record<string, number>)[r.signal ?? ''];
  return { status, stdout: r.stdout, stderr: r.stderr, log: [] };
}

/** Native and vCPU outputs must agree; on a difference, report the first differing lines, not a huge diff. */
function same(path: string, args: string[]): Outcome {
  const want = native(path, args);
  let first: Outcome | undefined;
  for (const cpu of ENGINES) {
    const got = sameAs(want, path, args, cpu);
    first ??= got;
  }
  return first!;
}

function sameAs(want: Outcome, path: string, args: string[], cpu: Engine): Outcome {
  const got = emulate(path, args, cpu);
  if (got.stdout !== want.stdout) {
    const a = want.stdout.split('\n'), b = got.stdout.split('\n');
    const diffs: string[] = [];
    for (let i = 0; i < Math.max(a.length, b.length) && diffs.length < 8; i++) {
      if (a[i] !== b[i]) diffs.push(`line ${i + 1}:\n  native: ${a[i]}\n  vcpu:   ${b[i]}`);
    }
    assert.fail(`stdout differs from native on the ${cpu} (${a.length} lines):\n${diffs.join('\n')}\n(log: ${got.log.join(' | ')})`);
  }
  assert.equal(got.stderr, want.stderr, `stderr differs (${cpu})`);
  assert.equal(got.status, want.status, `exit status differs (${cpu}; log: ${got.log.join(' | ')})`);
  return got;
}

for (const p of PROGRAMS) {
  for (const build of Object.keys(BUILDS) as Build[]) {
    const flags = [...(p.intrinsics && build === 'x87' ? ['-msse2'] : []), ...BUILDS[build]].join(' ');
    test(`${p.name}.c (-O2 ${flags}): ${p.what}`, (t) => {
      const path = exe.get(`${p.name}-${build}`);
      if (!path) { t.skip(gccError || 'not built'); return; }
      const differs = p.qemu?.[build] ? qemuDiffers(p.qemu[build]) : '';
      if (differs) { t.skip(differs); return; }
      const r = same(path, p.args ?? []);
      assert.equal(r.status, 0);
      // Anchors that the output means what the program intends, independently of the native run.
      p.check?.(r.stdout);
    });
  }
}

for (const build of Object.keys(BUILDS) as Build[]) {
  test(`trap.c (-O2 ${BUILDS[build].join(' ')}): an unmasked exception kills with SIGFPE, a re-masked one does not`, (t) => {
    const path = exe.get(`trap-${build}`);
    if (!path) { t.skip(gccError || 'not built'); return; }
    const differs = qemuDiffers('raises no SIGFPE for unmasked x87 or SSE exceptions');
    if (differs) { t.skip(differs); return; }
    // x87 exceptions arrive as #MF (vector 16) at the next waiting instruction, SSE ones as #XM (19).
    const vector = build === 'x87' ? 16 : 19;
    for (const mode of ['divbyzero', 'invalid', 'overflow', 'inexact']) {
      const r = same(path, [mode]);
      assert.equal(r.status, 128 + 8, mode);
      assert.equal(r.stdout, 'before\n');
      assert.match(r.log.join('\n'), new RegExp(`uncaught target signal 8 .*\\(vector ${vector},`), mode);
    }
    assert.equal(same(path, ['masked']).stdout, 'before\nafter inf\n');
  });
}

// --- Debian's busybox awk -----------------------------------------------------------------------------------
// Debian builds busybox-static without FEATURE_AWK_LIBM, so sin/exp/^/sqrt stop with "Math support is not
// compiled in"; that refusal is compared too. The floating point it does have (arithmetic, int(), % via fmod,
// string→number, printf) is exercised with the same kind of loop written with series instead of libm.

test('busybox awk and printf floating point', { timeout: 120_000 }, async (t) => {
  let busybox = '';
  try {
    busybox = (await fetchDefaultGuest({ log: () => {} })).busybox;
  } catch (e) {
    t.skip(`busybox-static unavailable (offline?): ${e instanceof Error ? e.message : String(e)}`);
    return;
  }
  await t.test('awk with libm functions: same refusal', () => {
    const r = same(busybox, ['awk', 'BEGIN{for(i=1;i<=20;i++) printf "%.17g\\n", sin(i)/i + exp(-i) + i^0.5}']);
    assert.notEqual(r.status, 0);
  });
  await t.test('awk series: sin(i)/i + exp(-i) + sqrt(i) by Taylor series and Newton', () => {
    const prog = `
      function s(x,  t, r, k) { t = x; r = x; for (k = 1; k < 30; k++) { t = -t * x * x / ((2 * k) * (2 * k + 1)); r += t } return r }
      function e(x,  t, r, k) { t = 1; r = 1; for (k = 1; k < 60; k++) { t = t * x / k; r += t } return r }
      function q(x,  y, k) { y = x; for (k = 0; k < 40; k++) y = (y + x / y) / 2; return y }
      BEGIN { for (i = 1; i <= 20; i++) printf "%.17g %.17g %d %.17g\\n", s(i) / i + e(-i) + q(i), i / 7, int(i * 1e8 / 3), (i * 1.37) % 0.3 }`;
    const r = same(busybox, ['awk', prog]);
    assert.equal(r.stdout.split('\n').length, 21);
  });
  await t.test('awk string→number and number→string conversions', () => {
    same(busybox, ['awk', 'BEGIN { n = split("0.1 1e23 2.2250738585072011e-308 5e-324 1.7976931348623157e308 1e309 -0 0x10 123456789012345678901 .5e-3", a, " "); for (i = 1; i <= n; i++) { x = a[i] + 0; printf "%s %.17g %g %e %d\\n", a[i], x, x, x, x; print x, x * 3, x / 3, -x } CONVFMT = "%.3g"; y = 3.14159; z = y ""; print z, 1e300 * 1e300, -1e300 * 1e300 }']);
  });
  await t.test('printf applet with awkward doubles', () => {
    // busybox printf rejects a denormal argument (strtod's ERANGE) with a message: compared as well.
    same(busybox, ['printf', '%.17g %.17g %.17g %.17g %.17g %.17g %e %f %g\\n', '0.1', '1e23', '2.2250738585072014e-308', '4.9406564584124654e-324', '1.7976931348623157e308', '0.30000000000000004', '1e-310', '123.456', '2.5']);
  });
});
