/**
 * x87 transcendental instructions (Intel SDM vol. 2: FSIN, FCOS, FSINCOS, FPTAN, FPATAN, F2XM1, FYL2X,
 * FYL2XP1; accuracy SDM vol. 1 §8.3.10). Results are computed in BigInt fixed point with 192 fraction
 * bits (argument reduction with a 384-bit pi), then rounded once to the 64-bit significand per the
 * rounding control, which keeps them within 1 ulp. Precision control does not apply (SDM §8.1.5.2).
 *
 * API (same conventions as float80.ts: result in `out`, return value = status bits to OR into FSW):
 *  f80Sin(out, x, cw), f80Cos(out, x, cw)          FSIN / FCOS; |x| >= 2^63 -> FSW_C2 and out = x
 *  f80SinCos(outSin, outCos, x, cw)                 FSINCOS: ST1 <- sin, ST0 <- cos (caller pushes)
 *  f80Tan(out, x, cw)                               FPTAN: tan to ST0, caller then pushes 1.0 (or, when
 *                                                   the result is a NaN, pushes that NaN again)
 *  f80Atan2(out, y, x, cw)                          FPATAN: atan(ST1 = y / ST0 = x), quadrant-correct
 *  f80F2xm1(out, x, cw)                             F2XM1: 2^x - 1 for -1 <= x <= 1
 *  f80Yl2x(out, x, y, cw)                           FYL2X: y * log2(x); x = ST0, y = ST1
 *  f80Yl2xp1(out, x, y, cw)                         FYL2XP1: y * log2(x + 1)
 */
import {
  F80, Unpacked, unpack, roundBig, setIndefinite, sig64, isqrt, BIAS,
  CLS_ZERO, CLS_FINITE, CLS_INF, CLS_QNAN, CLS_SNAN, CLS_UNSUPPORTED,
  FE_IE, FE_DE, FE_ZE, FE_UE, FE_PE, FSW_C2,
} from './float80.ts';

const F = 192; // fraction bits of the fixed-point working format
const FB = BigInt(F);
const ONE = 1n << FB;
const FR = 384; // fraction bits used for argument reduction of |x| < 2^63
const FRB = BigInt(FR);

/** arctan(1/n) * 2^bits by its Taylor series (used once, for Machin's formula). */
function atanInv(n: bigint, bits: bigint): bigint {
  let term = (1n << bits) / n;
  const n2 = n * n;
  let sum = 0n;
  for (let k = 1n; term !== 0n; k += 2n) {
    sum += ((k & 3n) === 1n ? term : -term) / k;
    term /= n2;
  }
  return sum;
}
/** atanh(1/n) * 2^bits. */
function atanhInv(n: bigint, bits: bigint): bigint {
  let term = (1n << bits) / n;
  const n2 = n * n;
  let sum = 0n;
  for (let k = 1n; term !== 0n; k += 2n) {
    sum += term / k;
    term /= n2;
  }
  return sum;
}
// pi = 16 atan(1/5) - 4 atan(1/239) (Machin), computed with 32 guard bits.
const PI_R = (16n * atanInv(5n, FRB + 32n) - 4n * atanInv(239n, FRB + 32n)) >> 32n;
// FSIN/FCOS/FSINCOS/FPTAN reduce with the x87's 66-bit approximation of pi (SDM vol. 1 §8.3.10),
// not the true value: results near multiples of pi then match real hardware (the host agrees to 1 ulp
// with this constant and differs by thousands of ulp for large arguments with an exact pi).
const PIO2_R = ((PI_R >> 1n) >> BigInt(FR - 65)) << BigInt(FR - 65);
const PI = PI_R >> (FRB - FB);
const PIO2 = PI >> 1n;
const LN2 = (2n * atanhInv(3n, FB + 32n)) >> 32n; // ln 2 = 2 atanh(1/3)
const LOG2E = (ONE << FB) / LN2;
const SQRT2 = isqrt(2n << (2n * FB));

const UX = new Unpacked();
const UY = new Unpacked();

function shift(v: bigint, n: number): bigint {
  return n >= 0 ? v << BigInt(n) : v >> BigInt(-n);
}
function abs(v: bigint): bigint {
  return v < 0n ? -v : v;
}

function nan1(out: F80, x: F80, u: Unpacked): number {
  if (u.cls === CLS_UNSUPPORTED) {
    setIndefinite(out);
    return FE_IE;
  }
  out.se = x.se;
  out.hi = (x.hi | 0x40000000) >>> 0;
  out.lo = x.lo;
  return u.cls === CLS_SNAN ? FE_IE : 0;
}
function nan2(out: F80, x: F80, ux: Unpacked, y: F80, uy: Unpacked): number {
  if (ux.cls === CLS_UNSUPPORTED || uy.cls === CLS_UNSUPPORTED) {
    setIndefinite(out);
    return FE_IE;
  }
  const ie = ux.cls === CLS_SNAN || uy.cls === CLS_SNAN ? FE_IE : 0;
  let pick = x;
  if (ux.cls >= CLS_QNAN && uy.cls >= CLS_QNAN) {
    // SDM Table 4-7: QNaN over SNaN, else the larger significand.
    if (ux.cls !== uy.cls) pick = ux.cls === CLS_QNAN ? x : y;
    else {
      const xh = x.hi & 0x3fffffff, yh = y.hi & 0x3fffffff;
      if (yh > xh || (yh === xh && y.lo > x.lo)) pick = y;
    }
  } else if (uy.cls >= CLS_QNAN) pick = y;
  out.se = pick.se;
  out.hi = (pick.hi | 0x40000000) >>> 0;
  out.lo = pick.lo;
  return ie;
}

/** Writes a signed fixed-point (F fraction bits) value, rounded per cw. */
function packFixed(out: F80, v: bigint, cw: number): number {
  if (v === 0n) {
    out.se = 0;
    out.hi = 0;
    out.lo = 0;
    return 0;
  }
  return roundBig(out, v < 0n ? 1 : 0, abs(v), -F, true, cw, 64);
}

// ---------------------------------------------------------------------------------------------------
// sin / cos / tan
// ---------------------------------------------------------------------------------------------------

// Result of reduce(): x = q * pi/2 + r, r = rM * 2^rE with |r| <= pi/4 (rM signed).
let redQ = 0;
let rM = 0n;
let rE = 0;
let sinG = 0n; // sin(r) = rM * sinG * 2^(rE - F)
let cosH = 0n; // cos(r) = cosH * 2^-F

function reduceAndEvaluate(u: Unpacked): void {
  const X = sig64(u.hi, u.lo) * (u.sign ? -1n : 1n);
  const s = u.exp - BIAS - 63;
  if (u.exp < BIAS - 1) {
    // |x| < 0.5 < pi/4: no reduction, r = x exactly.
    redQ = 0;
    rM = X;
    rE = s;
  } else {
    const xR = X << BigInt(FR + s);
    // q = nearest integer to x / (pi/2).
    const q = (xR + (xR < 0n ? -(PIO2_R >> 1n) : PIO2_R >> 1n)) / PIO2_R;
    rM = xR - q * PIO2_R;
    rE = -FR;
    redQ = Number(q & 3n);
  }
  // r^2 in fixed point, then the even series sin(r)/r = sum (-1)^k r^2k/(2k+1)!, cos(r).
  const r2 = shift(rM * rM, 2 * rE + F);
  // Terms are kept positive (BigInt >> rounds toward -inf, so a negative term would never reach 0).
  let term = ONE;
  let g = ONE;
  let h = ONE;
  let hterm = ONE;
  for (let k = 1n; k < 200n; k++) {
    term = ((term * r2) >> FB) / ((2n * k) * (2n * k + 1n));
    hterm = ((hterm * r2) >> FB) / ((2n * k - 1n) * (2n * k));
    if (term === 0n && hterm === 0n) break;
    if (k & 1n) {
      g -= term;
      h -= hterm;
    } else {
      g += term;
      h += hterm;
    }
  }
  // sin(r)/r and cos(r) are strictly below 1 for r != 0; subtracting one unit keeps the truncated
  // sums below the true values even when r^2 vanishes in fixed point (tiny r), so the sticky bit
  // set by roundBig rounds in the right direction (e.g. sin(2^-16382) rounds down under RZ).
  sinG = g - 1n;
  cosH = h - 1n;
}

/** Packs sin(x) (which = 0) or cos(x) (which = 1) from the reduced evaluation. */
function packSinCos(out: F80, which: number, cw: number): number {
  const k = (redQ + which) & 3; // cos(x) = sin(x + pi/2)
  if ((k & 1) === 0) {
    // +-sin(r)
    const M = rM * sinG;
    if (M === 0n) {
      out.se = 0;
      out.hi = 0;
      out.lo = 0;
      return 0;
    }
    const neg = (M < 0n) !== (k === 2);
    return roundBig(out, neg ? 1 : 0, abs(M), rE - F, true, cw, 64);
  }
  // k = 1: cos(r), k = 3: -cos(r)
  return roundBig(out, k === 3 ? 1 : 0, cosH, -F, true, cw, 64);
}

/** Common operand screening for FSIN/FCOS/FSINCOS/FPTAN. Returns -1 to compute, else flags. */
function trigSpecial(out: F80, x: F80, u: Unpacked): number {
  if (u.cls >= CLS_QNAN) return nan1(out, x, u);
  if (u.cls === CLS_INF) {
    setIndefinite(out);
    return FE_IE;
  }
  if (u.cls === CLS_FINITE && u.exp >= BIAS + 63) {
    // Out of range (SDM vol. 2 FSIN: |x| >= 2^63): C2 = 1, operand left unchanged.
    out.set(x);
    return FSW_C2;
  }
  return -1;
}

export function f80Sin(out: F80, x: F80, cw: number): number {
  unpack(x, UX);
  const sp = trigSpecial(out, x, UX);
  if (sp >= 0) return sp;
  if (UX.cls === CLS_ZERO) {
    out.set(x);
    return 0;
  }
  const de = UX.denormal ? FE_DE : 0;
  reduceAndEvaluate(UX);
  return de | packSinCos(out, 0, cw);
}

export function f80Cos(out: F80, x: F80, cw: number): number {
  unpack(x, UX);
  const sp = trigSpecial(out, x, UX);
  if (sp >= 0) return sp;
  if (UX.cls === CLS_ZERO) {
    out.se = BIAS;
    out.hi = 0x80000000;
    out.lo = 0;
    return 0;
  }
  const de = UX.denormal ? FE_DE : 0;
  reduceAndEvaluate(UX);
  return de | packSinCos(out, 1, cw);
}

/** FSINCOS: flags of both roundings merged (C1 from the cosine, which ends up in ST0). */
export function f80SinCos(outSin: F80, outCos: F80, x: F80, cw: number): number {
  unpack(x, UX);
  const sp = trigSpecial(outSin, x, UX);
  if (sp >= 0) {
    outCos.set(outSin);
    return sp;
  }
  if (UX.cls === CLS_ZERO) {
    outSin.set(x);
    outCos.se = BIAS;
    outCos.hi = 0x80000000;
    outCos.lo = 0;
    return 0;
  }
  const de = UX.denormal ? FE_DE : 0;
  reduceAndEvaluate(UX);
  const fs = packSinCos(outSin, 0, cw);
  const fc = packSinCos(outCos, 1, cw);
  return de | (fs & ~0x200) | fc;
}

export function f80Tan(out: F80, x: F80, cw: number): number {
  unpack(x, UX);
  const sp = trigSpecial(out, x, UX);
  if (sp >= 0) return sp;
  if (UX.cls === CLS_ZERO) {
    out.set(x);
    return 0;
  }
  const de = UX.denormal ? FE_DE : 0;
  reduceAndEvaluate(UX);
  const S = rM * sinG; // sin(r) * 2^(F - rE)
  if ((redQ & 1) === 0) {
    // tan = sin(r)/cos(r)
    const M = (S << 128n) / cosH;
    return de | roundBig(out, M < 0n ? 1 : 0, abs(M), rE - 128, true, cw, 64);
  }
  // tan = -cos(r)/sin(r)
  const K = FR + F + 128; // r is never tiny here (|r| >= pi/4 - ... after a nonzero q), so K suffices
  const M = (cosH << BigInt(K)) / S;
  return de | roundBig(out, M < 0n ? 0 : 1, abs(M), -rE - K, true, cw, 64);
}

// ---------------------------------------------------------------------------------------------------
// FPATAN
// ---------------------------------------------------------------------------------------------------

/** atan(t) * 2^F for 0 <= t <= 1 given in fixed point: halve the angle 4 times, then Taylor. */
function atanFixed(t: bigint): bigint {
  for (let i = 0; i < 4; i++) {
    // atan(t) = 2 atan(t / (1 + sqrt(1 + t^2)))
    const root = isqrt((ONE << FB) + t * t);
    t = (t << FB) / (ONE + root);
  }
  const t2 = (t * t) >> FB;
  let term = t;
  let sum = t;
  for (let k = 3n; term !== 0n; k += 2n) {
    term = (term * t2) >> FB;
    sum += (k & 2n ? -term : term) / k;
  }
  return sum << 4n;
}

export function f80Atan2(out: F80, y: F80, x: F80, cw: number): number {
  unpack(x, UX);
  unpack(y, UY);
  if (UX.cls >= CLS_QNAN || UY.cls >= CLS_QNAN) return nan2(out, x, UX, y, UY);
  const de = UX.denormal || UY.denormal ? FE_DE : 0;
  const sy = UY.sign;
  // Special operands, SDM vol. 2 FPATAN Table 3-30 (the atan2 conventions).
  let A: bigint | null = null; // |result| in fixed point for the special cases
  if (UY.cls === CLS_ZERO) A = UX.sign ? PI : 0n;
  else if (UX.cls === CLS_ZERO) A = PIO2;
  else if (UY.cls === CLS_INF) A = UX.cls === CLS_INF ? (UX.sign ? PI - (PI >> 2n) : PI >> 2n) : PIO2;
  else if (UX.cls === CLS_INF) A = UX.sign ? PI : 0n;
  if (A !== null) {
    if (A === 0n) {
      out.se = sy << 15;
      out.hi = 0;
      out.lo = 0;
      return de;
    }
    return de | roundBig(out, sy, A, -F, true, cw, 64);
  }
  const Y = sig64(UY.hi, UY.lo);
  const X = sig64(UX.hi, UX.lo);
  const swap = UY.exp > UX.exp || (UY.exp === UX.exp && Y > X); // |y| > |x|
  const num = swap ? X : Y;
  const den = swap ? Y : X;
  const eT = (swap ? UX.exp - UY.exp : UY.exp - UX.exp) - 256; // t = T * 2^eT, 0 < t <= 1
  const T = (num << 256n) / den;
  if (!swap && !UX.sign && eT + 256 < -40) {
    // Tiny ratio: atan(t) = t (1 - t^2/3 + t^4/5 ...), kept in relative form.
    const t2 = shift(T * T, 2 * eT + F);
    let g = ONE;
    let term = ONE;
    for (let k = 3n; term !== 0n; k += 2n) {
      term = (term * t2) >> FB;
      g += (k & 2n ? -term : term) / k;
    }
    return de | roundBig(out, sy, T * (g - 1n), eT - F, true, cw, 64); // atan(t)/t < 1 strictly
  }
  let a = atanFixed(shift(T, eT + F));
  if (swap) a = PIO2 - a;
  if (UX.sign) a = PI - a;
  return de | roundBig(out, sy, a, -F, true, cw, 64);
}

// ---------------------------------------------------------------------------------------------------
// F2XM1
// ---------------------------------------------------------------------------------------------------

export function f80F2xm1(out: F80, x: F80, cw: number): number {
  unpack(x, UX);
  if (UX.cls >= CLS_QNAN) return nan1(out, x, UX);
  if (UX.cls === CLS_ZERO) {
    out.set(x);
    return 0;
  }
  if (UX.cls === CLS_INF) {
    // 2^+inf - 1 = +inf, 2^-inf - 1 = -1.
    out.se = UX.sign ? 0x8000 | BIAS : 0x7fff;
    out.hi = 0x80000000;
    out.lo = 0;
    return 0;
  }
  const de = UX.denormal ? FE_DE : 0;
  if (UX.exp > BIAS || (UX.exp === BIAS && (x.hi !== 0x80000000 || x.lo !== 0))) {
    // |x| > 1, outside the documented -1..1 range (result undefined, SDM vol. 2 F2XM1): the host
    // (AMD) leaves the operand unchanged and reports an inexact result, and so do we.
    out.set(x);
    return FE_PE;
  }
  // t = x ln2 = T * 2^(s - F); 2^x - 1 = expm1(t) = t * sum t^k/(k+1)!.
  const s = UX.exp - BIAS - 63;
  const T = sig64(UX.hi, UX.lo) * LN2 * (UX.sign ? -1n : 1n);
  const tF = shift(abs(T), s);
  let g = ONE;
  let term = ONE;
  for (let k = 2n; term !== 0n; k++) {
    term = ((term * tF) >> FB) / k; // |t|^(k-1) / k!
    g += UX.sign && (k & 1n) === 0n ? -term : term;
  }
  if (UX.sign) g -= 1n; // expm1(t)/t < 1 strictly for t < 0 (keeps the truncation below the true value)
  const M = T * g;
  return de | roundBig(out, UX.sign, abs(M), s - 2 * F, true, cw, 64);
}

// ---------------------------------------------------------------------------------------------------
// FYL2X, FYL2XP1
// ---------------------------------------------------------------------------------------------------

/** 2 atanh(s) / s = 2 sum s^2k/(2k+1), with s^2 given in fixed point. */
function atanhFactor(s2: bigint): bigint {
  let g = ONE;
  let term = ONE;
  for (let k = 3n; term !== 0n; k += 2n) {
    term = (term * s2) >> FB;
    g += term / k;
  }
  return g << 1n;
}

/**
 * y * L for the special values of L = log2(...), following IEEE multiplication: lCls is the class of
 * L (zero/inf), lSign its sign. Returns flags, or -1 when both are finite nonzero.
 */
function mulSpecial(out: F80, uy: Unpacked, lCls: number, lSign: number): number {
  const sign = uy.sign ^ lSign;
  if ((uy.cls === CLS_ZERO && lCls === CLS_INF) || (uy.cls === CLS_INF && lCls === CLS_ZERO)) {
    setIndefinite(out);
    return FE_IE;
  }
  if (uy.cls === CLS_INF || lCls === CLS_INF) {
    out.se = (sign << 15) | 0x7fff;
    out.hi = 0x80000000;
    out.lo = 0;
    return 0;
  }
  if (uy.cls === CLS_ZERO || lCls === CLS_ZERO) {
    out.se = sign << 15;
    out.hi = 0;
    out.lo = 0;
    return 0;
  }
  return -1;
}

export function f80Yl2x(out: F80, x: F80, y: F80, cw: number): number {
  unpack(x, UX);
  unpack(y, UY);
  if (UX.cls >= CLS_QNAN || UY.cls >= CLS_QNAN) return nan2(out, x, UX, y, UY);
  const de = UX.denormal || UY.denormal ? FE_DE : 0;
  if (UX.sign && UX.cls !== CLS_ZERO) {
    setIndefinite(out);
    return FE_IE; // log of a negative number
  }
  const isOne = UX.cls === CLS_FINITE && UX.exp === BIAS && UX.hi === 0x80000000 && UX.lo === 0;
  let lCls = CLS_FINITE;
  let lSign = 0;
  if (UX.cls === CLS_ZERO) {
    lCls = CLS_INF;
    lSign = 1;
  } else if (UX.cls === CLS_INF) lCls = CLS_INF;
  else if (isOne) lCls = CLS_ZERO;
  else lSign = UX.exp < BIAS ? 1 : 0;
  const sp = mulSpecial(out, UY, lCls, lSign);
  if (sp >= 0) {
    // log2(0) with a finite nonzero y is a divide by zero (SDM vol. 2 FYL2X), which outranks a
    // denormal y (SDM vol. 1 §4.9.2; the host agrees).
    if (UX.cls === CLS_ZERO && UY.cls === CLS_FINITE) return sp | FE_ZE;
    return de | sp;
  }
  const L = log2Fixed(sig64(UX.hi, UX.lo), UX.exp - BIAS - 63);
  const M = sig64(UY.hi, UY.lo) * L;
  // log2 of a power of two is an exact integer: y * L is then rounded exactly (no spurious overflow),
  // but the host still reports it inexact (PE), and so do we.
  const exact = UX.hi === 0x80000000 && UX.lo === 0;
  const f = roundBig(out, UY.sign ^ (M < 0n ? 1 : 0), abs(M), UY.exp - BIAS - 63 - F, !exact, cw, 64) | FE_PE;
  // The host reports UE for a tiny result even when it is exact (observed; SDM §8.5.5 leaves the
  // masked case to "tiny and inexact" for the basic operations only).
  const tiny = (out.se & 0x7fff) === 0 && (out.hi | out.lo) !== 0 ? FE_UE : 0;
  return de | f | tiny;
}

/** log2(V * 2^E) in fixed point for V > 0: V = m 2^e, m in [sqrt(1/2), sqrt(2)), ln m = 2 atanh((m-1)/(m+1)). */
function log2Fixed(V: bigint, E: number): bigint {
  const len = V.toString(2).length;
  let e = E + len - 1;
  let m = shift(V, F - len + 1);
  if (m > SQRT2) {
    m >>= 1n;
    e++;
  }
  const sF = ((m - ONE) << FB) / (m + ONE);
  const lnm = (sF * atanhFactor((sF * sF) >> FB)) >> FB;
  return (BigInt(e) << FB) + ((lnm * LOG2E) >> FB);
}

export function f80Yl2xp1(out: F80, x: F80, y: F80, cw: number): number {
  unpack(x, UX);
  unpack(y, UY);
  if (UX.cls >= CLS_QNAN || UY.cls >= CLS_QNAN) return nan2(out, x, UX, y, UY);
  const de = UX.denormal || UY.denormal ? FE_DE : 0;
  const below = UX.sign && (UX.cls === CLS_INF || UX.exp >= BIAS); // x <= -1
  if (below && UX.cls === CLS_FINITE) {
    // Finite x <= -1 is far outside the documented range |x| < 1 - sqrt(2)/2 (result undefined, SDM
    // vol. 2 FYL2XP1): the host (AMD) returns x itself as an inexact result (a zero or infinite y
    // gives a zero or infinity of the opposite sign), and so do we.
    if (UY.cls === CLS_ZERO || UY.cls === CLS_INF) {
      out.se = ((UY.sign ^ 1) << 15) | (UY.cls === CLS_INF ? 0x7fff : 0);
      out.hi = UY.cls === CLS_INF ? 0x80000000 : 0;
      out.lo = 0;
      return de;
    }
    out.set(x);
    return de | FE_PE;
  }
  if (below) {
    const minusOne = UX.cls === CLS_FINITE && UX.exp === BIAS && UX.hi === 0x80000000 && UX.lo === 0;
    if (!minusOne) {
      setIndefinite(out);
      return FE_IE;
    }
  }
  let lCls = CLS_FINITE;
  let lSign = UX.sign;
  if (UX.cls === CLS_ZERO) lCls = CLS_ZERO;
  else if (UX.cls === CLS_INF || below) lCls = CLS_INF;
  const sp = mulSpecial(out, UY, lCls, lSign);
  if (sp >= 0) return de | sp | (below && UY.cls === CLS_FINITE ? FE_ZE : 0);
  const sx = UX.exp - BIAS - 63;
  const Xs = sig64(UX.hi, UX.lo) * (UX.sign ? -1n : 1n);
  if (UX.exp >= BIAS - 2) {
    // |x| >= 1/4 (beyond the documented range |x| < 1 - sqrt(2)/2): log2 of the exact sum 1 + x.
    const E = Math.min(sx, 0);
    const L = log2Fixed(shift(Xs, sx - E) + (1n << BigInt(-E)), E);
    const M = sig64(UY.hi, UY.lo) * L;
    return de | roundBig(out, UY.sign ^ (M < 0n ? 1 : 0), abs(M), UY.exp - BIAS - 63 - F, true, cw, 64);
  }
  // ln(1+x) = 2 atanh(s), s = x/(2+x) = S * 2^(sx - 128), computed relative to x for tiny x.
  const D = (2n << FB) + shift(Xs, sx + F);
  const S = (Xs << (FB + 128n)) / D;
  const sF = shift(S, sx - 128 + F);
  const g = atanhFactor((sF * sF) >> FB); // ln(1+x) = s * g
  const M = sig64(UY.hi, UY.lo) * S * g * LOG2E;
  lSign = M < 0n ? 1 : 0;
  return de | roundBig(out, UY.sign ^ lSign, abs(M), UY.exp - BIAS - 63 + sx - 128 - 2 * F, true, cw, 64);
}
