// The Linux i386 user-mode runner: static C programs and Debian's busybox run natively and on the vCPU,
// and their outputs must agree byte for byte.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, openSync, closeSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runUser, ElfError } from '../src/user/process.ts';

// Every program runs on both vCPU engines; the translator with a low threshold, so that nearly every
// block is translated (with the default, short programs would mostly run on the interpreter).
type Engine = 'interp' | 'jit';
const ENGINES: Engine[] = ['interp', 'jit'];
const engine = (cpu: Engine = 'interp') => (cpu === 'jit' ? { cpu, hot: 2, reviewRuns: 3, groupRuns: 6 } as const : { cpu } as const);
import { fetchDefaultGuest } from '../src/guest/fetch.ts';
import { i386Command, qemuDiffers } from '../src/guest/i386-host.mjs';

const SRC = join(dirname(fileURLToPath(import.meta.url)), 'native', 'user');
const PROGRAMS = ['integer', 'strings', 'fileio', 'malloc', 'crash'];
let work = '';
const exe: Record<string, string> = {};
let gccError = '';

before(() => {
  work = mkdtempSync(join(tmpdir(), 'trapeze-user-'));
  for (const name of PROGRAMS) {
    const out = join(work, name);
    const r = spawnSync('gcc', ['-m32', '-static', '-O2', '-o', out, join(SRC, `${name}.c`)], { encoding: 'utf8' });
    if (r.status !== 0) { gccError = `gcc -m32 -static failed for ${name}.c: ${r.error?.message ?? r.stderr}`; return; }
    exe[name] = out;
  }
});

after(() => { if (work) rmSync(work, { recursive: true, force: true }); });

interface Outcome { status: number; stdout: Buffer; stderr: Buffer; log: string[] }

let runCount = 0;
/** Runs an executable on the vCPU with stdio redirected to files (stdin from `input`). */
function emulate(path: string, args: string[], input: Buffer = Buffer.alloc(0), opts: { strace?: boolean; cpu?: Engine } = {}): Outcome {
  const n = runCount++;
  const inPath = join(work, `in${n}`), outPath = join(work, `out${n}`), errPath = join(work, `err${n}`);
  writeFileSync(inPath, input);
  const fds: [number, number, number] = [openSync(inPath, 'r'), openSync(outPath, 'w'), openSync(errPath, 'w')];
  const log: string[] = [];
  try {
    const r = runUser({ path, argv: [path, ...args], env: ['PATH=/usr/bin:/bin', 'LC_ALL=C', 'HOME=/'], stdio: fds, log: (l) => log.push(l), strace: opts.strace, ...engine(opts.cpu) });
    return { status: r.status, stdout: readFileSync(outPath), stderr: readFileSync(errPath), log };
  } finally {
    fds.forEach((fd) => closeSync(fd));
  }
}

function native(path: string, args: string[], input: Buffer = Buffer.alloc(0)): Outcome {
  const x = i386Command(path, args);
  const r = spawnSync(x.cmd, x.args, { input, env: { PATH: '/usr/bin:/bin', LC_ALL: 'C', HOME: '/' }, maxBuffer: 64 << 20 });
  if (r.error) throw r.error;
  const status = r.status ?? 128 + ({ SIGSEGV: 11, SIGFPE: 8, SIGILL: 4, SIGABRT: 6 } as Record<string, number>)[r.signal ?? ''];
  return { status, stdout: r.stdout, stderr: r.stderr, log: [] };
}

/** Native and both vCPU engines must agree (the interpreter's outcome is returned). */
function same(path: string, args: string[], input?: Buffer): Outcome {
  const want = native(path, args, input);
  let first: Outcome | undefined;
  for (const cpu of ENGINES) {
    const got = emulate(path, args, input, { cpu });
    assert.equal(got.stdout.toString('latin1'), want.stdout.toString('latin1'), `stdout differs (${cpu})`);
    assert.equal(got.stderr.toString('latin1'), want.stderr.toString('latin1'), `stderr differs (${cpu})`);
    assert.equal(got.status, want.status, `exit status differs (${cpu}; log: ${got.log.join(' | ')})`);
    first ??= got;
  }
  return first!;
}

const needGcc = (t: { skip(msg: string): void }): boolean => {
  if (gccError) { t.skip(gccError); return false; }
  return true;
};

test('integer workload matches native (sieve, collatz, 64-bit division, TLS)', (t) => {
  if (!needGcc(t)) return;
  const r = same(exe.integer, ['40000']);
  assert.match(r.stdout.toString(), /primes below 40000: 4203\n/);
  assert.match(r.stdout.toString(), /tls 17\n/);
});

test('stdio and string functions match native, including a stdin filter and stderr', (t) => {
  if (!needGcc(t)) return;
  const input = Buffer.from(Array.from({ length: 50 }, (_, i) => `line ${i} with some text\n`).join(''));
  const r = same(exe.strings, ['one', 'two words', ''], input);
  assert.match(r.stdout.toString(), / 50: LINE 49 WITH SOME TEXT\n/);
});

test('file I/O, directories and errno values match native', (t) => {
  if (!needGcc(t)) return;
  const differs = qemuDiffers("passes the host's 64-bit directory offsets to the i386 C library, whose readdir then fails (EOVERFLOW)");
  if (differs) { t.skip(differs); return; }
  const a = join(work, 'fio-native'), b = join(work, 'fio-emu');
  mkdirSync(a); mkdirSync(b);
  const want = native(exe.fileio, [a]);
  const got = emulate(exe.fileio, [b]);
  assert.equal(got.stdout.toString(), want.stdout.toString());
  assert.equal(got.status, 0);
  assert.match(got.stdout.toString(), /dir: \. \.\. file0\.txt file1\.txt file2\.txt file3\.txt file4\.txt\n/);
  assert.match(got.stdout.toString(), /getcwd ok: 1\n/);
});

test('malloc-heavy program (brk, mmap, mremap) matches native', (t) => {
  if (!needGcc(t)) return;
  same(exe.malloc, []);
});

test('faults become fatal signals with the shell exit status', (t) => {
  if (!needGcc(t)) return;
  for (const [mode, sig] of [['segv', 11], ['fpe', 8], ['ill', 4], ['abort', 6]] as const) for (const cpu of ENGINES) {
    const want = native(exe.crash, [mode]);
    const got = emulate(exe.crash, [mode], undefined, { cpu });
    assert.equal(want.status, 128 + sig, `native ${mode}`);
    assert.equal(got.status, 128 + sig, `emulated ${mode} (${cpu}): ${got.log.join(' | ')}`);
    assert.equal(got.stdout.toString(), 'before\n');
    assert.equal(got.log.length, 1);
    assert.match(got.log[0], new RegExp(`uncaught target signal ${sig} `));
  }
});

test('unknown system calls return -ENOSYS; strace traces each call', (t) => {
  if (!needGcc(t)) return;
  const r = same(exe.crash, ['nosys']);
  assert.equal(r.stdout.toString(), 'before\n-1 ENOSYS\n');
  const traced = emulate(exe.crash, ['nosys'], undefined, { strace: true });
  assert.ok(traced.log.some((l) => /^write\(1, 0x[0-9a-f]+, 7\) = 7$/.test(l)), traced.log.join('\n'));
  assert.ok(traced.log.some((l) => /unimplemented syscall 999 /.test(l)));
  assert.ok(traced.log.some((l) => /^exit_group\(0\) = 0$/.test(l)));
});

test('dynamically linked executables are refused with a clear message', (t) => {
  if (!needGcc(t)) return;
  const dyn = join(work, 'dynamic');
  const r = spawnSync('gcc', ['-m32', '-O2', '-o', dyn, join(SRC, 'crash.c')]);
  if (r.status !== 0) { t.skip('gcc -m32 cannot link dynamically here'); return; }
  assert.throws(() => runUser({ path: dyn, argv: [dyn], env: [] }), (e: unknown) => e instanceof ElfError && /dynamically linked/.test(e.message));
  assert.throws(() => runUser({ path: join(SRC, 'crash.c'), argv: ['x'], env: [] }), ElfError);
});

// --- Debian's busybox-static -------------------------------------------------------------------------------

let busybox = '';
let busyboxSkip = '';
let data = Buffer.alloc(0);
const BUSYBOX_TIMEOUT = 120_000;

test('busybox', { timeout: BUSYBOX_TIMEOUT }, async (t) => {
  try {
    busybox = (await fetchDefaultGuest({ log: () => {} })).busybox;
  } catch (e) {
    busyboxSkip = `busybox-static unavailable (offline?): ${e instanceof Error ? e.message : String(e)}`;
  }
  // Deterministic, incompressible-ish input: an LCG's bytes plus some text so gzip has matches to find.
  data = Buffer.alloc(48 * 1024);
  let s = 1;
  for (let i = 0; i < data.length; i++) { s = (Math.imul(s, 1103515245) + 12345) >>> 0; data[i] = i % 3 ? s >>> 24 : 0x61 + (i % 7); }
  const file = join(work, 'data.bin');
  writeFileSync(file, data);
  const sub = (name: string, fn: () => void) => t.test(name, (st) => {
    if (busyboxSkip) { st.skip(busyboxSkip); return; }
    fn();
  });

  await sub('sha256sum', () => { assert.match(same(busybox, ['sha256sum', file]).stdout.toString(), /^[0-9a-f]{64} {2}/); });
  await sub('md5sum', () => { same(busybox, ['md5sum', file]); });
  await sub('sort -n of stdin', () => {
    const nums = Array.from({ length: 300 }, (_, i) => `${(i * 7919) % 1000 - 500}\n`).join('');
    same(busybox, ['sort', '-n'], Buffer.from(nums));
  });
  await sub('gzip -1 | gunzip round trip (two processes, a file between them)', () => {
    const gz = same(busybox, ['gzip', '-1', '-c'], data).stdout;
    for (const cpu of ENGINES) {
      const back = emulate(busybox, ['gunzip', '-c'], gz, { cpu });
      assert.equal(back.status, 0);
      assert.ok(back.stdout.equals(data), `gunzip did not give back the input (${cpu})`);
    }
  });
  await sub('ls of a directory (getdents64, statx)', () => {
    const dir = join(work, 'lsdir');
    mkdirSync(dir);
    for (const n of ['b', 'a', 'c.txt']) writeFileSync(join(dir, n), n);
    const r = same(busybox, ['ls', '-1', dir]);
    assert.equal(r.stdout.toString(), 'a\nb\nc.txt\n');
  });
  await sub("printf '%.17g' of awkward doubles (x87)", () => {
    same(busybox, ['printf', '%.17g %.17g %.17g %.17g %g\\n', '0.1', '1e-310', '123456789.123456789', '2.5e300', '-0.0']);
  });
  await sub('awk floating-point loop (x87)', () => {
    same(busybox, ['awk', 'BEGIN { s = 0; for (i = 1; i <= 2000; i++) { s += 1 / i; p = p * 1.0001 + sin(i) } printf "%.15g %.10g %d\\n", s, p, int(s * 1e6) }']);
  });
});

test('the CLI command rejects bad options before running anything', async () => {
  const { userCommand } = await import('../src/cli/user.ts');
  assert.equal(userCommand.name, 'user');
  await assert.rejects(userCommand.run(['--mem', '12', '/bin/true']), /--mem needs a whole number of MiB/);
  await assert.rejects(userCommand.run(['--bogus']), /unknown option '--bogus'/);
});
