// CPUID (SDM vol. 2 "CPUID"): a GenuineIntel family-6 i686 reporting exactly the features implemented.

import type { CPU } from './cpu.ts';

/** Leaf 1 EDX feature bits (SDM vol. 2 Table 3-11). */
export const FEAT = {
  FPU: 1 << 0, VME: 1 << 1, DE: 1 << 2, PSE: 1 << 3, TSC: 1 << 4, MSR: 1 << 5, PAE: 1 << 6, MCE: 1 << 7,
  CX8: 1 << 8, APIC: 1 << 9, SEP: 1 << 11, MTRR: 1 << 12, PGE: 1 << 13, MCA: 1 << 14, CMOV: 1 << 15,
  PAT: 1 << 16, PSE36: 1 << 17, CLFSH: 1 << 19, MMX: 1 << 23, FXSR: 1 << 24, SSE: 1 << 25, SSE2: 1 << 26,
} as const;

/** What this vCPU implements; APIC is present only when the machine wires a local APIC. */
export function leaf1Edx(c: CPU): number {
  const f = FEAT;
  let edx = f.FPU | f.PSE | f.TSC | f.MSR | f.CX8 | f.SEP | f.MTRR | f.PGE | f.CMOV | f.PAT | f.CLFSH | f.MMX | f.FXSR | f.SSE | f.SSE2;
  if (c.features.apic) edx |= f.APIC;
  return edx >>> 0;
}

const str4 = (s: string) => s.charCodeAt(0) | (s.charCodeAt(1) << 8) | (s.charCodeAt(2) << 16) | (s.charCodeAt(3) << 24);

const BRAND = 'Trapeze i686 vCPU'.padEnd(47, ' ') + '\0';
const brandDword = (i: number) => str4(BRAND.slice(i * 4, i * 4 + 4));

const MAX_BASIC = 7;
/** Leaf 7 sub-leaf 0 EDX: IA32_ARCH_CAPABILITIES is implemented (see constants.ts). */
const LEAF7_EDX_ARCH_CAPABILITIES = 1 << 29;
const MAX_EXT = 0x80000004;

/** Returns [EAX, EBX, ECX, EDX] for a leaf (and sub-leaf). */
export function cpuid(c: CPU, leaf: number, sub: number): [number, number, number, number] {
  // Leaves above the maximum return the highest basic leaf's data, as Intel processors do.
  if (leaf > MAX_BASIC && leaf < 0x80000000) leaf = MAX_BASIC;
  if (leaf > MAX_EXT) leaf = MAX_BASIC;
  switch (leaf) {
    case 0: return [MAX_BASIC, str4('Genu'), str4('ntel'), str4('ineI')];
    case 1: return [c.cpuidSignature(), (8 << 8) /* CLFLUSH line 8×8 = 64 bytes */, 0, leaf1Edx(c)];
    case 2:
      // One iteration; descriptors 2Ch L1D 32K 8-way, 30h L1I 32K 8-way, 7Dh L2 2M 8-way (Table 3-12).
      return [0x7d302c01, 0, 0, 0];
    // Leaves 3-6 (serial number, deterministic cache parameters, MONITOR/MWAIT, thermal and power): none.
    // Linux falls back to leaf 2 for the caches when leaf 4 lists none.
    case 7: return sub === 0 ? [0, 0, 0, LEAF7_EDX_ARCH_CAPABILITIES] : [0, 0, 0, 0];
    case 0x80000000: return [MAX_EXT, 0, 0, 0];
    case 0x80000001: return [0, 0, 0, 0];
    case 0x80000002: case 0x80000003: case 0x80000004: {
      const b = (leaf - 0x80000002) * 4;
      return [brandDword(b), brandDword(b + 1), brandDword(b + 2), brandDword(b + 3)];
    }
    default: return [0, 0, 0, 0];
  }
}
