// The vCPU fuzzer: runs random instruction streams and checks that nothing escapes to the host but the
// vCPU's own outcomes. At CPL 3 (flat user mode, paging off) every exception is intercepted through the
// hooks and ends the stream; at CPL 0 the guest has a real IDT whose gates all lead to a handler that
// reports on port 0xF5 and halts, a #DF task gate (as Linux i386 uses) with its own stack, and paging on
// with unmapped, read-only and supervisor-only pages. A triple fault (CpuStop) is a legitimate end of a
// CPL-0 stream. Any other host exception is a bug in the vCPU.
//
// Used by scripts/fuzz.ts (`npm run fuzz`) and test/fuzz.test.ts.

import { CPU, CpuStop } from './cpu.ts';
import { GuestMemory } from '../memory/guest-memory.ts';
import type { PortBus } from './bus.ts';
import { CR0_PE, CR0_PG, CR0_WP, CR4_PSE, CS, DS, ES, FS, GS, SS } from './constants.ts';
import { enterFlatProtectedMode } from './testing.ts';

// --- Deterministic random numbers (mulberry32) ---

export class Rng {
  private s: number;
  constructor(seed: number) { this.s = seed >>> 0; }
  u32(): number {
    let t = (this.s = (this.s + 0x6d2b79f5) | 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }
  int(n: number): number { return this.u32() % n; }
  byte(): number { return this.u32() & 0xff; }
  pick<T>(a: readonly T[]): T { return a[this.int(a.length)]; }
  chance(p: number): boolean { return this.u32() / 0x100000000 < p; }
}

// --- Guest layout (physical = linear for the system area; SDM vol. 3A §3.4.5, §6.11, §7.2, §4.3) ---

const GDT = 0x0000, GDT_ENTRIES = 16;
const TSS_MAIN = 0x0200;        // selector 0x28
const TSS_DF = 0x0300;          // selector 0x30, entered through the #DF task gate
const LDT = 0x0400;             // selector 0x50, two entries
const IDT = 0x0800;
const HANDLER = 0x1000;         // OUT 0xF5, AL; CLI; HLT; JMP back to the HLT
const PAGE_DIR = 0x2000;
const PAGE_TABLE = 0x3000;
const SYSTEM_END = 0x4000;
const STACK0 = 0x7000;          // TSS.ESP0
const STACK_DF = 0x9000;        // the #DF task's stack
export const CODE = 0x10000;    // where a stream is placed
const CODE_END = 0x20000;
const DATA = 0x20000, DATA_END = 0x400000;
const DONE_PORT = 0xf5;

/** Selectors worth putting in registers and far pointers: every GDT/LDT entry, with each RPL. */
const SELECTORS: number[] = [];
for (let i = 0; i < GDT_ENTRIES; i++) for (let rpl = 0; rpl < 4; rpl++) SELECTORS.push((i << 3) | rpl);
SELECTORS.push(0x04 | 3, 0x0c | 3, 0x0c, 0xfff8, 0x1234);

function desc(base: number, limit: number, access: number, flags: number): [number, number] {
  const lo = ((base & 0xffff) << 16) | (limit & 0xffff);
  const hi = (base & 0xff000000) | ((flags & 0xf) << 20) | (limit & 0xf0000) | ((access & 0xff) << 8) | ((base >>> 16) & 0xff);
  return [lo | 0, hi | 0];
}
function gate(sel: number, off: number, access: number, params = 0): [number, number] {
  return [((sel & 0xffff) << 16) | (off & 0xffff), (off & 0xffff0000) | ((access & 0xff) << 8) | (params & 0x1f)];
}

/** Builds the image of the system area [0, SYSTEM_END) once: descriptor tables, TSSs, handler, paging. */
function buildSystemImage(rng: Rng): Uint8Array {
  const img = new Uint8Array(SYSTEM_END);
  const dv = new DataView(img.buffer);
  const put = (addr: number, [lo, hi]: [number, number]) => { dv.setInt32(addr, lo, true); dv.setInt32(addr + 4, hi, true); };
  const gdt: [number, number][] = [
    [0, 0],
    desc(0, 0xfffff, 0x9a, 0xc),          // 0x08 code32 DPL0
    desc(0, 0xfffff, 0x92, 0xc),          // 0x10 data DPL0
    desc(0, 0xfffff, 0xfa, 0xc),          // 0x18 code32 DPL3
    desc(0, 0xfffff, 0xf2, 0xc),          // 0x20 data DPL3
    desc(TSS_MAIN, 0x67, 0x8b, 0),        // 0x28 TSS (busy: it is TR)
    desc(TSS_DF, 0x67, 0x89, 0),          // 0x30 #DF TSS
    desc(0, 0xffff, 0x9a, 0),             // 0x38 code16 DPL0
    desc(0x20000, 0xfff, 0xf6, 0x4),      // 0x40 expand-down data DPL3
    gate(0x08, HANDLER, 0xec, 2),         // 0x48 call gate DPL3 → ring 0, two parameters
    desc(LDT, 0x0f, 0x82, 0),             // 0x50 LDT
    desc(0, 0xfffff, 0x1e, 0xc),          // 0x58 conforming code, not present
    desc(0, 0xfffff, 0xfe, 0xc),          // 0x60 conforming code DPL3
    gate(0x30, 0, 0xe5),                  // 0x68 task gate DPL3 → #DF TSS
    desc(0x30000, 0x1ff, 0xf2, 0x0),      // 0x70 small data DPL3
    gate(0x38, HANDLER, 0xe4, 1),         // 0x78 16-bit call gate DPL3 → code16
  ];
  gdt.forEach((d, i) => put(GDT + i * 8, d));
  put(LDT, desc(0, 0xfffff, 0xf2, 0xc));
  put(LDT + 8, desc(0, 0xfffff, 0xfa, 0xc));
  // TSSs (SDM vol. 3A Fig. 7-2): ESP0/SS0 for the main one; a complete task state for the #DF task.
  dv.setInt32(TSS_MAIN + 4, STACK0, true); dv.setInt32(TSS_MAIN + 8, 0x10, true);
  dv.setUint16(TSS_MAIN + 0x66, 0x68, true);        // I/O bitmap offset at the limit: no bitmap
  const t = TSS_DF;
  dv.setInt32(t + 0x1c, PAGE_DIR, true); dv.setInt32(t + 0x20, HANDLER, true); dv.setInt32(t + 0x24, 2, true);
  dv.setInt32(t + 0x38, STACK_DF, true);
  for (const [off, sel] of [[0x48, 0x10], [0x4c, 0x08], [0x50, 0x10], [0x54, 0x10], [0x58, 0x10], [0x5c, 0x10]]) dv.setInt32(t + off, sel, true);
  dv.setUint16(t + 0x66, 0x68, true);
  // Every vector: a DPL-3 interrupt gate to the handler; #DF through a task gate; a few trap gates.
  for (let v = 0; v < 256; v++) put(IDT + v * 8, gate(0x08, HANDLER, v % 7 === 3 ? 0xef : 0xee));
  put(IDT + 8 * 8, gate(0x30, 0, 0x85));
  img.set([0xe6, DONE_PORT, 0xfa, 0xf4, 0xeb, 0xfd], HANDLER);
  // Paging: 0-4 MiB identity through one page table (system pages and the code always present), with
  // one page in eight of the data area not present, and some read-only or supervisor-only; 4-8 MiB one
  // 4 MiB page (SDM vol. 3A §4.3, Table 4-4).
  dv.setInt32(PAGE_DIR, PAGE_TABLE | 7, true);
  dv.setInt32(PAGE_DIR + 4, 0x400000 | 0x87, true);
  for (let p = 0; p < 1024; p++) {
    const a = p << 12;
    let pte = a | 7;
    if (a >= DATA && a < DATA_END) {
      const r = rng.int(16);
      if (r < 2) pte = 0;
      else if (r === 2) pte = a | 5;            // read-only
      else if (r === 3) pte = a | 3;            // supervisor
      else if (r === 4) pte = a | 0x107;        // global
    }
    dv.setInt32(PAGE_TABLE + p * 4, pte, true);
  }
  return img;
}

// --- Stream generation ---

const PREFIXES = [0x26, 0x2e, 0x36, 0x3e, 0x64, 0x65, 0x66, 0x67, 0xf0, 0xf2, 0xf3];
/** Opcodes with system or control-flow semantics, to reach them far more often than random bytes do. */
const SYSTEM_OPS1 = [0x06, 0x07, 0x0e, 0x16, 0x17, 0x1e, 0x1f, 0x62, 0x63, 0x8c, 0x8e, 0x9a, 0x9c, 0x9d, 0xc2, 0xc3,
  0xc4, 0xc5, 0xc8, 0xc9, 0xca, 0xcb, 0xcc, 0xcd, 0xce, 0xcf, 0xe4, 0xe5, 0xe6, 0xe7, 0xea, 0xec, 0xed, 0xee, 0xef,
  0x6c, 0x6d, 0x6e, 0x6f, 0xf4, 0xfa, 0xfb, 0xff, 0x60, 0x61, 0xa4, 0xa5, 0xaa, 0xab, 0xd7];
const SYSTEM_OPS2 = [0x00, 0x01, 0x02, 0x03, 0x06, 0x08, 0x09, 0x0b, 0x20, 0x21, 0x22, 0x23, 0x30, 0x31, 0x32, 0x34,
  0x35, 0xa0, 0xa1, 0xa2, 0xa8, 0xa9, 0xb2, 0xb4, 0xb5, 0xc7, 0xae, 0x77, 0x0d, 0x18, 0x1f];

function pushImm(rng: Rng, out: number[], n: number): void { for (let i = 0; i < n; i++) out.push(rng.byte()); }

/** One instruction-shaped byte run: prefixes, opcode (1 or 2 bytes), ModRM, SIB, displacement, immediate. */
function instruction(rng: Rng, out: number[], system: boolean): void {
  const np = rng.chance(0.3) ? rng.int(4) : 0;
  for (let i = 0; i < np; i++) out.push(rng.pick(PREFIXES));
  if (system) {
    if (rng.chance(0.45)) out.push(0x0f, rng.pick(SYSTEM_OPS2));
    else out.push(rng.pick(SYSTEM_OPS1));
    if (out[out.length - 1] === 0x9a || out[out.length - 1] === 0xea) {
      // A far pointer to a real selector.
      const sel = rng.pick(SELECTORS);
      pushImm(rng, out, rng.chance(0.5) ? 4 : 2);
      out.push(sel & 0xff, sel >> 8);
      return;
    }
  } else if (rng.chance(0.2)) out.push(0x0f, rng.byte());
  else out.push(rng.byte());
  // ModRM: registers a quarter of the time; otherwise memory forms with SIB and displacements.
  const m = rng.chance(0.25) ? 0xc0 | rng.int(64) : rng.int(0xc0);
  out.push(m);
  if ((m & 7) === 4 && m < 0xc0) out.push(rng.byte());
  pushImm(rng, out, rng.int(7));
}

export type StreamKind = 'random' | 'shaped' | 'system' | 'prefix-flood';

export function makeStream(rng: Rng, kind: StreamKind): Uint8Array {
  const out: number[] = [];
  switch (kind) {
    case 'random': pushImm(rng, out, 1 + rng.int(48)); break;
    case 'shaped': { const n = 1 + rng.int(8); for (let i = 0; i < n; i++) instruction(rng, out, false); break; }
    case 'system': { const n = 1 + rng.int(6); for (let i = 0; i < n; i++) instruction(rng, out, rng.chance(0.7)); break; }
    case 'prefix-flood': {
      // Far more prefixes than the 15-byte instruction limit allows (SDM vol. 2 §2.3.11).
      // Usually without LOCK, which ends the decode with #UD as soon as it is seen.
      const n = rng.chance(0.1) ? 20000 + rng.int(20000) : 14 + rng.int(40);
      const set = rng.chance(0.8) ? PREFIXES.filter((p) => p !== 0xf0) : PREFIXES;
      for (let i = 0; i < n; i++) out.push(rng.pick(set));
      instruction(rng, out, false);
      break;
    }
  }
  return Uint8Array.from(out.slice(0, CODE_END - CODE));
}

function pickKind(rng: Rng): StreamKind {
  const r = rng.int(100);
  return r < 35 ? 'random' : r < 70 ? 'shaped' : r < 98 ? 'system' : 'prefix-flood';
}

// --- Campaign ---

export interface HostException { mode: 0 | 3; index: number; stream: string; regs: number[]; error: string }

export interface CampaignOptions {
  seed: number;
  /** Stop after this many streams (per campaign, both modes counted). */
  streams?: number;
  /** Stop after this many milliseconds. */
  millis?: number;
  cpl: 0 | 3 | 'both';
  /** Instructions per stream. */
  budget?: number;
  /** A stream taking longer than this counts as a hang. */
  hangMillis?: number;
  onProgress?(s: CampaignStats): void;
}

export interface CampaignStats {
  streams: number;
  instructions: number;
  byMode: { 0: number; 3: number };
  /** Streams ended by a guest exception or the CPL-0 handler. */
  exceptions: number;
  /** CPL-0 streams that ended in a triple fault. */
  tripleFaults: number;
  hostExceptions: HostException[];
  hangs: { mode: 0 | 3; index: number; millis: number; stream: string }[];
  slowestMillis: number;
  rssStart: number;
  rssPeak: number;
  millis: number;
}

const hex = (b: Uint8Array) => Array.from(b.subarray(0, 64), (x) => x.toString(16).padStart(2, '0')).join('') + (b.length > 64 ? `…(${b.length} bytes)` : '');

/** One vCPU with its guest, reset to a fresh state for every stream. */
class Rig {
  readonly mem = new GuestMemory(8 << 20);
  readonly cpu: CPU;
  done = false;
  constructor(readonly mode: 0 | 3, readonly system: Uint8Array) {
    const rig = this;
    const bus: PortBus = {
      in: (_p, size) => (size === 1 ? 0xff : size === 2 ? 0xffff : -1),
      out(port) { if (port === DONE_PORT) { rig.done = true; rig.cpu.stopSlice = true; } },
    };
    this.cpu = new CPU(this.mem, bus);
  }

  /** Runs one stream from a clean machine state; returns the instructions executed. */
  run(rng: Rng, stream: Uint8Array, budget: number, regs: number[]): number {
    const { cpu, mem } = this;
    mem.writeBytes(0, this.system);
    mem.writeBytes(CODE, stream);
    this.done = false;
    cpu.reset();
    enterFlatProtectedMode(cpu, this.mode);
    cpu.gdtBase = GDT; cpu.gdtLimit = GDT_ENTRIES * 8 - 1;
    cpu.idtBase = IDT; cpu.idtLimit = 256 * 8 - 1;
    cpu.trSel = 0x28; cpu.trBase = TSS_MAIN; cpu.trLimit = 0x67; cpu.trAr = 0x8b;
    cpu.ldtSel = 0; cpu.ldtBase = 0; cpu.ldtLimit = 0;
    for (const s of [CS, SS, DS, ES, FS, GS]) cpu.sreg[s] = (s === CS ? 0x08 : 0x10) + (this.mode === 3 ? 0x10 : 0) | this.mode;
    if (this.mode === 0) {
      cpu.cr3 = PAGE_DIR;
      cpu.cr4 |= CR4_PSE;
      cpu.cr0 |= CR0_PE | CR0_PG | (rng.chance(0.5) ? CR0_WP : 0);
      cpu.updateModes();
      cpu.flushTlb(true);
      cpu.hooks = {};
    } else {
      cpu.hooks = {
        exception: () => { this.done = true; cpu.stopSlice = true; return true; },
        softInt: () => { this.done = true; cpu.stopSlice = true; return true; },
        sysenter: () => { this.done = true; cpu.stopSlice = true; return true; },
      };
    }
    for (let i = 0; i < 8; i++) cpu.r32[i] = regs[i];
    // Arithmetic flags, DF, and (at CPL 3) IOPL random; IF clear so no interrupt is ever expected.
    cpu.setEflags((regs[8] & 0x3cd5) | 2);
    cpu.eip = CODE;
    return cpu.run(budget);
  }
}

function randomRegs(rng: Rng): number[] {
  const regs: number[] = [];
  for (let i = 0; i < 8; i++) {
    const r = rng.int(10);
    if (r < 3) regs.push(rng.pick(SELECTORS));
    else if (r < 5) regs.push(rng.int(0x100));
    else if (r < 8) regs.push(DATA + rng.int(DATA_END - DATA));
    else regs.push(rng.u32() | 0);
  }
  if (rng.chance(0.8)) regs[4] = DATA + 0x1000 + rng.int(DATA_END - DATA - 0x1000) & ~3; // a usable ESP most of the time
  regs.push(rng.u32());
  return regs;
}

/** Runs a campaign; never throws for a vCPU bug, it reports it in the stats. */
export function runCampaign(opts: CampaignOptions): CampaignStats {
  const rng = new Rng(opts.seed);
  const system = buildSystemImage(new Rng(opts.seed ^ 0x5eed));
  const modes: (0 | 3)[] = opts.cpl === 'both' ? [0, 3] : [opts.cpl];
  const rigs = modes.map((m) => new Rig(m, system));
  const budget = opts.budget ?? 64;
  const hangMillis = opts.hangMillis ?? 2000;
  const maxStreams = opts.streams ?? Infinity;
  const maxMillis = opts.millis ?? Infinity;
  const rssStart = process.memoryUsage().rss;
  const stats: CampaignStats = {
    streams: 0, instructions: 0, byMode: { 0: 0, 3: 0 }, exceptions: 0, tripleFaults: 0, hostExceptions: [], hangs: [],
    slowestMillis: 0, rssStart, rssPeak: rssStart, millis: 0,
  };
  const t0 = performance.now();
  let lastProgress = t0;
  while (stats.streams < maxStreams) {
    const now = performance.now();
    if (now - t0 >= maxMillis) break;
    if ((stats.streams & 1023) === 0) {
      const rss = process.memoryUsage().rss;
      if (rss > stats.rssPeak) stats.rssPeak = rss;
      if (opts.onProgress && now - lastProgress > 1000) { lastProgress = now; stats.millis = now - t0; opts.onProgress(stats); }
    }
    const rig = rigs[stats.streams % rigs.length];
    const stream = makeStream(rng, pickKind(rng));
    const regs = randomRegs(rng);
    const s0 = performance.now();
    try {
      stats.instructions += rig.run(rng, stream, budget, regs);
      if (rig.done) stats.exceptions++;
    } catch (e) {
      if (e instanceof CpuStop && rig.mode === 0 && e.reason === 'triple-fault') stats.tripleFaults++;
      else {
        stats.hostExceptions.push({
          mode: rig.mode, index: stats.streams, stream: hex(stream), regs,
          error: e instanceof Error ? (e.stack ?? e.message) : `non-Error thrown: ${String((e as { constructor?: { name?: string } })?.constructor?.name ?? e)} ${JSON.stringify(e)}`,
        });
      }
    }
    const dt = performance.now() - s0;
    if (dt > stats.slowestMillis) stats.slowestMillis = dt;
    if (dt > hangMillis) stats.hangs.push({ mode: rig.mode, index: stats.streams, millis: dt, stream: hex(stream) });
    stats.byMode[rig.mode]++;
    stats.streams++;
  }
  stats.millis = performance.now() - t0;
  const rss = process.memoryUsage().rss;
  if (rss > stats.rssPeak) stats.rssPeak = rss;
  return stats;
}
