// Protected-mode system behaviour (Intel SDM vol. 3A): descriptor loads (§3.4, §5.5-5.8), far transfers
// through call gates (§5.8.4-5.8.6), interrupt and exception delivery (§6.12, §20.3 for virtual-8086
// mode), IRET, task switching (§7.3) and the I/O permission bitmap (vol. 1 §19.5).

import type { CPU } from './cpu.ts';
import { AR_UNUSABLE } from './cpu.ts';
import {
  AC, CR0_PE, CR0_TS, CS, DS, ES, EXC_GP, EXC_NP, EXC_SS, EXC_TS, FS, GS, IF, IOPL, NT, RF, SS, TF, VM,
  CR0_PG, VIF, VIP,
} from './constants.ts';

// The last descriptor read by readDescriptor (two dwords) and where it lives, for the accessed bit.
let dLo = 0, dHi = 0, dAddr = 0;

const descBase = (lo: number, hi: number) => ((lo >>> 16) | ((hi & 0xff) << 16) | (hi & 0xff000000)) | 0;
const descLimit = (lo: number, hi: number) => {
  const l = (lo & 0xffff) | (hi & 0xf0000);
  return (hi & 0x800000) ? ((l << 12) | 0xfff) >>> 0 : l;
};
const descAr = (hi: number) => (hi >>> 8) & 0xf0ff;
const descDpl = (hi: number) => (hi >>> 13) & 3;
const descPresent = (hi: number) => (hi & 0x8000) !== 0;
const isCode = (hi: number) => (hi & 0x1800) === 0x1800;
const isData = (hi: number) => (hi & 0x1800) === 0x1000;
const isConforming = (hi: number) => (hi & 0x1c00) === 0x1c00;
const sysType = (hi: number) => (hi >>> 8) & 0x1f; // S bit included: 0x00-0x0f are system descriptors

/** Reads the GDT/LDT descriptor for `sel` into dLo/dHi; raises `vector`(sel) if it is outside the table. */
function readDescriptor(c: CPU, sel: number, vector = EXC_GP): void {
  const idx = sel & 0xfff8;
  let base: number, limit: number;
  if (sel & 4) {
    if (!c.ldtSel || (c.ldtSel & 0xfffc) === 0) c.fault(vector, sel & 0xfffc);
    base = c.ldtBase; limit = c.ldtLimit;
  } else { base = c.gdtBase; limit = c.gdtLimit; }
  if (idx + 7 > limit) c.fault(vector, sel & 0xfffc);
  dAddr = (base + idx) | 0;
  dLo = c.readSys32(dAddr);
  dHi = c.readSys32((dAddr + 4) | 0);
}

function setAccessed(c: CPU): void {
  if (!(dHi & 0x100)) { dHi |= 0x100; c.writeSys32((dAddr + 4) | 0, dHi); }
}

function setSegCache(c: CPU, seg: number, sel: number, lo: number, hi: number): void {
  c.sreg[seg] = sel;
  c.segBase[seg] = descBase(lo, hi);
  c.segLimit[seg] = descLimit(lo, hi);
  c.segAr[seg] = descAr(hi);
}

/** Real-address and virtual-8086 segment loads: base = selector × 16 (SDM vol. 3A §20.1.1). */
export function loadSegmentReal(c: CPU, seg: number, sel: number): void {
  c.sreg[seg] = sel;
  c.segBase[seg] = sel << 4;
  if (c.flags & VM) {
    c.segLimit[seg] = 0xffff;
    c.segAr[seg] = seg === CS ? 0xfb : 0xf3;
  } else {
    c.segAr[seg] = (c.segAr[seg] & ~AR_UNUSABLE) | 0x80;
  }
  if (seg === CS || seg === SS) c.updateModes(); else c.updateSegFast(seg);
}

/** MOV/POP/LxS to a data or stack segment register (SDM vol. 2 "MOV" protected-mode checks). */
export function loadSegment(c: CPU, seg: number, sel: number): void {
  sel &= 0xffff;
  if (!(c.cr0 & CR0_PE) || (c.flags & VM)) { loadSegmentReal(c, seg, sel); return; }
  const rpl = sel & 3;
  if (seg === SS) {
    if ((sel & 0xfffc) === 0) c.gp(0);
    readDescriptor(c, sel);
    if (rpl !== c.cpl || descDpl(dHi) !== c.cpl || !isData(dHi) || !(dHi & 0x200)) c.gp(sel & 0xfffc);
    if (!descPresent(dHi)) c.fault(EXC_SS, sel & 0xfffc);
    setAccessed(c);
    setSegCache(c, SS, sel, dLo, dHi);
    c.updateModes();
    return;
  }
  if ((sel & 0xfffc) === 0) {
    c.sreg[seg] = sel; c.segBase[seg] = 0; c.segLimit[seg] = 0; c.segAr[seg] = AR_UNUSABLE;
    c.updateSegFast(seg);
    return;
  }
  readDescriptor(c, sel);
  if (!isData(dHi) && !(isCode(dHi) && (dHi & 0x200))) c.gp(sel & 0xfffc);
  if (isData(dHi) || !isConforming(dHi)) {
    if (descDpl(dHi) < Math.max(c.cpl, rpl)) c.gp(sel & 0xfffc);
  }
  if (!descPresent(dHi)) c.fault(EXC_NP, sel & 0xfffc);
  setAccessed(c);
  setSegCache(c, seg, sel, dLo, dHi);
  c.updateSegFast(seg);
}

/** Loads CS from a checked code descriptor at privilege level `cpl`. */
function loadCs(c: CPU, sel: number, lo: number, hi: number, cpl: number): void {
  setSegCache(c, CS, (sel & 0xfffc) | cpl, lo, hi);
  c.cpl = cpl;
  c.updateModes();
}

/** After a return to an outer level, data segments the new CPL may not use become null (SDM §5.8.6). */
function nullInaccessibleSegments(c: CPU): void {
  for (const s of [ES, DS, FS, GS]) {
    const ar = c.segAr[s];
    if (ar & AR_UNUSABLE) continue;
    const dpl = (ar >> 5) & 3;
    const codeConforming = (ar & 0x1c) === 0x1c;
    if (!codeConforming && dpl < c.cpl) {
      c.sreg[s] = 0; c.segAr[s] = AR_UNUSABLE; c.segBase[s] = 0; c.segLimit[s] = 0;
      c.updateSegFast(s);
    }
  }
}

/** Checks a code-segment target for JMP/CALL (SDM vol. 2 "JMP" / "CALL" far, protected mode). */
function checkCodeTarget(c: CPU, sel: number, hi: number): void {
  if (isConforming(hi)) {
    if (descDpl(hi) > c.cpl) c.gp(sel & 0xfffc);
  } else if ((sel & 3) > c.cpl || descDpl(hi) !== c.cpl) c.gp(sel & 0xfffc);
  if (!descPresent(hi)) c.fault(EXC_NP, sel & 0xfffc);
}

/** Reads the inner-level stack pointer for privilege `dpl` from the current TSS (SDM §7.2.1, Fig. 7-2). */
function tssStack(c: CPU, dpl: number): [number, number] {
  const is32 = (c.trAr & 0x8) !== 0;
  if (is32) {
    const off = 4 + dpl * 8;
    if (off + 5 > c.trLimit) c.fault(EXC_TS, c.trSel & 0xfffc);
    return [c.readSys16((c.trBase + off + 4) | 0), c.readSys32((c.trBase + off) | 0)];
  }
  const off = 2 + dpl * 4;
  if (off + 3 > c.trLimit) c.fault(EXC_TS, c.trSel & 0xfffc);
  return [c.readSys16((c.trBase + off + 2) | 0), c.readSys16((c.trBase + off) | 0)];
}

/** Validates and loads a new SS for an inner-level transfer; a bad one raises #TS (SDM §6.12.1.1). */
function loadInnerSs(c: CPU, ssSel: number, dpl: number): void {
  if ((ssSel & 0xfffc) === 0) c.fault(EXC_TS, 0);
  readDescriptor(c, ssSel, EXC_TS);
  if ((ssSel & 3) !== dpl || descDpl(dHi) !== dpl || !isData(dHi) || !(dHi & 0x200)) c.fault(EXC_TS, ssSel & 0xfffc);
  if (!descPresent(dHi)) c.fault(EXC_SS, ssSel & 0xfffc);
  setAccessed(c);
  setSegCache(c, SS, ssSel, dLo, dHi);
}

// --- Stack writes at an explicit SS:ESP, used while building frames on a new stack. ---

class FrameWriter {
  sp = 0;
  constructor(private c: CPU, private big: boolean, sp: number) { this.sp = sp; }
  push(v: number, is32: boolean): void {
    const c = this.c;
    this.sp = (this.sp - (is32 ? 4 : 2)) | 0;
    const off = this.big ? this.sp : this.sp & 0xffff;
    if (is32) c.wr32(SS, off, v); else c.wr16(SS, off, v);
  }
}

export function farJump(c: CPU, sel: number, off: number, os32: boolean): void {
  if (!(c.cr0 & CR0_PE) || (c.flags & VM)) {
    loadSegmentReal(c, CS, sel);
    c.eip = os32 ? off | 0 : off & 0xffff;
    return;
  }
  if ((sel & 0xfffc) === 0) c.gp(0);
  readDescriptor(c, sel);
  const lo = dLo, hi = dHi;
  if (hi & 0x1000) {
    if (!isCode(hi)) c.gp(sel & 0xfffc);
    checkCodeTarget(c, sel, hi);
    const target = os32 ? off >>> 0 : off & 0xffff;
    if (target > descLimit(lo, hi)) c.gp(0);
    setAccessed(c);
    loadCs(c, sel, lo, hi, c.cpl);
    c.eip = target | 0;
    return;
  }
  const type = sysType(hi);
  if (type === 0x04 || type === 0x0c) {
    // Call gate: only the same privilege level is reachable by JMP.
    if (descDpl(hi) < c.cpl || descDpl(hi) < (sel & 3)) c.gp(sel & 0xfffc);
    if (!descPresent(hi)) c.fault(EXC_NP, sel & 0xfffc);
    const csSel = lo >>> 16;
    const target = type === 0x0c ? ((lo & 0xffff) | (hi & 0xffff0000)) >>> 0 : lo & 0xffff;
    if ((csSel & 0xfffc) === 0) c.gp(0);
    readDescriptor(c, csSel);
    if (!isCode(dHi)) c.gp(csSel & 0xfffc);
    if (isConforming(dHi) ? descDpl(dHi) > c.cpl : descDpl(dHi) !== c.cpl) c.gp(csSel & 0xfffc);
    if (!descPresent(dHi)) c.fault(EXC_NP, csSel & 0xfffc);
    if (target > descLimit(dLo, dHi)) c.gp(0);
    setAccessed(c);
    loadCs(c, csSel, dLo, dHi, c.cpl);
    c.eip = target | 0;
    return;
  }
  if (type === 0x05 || type === 0x01 || type === 0x09) {
    if (descDpl(hi) < c.cpl || descDpl(hi) < (sel & 3)) c.gp(sel & 0xfffc);
    if (!descPresent(hi)) c.fault(EXC_NP, sel & 0xfffc);
    taskSwitchFrom(c, sel, lo, hi, 'jmp');
    return;
  }
  c.gp(sel & 0xfffc);
}

export function farCall(c: CPU, sel: number, off: number, os32: boolean): void {
  if (!(c.cr0 & CR0_PE) || (c.flags & VM)) {
    const target = os32 ? off | 0 : off & 0xffff;
    const sp0 = c.r32[4];
    try {
      if (os32) { c.push32(c.sreg[CS]); c.push32(c.eip); } else { c.push16(c.sreg[CS]); c.push16(c.eip); }
    } catch (e) { c.r32[4] = sp0; throw e; }
    loadSegmentReal(c, CS, sel);
    c.eip = target;
    return;
  }
  if ((sel & 0xfffc) === 0) c.gp(0);
  readDescriptor(c, sel);
  const lo = dLo, hi = dHi;
  if (hi & 0x1000) {
    if (!isCode(hi)) c.gp(sel & 0xfffc);
    checkCodeTarget(c, sel, hi);
    const target = os32 ? off >>> 0 : off & 0xffff;
    // Push first (it may fault), then check the target offset, then commit.
    const fw = new FrameWriter(c, c.ss32, c.r32[4]);
    fw.push(c.sreg[CS], os32); fw.push(c.eip, os32);
    if (target > descLimit(lo, hi)) c.gp(0);
    setAccessed(c);
    if (c.ss32) c.r32[4] = fw.sp; else c.r16[8] = fw.sp;
    loadCs(c, sel, lo, hi, c.cpl);
    c.eip = target | 0;
    return;
  }
  const type = sysType(hi);
  if (type === 0x04 || type === 0x0c) {
    callGate(c, sel, lo, hi);
    return;
  }
  if (type === 0x05 || type === 0x01 || type === 0x09) {
    if (descDpl(hi) < c.cpl || descDpl(hi) < (sel & 3)) c.gp(sel & 0xfffc);
    if (!descPresent(hi)) c.fault(EXC_NP, sel & 0xfffc);
    taskSwitchFrom(c, sel, lo, hi, 'call');
    return;
  }
  c.gp(sel & 0xfffc);
}

/** CALL through a call gate, switching stacks for a more privileged target (SDM vol. 3A §5.8.5). */
function callGate(c: CPU, sel: number, lo: number, hi: number): void {
  if (descDpl(hi) < c.cpl || descDpl(hi) < (sel & 3)) c.gp(sel & 0xfffc);
  if (!descPresent(hi)) c.fault(EXC_NP, sel & 0xfffc);
  const gate32 = sysType(hi) === 0x0c;
  const csSel = lo >>> 16;
  const target = gate32 ? ((lo & 0xffff) | (hi & 0xffff0000)) >>> 0 : lo & 0xffff;
  const params = hi & 0x1f;
  if ((csSel & 0xfffc) === 0) c.gp(0);
  readDescriptor(c, csSel);
  const cLo = dLo, cHi = dHi, cAddr = dAddr;
  if (!isCode(cHi) || descDpl(cHi) > c.cpl) c.gp(csSel & 0xfffc);
  if (!descPresent(cHi)) c.fault(EXC_NP, csSel & 0xfffc);
  if (target > descLimit(cLo, cHi)) c.gp(0);
  const dpl = descDpl(cHi);
  const oldCs = c.sreg[CS], oldEip = c.eip;
  if (!isConforming(cHi) && dpl < c.cpl) {
    // More privileged: new stack from the TSS, copy `params` parameters from the old stack.
    const [ssSel, esp] = tssStack(c, dpl);
    const oldSs = c.sreg[SS], oldEsp = c.r32[4], oldSs32 = c.ss32;
    const savedSs = [c.sreg[SS], c.segBase[SS], c.segLimit[SS], c.segAr[SS]];
    const paramVals: number[] = [];
    for (let i = params - 1; i >= 0; i--) {
      const o = oldSs32 ? (oldEsp + i * (gate32 ? 4 : 2)) | 0 : (oldEsp + i * (gate32 ? 4 : 2)) & 0xffff;
      paramVals.push(gate32 ? c.rd32(SS, o) : c.rd16(SS, o));
    }
    const oldCpl = c.cpl;
    try {
      loadInnerSs(c, ssSel, dpl);
      c.cpl = dpl; c.updateModes();
      const fw = new FrameWriter(c, c.ss32, esp);
      fw.push(oldSs, gate32); fw.push(oldEsp, gate32);
      for (const v of paramVals) fw.push(v, gate32);
      fw.push(oldCs, gate32); fw.push(oldEip, gate32);
      c.r32[4] = c.ss32 ? fw.sp : (c.r32[4] & ~0xffff) | (fw.sp & 0xffff);
    } catch (e) {
      c.sreg[SS] = savedSs[0]; c.segBase[SS] = savedSs[1]; c.segLimit[SS] = savedSs[2]; c.segAr[SS] = savedSs[3];
      c.cpl = oldCpl; c.updateModes();
      throw e;
    }
    dAddr = cAddr; dHi = cHi; setAccessed(c);
    loadCs(c, csSel, cLo, cHi, dpl);
    c.eip = target | 0;
    return;
  }
  const fw = new FrameWriter(c, c.ss32, c.r32[4]);
  fw.push(oldCs, gate32); fw.push(oldEip, gate32);
  if (c.ss32) c.r32[4] = fw.sp; else c.r16[8] = fw.sp;
  dAddr = cAddr; dHi = cHi; setAccessed(c);
  loadCs(c, csSel, cLo, cHi, c.cpl);
  c.eip = target | 0;
}

/** RET far (SDM vol. 2 "RET"): same level, or to an outer level with a stack switch. */
export function farReturn(c: CPU, os32: boolean, n: number): void {
  const sz = os32 ? 4 : 2;
  const rd = (d: number) => (os32 ? c.peek32(d) : c.peek16(d));
  if (!(c.cr0 & CR0_PE) || (c.flags & VM)) {
    const ip = rd(0), cs = rd(sz) & 0xffff;
    loadSegmentReal(c, CS, cs);
    c.eip = os32 ? ip : ip & 0xffff;
    c.addSp(2 * sz + n);
    return;
  }
  const ip = rd(0) >>> 0;
  const sel = rd(sz) & 0xffff;
  const rpl = sel & 3;
  if ((sel & 0xfffc) === 0) c.gp(0);
  readDescriptor(c, sel);
  const lo = dLo, hi = dHi;
  if (!isCode(hi) || rpl < c.cpl) c.gp(sel & 0xfffc);
  if (isConforming(hi) ? descDpl(hi) > rpl : descDpl(hi) !== rpl) c.gp(sel & 0xfffc);
  if (!descPresent(hi)) c.fault(EXC_NP, sel & 0xfffc);
  const target = os32 ? ip : ip & 0xffff;
  if (target > descLimit(lo, hi)) c.gp(0);
  if (rpl === c.cpl) {
    setAccessed(c);
    loadCs(c, sel, lo, hi, rpl);
    c.eip = target | 0;
    c.addSp(2 * sz + n);
    return;
  }
  // Return to an outer level: SS:ESP follow the parameters on the stack.
  const newEsp = rd(2 * sz + n);
  const newSs = rd(3 * sz + n) & 0xffff;
  const csAddr = dAddr;
  if ((newSs & 0xfffc) === 0) c.gp(0);
  readDescriptor(c, newSs);
  if ((newSs & 3) !== rpl || descDpl(dHi) !== rpl || !isData(dHi) || !(dHi & 0x200)) c.gp(newSs & 0xfffc);
  if (!descPresent(dHi)) c.fault(EXC_SS, newSs & 0xfffc);
  setAccessed(c);
  setSegCache(c, SS, newSs, dLo, dHi);
  dAddr = csAddr; dHi = hi; setAccessed(c);
  loadCs(c, sel, lo, hi, rpl);
  c.eip = target | 0;
  if (c.ss32) c.r32[4] = (newEsp + n) | 0; else c.r16[8] = (newEsp + n) & 0xffff;
  nullInaccessibleSegments(c);
}

/** IRET/IRETD (SDM vol. 2 "IRET"). */
export function iret(c: CPU, os32: boolean): void {
  const sz = os32 ? 4 : 2;
  const rd = (d: number) => (os32 ? c.peek32(d) : c.peek16(d));
  if (!(c.cr0 & CR0_PE)) {
    const ip = rd(0), cs = rd(sz) & 0xffff, fl = rd(2 * sz);
    loadSegmentReal(c, CS, cs);
    c.eip = os32 ? ip : ip & 0xffff;
    c.setEflagsMasked(fl, os32 ? 0x257fd5 : 0x7fd5); // VM, VIF, VIP unchanged in real mode
    c.addSp(3 * sz);
    return;
  }
  if (c.flags & VM) {
    // SDM vol. 3A §20.2.7: IRET in virtual-8086 mode needs IOPL 3 (no VME); IOPL itself is not changed.
    if (((c.flags & IOPL) >> 12) !== 3) c.gp(0);
    const ip = rd(0), cs = rd(sz) & 0xffff, fl = rd(2 * sz);
    loadSegmentReal(c, CS, cs);
    c.eip = os32 ? ip : ip & 0xffff;
    c.setEflagsMasked(fl, (os32 ? 0xffffffff : 0xffff) & ~(IOPL | VM | VIF | VIP));
    c.addSp(3 * sz);
    return;
  }
  if (c.flags & NT) {
    // Return from a nested task through the back link (SDM §7.3).
    const link = c.readSys16(c.trBase);
    if (link & 4) c.fault(EXC_TS, link & 0xfffc);
    readDescriptor(c, link, EXC_TS);
    if (sysType(dHi) !== 0x0b && sysType(dHi) !== 0x03) c.fault(EXC_TS, link & 0xfffc);
    if (!descPresent(dHi)) c.fault(EXC_NP, link & 0xfffc);
    taskSwitchFrom(c, link, dLo, dHi, 'iret');
    return;
  }
  const ip = rd(0) >>> 0;
  const sel = rd(sz) & 0xffff;
  const fl = rd(2 * sz);
  if (os32 && (fl & VM) && c.cpl === 0) {
    // Return to virtual-8086 mode (SDM §20.2.7 / "IRET" pseudo-code RETURN-TO-VIRTUAL-8086-MODE).
    const esp = rd(12), ss = rd(16), es = rd(20), ds = rd(24), fs = rd(28), gs = rd(32);
    c.setEflags(fl);
    c.cpl = 3;
    loadSegmentReal(c, CS, sel);
    for (const [s, v] of [[ES, es], [DS, ds], [FS, fs], [GS, gs], [SS, ss]] as const) loadSegmentReal(c, s, v & 0xffff);
    c.r32[4] = esp;
    c.eip = ip & 0xffff;
    c.updateModes();
    return;
  }
  const rpl = sel & 3;
  if ((sel & 0xfffc) === 0) c.gp(0);
  readDescriptor(c, sel);
  const lo = dLo, hi = dHi, csAddr = dAddr;
  if (!isCode(hi) || rpl < c.cpl) c.gp(sel & 0xfffc);
  if (isConforming(hi) ? descDpl(hi) > rpl : descDpl(hi) !== rpl) c.gp(sel & 0xfffc);
  if (!descPresent(hi)) c.fault(EXC_NP, sel & 0xfffc);
  const target = os32 ? ip : ip & 0xffff;
  if (target > descLimit(lo, hi)) c.gp(0);
  // EFLAGS privilege rules: IOPL only at CPL 0, IF only when CPL <= IOPL; VM/VIF/VIP never from here.
  const oldCpl = c.cpl;
  let mask = 0x3f7fd5 & ~(VM | VIF | VIP);
  if (!os32) mask &= 0xffff;
  if (oldCpl > 0) mask &= ~IOPL;
  if (oldCpl > ((c.flags & IOPL) >> 12)) mask &= ~IF;
  if (rpl === oldCpl) {
    dAddr = csAddr; dHi = hi; setAccessed(c);
    loadCs(c, sel, lo, hi, rpl);
    c.eip = target | 0;
    c.setEflagsMasked(fl, mask);
    c.addSp(3 * sz);
    return;
  }
  const newEsp = rd(3 * sz);
  const newSs = rd(4 * sz) & 0xffff;
  if ((newSs & 0xfffc) === 0) c.gp(0);
  readDescriptor(c, newSs);
  if ((newSs & 3) !== rpl || descDpl(dHi) !== rpl || !isData(dHi) || !(dHi & 0x200)) c.gp(newSs & 0xfffc);
  if (!descPresent(dHi)) c.fault(EXC_SS, newSs & 0xfffc);
  setAccessed(c);
  setSegCache(c, SS, newSs, dLo, dHi);
  dAddr = csAddr; dHi = hi; setAccessed(c);
  loadCs(c, sel, lo, hi, rpl);
  c.eip = target | 0;
  c.setEflagsMasked(fl, mask);
  if (c.ss32) c.r32[4] = newEsp; else c.r16[8] = newEsp;
  nullInaccessibleSegments(c);
}

/**
 * Delivers interrupt/exception `vector` (SDM vol. 3A §6.12). `software` is INT n/INT3/INTO (gate DPL
 * checked); `ext` sets the EXT bit of error codes caused while delivering a hardware event.
 */
export function deliverInterrupt(c: CPU, vector: number, software: boolean, hasCode: boolean, code: number, ext: boolean): void {
  const extBit = ext ? 1 : 0;
  if (!(c.cr0 & CR0_PE)) {
    // Real mode: the IVT entry is a far pointer; FLAGS, CS, IP are pushed (16-bit).
    if (vector * 4 + 3 > c.idtLimit) c.gp(0);
    const ent = c.readSys32((c.idtBase + vector * 4) | 0);
    const sp0 = c.r32[4];
    try {
      c.push16(c.getEflags()); c.push16(c.sreg[CS]); c.push16(c.eip);
    } catch (e) { c.r32[4] = sp0; throw e; }
    c.flags &= ~(IF | TF | AC | RF);
    loadSegmentReal(c, CS, ent >>> 16);
    c.eip = ent & 0xffff;
    return;
  }
  const gateErr = vector * 8 + 2 + extBit;
  if (vector * 8 + 7 > c.idtLimit) c.gp(gateErr);
  const gAddr = (c.idtBase + vector * 8) | 0;
  const lo = c.readSys32(gAddr), hi = c.readSys32((gAddr + 4) | 0);
  const type = sysType(hi);
  if (type !== 0x05 && type !== 0x06 && type !== 0x07 && type !== 0x0e && type !== 0x0f) c.gp(gateErr);
  if (software && descDpl(hi) < c.cpl) c.gp(gateErr);
  if (!descPresent(hi)) c.fault(EXC_NP, gateErr);
  if (type === 0x05) {
    const tss = lo >>> 16;
    readDescriptor(c, tss, EXC_TS);
    if ((tss & 4) || sysType(dHi) !== 0x09 && sysType(dHi) !== 0x01) c.fault(EXC_TS, (tss & 0xfffc) | extBit);
    if (!descPresent(dHi)) c.fault(EXC_NP, (tss & 0xfffc) | extBit);
    taskSwitchFrom(c, tss, dLo, dHi, 'int');
    if (hasCode) {
      if (c.cs32) c.push32(code); else c.push16(code);
    }
    return;
  }
  const gate32 = (type & 0x08) !== 0;
  const csSel = lo >>> 16;
  const target = gate32 ? ((lo & 0xffff) | (hi & 0xffff0000)) >>> 0 : lo & 0xffff;
  if ((csSel & 0xfffc) === 0) c.gp(extBit);
  readDescriptor(c, csSel);
  const cLo = dLo, cHi = dHi, cAddr = dAddr;
  if (!isCode(cHi) || descDpl(cHi) > c.cpl) c.gp((csSel & 0xfffc) | extBit);
  if (!descPresent(cHi)) c.fault(EXC_NP, (csSel & 0xfffc) | extBit);
  if (target > descLimit(cLo, cHi)) c.gp(extBit);
  const dpl = descDpl(cHi);
  const oldFlags = c.getEflags();
  const oldCs = c.sreg[CS], oldEip = c.eip;
  const fromV86 = (oldFlags & VM) !== 0;
  const savedCpl = c.cpl;
  const savedSs = [c.sreg[SS], c.segBase[SS], c.segLimit[SS], c.segAr[SS]] as const;
  if (!isConforming(cHi) && dpl < c.cpl) {
    // Inner privilege: stack from the TSS; from virtual-8086 mode the target must be ring 0.
    if (fromV86 && dpl !== 0) c.gp((csSel & 0xfffc) | extBit);
    const [ssSel, esp] = tssStack(c, dpl);
    const oldSs = c.sreg[SS], oldEsp = c.r32[4];
    try {
      loadInnerSs(c, ssSel, dpl);
      c.cpl = dpl;
      c.flags &= ~VM;
      c.updateModes();
      const fw = new FrameWriter(c, c.ss32, esp);
      if (fromV86) {
        fw.push(c.sreg[GS], gate32); fw.push(c.sreg[FS], gate32); fw.push(c.sreg[DS], gate32); fw.push(c.sreg[ES], gate32);
      }
      fw.push(oldSs, gate32); fw.push(oldEsp, gate32);
      fw.push(oldFlags, gate32); fw.push(oldCs, gate32); fw.push(oldEip, gate32);
      if (hasCode) fw.push(code, gate32);
      c.r32[4] = c.ss32 ? fw.sp : (c.r32[4] & ~0xffff) | (fw.sp & 0xffff);
    } catch (e) {
      c.sreg[SS] = savedSs[0]; c.segBase[SS] = savedSs[1]; c.segLimit[SS] = savedSs[2]; c.segAr[SS] = savedSs[3];
      c.cpl = savedCpl; c.flags = oldFlags; c.updateModes();
      throw e;
    }
    if (fromV86) {
      for (const s of [GS, FS, DS, ES]) { c.sreg[s] = 0; c.segBase[s] = 0; c.segLimit[s] = 0; c.segAr[s] = AR_UNUSABLE; }
    }
  } else {
    if (fromV86) c.gp((csSel & 0xfffc) | extBit);
    const fw = new FrameWriter(c, c.ss32, c.r32[4]);
    fw.push(oldFlags, gate32); fw.push(oldCs, gate32); fw.push(oldEip, gate32);
    if (hasCode) fw.push(code, gate32);
    if (c.ss32) c.r32[4] = fw.sp; else c.r16[8] = fw.sp;
  }
  dAddr = cAddr; dHi = cHi; setAccessed(c);
  loadCs(c, csSel, cLo, cHi, isConforming(cHi) ? c.cpl : dpl);
  c.eip = target | 0;
  // Interrupt gates clear IF; both kinds clear TF, NT, RF and VM (SDM §6.12.1.2).
  c.flags &= ~(TF | NT | RF | VM);
  if (!(type & 1)) c.flags &= ~IF;
  c.updateModes();
}

/** The I/O permission check of IN/OUT/INS/OUTS (SDM vol. 1 §19.5.2): CPL > IOPL or V86 consults the TSS bitmap. */
export function checkIoPermission(c: CPU, port: number, size: number): void {
  if (!(c.cr0 & CR0_PE)) return;
  const iopl = (c.flags & IOPL) >> 12;
  if (!(c.flags & VM) && c.cpl <= iopl) return;
  // Only a 32-bit TSS has a bitmap.
  if ((c.trAr & 0xf) !== 0x9 && (c.trAr & 0xf) !== 0xb) c.gp(0);
  if (c.trLimit < 0x67) c.gp(0);
  const mapOff = c.readSys16((c.trBase + 0x66) | 0);
  const byteOff = mapOff + (port >> 3);
  if (byteOff + 1 > c.trLimit) c.gp(0);
  const bits = c.readSys16((c.trBase + byteOff) | 0);
  const mask = ((1 << size) - 1) << (port & 7);
  if (bits & mask) c.gp(0);
}

// --- Task switching (SDM vol. 3A §7.3) ---

type TaskSource = 'jmp' | 'call' | 'iret' | 'int';

/** Switches to the task whose TSS (or task gate's TSS) selector and descriptor are given. */
function taskSwitchFrom(c: CPU, sel: number, lo: number, hi: number, source: TaskSource): void {
  let tssSel = sel, tLo = lo, tHi = hi;
  if (sysType(hi) === 0x05) {
    tssSel = lo >>> 16;
    if (tssSel & 4) c.gp(tssSel & 0xfffc);
    readDescriptor(c, tssSel);
    tLo = dLo; tHi = dHi;
  } else {
    readDescriptor(c, tssSel);
  }
  const tAddr = dAddr;
  const type = sysType(tHi);
  const busyExpected = source === 'iret';
  const isTss = type === 0x09 || type === 0x0b || type === 0x01 || type === 0x03;
  if (!isTss || (((type & 2) !== 0) !== busyExpected)) c.gp(tssSel & 0xfffc);
  if (!descPresent(tHi)) c.fault(EXC_NP, tssSel & 0xfffc);
  const new32 = (type & 8) !== 0;
  const newBase = descBase(tLo, tHi);
  const newLimit = descLimit(tLo, tHi);
  if (newLimit < (new32 ? 0x67 : 0x2b)) c.fault(EXC_TS, tssSel & 0xfffc);

  // Save the outgoing task's state into its TSS.
  const old32 = (c.trAr & 8) !== 0;
  const ob = c.trBase;
  let flags = c.getEflags();
  if (source === 'iret') flags &= ~NT;
  if (old32) {
    c.writeSys32(ob + 0x20, c.eip);
    c.writeSys32(ob + 0x24, flags);
    for (let i = 0; i < 8; i++) c.writeSys32(ob + 0x28 + i * 4, c.r32[i]);
    for (let s = 0; s < 6; s++) c.writeSys16(ob + 0x48 + s * 4, c.sreg[s]);
  } else {
    c.writeSys16(ob + 0x0e, c.eip);
    c.writeSys16(ob + 0x10, flags);
    for (let i = 0; i < 8; i++) c.writeSys16(ob + 0x12 + i * 2, c.r32[i]);
    for (let s = 0; s < 4; s++) c.writeSys16(ob + 0x22 + s * 2, c.sreg[s]);
  }
  // The outgoing task is no longer busy after JMP/IRET (its descriptor's busy bit cleared).
  if (source === 'jmp' || source === 'iret') {
    const oAddr = (c.gdtBase + (c.trSel & 0xfff8)) | 0;
    c.writeSys32(oAddr + 4, c.readSys32(oAddr + 4) & ~0x200);
  }
  if (source === 'call' || source === 'int') c.writeSys16(newBase, c.trSel);
  if (source !== 'iret') c.writeSys32(tAddr + 4, tHi | 0x200);

  // Load the incoming task.
  c.trSel = tssSel; c.trBase = newBase; c.trLimit = newLimit; c.trAr = descAr(tHi | 0x200);
  c.cr0 |= CR0_TS;
  const nb = newBase;
  let eip: number, nflags: number;
  const sels: number[] = [];
  let ldt: number;
  if (new32) {
    if (c.cr0 & CR0_PG) { c.cr3 = c.readSys32(nb + 0x1c); }
    eip = c.readSys32(nb + 0x20);
    nflags = c.readSys32(nb + 0x24);
    for (let i = 0; i < 8; i++) c.r32[i] = c.readSys32(nb + 0x28 + i * 4);
    for (let s = 0; s < 6; s++) sels.push(c.readSys16(nb + 0x48 + s * 4));
    ldt = c.readSys16(nb + 0x60);
  } else {
    eip = c.readSys16(nb + 0x0e);
    nflags = c.readSys16(nb + 0x10) | (c.flags & 0xffff0000);
    for (let i = 0; i < 8; i++) c.r16[i << 1] = c.readSys16(nb + 0x12 + i * 2);
    for (let s = 0; s < 4; s++) sels.push(c.readSys16(nb + 0x22 + s * 2));
    sels.push(0, 0);
    ldt = c.readSys16(nb + 0x2a);
  }
  if (source === 'call' || source === 'int') nflags |= NT;
  c.flushTlb(false);
  c.flags = (nflags | 2) & 0x3f7fd7;
  c.lzMask = 0;
  c.eip = eip;
  // Selectors are loaded first, then validated; a bad one is #TS in the new task's context.
  for (let s = 0; s < 6; s++) c.sreg[s] = sels[s];
  c.ldtSel = ldt;
  if (ldt & 0xfffc) {
    if (ldt & 4) c.fault(EXC_TS, ldt & 0xfffc);
    readDescriptor(c, ldt, EXC_TS);
    if (sysType(dHi) !== 0x02) c.fault(EXC_TS, ldt & 0xfffc);
    if (!descPresent(dHi)) c.fault(EXC_TS, ldt & 0xfffc);
    c.ldtBase = descBase(dLo, dHi); c.ldtLimit = descLimit(dLo, dHi);
  } else { c.ldtBase = 0; c.ldtLimit = 0; }
  if (c.flags & VM) {
    c.cpl = 3;
    for (let s = 0; s < 6; s++) loadSegmentReal(c, s, sels[s]);
    c.updateModes();
    return;
  }
  const csSel = sels[CS];
  if ((csSel & 0xfffc) === 0) c.fault(EXC_TS, 0);
  readDescriptor(c, csSel, EXC_TS);
  if (!isCode(dHi)) c.fault(EXC_TS, csSel & 0xfffc);
  if (!descPresent(dHi)) c.fault(EXC_NP, csSel & 0xfffc);
  const newCpl = csSel & 3;
  setSegCache(c, CS, csSel, dLo, dHi);
  c.cpl = newCpl;
  c.updateModes();
  const ssSel = sels[SS];
  if ((ssSel & 0xfffc) === 0) c.fault(EXC_TS, 0);
  readDescriptor(c, ssSel, EXC_TS);
  if ((ssSel & 3) !== newCpl || descDpl(dHi) !== newCpl || !isData(dHi) || !(dHi & 0x200)) c.fault(EXC_TS, ssSel & 0xfffc);
  if (!descPresent(dHi)) c.fault(EXC_SS, ssSel & 0xfffc);
  setSegCache(c, SS, ssSel, dLo, dHi);
  c.updateModes();
  for (const s of [ES, DS, FS, GS]) {
    const v = sels[s];
    try { loadSegment(c, s, v); } catch (e) {
      if (e && typeof e === 'object' && 'vector' in e && (e as { vector: number }).vector === EXC_GP) c.fault(EXC_TS, v & 0xfffc);
      throw e;
    }
  }
}

// --- Descriptor-table instructions used by ops-system.ts ---

/** LLDT (SDM vol. 2 "LLDT"). */
export function loadLdt(c: CPU, sel: number): void {
  if ((sel & 0xfffc) === 0) { c.ldtSel = sel; c.ldtBase = 0; c.ldtLimit = 0; return; }
  if (sel & 4) c.gp(sel & 0xfffc);
  readDescriptor(c, sel);
  if (sysType(dHi) !== 0x02) c.gp(sel & 0xfffc);
  if (!descPresent(dHi)) c.fault(EXC_NP, sel & 0xfffc);
  c.ldtSel = sel; c.ldtBase = descBase(dLo, dHi); c.ldtLimit = descLimit(dLo, dHi);
}

/** LTR (SDM vol. 2 "LTR"): the TSS must be available; it becomes busy. */
export function loadTr(c: CPU, sel: number): void {
  if ((sel & 0xfffc) === 0 || (sel & 4)) c.gp(sel & 0xfffc);
  readDescriptor(c, sel);
  const t = sysType(dHi);
  if (t !== 0x01 && t !== 0x09) c.gp(sel & 0xfffc);
  if (!descPresent(dHi)) c.fault(EXC_NP, sel & 0xfffc);
  dHi |= 0x200;
  c.writeSys32((dAddr + 4) | 0, dHi);
  c.trSel = sel; c.trBase = descBase(dLo, dHi); c.trLimit = descLimit(dLo, dHi); c.trAr = descAr(dHi);
}

/**
 * LAR/LSL/VERR/VERW lookup (SDM vol. 2): returns the descriptor's high dword and sets `lastLimit`, or -1
 * when the selector is not visible at the current privilege (ZF cleared by the caller).
 */
export let lastLimit = 0;
export function inspectDescriptor(c: CPU, sel: number, kind: 'lar' | 'lsl' | 'verr' | 'verw'): number {
  if ((sel & 0xfffc) === 0) return -1;
  const idx = sel & 0xfff8;
  const limit = (sel & 4) ? c.ldtLimit : c.gdtLimit;
  if ((sel & 4) && (c.ldtSel & 0xfffc) === 0) return -1;
  if (idx + 7 > limit) return -1;
  readDescriptor(c, sel);
  const hi = dHi;
  const rpl = sel & 3;
  const dpl = descDpl(hi);
  if (hi & 0x1000) {
    if (kind === 'verr' && isCode(hi) && !(hi & 0x200)) return -1;
    if (kind === 'verw' && (isCode(hi) || !(hi & 0x200))) return -1;
    if (!isConforming(hi) || kind === 'verw') {
      if (dpl < c.cpl || dpl < rpl) return -1;
    }
  } else {
    if (kind === 'verr' || kind === 'verw') return -1;
    const t = sysType(hi);
    // LAR accepts all but interrupt/trap gates and reserved types; LSL only those that have a limit.
    const larOk = [1, 2, 3, 4, 5, 9, 0xb, 0xc].includes(t);
    const lslOk = [1, 2, 3, 9, 0xb].includes(t);
    if (kind === 'lar' ? !larOk : !lslOk) return -1;
    if (dpl < c.cpl || dpl < rpl) return -1;
  }
  lastLimit = descLimit(dLo, hi);
  return hi;
}

export const SYSTEM_SEGMENTS = { DS, EXC_TS };
