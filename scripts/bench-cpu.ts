// vCPU throughput on fixed workloads, in millions of guest instructions per second (MIPS).
//   node --import tsx scripts/bench-cpu.ts [loop|busybox|boot ...] [--runs N] [--cpu interp|jit]
// --cpu jit runs loop and boot on the binary translator (src/jit/); busybox always runs on the interpreter.
// Prints the median of N runs per workload. No assertions: the numbers are for people comparing changes.

import { existsSync, readFileSync, writeFileSync, mkdirSync, openSync, closeSync, readdirSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createUserTestCpu } from '../src/cpu/testing.ts';
import { CPU } from '../src/cpu/cpu.ts';
import { GuestMemory } from '../src/memory/guest-memory.ts';
import { NO_PORTS } from '../src/cpu/bus.ts';
import { loadLinux, E820_RAM, E820_RESERVED } from '../src/machine/linux-boot.ts';
import { runUser } from '../src/user/process.ts';
import { attachJit } from '../src/jit/jit.ts';

interface Result { instructions: number; seconds: number }

// A register/memory integer loop (nasm source; the bytes are assembled from it at org 0x100000):
//   mov ecx, 3000000 / mov esi, 0x200000 / xor eax, eax / mov ebx, 3
//   L: add eax, ebx / xor edx, eax / mov [esi+8], eax / mov ebx, [esi+8] / lea edi, [eax+ebx*2+1]
//      cmp edi, edx / inc ebx / sub edx, 1 / dec ecx / jnz L
//   int3
const LOOP_CODE = 'b9c0c62d00be0000200031c0bb0300000001d831c28946088b5e088d7c580139d74383ea014975e9cc';

function loop(): Result {
  const t = createUserTestCpu();
  t.writeMem(0x100000, Buffer.from(LOOP_CODE, 'hex'));
  t.setEip(0x100000);
  const cpu = t.cpu;
  if (engine === 'jit') attachJit(cpu);
  let done = false;
  cpu.hooks.softInt = () => { done = true; cpu.stopSlice = true; return true; };
  const t0 = performance.now();
  let n = 0;
  while (!done) n += cpu.run(1 << 22);
  return { instructions: n, seconds: (performance.now() - t0) / 1000 };
}

const PKGS = join(homedir(), '.cache/trapeze/pkgs');
function findPkg(prefix: string): string | undefined {
  if (!existsSync(PKGS)) return undefined;
  const d = readdirSync(PKGS).find((n) => n.startsWith(prefix));
  return d && join(PKGS, d);
}

function busybox(): Result | string {
  const pkg = findPkg('busybox-static');
  if (!pkg) return 'busybox-static not in ~/.cache/trapeze/pkgs';
  const dir = join(tmpdir(), 'trapeze-bench');
  mkdirSync(dir, { recursive: true });
  const input = join(dir, 'input-1m');
  if (!existsSync(input)) {
    // Deterministic pseudo-random content, so every run hashes the same bytes.
    const b = Buffer.alloc(1 << 20);
    let x = 0x12345678;
    for (let i = 0; i < b.length; i++) { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; b[i] = x; }
    writeFileSync(input, b);
  }
  const out = openSync('/dev/null', 'w');
  try {
    const r = runUser({ path: join(pkg, 'bin/busybox'), argv: ['busybox', 'sha256sum', input], env: [], stdio: [0, out, 2], memBytes: 256 << 20 });
    if (r.status !== 0) return `busybox exited with ${r.status}`;
    return { instructions: r.instructions, seconds: r.seconds };
  } finally { closeSync(out); }
}

/** The bzImage decompressor: the first 300 M instructions of booting Debian's kernel with no devices. */
function boot(): Result | string {
  const pkg = findPkg('linux-image-');
  const kdir = pkg && join(pkg, 'boot');
  const kname = kdir && existsSync(kdir) ? readdirSync(kdir).find((n) => n.startsWith('vmlinuz')) : undefined;
  if (!kdir || !kname) return 'no linux-image package in ~/.cache/trapeze/pkgs';
  const mem = new GuestMemory(256 << 20);
  const cpu = new CPU(mem, NO_PORTS);
  if (engine === 'jit') attachJit(cpu);
  loadLinux(cpu, mem, { kernel: readFileSync(join(kdir, kname)), cmdline: 'console=ttyS0', e820: [
    { addr: 0, size: 0x9fc00, type: E820_RAM }, { addr: 0x9fc00, size: 0x60400, type: E820_RESERVED },
    { addr: 0x100000, size: (256 << 20) - 0x100000, type: E820_RAM }] });
  const t0 = performance.now();
  let n = 0;
  while (n < 300_000_000 && !cpu.halted) n += cpu.run(1_000_000);
  return { instructions: n, seconds: (performance.now() - t0) / 1000 };
}

const WORKLOADS: Record<string, () => Result | string> = { loop, busybox, boot };
const args = process.argv.slice(2);
const ci = args.indexOf('--cpu');
const engine = ci >= 0 ? args.splice(ci, 2)[1] : 'interp';
if (engine !== 'interp' && engine !== 'jit') throw new Error(`--cpu must be interp or jit, not ${engine}`);
const ri = args.indexOf('--runs');
const runs = ri >= 0 ? Number(args.splice(ri, 2)[1]) : 3;
const names = args.length ? args : Object.keys(WORKLOADS);
for (const name of names) {
  const w = WORKLOADS[name];
  if (!w) { console.log(`${name}: unknown workload (${Object.keys(WORKLOADS).join(', ')})`); continue; }
  const mips: number[] = [];
  let skipped = '';
  let last: Result | undefined;
  for (let i = 0; i < runs && !skipped; i++) {
    const r = w();
    if (typeof r === 'string') skipped = r;
    else { last = r; mips.push(r.instructions / r.seconds / 1e6); }
  }
  if (skipped) { console.log(`${name}: skipped (${skipped})`); continue; }
  mips.sort((a, b) => a - b);
  const med = mips[mips.length >> 1];
  console.log(`${name.padEnd(8)} ${med.toFixed(1).padStart(7)} MIPS  (median of ${runs}; ${(last!.instructions / 1e6).toFixed(0)} M instr; runs ${mips.map((m) => m.toFixed(1)).join(' ')})`);
}
