// System and privileged instructions (SDM vol. 2 entries; vol. 3A §2.8 "System instruction summary"):
// flag control by CPL/IOPL, port I/O, HLT, descriptor tables, control/debug registers, CPUID, MSRs,
// time-stamp counter, SYSENTER/SYSEXIT.

import type { CPU } from './cpu.ts';
import { def1, def2 } from './optable.ts';
import { osz, regGet, regSet, rmLin, rmRead, rmWrite } from './operands.ts';
import {
  CR0_CD, CR0_ET, CR0_NW, CR0_PE, CR0_PG, CR0_TS, CR0_WP, CR4_DE, CR4_OSFXSR, CR4_OSXMMEXCPT, CR4_PCE,
  CR4_PGE, CR4_PSE, CR4_TSD, CS, IF, IOPL, MSR_APIC_BASE, MSR_BIOS_SIGN_ID, MSR_MISC_ENABLE, MSR_MTRRCAP,
  MSR_MTRR_DEF_TYPE, MSR_PAT, MSR_PLATFORM_ID, MSR_SYSENTER_CS, MSR_SYSENTER_EIP, MSR_SYSENTER_ESP, MSR_TSC,
  RF, SS, VIF, VIP, VM, ZF, CR0_MP, CR0_EM, CR0_NE, CR0_AM,
  MSR_ARCH_CAPABILITIES, ARCH_CAPABILITIES_VALUE,
} from './constants.ts';
import { checkIoPermission, inspectDescriptor, lastLimit, loadLdt, loadTr } from './system.ts';
import { cpuid } from './cpuid.ts';

const iopl = (c: CPU) => (c.flags & IOPL) >> 12;
/** Privileged instructions: #GP(0) unless CPL 0 in protected mode (virtual-8086 mode is CPL 3). */
export function requireCpl0(c: CPU): void {
  if ((c.cr0 & CR0_PE) && ((c.flags & VM) || c.cpl !== 0)) c.gp(0);
}
const requireProtected = (c: CPU) => { if (!(c.cr0 & CR0_PE) || (c.flags & VM)) c.ud(); };

// --- Flag control: CLI/STI (SDM vol. 2 "CLI", without PVI/VME), PUSHF/POPF ---

def1(0xfa, 'cli', (c) => {
  if ((c.cr0 & CR0_PE) && (c.flags & VM ? iopl(c) < 3 : c.cpl > iopl(c))) c.gp(0);
  c.flags &= ~IF;
});
def1(0xfb, 'sti', (c) => {
  if ((c.cr0 & CR0_PE) && (c.flags & VM ? iopl(c) < 3 : c.cpl > iopl(c))) c.gp(0);
  // STI delays interrupt recognition by one instruction (SDM vol. 2 "STI").
  if (!(c.flags & IF)) c.inhibitIrq = true;
  c.flags |= IF;
});
def1(0x9c, 'pushf', (c) => {
  if ((c.flags & VM) && iopl(c) < 3) c.gp(0);
  const f = c.getEflags() & ~(VM | RF);
  if (c.os32) c.push32(f); else c.push16(f);
});
def1(0x9d, 'popf', (c) => {
  if ((c.flags & VM) && iopl(c) < 3) c.gp(0);
  const v = c.os32 ? c.peek32(0) : c.peek16(0);
  let mask = c.os32 ? ~(VM | VIF | VIP | RF) : 0xffff;
  if (c.cr0 & CR0_PE) {
    if (c.flags & VM) mask &= ~IOPL;
    else {
      if (c.cpl > 0) mask &= ~IOPL;
      if (c.cpl > iopl(c)) mask &= ~IF;
    }
  }
  c.addSp(c.os32 ? 4 : 2);
  c.setEflagsMasked(v, mask);
});

// --- Port I/O (SDM vol. 1 §19.5) ---

const ioIn = (c: CPU, port: number, sz: number) => {
  checkIoPermission(c, port, sz);
  regSet(c, 0, sz, c.io.in(port, sz as 1 | 2 | 4) >>> 0);
};
const ioOut = (c: CPU, port: number, sz: number) => {
  checkIoPermission(c, port, sz);
  c.io.out(port, sz as 1 | 2 | 4, regGet(c, 0, sz));
};
def1(0xe4, 'in', (c) => ioIn(c, c.fetch8(), 1));
def1(0xe5, 'in', (c) => ioIn(c, c.fetch8(), osz(c)));
def1(0xe6, 'out', (c) => ioOut(c, c.fetch8(), 1));
def1(0xe7, 'out', (c) => ioOut(c, c.fetch8(), osz(c)));
def1(0xec, 'in', (c) => ioIn(c, c.r16[4], 1));
def1(0xed, 'in', (c) => ioIn(c, c.r16[4], osz(c)));
def1(0xee, 'out', (c) => ioOut(c, c.r16[4], 1));
def1(0xef, 'out', (c) => ioOut(c, c.r16[4], osz(c)));

def1(0xf4, 'hlt', (c) => {
  requireCpl0(c);
  c.halted = true;
});

// ARPL (63): adjusts a selector's RPL up to the source's; #UD outside protected mode.
def1(0x63, 'arpl', (c) => {
  requireProtected(c);
  const m = c.fetchModrm();
  const src = regGet(c, (m >> 3) & 7, 2);
  const l = m >= 0xc0 ? -1 : rmLin(c, m, 2, true);
  const dst = l === -1 ? regGet(c, m & 7, 2) : c.readLin16(l);
  if ((dst & 3) < (src & 3)) {
    const v = (dst & ~3) | (src & 3);
    if (l === -1) regSet(c, m & 7, 2, v); else c.writeLin16(l, v);
    c.setFlagBits(ZF, ZF);
  } else c.setFlagBits(ZF, 0);
});

// --- 0F 00: SLDT STR LLDT LTR VERR VERW ---

def2(0x00, 'grp6', (c) => {
  requireProtected(c);
  const m = c.fetchModrm();
  const op = (m >> 3) & 7;
  switch (op) {
    case 0: case 1: {
      const v = op === 0 ? c.ldtSel : c.trSel;
      if (m >= 0xc0) regSet(c, m & 7, osz(c), v); else rmWrite(c, m, 2, v);
      return;
    }
    case 2: case 3: {
      const sel = rmRead(c, m, 2);
      requireCpl0(c);
      if (op === 2) loadLdt(c, sel); else loadTr(c, sel);
      return;
    }
    case 4: case 5: {
      const sel = rmRead(c, m, 2);
      c.setFlagBits(ZF, inspectDescriptor(c, sel, op === 4 ? 'verr' : 'verw') === -1 ? 0 : ZF);
      return;
    }
    default: c.ud();
  }
});

// --- 0F 01: SGDT SIDT LGDT LIDT SMSW LMSW INVLPG ---

def2(0x01, 'grp7', (c) => {
  const m = c.fetchModrm();
  const op = (m >> 3) & 7;
  switch (op) {
    case 0: case 1: {
      if (m >= 0xc0) c.ud();
      const off = c.ea(m);
      const seg = c.eaSeg;
      const limit = op === 0 ? c.gdtLimit : c.idtLimit;
      const base = op === 0 ? c.gdtBase : c.idtBase;
      const l = c.lin(seg, off, 6, true);
      c.probeWrite(l, 6);
      c.writeLin16(l, limit);
      c.writeLin32((l + 2) | 0, c.os32 ? base : base & 0xffffff);
      return;
    }
    case 2: case 3: {
      if (m >= 0xc0) c.ud();
      const off = c.ea(m);
      const seg = c.eaSeg;
      requireCpl0(c);
      const limit = c.rd16(seg, off);
      let base = c.rd32(seg, (off + 2) | 0);
      if (!c.os32) base &= 0xffffff;
      if (op === 2) { c.gdtLimit = limit; c.gdtBase = base; } else { c.idtLimit = limit; c.idtBase = base; }
      return;
    }
    case 4: {
      if (m >= 0xc0) regSet(c, m & 7, osz(c), c.os32 ? c.cr0 >>> 0 : c.cr0 & 0xffff);
      else rmWrite(c, m, 2, c.cr0 & 0xffff);
      return;
    }
    case 6: {
      const v = rmRead(c, m, 2);
      requireCpl0(c);
      // LMSW loads PE MP EM TS; it can set PE but never clear it.
      const nv = (c.cr0 & ~0xe) | (v & 0xf) | (c.cr0 & CR0_PE);
      writeCr0(c, nv);
      return;
    }
    case 7: {
      if (m >= 0xc0) c.ud();
      const off = c.ea(m);
      requireCpl0(c);
      c.invlpg((c.segBase[c.eaSeg] + off) | 0);
      return;
    }
    default: c.ud();
  }
});

// LAR / LSL (0F 02 / 0F 03)
def2(0x02, 'lar', (c) => {
  requireProtected(c);
  const m = c.fetchModrm();
  const hi = inspectDescriptor(c, rmRead(c, m, 2), 'lar');
  if (hi === -1) { c.setFlagBits(ZF, 0); return; }
  regSet(c, (m >> 3) & 7, osz(c), c.os32 ? (hi & 0x00f0ff00) >>> 0 : hi & 0xff00);
  c.setFlagBits(ZF, ZF);
});
def2(0x03, 'lsl', (c) => {
  requireProtected(c);
  const m = c.fetchModrm();
  const hi = inspectDescriptor(c, rmRead(c, m, 2), 'lsl');
  if (hi === -1) { c.setFlagBits(ZF, 0); return; }
  regSet(c, (m >> 3) & 7, osz(c), c.os32 ? lastLimit : lastLimit & 0xffff);
  c.setFlagBits(ZF, ZF);
});

def2(0x06, 'clts', (c) => { requireCpl0(c); c.cr0 &= ~CR0_TS; });
def2(0x08, 'invd', (c) => requireCpl0(c));
def2(0x09, 'wbinvd', (c) => requireCpl0(c));

// --- Control and debug registers (0F 20-23). The ModRM mod field is ignored: always a register. ---

const CR0_WRITABLE = CR0_PE | CR0_MP | CR0_EM | CR0_TS | CR0_NE | CR0_WP | CR0_AM | CR0_NW | CR0_CD | CR0_PG;
const CR4_SUPPORTED = CR4_TSD | CR4_DE | CR4_PSE | CR4_PGE | CR4_PCE | CR4_OSFXSR | CR4_OSXMMEXCPT;

export function writeCr0(c: CPU, v: number): void {
  if ((v & CR0_PG) && !(v & CR0_PE)) c.gp(0);
  if ((v & CR0_NW) && !(v & CR0_CD)) c.gp(0);
  const old = c.cr0;
  c.cr0 = (v & CR0_WRITABLE) | CR0_ET;
  if ((old ^ c.cr0) & (CR0_PG | CR0_WP | CR0_PE)) c.flushTlb(true);
  if ((old ^ c.cr0) & CR0_PE) {
    // Entering or leaving protected mode changes how CS and SS are interpreted.
    if (!(c.cr0 & CR0_PE)) c.cpl = 0;
    c.updateModes();
  }
  c.stopSlice = c.stopSlice || ((old ^ c.cr0) & (CR0_PG | CR0_PE)) !== 0;
}

function writeCr4(c: CPU, v: number): void {
  if (v & ~CR4_SUPPORTED) c.gp(0);
  const old = c.cr4;
  c.cr4 = v;
  if ((old ^ v) & (CR4_PSE | CR4_PGE)) c.flushTlb(true);
}

def2(0x20, 'mov cr', (c) => {
  const m = c.fetchModrm();
  requireCpl0(c);
  const cr = (m >> 3) & 7;
  const v = cr === 0 ? c.cr0 : cr === 2 ? c.cr2 : cr === 3 ? c.cr3 : cr === 4 ? c.cr4 : c.ud();
  c.r32[m & 7] = v;
});
def2(0x22, 'mov cr', (c) => {
  const m = c.fetchModrm();
  requireCpl0(c);
  const v = c.r32[m & 7];
  switch ((m >> 3) & 7) {
    case 0: writeCr0(c, v); return;
    case 2: c.cr2 = v; return;
    case 3: c.cr3 = v & 0xfffff018; c.flushTlb(false); return;
    case 4: writeCr4(c, v); return;
    default: c.ud();
  }
});
def2(0x21, 'mov dr', (c) => {
  const m = c.fetchModrm();
  requireCpl0(c);
  let dr = (m >> 3) & 7;
  if (dr === 4 || dr === 5) { if (c.cr4 & CR4_DE) c.ud(); dr += 2; }
  c.r32[m & 7] = dr === 6 ? (c.dr[6] | 0xffff0ff0) : dr === 7 ? (c.dr[7] | 0x400) : c.dr[dr];
});
def2(0x23, 'mov dr', (c) => {
  const m = c.fetchModrm();
  requireCpl0(c);
  let dr = (m >> 3) & 7;
  if (dr === 4 || dr === 5) { if (c.cr4 & CR4_DE) c.ud(); dr += 2; }
  c.dr[dr] = c.r32[m & 7];
});

// --- CPUID, time-stamp counter, MSRs ---

def2(0xa2, 'cpuid', (c) => {
  const r = cpuid(c, c.r32[0] >>> 0, c.r32[1] >>> 0);
  c.r32[0] = r[0]; c.r32[3] = r[1]; c.r32[1] = r[2]; c.r32[2] = r[3];
});

def2(0x31, 'rdtsc', (c) => c.rdtsc());

/** MSRs with plain storage and their power-on values (SDM vol. 4 Table 2-2 for family 6). */
const MTRR_VAR = Array.from({ length: 16 }, (_, i) => 0x200 + i);
const MTRR_FIXED = [0x250, 0x258, 0x259, 0x268, 0x269, 0x26a, 0x26b, 0x26c, 0x26d, 0x26e, 0x26f];
const MSR_DEFAULTS = new Map<number, bigint>([
  [MSR_PLATFORM_ID, 0n], [MSR_BIOS_SIGN_ID, 0n], [MSR_MTRRCAP, 0x508n], [MSR_MTRR_DEF_TYPE, 0n],
  [MSR_SYSENTER_CS, 0n], [MSR_SYSENTER_ESP, 0n], [MSR_SYSENTER_EIP, 0n], [MSR_PAT, 0x0007040600070406n],
  [MSR_MISC_ENABLE, 1n], [MSR_ARCH_CAPABILITIES, BigInt(ARCH_CAPABILITIES_VALUE)],
  ...MTRR_VAR.map((n) => [n, 0n] as [number, bigint]),
  ...MTRR_FIXED.map((n) => [n, 0n] as [number, bigint]),
]);
/** Read-only MSRs: a WRMSR raises #GP(0). */
const MSR_READONLY = new Set([MSR_MTRRCAP, MSR_PLATFORM_ID, MSR_ARCH_CAPABILITIES]);

export function readMsr(c: CPU, idx: number): bigint | undefined {
  if (idx === MSR_TSC) return c.readTsc();
  if (idx === MSR_APIC_BASE) return c.features.apic ? c.apicBase : undefined;
  if (!MSR_DEFAULTS.has(idx)) return undefined;
  return c.msr.get(idx) ?? MSR_DEFAULTS.get(idx)!;
}

export function writeMsr(c: CPU, idx: number, v: bigint): boolean {
  if (idx === MSR_TSC) { c.writeTsc(v); return true; }
  if (idx === MSR_APIC_BASE) {
    if (!c.features.apic) return false;
    c.apicBase = (v & 0xfffff900n) | (c.apicBase & 0x100n);
    c.hooks.apicBase?.(c.apicBase);
    return true;
  }
  if (!MSR_DEFAULTS.has(idx) || MSR_READONLY.has(idx)) return false;
  if (idx === MSR_PAT) {
    // Each PAT entry must be a valid memory type (0, 1, 4, 5, 6, 7), else #GP (SDM vol. 3A §11.12.2).
    for (let i = 0n; i < 8n; i++) { const t = (v >> (i * 8n)) & 0xffn; if (t === 2n || t === 3n || t > 7n) return false; }
  }
  c.msr.set(idx, v);
  return true;
}

def2(0x32, 'rdmsr', (c) => {
  requireCpl0(c);
  const v = readMsr(c, c.r32[1] >>> 0);
  if (v === undefined) return c.gp(0);
  c.r32[0] = Number(v & 0xffffffffn); c.r32[2] = Number((v >> 32n) & 0xffffffffn);
});
def2(0x30, 'wrmsr', (c) => {
  requireCpl0(c);
  const v = (BigInt(c.r32[2] >>> 0) << 32n) | BigInt(c.r32[0] >>> 0);
  if (!writeMsr(c, c.r32[1] >>> 0, v)) c.gp(0);
});

// --- SYSENTER / SYSEXIT (SDM vol. 2 "SYSENTER", "SYSEXIT"): flat segments derived from SYSENTER_CS ---

function flatSegment(c: CPU, seg: number, sel: number, ar: number): void {
  c.sreg[seg] = sel; c.segBase[seg] = 0; c.segLimit[seg] = 0xffffffff; c.segAr[seg] = ar;
}

def2(0x34, 'sysenter', (c) => {
  if (c.hooks.sysenter && c.hooks.sysenter()) return;
  const cs = Number(readMsr(c, MSR_SYSENTER_CS)! & 0xffffn);
  if (!(c.cr0 & CR0_PE) || (cs & 0xfffc) === 0) c.gp(0);
  c.flags &= ~(VM | IF | RF);
  flatSegment(c, CS, cs & 0xfffc, 0xc09b);
  flatSegment(c, SS, (cs + 8) & 0xfffc, 0xc093);
  c.cpl = 0;
  c.updateModes();
  c.r32[4] = Number(readMsr(c, MSR_SYSENTER_ESP)! & 0xffffffffn);
  c.eip = Number(readMsr(c, MSR_SYSENTER_EIP)! & 0xffffffffn) | 0;
});
def2(0x35, 'sysexit', (c) => {
  const cs = Number(readMsr(c, MSR_SYSENTER_CS)! & 0xffffn);
  if (!(c.cr0 & CR0_PE) || (c.flags & VM) || c.cpl !== 0 || (cs & 0xfffc) === 0) c.gp(0);
  flatSegment(c, CS, ((cs + 16) & 0xfffc) | 3, 0xc0fb);
  flatSegment(c, SS, ((cs + 24) & 0xfffc) | 3, 0xc0f3);
  c.cpl = 3;
  c.updateModes();
  c.r32[4] = c.r32[1];
  c.eip = c.r32[2];
});

