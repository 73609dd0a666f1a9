// SSE/SSE2 floating-point arithmetic with exact x86 semantics (SDM vol. 1 §4.8, §4.9, §11.5):
// rounding under every MXCSR.RC mode, FTZ and DAZ, the x86 NaN propagation rules (Table 4-7: the first
// source NaN wins, SNaNs are quieted, invalid operations give the "QNaN floating-point indefinite"), and
// the six sticky exception flags with the #XM/#UD delivery of §11.5.
//
// Elements live in Int32Array words: a single is one word, a double is two (low word first). A common case
// (round-to-nearest, PE already set and masked, normal operands and result) is computed directly in JS
// doubles; everything else goes through an exact path that decomposes operands into BigInt significands,
// computes the exact result (or a sticky-extended quotient/root), and rounds it once with the MXCSR mode.

import type { CPU } from './cpu.ts';
import { CR4_OSXMMEXCPT, EXC_XM } from './constants.ts';

export const IE = 1, DE = 2, ZE = 4, OE = 8, UE = 16, PE = 32;
const DAZ_BIT = 0x40, FTZ_BIT = 0x8000;

// Per-instruction MXCSR context: instructions are not re-entrant, so module state is enough.
let rc = 0;
let ftz = false;
let daz = false;
/** Exception flags detected so far by the current instruction (all elements). */
export let fl = 0;
let fastOk = false;
let umask = 0;

/** Starts an SSE floating-point instruction: latches the MXCSR controls. */
export function fpBegin(c: CPU): void {
  const m = c.sse.mxcsr;
  rc = (m >> 13) & 3;
  ftz = (m & FTZ_BIT) !== 0;
  daz = (m & DAZ_BIT) !== 0;
  umask = ~(m >> 7) & 0x3f;
  fl = 0;
  // The JS-double shortcut is exact only for round-to-nearest, and only when inexactness needs no report.
  fastOk = rc === 0 && (m & 0x1020) === 0x1020;
}

/**
 * Ends the instruction (SDM vol. 1 §11.5.1): pre-computation exceptions (IE, DE, ZE) of all elements are
 * recorded first; if any is unmasked the post-computation ones (OE, UE, PE) are not. Any unmasked flag
 * raises #XM (CR4.OSXMMEXCPT=1) or #UD, before the destination is written. Returns normally otherwise.
 */
export function fpEnd(c: CPU): void {
  if (fl === 0) return;
  if (fl & 7 & umask) { c.sse.mxcsr |= fl & 7; xmFault(c); }
  c.sse.mxcsr |= fl;
  if (fl & umask) xmFault(c);
}

export function xmFault(c: CPU): never {
  if (c.cr4 & CR4_OSXMMEXCPT) c.fault(EXC_XM);
  c.ud();
}

// ---------------------------------------------------------------------------------------------------
// Formats

export interface Fmt {
  readonly p: number; readonly emin: number; readonly emax: number; readonly words: 1 | 2;
  /** 0 zero, 1 denormal, 2 normal, 3 infinity, 4 QNaN, 5 SNaN. */
  cls(a: Int32Array, i: number): number;
  get(a: Int32Array, i: number): number;
  put(r: Int32Array, i: number, v: number): void;
  /** Copies NaN a[i] into r[j], quieted (SNaN → QNaN by setting the significand's top bit). */
  quiet(r: Int32Array, j: number, a: Int32Array, i: number): void;
  indefinite(r: Int32Array, j: number): void;
  signBit(a: Int32Array, i: number): boolean;
  readonly minNormal: number;
}

const cF32 = new Float32Array(1), cU32 = new Int32Array(cF32.buffer);
const cF64 = new Float64Array(1), cW64 = new Int32Array(cF64.buffer);

export const F32: Fmt = {
  p: 24, emin: -126, emax: 127, words: 1, minNormal: 2 ** -126,
  cls(a, i) {
    const x = a[i], e = (x >>> 23) & 0xff, f = x & 0x7fffff;
    if (e === 0) return f === 0 ? 0 : 1;
    if (e !== 0xff) return 2;
    if (f === 0) return 3;
    return (f & 0x400000) ? 4 : 5;
  },
  get(a, i) { cU32[0] = a[i]; return cF32[0]; },
  put(r, j, v) { cF32[0] = v; r[j] = cU32[0]; },
  quiet(r, j, a, i) { r[j] = a[i] | 0x400000; },
  indefinite(r, j) { r[j] = 0xffc00000 | 0; },
  signBit(a, i) { return a[i] < 0; },
};

export const F64: Fmt = {
  p: 53, emin: -1022, emax: 1023, words: 2, minNormal: 2 ** -1022,
  cls(a, i) {
    const hi = a[i + 1], e = (hi >>> 20) & 0x7ff, f = hi & 0xfffff;
    if (e === 0) return (f | a[i]) === 0 ? 0 : 1;
    if (e !== 0x7ff) return 2;
    if ((f | a[i]) === 0) return 3;
    return (f & 0x80000) ? 4 : 5;
  },
  get(a, i) { cW64[0] = a[i]; cW64[1] = a[i + 1]; return cF64[0]; },
  put(r, j, v) { cF64[0] = v; r[j] = cW64[0]; r[j + 1] = cW64[1]; },
  quiet(r, j, a, i) { r[j] = a[i]; r[j + 1] = a[i + 1] | 0x80000; },
  indefinite(r, j) { r[j] = 0; r[j + 1] = 0xfff80000 | 0; },
  signBit(a, i) { return a[i + 1] < 0; },
};

/** Reads an operand for arithmetic: applies DAZ (denormal → signed zero, no flag) or records DE. */
function operand(F: Fmt, a: Int32Array, i: number, k: number): number {
  const v = F.get(a, i);
  if (k === 1) {
    if (daz) return F.signBit(a, i) ? -0 : 0;
    fl |= DE;
  }
  return v;
}

// ---------------------------------------------------------------------------------------------------
// Exact rounding

const cBig = new BigUint64Array(cF64.buffer);
let dNeg = false, dExp = 0;

/** Decomposes a finite non-zero double into |x| = m·2^dExp (m returned), sign in dNeg. */
function decompose(x: number): bigint {
  cF64[0] = x;
  const b = cBig[0];
  dNeg = b >> 63n === 1n;
  const e = Number((b >> 52n) & 0x7ffn);
  let m = b & 0xfffffffffffffn;
  if (e === 0) dExp = -1074;
  else { m |= 1n << 52n; dExp = e - 1075; }
  return m;
}

function bitLen(m: bigint): number { return m.toString(2).length; }

/** Rounds m (>0, integer) shifted right by sh ≥ 1 bits, plus a sticky tail, in the current mode. */
function roundShift(m: bigint, sh: number, neg: boolean, sticky: boolean): [bigint, boolean] {
  if (sh <= 0) {
    // Exact at this quantum unless a sticky tail exists below it (then below half an ulp).
    const k = m << BigInt(-sh);
    if (!sticky) return [k, false];
    const up = (rc === 1 && neg) || (rc === 2 && !neg);
    return [up ? k + 1n : k, true];
  }
  const s = BigInt(sh);
  const kept = m >> s;
  const rem = m & ((1n << s) - 1n);
  const half = 1n << (s - 1n);
  const inexact = rem !== 0n || sticky;
  let up: boolean;
  switch (rc) {
    case 0: up = rem > half || (rem === half && (sticky || (kept & 1n) === 1n)); break;
    case 1: up = inexact && neg; break;
    case 2: up = inexact && !neg; break;
    default: up = false;
  }
  return [up ? kept + 1n : kept, inexact];
}

/**
 * Rounds ±m·2^e (+ sticky) to format F with MXCSR.RC, applying the overflow, underflow (tininess
 * detected after rounding, SDM vol. 1 §4.9.1.5) and FTZ rules; records OE/UE/PE. Returns a JS number.
 */
function roundTo(F: Fmt, neg: boolean, m: bigint, e: number, sticky: boolean): number {
  const sgn = neg ? -1 : 1;
  const E = e + bitLen(m) - 1;
  let q = Math.max(E, F.emin) - (F.p - 1);
  let [kept, inexact] = roundShift(m, q - e, neg, sticky);
  if (kept === 1n << BigInt(F.p)) { kept >>= 1n; q++; }
  let tiny = false;
  if (E < F.emin) {
    tiny = true;
    if (E === F.emin - 1) {
      // With an unbounded exponent the value would round at quantum E-(p-1); reaching 2^emin is not tiny.
      const [k2] = roundShift(m, E - (F.p - 1) - e, neg, sticky);
      if (k2 === 1n << BigInt(F.p)) tiny = false;
    }
  }
  // With OE/UE unmasked the result is delivered to the #XM handler as if rounded with an unbounded
  // exponent (the x87 bias-adjust model, SDM vol. 1 §4.9.1.4/§4.9.1.5), so PE reports the inexactness of
  // that p-bit rounding rather than of the denormalized/overflowed one (host-verified).
  if (tiny) {
    if (ftz && !(umask & UE)) { fl |= UE | PE; return sgn * 0; }
    if (umask & UE) {
      const [, inexactWide] = roundShift(m, E - (F.p - 1) - e, neg, sticky);
      fl |= UE | (inexactWide ? PE : 0);
    } else if (inexact) fl |= UE | PE;
  } else if (q + F.p - 1 > F.emax) {
    fl |= (umask & OE) ? OE | (inexact ? PE : 0) : OE | PE;
    const maxF = (2 - 2 ** (1 - F.p)) * 2 ** F.emax;
    const toInf = rc === 0 || (rc === 1 && neg) || (rc === 2 && !neg);
    return sgn * (toInf ? Infinity : maxF);
  } else if (inexact) fl |= PE;
  return sgn * Number(kept) * 2 ** q;
}

/** Zero result of an exact cancellation x + (-x): +0, or -0 when rounding toward -∞ (IEEE 754 §6.3). */
function cancelZero(): number { return rc === 1 ? -0 : 0; }

function exactAdd(F: Fmt, x: number, y: number): number {
  if (x === 0 || y === 0) {
    if (x === 0 && y === 0) return Object.is(x, y) ? x : cancelZero();
    return finishExact(F, x === 0 ? y : x);
  }
  const mx = decompose(x), nx = dNeg, ex = dExp;
  const my = decompose(y), ny = dNeg, ey = dExp;
  const e = Math.min(ex, ey);
  const sx = (nx ? -mx : mx) << BigInt(ex - e), sy = (ny ? -my : my) << BigInt(ey - e);
  const s = sx + sy;
  if (s === 0n) return cancelZero();
  return s < 0n ? roundTo(F, true, -s, e, false) : roundTo(F, false, s, e, false);
}

/** A value already exact in double precision, rounded to F (matters for denormals and F32). */
function finishExact(F: Fmt, x: number): number {
  const m = decompose(x);
  return roundTo(F, dNeg, m, dExp, false);
}

function exactMul(F: Fmt, x: number, y: number): number {
  if (x === 0 || y === 0) return x * y;
  const mx = decompose(x), nx = dNeg, ex = dExp;
  const my = decompose(y);
  return roundTo(F, nx !== dNeg, mx * my, ex + dExp, false);
}

function exactDiv(F: Fmt, x: number, y: number): number {
  if (x === 0) return x / y;
  const mx = decompose(x), nx = dNeg, ex = dExp;
  const my = decompose(y), ny = dNeg, ey = dExp;
  // Enough quotient bits for p plus guard and round, whatever the denormal scaling.
  const k = F.p + 3 + bitLen(my) - bitLen(mx) + 1;
  const num = k > 0 ? mx << BigInt(k) : mx;
  const kk = k > 0 ? k : 0;
  const q = num / my;
  return roundTo(F, nx !== ny, q, ex - ey - kk, q * my !== num);
}

function isqrt(n: bigint): bigint {
  if (n < 2n) return n;
  let x = 1n << BigInt((bitLen(n) + 1) >> 1);
  for (;;) {
    const y = (x + n / x) >> 1n;
    if (y >= x) return x;
    x = y;
  }
}

function exactSqrt(F: Fmt, x: number): number {
  if (x === 0) return x;
  let m = decompose(x);
  let e = dExp;
  let k = 2 * (F.p + 3) - bitLen(m);
  if (k < 0) k = 0;
  if ((e - k) & 1) k++;
  m <<= BigInt(k); e -= k;
  const r = isqrt(m);
  return roundTo(F, false, r, e / 2, r * r !== m);
}

// ---------------------------------------------------------------------------------------------------
// Element operations

export const OP_ADD = 0, OP_SUB = 1, OP_MUL = 2, OP_DIV = 3;

function fast(F: Fmt, v: number): number { return F.words === 1 ? Math.fround(v) : v; }

/**
 * r[j] = a[i] op b[k] (SDM vol. 2 ADDPS/SUBPS/MULPS/DIVPS and their PD/SS/SD forms).
 * NaN operands: the first source's NaN wins, quieted; an SNaN raises IE. Invalid operations (∞-∞, 0·∞,
 * 0/0, ∞/∞) give the QNaN indefinite with IE; x/0 gives ±∞ with ZE.
 */
export function binop(F: Fmt, op: number, r: Int32Array, j: number, a: Int32Array, i: number, b: Int32Array, k: number): void {
  const ca = F.cls(a, i), cb = F.cls(b, k);
  if (ca >= 4 || cb >= 4) {
    if (ca === 5 || cb === 5) fl |= IE;
    F.quiet(r, j, ca >= 4 ? a : b, ca >= 4 ? i : k);
    return;
  }
  const flSave = fl;
  const x = operand(F, a, i, ca), y = operand(F, b, k, cb);
  let v: number;
  switch (op) {
    case OP_ADD: case OP_SUB: {
      const yy = op === OP_SUB ? -y : y;
      if (ca === 3 || cb === 3) {
        if (ca === 3 && cb === 3 && x !== yy) { fl |= IE; F.indefinite(r, j); return; }
        v = x + yy; break;
      }
      v = fast(F, x + yy);
      if (!(fastOk && Math.abs(v) >= 2 * F.minNormal && v !== Infinity && v !== -Infinity)) v = exactAdd(F, x, yy);
      break;
    }
    case OP_MUL:
      if (ca === 3 || cb === 3) {
        if (x === 0 || y === 0) { fl |= IE; F.indefinite(r, j); return; }
        v = x * y; break;
      }
      v = fast(F, x * y);
      if (!(fastOk && Math.abs(v) >= 2 * F.minNormal && v !== Infinity && v !== -Infinity)) v = exactMul(F, x, y);
      break;
    default: // OP_DIV
      if (ca === 3 || cb === 3) {
        if (ca === 3 && cb === 3) { fl |= IE; F.indefinite(r, j); return; }
        v = x / y; break;
      }
      if (y === 0) {
        if (x === 0) { fl |= IE; F.indefinite(r, j); return; }
        // Division by zero outranks a denormal dividend: ZE alone (host-verified).
        if (ca === 1) fl = flSave;
        fl |= ZE; v = x / y; break;
      }
      v = fast(F, x / y);
      if (!(fastOk && Math.abs(v) >= 2 * F.minNormal && v !== Infinity && v !== -Infinity)) v = exactDiv(F, x, y);
      break;
  }
  F.put(r, j, v);
}

/** SQRTPS/SQRTSS/SQRTPD/SQRTSD: sqrt(-0) = -0, negative non-zero operands are invalid. */
export function sqrtop(F: Fmt, r: Int32Array, j: number, a: Int32Array, i: number): void {
  const ca = F.cls(a, i);
  if (ca >= 4) { if (ca === 5) fl |= IE; F.quiet(r, j, a, i); return; }
  // A negative denormal is invalid before it is a denormal (IE without DE), unless DAZ makes it -0.
  if (ca === 1 && !daz && F.signBit(a, i)) { fl |= IE; F.indefinite(r, j); return; }
  const x = operand(F, a, i, ca);
  if (x < 0) { fl |= IE; F.indefinite(r, j); return; }
  if (ca === 3 || x === 0) { F.put(r, j, x); return; }
  let v = fast(F, Math.sqrt(x));
  if (!(fastOk && v >= 2 * F.minNormal)) v = exactSqrt(F, x);
  F.put(r, j, v);
}

/**
 * MINPS/MAXPS family (SDM vol. 2 "MINPS"): if either operand is a NaN (QNaN or SNaN) the second source is
 * returned unchanged and IE is raised; if both are zeros of any sign, the second source is returned.
 */
export function minmax(F: Fmt, isMax: boolean, r: Int32Array, j: number, a: Int32Array, i: number, b: Int32Array, k: number): void {
  const ca = F.cls(a, i), cb = F.cls(b, k);
  if (ca >= 4 || cb >= 4) {
    fl |= IE;
    if (cb === 1 && daz) F.put(r, j, F.signBit(b, k) ? -0 : 0); // the returned source still goes through DAZ
    else { r[j] = b[k]; if (F.words === 2) r[j + 1] = b[k + 1]; }
    return;
  }
  const x = operand(F, a, i, ca), y = operand(F, b, k, cb);
  const pickA = isMax ? x > y : x < y;
  if (pickA) { if (ca === 1 && daz) F.put(r, j, x); else { r[j] = a[i]; if (F.words === 2) r[j + 1] = a[i + 1]; } }
  else if (cb === 1 && daz) F.put(r, j, y);
  else { r[j] = b[k]; if (F.words === 2) r[j + 1] = b[k + 1]; }
}

/**
 * CMPPS predicates 0-7 (SDM vol. 2 "CMPPS" Table 3-7): EQ LT LE UNORD NEQ NLT NLE ORD. LT/LE/NLT/NLE
 * signal IE on any NaN; EQ/UNORD/NEQ/ORD only on SNaN. Returns the predicate's truth.
 */
export function compare(F: Fmt, pred: number, a: Int32Array, i: number, b: Int32Array, k: number): boolean {
  const ca = F.cls(a, i), cb = F.cls(b, k);
  if (ca >= 4 || cb >= 4) {
    const signalling = (pred & 3) === 1 || (pred & 3) === 2;
    if (ca === 5 || cb === 5 || signalling) fl |= IE;
    return pred === 3 || pred === 4 || pred === 5 || pred === 6;
  }
  const x = operand(F, a, i, ca), y = operand(F, b, k, cb);
  switch (pred) {
    case 0: return x === y;
    case 1: return x < y;
    case 2: return x <= y;
    case 3: return false;
    case 4: return x !== y;
    case 5: return !(x < y);
    case 6: return !(x <= y);
    default: return true;
  }
}

/** COMISS/UCOMISS: returns ZF|PF|CF as EFLAGS bits (unordered 111, less CF, equal ZF, greater 000). */
export function comi(F: Fmt, ordered: boolean, a: Int32Array, i: number, b: Int32Array, k: number): number {
  const ca = F.cls(a, i), cb = F.cls(b, k);
  if (ca >= 4 || cb >= 4) {
    if (ordered || ca === 5 || cb === 5) fl |= IE;
    return 0x45;
  }
  const x = operand(F, a, i, ca), y = operand(F, b, k, cb);
  return x < y ? 1 : x === y ? 0x40 : 0;
}

// ---------------------------------------------------------------------------------------------------
// Conversions (SDM vol. 2 CVT*)

/** Float-to-float (CVTSS2SD, CVTSD2SS, CVTPS2PD, CVTPD2PS): NaN payloads keep their top bits. */
export function cvtff(S: Fmt, D: Fmt, r: Int32Array, j: number, a: Int32Array, i: number): void {
  const ca = S.cls(a, i);
  if (ca >= 4) {
    if (ca === 5) fl |= IE;
    if (S.words === 1) { // single → double: significand moves up 29 bits
      const x = a[i];
      r[j] = (x << 29); r[j + 1] = (x & 0x80000000) | 0x7ff80000 | ((x & 0x3fffff) >>> 3);
    } else {
      const lo = a[i], hi = a[i + 1];
      r[j] = (hi & 0x80000000) | 0x7fc00000 | ((hi & 0x7ffff) << 3) | (lo >>> 29);
    }
    return;
  }
  const x = operand(S, a, i, ca);
  if (ca === 3 || x === 0) { D.put(r, j, x); return; }
  let v = fast(D, x);
  if (!(fastOk && Math.abs(v) >= 2 * D.minNormal && Math.abs(v) !== Infinity)) v = finishExact(D, x);
  D.put(r, j, v);
}

/** Integer to float: exact for doubles, rounded (PE) for singles. */
export function cvtif(D: Fmt, r: Int32Array, j: number, n: number): void {
  if (n === 0) { D.put(r, j, 0); return; }
  D.put(r, j, D.words === 2 ? n : finishExact(D, n));
}

/**
 * Float to int32 with MXCSR.RC or truncation: NaN, infinities and out-of-range values give the integer
 * indefinite 0x80000000 with IE; inexact conversions set PE. DAZ applies; no DE (SDM vol. 2 CVTSS2SI).
 */
export function cvtfi(S: Fmt, a: Int32Array, i: number, truncate: boolean): number {
  const ca = S.cls(a, i);
  if (ca >= 3) { fl |= IE; return 0x80000000 | 0; }
  if (ca === 0 || (ca === 1 && daz)) return 0;
  const x = S.get(a, i);
  const t = Math.trunc(x);
  const frac = x - t;
  let v = t;
  if (frac !== 0 && !truncate) {
    const af = Math.abs(frac), s = Math.sign(frac);
    switch (rc) {
      case 0: if (af > 0.5 || (af === 0.5 && (t % 2) !== 0)) v = t + s; break;
      case 1: if (frac < 0) v = t - 1; break;
      case 2: if (frac > 0) v = t + 1; break;
      default: break;
    }
  }
  if (v > 2147483647 || v < -2147483648) { fl |= IE; return 0x80000000 | 0; }
  if (frac !== 0) fl |= PE;
  return v | 0;
}
