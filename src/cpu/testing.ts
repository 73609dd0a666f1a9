// A vCPU set up like a Linux i386 process for differential tests: flat 32-bit protected mode at CPL 3,
// paging off, guest-physical = linear, exceptions reported to the caller instead of delivered.

import { CPU, CpuFault } from './cpu.ts';
import { GuestMemory } from '../memory/guest-memory.ts';
import { CS, DS, ES, FS, GS, SS, CR0_PE, CR4_OSFXSR, CR4_OSXMMEXCPT } from './constants.ts';
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

export function createUserTestCpu(memBytes = 4 << 20): UserTestCpu {
  const mem = new GuestMemory(memBytes);
  const cpu = new CPU(mem);
  enterFlatProtectedMode(cpu, 3);
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
