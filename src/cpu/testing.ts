// A vCPU set up like a Linux i386 process for differential tests: flat 32-bit protected mode at CPL 3,
// paging off, guest-physical = linear, exceptions reported to the caller instead of delivered.

import { CPU, CpuFault } from './cpu.ts';
import { GuestMemory } from '../memory/guest-memory.ts';
import { CS, DS, ES, FS, GS, SS, CR0_PE, CR0_PG, CR4_OSFXSR, CR4_OSXMMEXCPT } from './constants.ts';
import { loadFxsave, storeFxsave } from './fxsave.ts';

export interface UserTestCpu {
  setGpr(i: number, v: number): void;
  getGpr(i: number): number;
  setEflags(v: number): void;
  getEflags(): number;
  setEip(v: number): void;
  getEip(): number;
  loadFxsave(img: Uint8Array): void;
  storeFxsave(): Uint8Array;
  writeMem(addr: number, data: Uint8Array): void;
  readMem(addr: number, len: number): Uint8Array;
  /** Executes one instruction; returns -1, or the vector of the exception (or INT n) it raised. */
  step(): number;
  readonly cpu: CPU;
}

/** Puts a CPU into flat 32-bit protected mode at `cpl` with 4 GiB segments (what Linux gives a process). */
export function enterFlatProtectedMode(cpu: CPU, cpl: number): void {
  cpu.cr0 |= CR0_PE;
  cpu.cr4 |= CR4_OSFXSR | CR4_OSXMMEXCPT;
  const dpl = cpl << 5;
  for (const s of [CS, SS, DS, ES, FS, GS]) {
    cpu.segBase[s] = 0;
    cpu.segLimit[s] = 0xffffffff;
    cpu.segAr[s] = s === CS ? 0xc09b | dpl : 0xc093 | dpl;
    cpu.sreg[s] = (s === CS ? 0x08 : 0x10) | cpl;
  }
  cpu.cpl = cpl;
  cpu.updateModes();
  cpu.flushTlb(true);
}

/** The user-accessible ranges of the test process (those of test/diff/format.ts): code, data, stack. */
export const USER_TEST_RANGES: [number, number][] = [[0x000f0000, 0x00110000], [0x00200000, 0x00210000], [0x00300000, 0x00310000]];

// Page tables and TSS of the test process live above every user range, in supervisor-only memory.
const PAGE_DIR = 0x3f0000, PAGE_TABLE = 0x3f1000, TSS = 0x3f2000;

/**
 * Maps the user ranges identity with user read/write pages and leaves everything else not present, so
 * a stray access faults with #PF as it would in a Linux process. The TSS has no I/O bitmap (its offset
 * lies past the limit), so IN/OUT at CPL 3 with IOPL 0 raise #GP, also as under Linux.
 */
function buildProcessTables(cpu: CPU, mem: GuestMemory): void {
  mem.write32(PAGE_DIR, PAGE_TABLE | 0x7);
  for (const [lo, hi] of USER_TEST_RANGES) {
    for (let a = lo; a < hi; a += 0x1000) mem.write32(PAGE_TABLE + (a >>> 12) * 4, a | 0x7);
  }
  for (const a of [PAGE_DIR, PAGE_TABLE, TSS]) mem.write32(PAGE_TABLE + (a >>> 12) * 4, a | 0x3);
  mem.write16(TSS + 0x66, 0x68);
  cpu.trBase = TSS; cpu.trLimit = 0x67; cpu.trAr = 0x8b; cpu.trSel = 0x28;
  cpu.cr3 = PAGE_DIR;
  cpu.cr0 |= CR0_PG;
  cpu.flushTlb(true);
}

export function createUserTestCpu(memBytes = 4 << 20): UserTestCpu {
  const mem = new GuestMemory(memBytes);
  const cpu = new CPU(mem);
  enterFlatProtectedMode(cpu, 3);
  buildProcessTables(cpu, mem);
  let softVector = -1;
  cpu.hooks.softInt = (v) => { softVector = v; return true; };
  return {
    cpu,
    setGpr: (i, v) => { cpu.r32[i] = v; },
    getGpr: (i) => cpu.r32[i] >>> 0,
    setEflags: (v) => cpu.setEflags(v),
    getEflags: () => cpu.getEflags() >>> 0,
    setEip: (v) => { cpu.eip = v | 0; },
    getEip: () => cpu.eip >>> 0,
    loadFxsave: (img) => { if (!loadFxsave(cpu, img)) throw new Error('FXSAVE image has reserved MXCSR bits'); },
    storeFxsave: () => storeFxsave(cpu),
    writeMem: (addr, data) => { mem.writeBytes(addr, data); cpu.flushTlb(true); },
    readMem: (addr, len) => mem.readBytes(addr, len),
    step: () => {
      softVector = -1;
      try {
        cpu.step();
      } catch (e) {
        if (e instanceof CpuFault) { cpu.eip = cpu.prevEip; return e.vector; }
        throw e;
      }
      return softVector;
    },
  };
}
