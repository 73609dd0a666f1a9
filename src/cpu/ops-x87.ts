// x87 FPU instructions D8-DF (SDM vol. 1 ch. 8, vol. 2 entries "F…"): the register stack, tags,
// stack faults, exception masking with deferred #MF, the environment/state images, and the dispatch of
// arithmetic to the 80-bit library in fpu/float80.ts.

import type { CPU } from './cpu.ts';
import { def1 } from './optable.ts';
import {
  Bits64, F80, FE_DE, FE_IE, FE_OE, FE_UE, FE_ZE, FSW_C0, FSW_C1, FSW_C2, FSW_C3, RC_DOWN, RC_ZERO, RC_UP,
  f80Add, f80Compare, f80Div, f80Extract, f80FromBcd, f80FromFloat32, f80FromFloat64, f80FromInt32,
  f80FromInt64, f80Mul, f80Prem, f80RoundInt, f80Scale, f80Sqrt, f80Sub, f80ToBcd, f80ToFloat32,
  f80ToFloat64, f80ToInt, setIndefinite, f80Load, f80Store,
} from './fpu/float80.ts';
import { f80Atan2, f80Cos, f80F2xm1, f80Sin, f80SinCos, f80Tan, f80Yl2x, f80Yl2xp1 } from './fpu/transcendental.ts';
import { CF, CR0_EM, CR0_TS, EXC_MF, EXC_NM, OF, PF, SF, AF, ZF, CR0_PE, VM } from './constants.ts';
import { tagFor } from './fxsave.ts';

const FSW_SF = 0x40;
const FSW_ES = 0x80;
const FSW_B = 0x8000;
const EXC_BITS = 0x3f;

const TAG_EMPTY = 3;

// Scratch values: the library writes into caller-owned objects, so nothing is allocated per instruction.
const A = new F80(), B = new F80(), R = new F80(), R2 = new F80();
const bits = new Bits64();
const buf10 = new Uint8Array(10);
const envBuf = new Uint8Array(108);

// --- Register stack helpers (SDM vol. 1 §8.1.2) ---

const phys = (c: CPU, i: number) => (c.fpu.top + i) & 7;
const tagOf = (c: CPU, p: number) => (c.fpu.ftw >> (2 * p)) & 3;
const setTag = (c: CPU, p: number, t: number) => { c.fpu.ftw = (c.fpu.ftw & ~(3 << (2 * p))) | (t << (2 * p)); };
const isEmpty = (c: CPU, i: number) => tagOf(c, phys(c, i)) === TAG_EMPTY;

function getSt(c: CPU, i: number, out: F80): F80 {
  const p = phys(c, i);
  out.se = c.fpu.se[p]; out.hi = c.fpu.hi[p] >>> 0; out.lo = c.fpu.lo[p] >>> 0;
  return out;
}

function setSt(c: CPU, i: number, v: F80): void {
  const p = phys(c, i);
  c.fpu.se[p] = v.se; c.fpu.hi[p] = v.hi; c.fpu.lo[p] = v.lo;
  setTag(c, p, tagFor(c, p));
}

function pop(c: CPU): void {
  setTag(c, c.fpu.top, TAG_EMPTY);
  c.fpu.top = (c.fpu.top + 1) & 7;
}

/**
 * Records exception flags: sets them in FSW, and ES/B when any is unmasked, so that the next x87
 * instruction raises #MF (SDM vol. 1 §8.7 "deferred" exception reporting). Returns true when an
 * unmasked exception among `mustNotStore` occurred (the destination must then stay unchanged).
 */
function report(c: CPU, flags: number): boolean {
  const f = c.fpu;
  // An invalid operation takes precedence over a denormal operand (SDM vol. 1 §8.7 priorities).
  if (flags & FE_IE) flags &= ~FE_DE;
  const exc = flags & EXC_BITS;
  f.fsw |= exc;
  if (exc & ~f.fcw & EXC_BITS) { f.fsw |= FSW_ES | FSW_B; return true; }
  return false;
}

/** Sets C0-C3 from `flags` (bits the instruction defines), clearing the others in `mask`. */
function setCond(c: CPU, flags: number, mask = FSW_C0 | FSW_C1 | FSW_C2 | FSW_C3): void {
  c.fpu.fsw = (c.fpu.fsw & ~mask) | (flags & mask);
}

/** Stack underflow (reading an empty register): IE+SF, C1=0; returns true if unmasked (SDM §8.5.1.1). */
function underflow(c: CPU): boolean {
  setCond(c, 0, FSW_C1);
  c.fpu.fsw |= FSW_SF;
  return report(c, FE_IE);
}

/** Stack overflow (pushing onto a full register): IE+SF, C1=1. */
function overflow(c: CPU): boolean {
  setCond(c, FSW_C1, FSW_C1);
  c.fpu.fsw |= FSW_SF;
  return report(c, FE_IE);
}

/** Pushes v; on overflow with IE masked pushes the real indefinite. */
function push(c: CPU, v: F80): void {
  const p = (c.fpu.top - 1) & 7;
  if (tagOf(c, p) !== TAG_EMPTY) {
    if (overflow(c)) return;
    setIndefinite(v);
  } else setCond(c, 0, FSW_C1);
  c.fpu.top = p;
  setSt(c, 0, v);
}

/** Stores an arithmetic result to ST(i), honouring unmasked-exception rules (SDM §8.5). Returns false if suppressed. */
function storeResult(c: CPU, i: number, v: F80, flags: number): boolean {
  if (flags & FE_IE) flags &= ~FE_DE;
  // Unmasked IE/ZE/DE are pre-computation exceptions: the operation is abandoned, so the result
  // exceptions (OE UE PE) and C1 are not reported and the destination is unchanged (SDM vol. 1 §8.5).
  if (flags & ~c.fpu.fcw & (FE_IE | FE_ZE | FE_DE)) {
    setCond(c, 0, FSW_C1);
    report(c, flags & (FE_IE | FE_ZE | FE_DE));
    return false;
  }
  setCond(c, flags, FSW_C1);
  report(c, flags);
  setSt(c, i, v);
  return true;
}

// --- Instruction prologue: #NM, pending #MF, last-instruction pointers (SDM vol. 1 §8.1.8) ---

function check(c: CPU, control: boolean): void {
  if (c.cr0 & (CR0_EM | CR0_TS)) c.fault(EXC_NM);
  if (!control && (c.fpu.fsw & FSW_ES)) c.fault(EXC_MF);
}

function recordIp(c: CPU, op: number, modrm: number): void {
  const f = c.fpu;
  f.fip = c.prevEip; f.fcs = c.sreg[1];
  f.fop = ((op & 7) << 8) | modrm;
}

function recordDp(c: CPU, off: number, seg: number): void { c.fpu.fdp = off; c.fpu.fds = c.sreg[seg]; }

const isNaN80 = (v: F80) => (v.se & 0x7fff) === 0x7fff && ((v.hi & 0x7fffffff) !== 0 || v.lo !== 0);

// --- Memory operands ---

function loadMem(c: CPU, kind: number, seg: number, off: number, out: F80): number {
  switch (kind) {
    case 0: return f80FromFloat32(c.rd32(seg, off), out);
    case 1: { const lo = c.rd32(seg, off), hi = c.rd32(seg, (off + 4) | 0); return f80FromFloat64(hi, lo, out); }
    case 2: f80FromInt32(c.rd32(seg, off), out); return 0;
    case 3: f80FromInt32((c.rd16(seg, off) << 16) >> 16, out); return 0;
    case 4: { const lo = c.rd32(seg, off), hi = c.rd32(seg, (off + 4) | 0); f80FromInt64(hi, lo, out); return 0; }
    case 5: c.rdBytes(seg, off, 10, buf10); f80Load(buf10, 0, out); return 0;
    default: c.rdBytes(seg, off, 10, buf10); f80FromBcd(buf10, 0, out); return 0;
  }
}
const M_F32 = 0, M_F64 = 1, M_I32 = 2, M_I16 = 3, M_I64 = 4, M_F80 = 5, M_BCD = 6;

/** FST/FIST/FBSTP to memory: nothing is written when an unmasked exception occurs. Returns false then. */
function storeMem(c: CPU, kind: number, seg: number, off: number, v: F80): boolean {
  let flags: number;
  switch (kind) {
    case M_F32: flags = f80ToFloat32(v, c.fpu.fcw, bits); break;
    case M_F64: flags = f80ToFloat64(v, c.fpu.fcw, bits); break;
    case M_I16: flags = f80ToInt(v, 16, c.fpu.fcw, false, bits); break;
    case M_I32: flags = f80ToInt(v, 32, c.fpu.fcw, false, bits); break;
    case M_I64: flags = f80ToInt(v, 64, c.fpu.fcw, false, bits); break;
    case M_F80: flags = 0; break;
    default: flags = f80ToBcd(v, c.fpu.fcw, buf10, 0); break;
  }
  // Check the destination is writable before changing any FPU state (precise #PF/#GP).
  const size = kind === M_F32 || kind === M_I32 ? 4 : kind === M_I16 ? 2 : kind === M_F64 || kind === M_I64 ? 8 : 10;
  const l = c.lin(seg, off, size, true);
  c.probeWrite(l, size);
  const fatal = flags & ~c.fpu.fcw & (FE_IE | FE_DE | FE_ZE | FE_OE | FE_UE);
  if (fatal) {
    // Nothing is stored; only the exceptions that stopped the store are reported (SDM vol. 1 §8.5.4-8.5.5).
    setCond(c, 0, FSW_C1);
    report(c, flags & (FE_IE | FE_DE | FE_ZE | FE_OE | FE_UE));
    return false;
  }
  setCond(c, flags, FSW_C1);
  report(c, flags);
  switch (kind) {
    case M_F32: c.wr32(seg, off, bits.lo); break;
    case M_I32: c.wr32(seg, off, bits.lo); break;
    case M_I16: c.wr16(seg, off, bits.lo & 0xffff); break;
    case M_F64: case M_I64: c.wr32(seg, off, bits.lo); c.wr32(seg, (off + 4) | 0, bits.hi); break;
    case M_F80: f80Store(v, buf10, 0); c.wrBytes(seg, off, buf10, 10); break;
    default: c.wrBytes(seg, off, buf10, 10); break;
  }
  return true;
}

// --- Arithmetic: op 0 add, 1 mul, 4 sub (dest-src), 5 subr (src-dest), 6 div, 7 divr ---

function arith(op: number, out: F80, dest: F80, src: F80, cw: number): number {
  switch (op) {
    case 0: return f80Add(out, dest, src, cw);
    case 1: return f80Mul(out, dest, src, cw);
    case 4: return f80Sub(out, dest, src, cw);
    case 5: return f80Sub(out, src, dest, cw);
    case 6: return f80Div(out, dest, src, cw);
    default: return f80Div(out, src, dest, cw);
  }
}

/** True when an unmasked invalid-operand or denormal exception abandons the instruction. */
const abandoned = (c: CPU, flags: number) => (flags & ~c.fpu.fcw & (FE_IE | FE_DE)) !== 0;

/**
 * FCOM-family: C3 C2 C0 from the comparison (111 when unordered or on stack underflow), C1 cleared;
 * the pops happen only if no unmasked exception abandoned the instruction.
 */
function compare(c: CPU, i: number, unordered: boolean, pops: number): void {
  let flags: number;
  if (isEmpty(c, 0) || isEmpty(c, i)) {
    c.fpu.fsw |= FSW_SF;
    flags = FE_IE | FSW_C0 | FSW_C2 | FSW_C3;
  } else {
    flags = f80Compare(getSt(c, 0, A), getSt(c, i, B), c.fpu.fcw, unordered);
  }
  compareDone(c, flags, pops);
}

function compareDone(c: CPU, flags: number, pops: number): void {
  if (flags & FE_IE) flags &= ~FE_DE;
  report(c, flags);
  setCond(c, flags);
  if (abandoned(c, flags)) return;
  for (let k = 0; k < pops; k++) pop(c);
}

/** FCOMI-family: ZF PF CF from the comparison, OF SF AF cleared (SDM vol. 2 "FCOMI"); C1 unchanged. */
function compareI(c: CPU, i: number, unordered: boolean, popAfter: boolean): void {
  let flags: number;
  if (isEmpty(c, 0) || isEmpty(c, i)) {
    c.fpu.fsw |= FSW_SF;
    setCond(c, 0, FSW_C1);
    flags = FE_IE | FSW_C0 | FSW_C2 | FSW_C3;
  } else {
    flags = f80Compare(getSt(c, 0, A), getSt(c, i, B), c.fpu.fcw, unordered);
  }
  if (flags & FE_IE) flags &= ~FE_DE;
  report(c, flags);
  let ef = 0;
  if (flags & FSW_C3) ef |= ZF;
  if (flags & FSW_C2) ef |= PF;
  if (flags & FSW_C0) ef |= CF;
  c.setFlagBits(ZF | PF | CF | OF | SF | AF, ef);
  if (!abandoned(c, flags) && popAfter) pop(c);
}

// FLD constants (SDM vol. 1 §8.3.8): exact values rounded per RC; the "down" adjustment applies to
// constants whose infinite expansion was rounded up in the nearest-even value, and vice versa.
interface Const { se: number; hi: number; lo: number; adjust: 'none' | 'up' | 'down' }
const CONSTS: Const[] = [
  { se: 0x3fff, hi: 0x80000000, lo: 0x00000000, adjust: 'none' }, // FLD1
  { se: 0x4000, hi: 0xd49a784b, lo: 0xcd1b8afe, adjust: 'up' }, // FLDL2T
  { se: 0x3fff, hi: 0xb8aa3b29, lo: 0x5c17f0bc, adjust: 'down' }, // FLDL2E
  { se: 0x4000, hi: 0xc90fdaa2, lo: 0x2168c235, adjust: 'down' }, // FLDPI
  { se: 0x3ffd, hi: 0x9a209a84, lo: 0xfbcff799, adjust: 'down' }, // FLDLG2
  { se: 0x3ffe, hi: 0xb17217f7, lo: 0xd1cf79ac, adjust: 'down' }, // FLDLN2
  { se: 0x0000, hi: 0x00000000, lo: 0x00000000, adjust: 'none' }, // FLDZ
];

function loadConst(c: CPU, k: Const): void {
  const rc = (c.fpu.fcw >> 10) & 3;
  let lo = k.lo;
  if (k.adjust === 'up' && rc === RC_UP) lo = (lo + 1) >>> 0;
  if (k.adjust === 'down' && (rc === RC_DOWN || rc === RC_ZERO)) lo = (lo - 1) >>> 0;
  R.se = k.se; R.hi = k.hi; R.lo = lo;
  push(c, R);
}

/** FXAM classes (SDM vol. 2 "FXAM" table): C3 C2 C0. */
function fxam(c: CPU): void {
  const sign = (c.fpu.se[phys(c, 0)] & 0x8000) ? FSW_C1 : 0;
  if (isEmpty(c, 0)) { setCond(c, FSW_C3 | FSW_C0 | sign); return; }
  getSt(c, 0, A);
  const exp = A.se & 0x7fff;
  const j = (A.hi & 0x80000000) !== 0;
  const mantZero = A.hi === 0 && A.lo === 0;
  let cls: number;
  if (exp === 0x7fff) {
    if (!j) cls = 0; // unsupported
    else cls = (A.hi & 0x7fffffff) === 0 && A.lo === 0 ? FSW_C2 | FSW_C0 : FSW_C0; // infinity : NaN
  } else if (exp === 0) cls = mantZero ? FSW_C3 : FSW_C3 | FSW_C2; // zero : denormal
  else cls = j ? FSW_C2 : 0; // normal : unnormal (unsupported)
  setCond(c, cls | sign);
}

// --- Environment (SDM vol. 1 §8.1.10, Figures 8-9/8-10: protected-mode layouts) ---

function fullTagWord(c: CPU): number {
  let t = 0;
  for (let p = 0; p < 8; p++) t |= (tagOf(c, p) === TAG_EMPTY ? 3 : tagFor(c, p)) << (2 * p);
  return t;
}

/** Writes the 14/28-byte environment into envBuf; returns its size. */
function packEnv(c: CPU, os32: boolean): number {
  const f = c.fpu;
  const dv = new DataView(envBuf.buffer);
  const real = !(c.cr0 & CR0_PE) || (c.flags & VM) !== 0;
  if (os32) {
    dv.setUint32(0, 0xffff0000 | f.fcw, true);
    dv.setUint32(4, 0xffff0000 | f.statusWord, true);
    dv.setUint32(8, 0xffff0000 | fullTagWord(c), true);
    if (real) {
      // Real-mode format: 20-bit linear instruction/operand pointers (Figure 8-10).
      const ip = ((f.fcs << 4) + f.fip) >>> 0, dp = ((f.fds << 4) + f.fdp) >>> 0;
      dv.setUint32(12, 0xffff0000 | (ip & 0xffff), true);
      dv.setUint32(16, ((ip >>> 16) << 12) | (f.fop & 0x7ff), true);
      dv.setUint32(20, 0xffff0000 | (dp & 0xffff), true);
      dv.setUint32(24, (dp >>> 16) << 12, true);
    } else {
      dv.setUint32(12, f.fip >>> 0, true);
      dv.setUint32(16, (f.fcs & 0xffff) | ((f.fop & 0x7ff) << 16), true);
      dv.setUint32(20, f.fdp >>> 0, true);
      dv.setUint32(24, 0xffff0000 | f.fds, true);
    }
    return 28;
  }
  dv.setUint16(0, f.fcw, true);
  dv.setUint16(2, f.statusWord, true);
  dv.setUint16(4, fullTagWord(c), true);
  if (real) {
    const ip = ((f.fcs << 4) + f.fip) >>> 0, dp = ((f.fds << 4) + f.fdp) >>> 0;
    dv.setUint16(6, ip & 0xffff, true);
    dv.setUint16(8, ((ip >>> 16) << 12) | (f.fop & 0x7ff), true);
    dv.setUint16(10, dp & 0xffff, true);
    dv.setUint16(12, (dp >>> 16) << 12, true);
  } else {
    dv.setUint16(6, f.fip, true);
    dv.setUint16(8, f.fcs, true);
    dv.setUint16(10, f.fdp, true);
    dv.setUint16(12, f.fds, true);
  }
  return 14;
}

function unpackEnv(c: CPU, os32: boolean): void {
  const f = c.fpu;
  const dv = new DataView(envBuf.buffer);
  const real = !(c.cr0 & CR0_PE) || (c.flags & VM) !== 0;
  let tags: number;
  if (os32) {
    f.fcw = fcwValue(dv.getUint16(0, true));
    f.statusWord = dv.getUint16(4, true);
    tags = dv.getUint16(8, true);
    if (real) {
      f.fip = (dv.getUint16(12, true) | ((dv.getUint32(16, true) >>> 12) << 16)); f.fcs = 0;
      f.fop = dv.getUint16(16, true) & 0x7ff;
      f.fdp = (dv.getUint16(20, true) | ((dv.getUint32(24, true) >>> 12) << 16)); f.fds = 0;
    } else {
      f.fip = dv.getUint32(12, true) | 0; f.fcs = dv.getUint16(16, true); f.fop = dv.getUint16(18, true) & 0x7ff;
      f.fdp = dv.getUint32(20, true) | 0; f.fds = dv.getUint16(24, true);
    }
  } else {
    f.fcw = fcwValue(dv.getUint16(0, true));
    f.statusWord = dv.getUint16(2, true);
    tags = dv.getUint16(4, true);
    f.fip = dv.getUint16(6, true); f.fcs = real ? 0 : dv.getUint16(8, true);
    f.fdp = dv.getUint16(10, true); f.fds = real ? 0 : dv.getUint16(12, true);
    if (real) f.fop = dv.getUint16(8, true) & 0x7ff;
  }
  // Only "empty" matters in the loaded tag word; other tags follow from the register contents.
  f.ftw = tags;
  for (let p = 0; p < 8; p++) if (((tags >> (2 * p)) & 3) !== TAG_EMPTY) setTag(c, p, tagFor(c, p));
  syncSummary(c);
}

/** ES and B follow from the exception flags and masks after loading a control/status word. */
function syncSummary(c: CPU): void {
  const f = c.fpu;
  if (f.fsw & ~f.fcw & EXC_BITS) f.fsw |= FSW_ES | FSW_B; else f.fsw &= ~(FSW_ES | FSW_B);
}

/** A loaded control word keeps only its defined bits (masks, PC, RC and the 287's infinity control,
 *  bit 12); reserved bits 7 and 13-15 read as 0 and bit 6 as 1 (SDM vol. 1 Figure 8-6; the host agrees). */
const fcwValue = (v: number) => (v & 0x1f3f) | 0x40;

function fninit(c: CPU): void { c.fpu.reset(); }

// --- The opcode handlers ---

const ARITH_KIND = [M_F32, M_I32, M_F64, M_I16]; // D8, DA, DC, DE memory operand types

/** D8/DA/DC/DE with a memory operand: ST0 = ST0 op m (or compare). */
function memArith(c: CPU, opByte: number, m: number): void {
  const off = c.ea(m);
  memArithAt(c, opByte, m, c.eaSeg, off);
}
function memArithAt(c: CPU, opByte: number, m: number, seg: number, off: number): void {
  check(c, false);
  recordIp(c, opByte, m);
  recordDp(c, off, seg);
  const op = (m >> 3) & 7;
  const kind = ARITH_KIND[(opByte - 0xd8) >> 1];
  const lf = loadMem(c, kind, seg, off, B);
  // The conversion quiets an SNaN; the arithmetic must still see it as signalling to pick the result
  // NaN by the rules of SDM vol. 1 Table 4-7, so restore its quiet bit.
  if ((lf & FE_IE) && isNaN80(B)) B.hi = (B.hi & ~0x40000000) >>> 0;
  if (isEmpty(c, 0)) {
    if (op === 2 || op === 3) { c.fpu.fsw |= FSW_SF; compareDone(c, FE_IE | FSW_C0 | FSW_C2 | FSW_C3, op === 3 ? 1 : 0); return; }
    if (underflow(c)) return;
    setIndefinite(R); setSt(c, 0, R); return;
  }
  getSt(c, 0, A);
  // A denormal memory operand is reported only when the operation goes ahead on numbers (not NaNs).
  const loadFlags = isNaN80(A) ? lf & FE_IE : lf & (FE_DE | FE_IE);
  if (op === 2 || op === 3) {
    compareDone(c, f80Compare(A, B, c.fpu.fcw, false) | loadFlags, op === 3 ? 1 : 0);
    return;
  }
  let flags = arith(op, R, A, B, c.fpu.fcw);
  // Divide-by-zero outranks a denormal operand (SDM vol. 1 §4.9.2), also one loaded from memory.
  flags |= flags & FE_ZE ? loadFlags & ~FE_DE : loadFlags;
  storeResult(c, 0, R, flags);
}

/** D8 (dest ST0) and DC/DE (dest ST(i), reversed sub/div, DE pops) register forms. */
function regArith(c: CPU, opByte: number, m: number): void {
  check(c, false);
  recordIp(c, opByte, m);
  const i = m & 7;
  let op = (m >> 3) & 7;
  const toSti = opByte !== 0xd8;
  const popAfter = opByte === 0xde;
  if (op === 2 || op === 3) {
    // FCOM/FCOMP ST(i); the undocumented DC D0+i/DC D8+i are FCOM/FCOMP and DE D0+i is FCOMP.
    compare(c, i, false, op === 3 || popAfter ? 1 : 0);
    return;
  }
  if (toSti && op >= 4) op ^= 1;
  const dst = toSti ? i : 0;
  if (isEmpty(c, 0) || isEmpty(c, i)) {
    if (underflow(c)) return;
    setIndefinite(R); setSt(c, dst, R);
    if (popAfter) pop(c);
    return;
  }
  getSt(c, dst, A);
  getSt(c, toSti ? 0 : i, B);
  const flags = arith(op, R, A, B, c.fpu.fcw);
  const stored = storeResult(c, dst, R, flags);
  if (popAfter && (stored || !(flags & ~c.fpu.fcw & (FE_IE | FE_ZE | FE_DE)))) pop(c);
}

/**
 * FXTRACT/FPTAN/FSINCOS with ST7 in use: a stack overflow. Masked, both results are the indefinite:
 * ST0 is overwritten and another indefinite pushed (SDM vol. 1 §8.5.1.1 masked response; matches the host).
 */
function stackFullPair(c: CPU): void {
  if (overflow(c)) return;
  setIndefinite(R); setSt(c, 0, R);
  c.fpu.top = (c.fpu.top - 1) & 7;
  setSt(c, 0, R);
}

/** Unary ST0 operations of D9 E0-FF. */
function d9Special(c: CPU, m: number): void {
  const low = m & 0x3f;
  if (low >= 0x28 && low <= 0x2e) { // FLD1 .. FLDZ
    if (low === 0x2f) c.ud();
    loadConst(c, CONSTS[low - 0x28]);
    return;
  }
  switch (m) {
    case 0xe0: case 0xe1: { // FCHS, FABS
      if (isEmpty(c, 0)) { if (!underflow(c)) { setIndefinite(R); setSt(c, 0, R); } return; }
      getSt(c, 0, R);
      R.se = m === 0xe0 ? R.se ^ 0x8000 : R.se & 0x7fff;
      setCond(c, 0, FSW_C1);
      setSt(c, 0, R);
      return;
    }
    case 0xe4: { // FTST: compare with +0.0
      if (isEmpty(c, 0)) { c.fpu.fsw |= FSW_SF; compareDone(c, FE_IE | FSW_C0 | FSW_C2 | FSW_C3, 0); return; }
      B.se = 0; B.hi = 0; B.lo = 0;
      compareDone(c, f80Compare(getSt(c, 0, A), B, c.fpu.fcw, false), 0);
      return;
    }
    case 0xe5: fxam(c); return;
    case 0xf6: c.fpu.top = (c.fpu.top - 1) & 7; setCond(c, 0, FSW_C1); return; // FDECSTP
    case 0xf7: c.fpu.top = (c.fpu.top + 1) & 7; setCond(c, 0, FSW_C1); return; // FINCSTP
    default: break;
  }
  // Operations on ST0 (and ST1) producing a result.
  const two = m === 0xf1 || m === 0xf3 || m === 0xf5 || m === 0xf8 || m === 0xf9 || m === 0xfd;
  if (isEmpty(c, 0) || (two && isEmpty(c, 1))) {
    // C2 ("argument out of range") is defined, and 0, for the trigonometric instructions.
    // FPREM/FPREM1 likewise clear C2 (and C1) but keep C0 and C3 (as on the host).
    if (m === 0xf2 || m === 0xfb || m === 0xfe || m === 0xff || m === 0xf5 || m === 0xf8) setCond(c, 0, FSW_C2);
    if (!underflow(c)) {
      setIndefinite(R);
      if (m === 0xf1 || m === 0xf3 || m === 0xf9) { setSt(c, 1, R); pop(c); }
      // Two results: both indefinite; the push overwrites ST7 without a second (overflow) fault.
      else if (m === 0xf2 || m === 0xf4 || m === 0xfb) { setSt(c, 0, R); c.fpu.top = (c.fpu.top - 1) & 7; setSt(c, 0, R); }
      else setSt(c, 0, R);
    }
    return;
  }
  getSt(c, 0, A);
  const cw = c.fpu.fcw;
  switch (m) {
    case 0xf0: storeResult(c, 0, R, f80F2xm1(R, A, cw)); return;
    case 0xf1: { getSt(c, 1, B); if (storeResult(c, 1, R, f80Yl2x(R, A, B, cw))) pop(c); return; }
    case 0xf9: { getSt(c, 1, B); if (storeResult(c, 1, R, f80Yl2xp1(R, A, B, cw))) pop(c); return; }
    case 0xf3: { getSt(c, 1, B); if (storeResult(c, 1, R, f80Atan2(R, B, A, cw))) pop(c); return; }
    case 0xf2: { // FPTAN: ST0 = tan, then push 1.0; out of range: C2=1, stack unchanged
      // A full stack is an overflow before the operand is looked at (the host agrees).
      if (!isEmpty(c, 7)) { setCond(c, 0, FSW_C2); stackFullPair(c); return; }
      const fl = f80Tan(R, A, cw);
      if (fl & FSW_C2) { setCond(c, FSW_C2, FSW_C1 | FSW_C2); return; }
      setCond(c, 0, FSW_C2);
      if (!storeResult(c, 0, R, fl)) return;
      // 1.0 is pushed, unless the result is a NaN: then the NaN is pushed again (SDM vol. 2 "FPTAN").
      if (isNaN80(R)) R2.set(R); else { R2.se = 0x3fff; R2.hi = 0x80000000; R2.lo = 0; }
      push(c, R2);
      return;
    }
    case 0xfb: { // FSINCOS: ST0 = sin, push cos
      // A full stack is an overflow before the operand is looked at (the host agrees).
      if (!isEmpty(c, 7)) { setCond(c, 0, FSW_C2); stackFullPair(c); return; }
      const fl = f80SinCos(R, R2, A, cw);
      if (fl & FSW_C2) { setCond(c, FSW_C2, FSW_C1 | FSW_C2); return; }
      setCond(c, 0, FSW_C2);
      if (!storeResult(c, 0, R, fl)) return;
      push(c, R2);
      setCond(c, fl, FSW_C1);
      return;
    }
    case 0xfe: case 0xff: {
      const fl = m === 0xfe ? f80Sin(R, A, cw) : f80Cos(R, A, cw);
      if (fl & FSW_C2) { setCond(c, FSW_C2, FSW_C1 | FSW_C2); return; }
      setCond(c, 0, FSW_C2);
      storeResult(c, 0, R, fl);
      return;
    }
    case 0xf4: { // FXTRACT: ST0 = exponent, then push significand
      if (!isEmpty(c, 7)) { stackFullPair(c); return; }
      const fl = f80Extract(R2, R, A, cw);
      if (!storeResult(c, 0, R, fl)) return;
      push(c, R2);
      return;
    }
    case 0xf5: case 0xf8: { // FPREM1, FPREM: C0 C1 C3 quotient bits, C2 incomplete
      getSt(c, 1, B);
      const fl = f80Prem(R, A, B, cw, m === 0xf5);
      // An unmasked invalid or denormal operand abandons the instruction before any result exists, so
      // a result's underflow is not reported then (SDM vol. 1 §8.5).
      const abandon = (fl & ~cw & (FE_IE | FE_DE)) !== 0;
      report(c, abandon ? fl & (FE_IE | FE_DE) : fl);
      // Without a quotient (a NaN operand, an invalid operation, an abandoned one) C1 and C2 are
      // cleared and C0 and C3 keep their values (host behaviour; the SDM gives no rule for these cases).
      const noQuotient = abandon || (fl & FE_IE) !== 0 || isNaN80(A) || isNaN80(B);
      setCond(c, noQuotient ? 0 : fl, noQuotient ? FSW_C1 | FSW_C2 : FSW_C0 | FSW_C1 | FSW_C2 | FSW_C3);
      if (abandon) return;
      setSt(c, 0, R);
      return;
    }
    case 0xfa: storeResult(c, 0, R, f80Sqrt(R, A, cw)); return;
    case 0xfc: storeResult(c, 0, R, f80RoundInt(R, A, cw)); return;
    case 0xfd: getSt(c, 1, B); storeResult(c, 0, R, f80Scale(R, A, B, cw)); return;
    default: c.ud();
  }
}

function fcmov(c: CPU, m: number, negate: boolean): void {
  const i = m & 7;
  let cond: boolean;
  switch ((m >> 3) & 3) {
    case 0: cond = c.getCF() !== 0; break;
    case 1: cond = c.getZF() !== 0; break;
    case 2: cond = c.getCF() !== 0 || c.getZF() !== 0; break;
    default: cond = c.getPF() !== 0; break;
  }
  if (negate) cond = !cond;
  // A stack underflow stores the indefinite whether or not the condition holds, and C1 changes only
  // then (SDM vol. 2 "FCMOVcc": "C1 set to 0 if stack underflow occurred"; the host agrees).
  if (isEmpty(c, 0) || isEmpty(c, i)) {
    if (!underflow(c)) { setIndefinite(R); setSt(c, 0, R); }
    return;
  }
  if (cond) setSt(c, 0, getSt(c, i, R));
}

function fxch(c: CPU, i: number): void {
  if (isEmpty(c, 0) || isEmpty(c, i)) {
    if (underflow(c)) return;
    if (isEmpty(c, 0)) { setIndefinite(R); setSt(c, 0, R); }
    if (isEmpty(c, i)) { setIndefinite(R); setSt(c, i, R); }
  }
  getSt(c, 0, A); getSt(c, i, B);
  setSt(c, 0, B); setSt(c, i, A);
  setCond(c, 0, FSW_C1);
}

/** FST/FSTP ST(i) and the undocumented FSTP aliases D9 D8+i, DF D0+i, DF D8+i. */
function fstSti(c: CPU, i: number, popAfter: boolean): void {
  if (isEmpty(c, 0)) { if (underflow(c)) return; setIndefinite(R); } else { getSt(c, 0, R); setCond(c, 0, FSW_C1); }
  setSt(c, i, R);
  if (popAfter) pop(c);
}

/** FLD ST(i) / m: pushes a copy (SNaN sources raise IE and load quieted). */
function fldValue(c: CPU, v: F80, flags: number): void {
  // A full stack is detected before the operand is examined, so its IE/DE are not reported then.
  if (tagOf(c, (c.fpu.top - 1) & 7) !== TAG_EMPTY) { push(c, v); return; }
  // An unmasked SNaN abandons FLD; a denormal source is still loaded (DE is reported, SDM §8.5.2).
  if (report(c, flags) && (flags & ~c.fpu.fcw & FE_IE)) return;
  push(c, v);
}

/** FLD, FST, FSTP m32fp (D9 /0 /2 /3) and m64fp (DD /0 /2 /3), after the caller's #NM/#MF check. */
function fldFstMem(c: CPU, opByte: number, m: number, seg: number, off: number): void {
  const kind = opByte === 0xd9 ? M_F32 : M_F64, op = (m >> 3) & 7;
  recordIp(c, opByte, m); recordDp(c, off, seg);
  if (op === 0) { const fl = loadMem(c, kind, seg, off, R); fldValue(c, R, fl); return; }
  if (isEmpty(c, 0)) { if (underflow(c)) return; setIndefinite(R); } else getSt(c, 0, R);
  if (storeMem(c, kind, seg, off, R) && op === 3) pop(c);
}

/**
 * For the binary translator: whether x87 instruction `opByte` with ModRM `m` is a memory form that reads
 * and writes only the FPU and its memory operand (not the general registers, EFLAGS or EIP), so a unit can
 * call x87MemDirect with the operand's segment and offset instead of the interpreter (src/jit/).
 */
export function x87DirectForm(opByte: number, m: number): boolean {
  if (m >= 0xc0) return false;
  const r = (m >> 3) & 7;
  return opByte === 0xd8 || opByte === 0xdc || ((opByte === 0xd9 || opByte === 0xdd) && (r === 0 || r === 2 || r === 3));
}
/** Runs an x87DirectForm instruction at CPU.prevEip whose operand is at seg:off, as its handler below does. */
export function x87MemDirect(c: CPU, opByte: number, m: number, seg: number, off: number): void {
  if (opByte === 0xd8 || opByte === 0xdc) { memArithAt(c, opByte, m, seg, off); return; }
  check(c, false);
  fldFstMem(c, opByte, m, seg, off);
}

// D8 (m32fp) and DC (m64fp) differ only in their memory operand type and register-form direction,
// both of which memArith/regArith derive from the opcode byte.
for (const op of [0xd8, 0xdc]) {
  def1(op, 'fpu', (c) => {
    const m = c.fetchModrm();
    if (m < 0xc0) memArith(c, op, m); else regArith(c, op, m);
  });
}

const x87D9 = (c: CPU, m: number): void => {
  const op = (m >> 3) & 7;
  if (m < 0xc0) {
    const off = c.ea(m);
    const seg = c.eaSeg;
    // Only FNSTENV and FNSTCW are non-waiting; FLDENV and FLDCW raise a pending #MF first like any
    // other x87 instruction (SDM vol. 1 §8.3.11, §8.6; the host agrees).
    check(c, op >= 6);
    switch (op) {
      case 0: case 2: case 3: fldFstMem(c, 0xd9, m, seg, off); return;
      case 4: { // FLDENV
        const n = c.os32 ? 28 : 14;
        c.rdBytes(seg, off, n, envBuf);
        unpackEnv(c, c.os32);
        return;
      }
      case 5: c.fpu.fcw = fcwValue(c.rd16(seg, off)); syncSummary(c); return; // FLDCW
      case 6: { // FNSTENV: then all exceptions masked (SDM vol. 2 "FSTENV")
        const n = packEnv(c, c.os32);
        c.wrBytes(seg, off, envBuf, n);
        // With every exception masked nothing is pending any more: ES and B clear (as on the host).
        c.fpu.fcw |= EXC_BITS;
        syncSummary(c);
        return;
      }
      case 7: c.wr16(seg, off, c.fpu.fcw); return; // FNSTCW
      default: c.ud();
    }
  }
  check(c, false);
  if (m < 0xd0) {
    recordIp(c, 0xd9, m);
    if (m < 0xc8) { // FLD ST(i)
      const i = m & 7;
      if (isEmpty(c, i)) {
        // An empty source is a stack underflow (C1=0) that takes precedence over a full stack: the
        // indefinite is pushed over ST7 without a second fault (matches the host).
        if (underflow(c)) return;
        setIndefinite(R);
        c.fpu.top = (c.fpu.top - 1) & 7;
        setSt(c, 0, R);
      } else push(c, R.set(getSt(c, i, R)));
    } else fxch(c, m & 7);
    return;
  }
  if (m === 0xd0) return; // FNOP
  if (m >= 0xd8 && m < 0xe0) { // FSTP1 (undocumented alias of FSTP ST(i))
    recordIp(c, 0xd9, m);
    // Host-specific (AMD): with ST0 empty this alias raises no stack fault and leaves ST(i) alone; it
    // only clears C1 and pops. (The documented DD D8+i and the DF D0+i/D8+i aliases do fault.)
    if (isEmpty(c, 0)) { setCond(c, 0, FSW_C1); pop(c); return; }
    fstSti(c, m & 7, true);
    return;
  }
  recordIp(c, 0xd9, m);
  d9Special(c, m);
};
def1(0xd9, 'fpu', (c) => x87D9(c, c.fetchModrm()));

const x87DA = (c: CPU, m: number): void => {
  if (m < 0xc0) { memArith(c, 0xda, m); return; }
  check(c, false);
  recordIp(c, 0xda, m);
  if (m < 0xe0) { fcmov(c, m, false); return; }
  if (m === 0xe9) { // FUCOMPP
    compare(c, 1, true, 2);
    return;
  }
  c.ud();
};
def1(0xda, 'fpu', (c) => x87DA(c, c.fetchModrm()));

const x87DB = (c: CPU, m: number): void => {
  const op = (m >> 3) & 7;
  if (m < 0xc0) {
    const off = c.ea(m);
    const seg = c.eaSeg;
    check(c, false);
    recordIp(c, 0xdb, m); recordDp(c, off, seg);
    switch (op) {
      case 0: loadMem(c, M_I32, seg, off, R); push(c, R); return;
      case 2: case 3: {
        if (isEmpty(c, 0)) { if (underflow(c)) return; setIndefinite(R); } else getSt(c, 0, R);
        if (storeMem(c, M_I32, seg, off, R) && op === 3) pop(c);
        return;
      }
      case 5: loadMem(c, M_F80, seg, off, R); push(c, R); return;
      case 7: {
        if (isEmpty(c, 0)) { if (underflow(c)) return; setIndefinite(R); } else getSt(c, 0, R);
        if (storeMem(c, M_F80, seg, off, R)) pop(c);
        return;
      }
      default: c.ud(); // /1 FISTTP is SSE3; /4 /6 reserved
    }
  }
  if (m < 0xe0) { check(c, false); recordIp(c, 0xdb, m); fcmov(c, m, true); return; }
  switch (m) {
    case 0xe0: case 0xe1: case 0xe4: check(c, true); return; // FENI/FDISI/FSETPM: no-ops since the 80387
    case 0xe2: check(c, true); c.fpu.fsw &= ~(EXC_BITS | FSW_SF | FSW_ES | FSW_B); return; // FNCLEX
    case 0xe3: check(c, true); fninit(c); return; // FNINIT
    default: break;
  }
  check(c, false);
  recordIp(c, 0xdb, m);
  if (m >= 0xe8 && m < 0xf0) { compareI(c, m & 7, true, false); return; } // FUCOMI
  if (m >= 0xf0 && m < 0xf8) { compareI(c, m & 7, false, false); return; } // FCOMI
  c.ud();
};
def1(0xdb, 'fpu', (c) => x87DB(c, c.fetchModrm()));


const x87DD = (c: CPU, m: number): void => {
  const op = (m >> 3) & 7;
  if (m < 0xc0) {
    const off = c.ea(m);
    const seg = c.eaSeg;
    switch (op) {
      case 0: case 2: case 3: check(c, false); fldFstMem(c, 0xdd, m, seg, off); return;
      case 4: { // FRSTOR: environment then the eight registers in stack order
        check(c, false);
        const n = c.os32 ? 28 : 14;
        const img = new Uint8Array(n + 80);
        c.rdBytes(seg, off, n + 80, img);
        envBuf.set(img.subarray(0, n));
        // Registers first (their contents decide the tags), then the environment.
        const top = (new DataView(img.buffer).getUint16(c.os32 ? 4 : 2, true) >> 11) & 7;
        for (let i = 0; i < 8; i++) {
          f80Load(img, n + i * 10, R);
          const p = (top + i) & 7;
          c.fpu.se[p] = R.se; c.fpu.hi[p] = R.hi; c.fpu.lo[p] = R.lo;
        }
        unpackEnv(c, c.os32);
        return;
      }
      case 6: { // FNSAVE, then FNINIT
        check(c, true);
        const n = packEnv(c, c.os32);
        const img = new Uint8Array(n + 80);
        img.set(envBuf.subarray(0, n));
        for (let i = 0; i < 8; i++) f80Store(getSt(c, i, R), img, n + i * 10);
        c.wrBytes(seg, off, img);
        fninit(c);
        return;
      }
      case 7: check(c, true); c.wr16(seg, off, c.fpu.statusWord); return; // FNSTSW m16
      default: check(c, false); c.ud(); // /1 FISTTP is SSE3
    }
  }
  check(c, false);
  recordIp(c, 0xdd, m);
  const i = m & 7;
  switch (op) {
    // FFREE: the SDM leaves C0-C3 undefined; the host clears C1 (like FINCSTP/FDECSTP) and so do we.
    case 0: setTag(c, phys(c, i), TAG_EMPTY); setCond(c, 0, FSW_C1); return;
    case 1: fxch(c, i); return;
    case 2: case 3: fstSti(c, i, op === 3); return; // FST/FSTP ST(i)
    case 4: case 5: { // FUCOM/FUCOMP
      compare(c, i, true, op === 5 ? 1 : 0);
      return;
    }
    default: c.ud();
  }
};
def1(0xdd, 'fpu', (c) => x87DD(c, c.fetchModrm()));

const x87DE = (c: CPU, m: number): void => {
  if (m < 0xc0) { memArith(c, 0xde, m); return; }
  if (m === 0xd9) { // FCOMPP
    check(c, false); recordIp(c, 0xde, m);
    compare(c, 1, false, 2);
    return;
  }
  // DE D0+i is an undocumented alias of FCOMP ST(i) (the host executes it); DE D8+i other than D9 is
  // reserved: #UD, which the host raises ahead of a pending #MF.
  if (m >= 0xd8 && m < 0xe0) c.ud();
  regArith(c, 0xde, m);
};
def1(0xde, 'fpu', (c) => x87DE(c, c.fetchModrm()));

const x87DF = (c: CPU, m: number): void => {
  const op = (m >> 3) & 7;
  if (m < 0xc0) {
    const off = c.ea(m);
    const seg = c.eaSeg;
    check(c, false);
    recordIp(c, 0xdf, m); recordDp(c, off, seg);
    switch (op) {
      case 0: loadMem(c, M_I16, seg, off, R); push(c, R); return;
      case 4: loadMem(c, M_BCD, seg, off, R); push(c, R); return;
      case 5: loadMem(c, M_I64, seg, off, R); push(c, R); return;
      case 2: case 3: case 6: case 7: {
        const kind = op === 6 ? M_BCD : op === 7 ? M_I64 : M_I16;
        if (isEmpty(c, 0)) { if (underflow(c)) return; setIndefinite(R); } else getSt(c, 0, R);
        if (storeMem(c, kind, seg, off, R) && op !== 2) pop(c);
        return;
      }
      default: c.ud(); // /1 FISTTP is SSE3
    }
  }
  if (m === 0xe0) { check(c, true); c.r16[0] = c.fpu.statusWord; return; } // FNSTSW AX
  check(c, false);
  recordIp(c, 0xdf, m);
  if (m >= 0xe8 && m < 0xf0) { compareI(c, m & 7, true, true); return; } // FUCOMIP
  if (m >= 0xf0 && m < 0xf8) { compareI(c, m & 7, false, true); return; } // FCOMIP
  if (m < 0xc8) { setTag(c, phys(c, m & 7), TAG_EMPTY); setCond(c, 0, FSW_C1); pop(c); return; } // FFREEP (undocumented)
  // Undocumented aliases the host executes: FXCH7 (DF C8+i), FSTP8 (DF D0+i), FSTP9 (DF D8+i).
  if (m < 0xd0) { fxch(c, m & 7); return; }
  if (m < 0xe0) { fstSti(c, m & 7, true); return; }
  c.ud();
};
def1(0xdf, 'fpu', (c) => x87DF(c, c.fetchModrm()));


/**
 * For the binary translator: runs the register form (ModRM `m` ≥ 0xC0) of x87 instruction `opByte` at
 * CPU.prevEip, as its handler above does, without decoding it again. Register forms touch the FPU only,
 * but for FNSTSW AX (DF E0: the translator has it inline), FCMOVcc (DA/DB C0-DF: reads EFLAGS) and
 * F(U)COMI(P) (DB/DF E8-F7: writes ZF, PF, CF), which the translator calls with the flags in the CPU.
 */
export function x87RegDirect(c: CPU, opByte: number, m: number): void {
  switch (opByte) {
    case 0xd8: case 0xdc: regArith(c, opByte, m); return;
    case 0xd9: x87D9(c, m); return;
    case 0xda: x87DA(c, m); return;
    case 0xdb: x87DB(c, m); return;
    case 0xdd: x87DD(c, m); return;
    case 0xde: x87DE(c, m); return;
    default: x87DF(c, m);
  }
}
