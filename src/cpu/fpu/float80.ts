/**
 * x87 80-bit extended-precision arithmetic (Intel SDM vol. 1 ch. 4 and 8, IEEE 754).
 *
 * ## Representation
 * `F80` is a small mutable object: `se` = sign (bit 15) | biased exponent (bits 0-14), `hi`/`lo` = the
 * 64-bit significand as two uint32 halves (bit 31 of `hi` is the explicit integer bit J).
 * All operations write their result into an `out` object supplied by the caller (it may alias an
 * input), so nothing is allocated per operation on the hot path.
 *
 * ## Control word and status
 * Every operation takes the x87 control word `cw` as is: bits 0-5 exception masks (IM DM ZM OM UM PM),
 * bits 8-9 precision control (00 = 24, 10 = 53, 11 = 64 bit significand; SDM §8.1.5.2, only applied by
 * add/sub/mul/div/sqrt), bits 10-11 rounding control (00 nearest-even, 01 down, 10 up, 11 toward zero;
 * SDM §4.8.4). It returns a status mask to OR into the status word: `FE_IE FE_DE FE_ZE FE_OE FE_UE
 * FE_PE` plus the condition bits the instruction defines (`FSW_C0..C3`). C1 = "rounded up" when PE
 * is set (SDM §8.1.3.1); the caller clears C1 (and the other C bits an instruction defines) first.
 *
 * ## Exceptions (SDM §8.5)
 * - Masked responses are always produced in `out` (real indefinite for IE, ±inf for ZE, ...).
 * - Unmasked OE/UE on a register destination: `out` holds the exponent-biased result (exponent
 *   -/+ 24576, SDM §8.5.4, §8.5.5), which the caller stores before raising #MF.
 * - Unmasked IE/ZE/DE: the caller must leave the destination unchanged (SDM §8.5.1-8.5.3); `out` then
 *   holds the masked response, which the caller ignores.
 * - Memory destinations (float/int/BCD stores) with an unmasked exception must not be written.
 *
 * ## API
 *  f80Load(mem, off, out) / f80Store(x, mem, off)       10-byte memory format
 *  f80Add/f80Sub/f80Mul/f80Div(out, a, b, cw)           a op b
 *  f80Sqrt(out, a, cw), f80RoundInt(out, a, cw)          FSQRT, FRNDINT
 *  f80Compare(a, b, cw, unordered)                      FCOM (unordered=false) / FUCOM: C0/C2/C3 + IE/DE
 *  f80Prem(out, a, b, cw, ieee)                         FPREM (ieee=false) / FPREM1: C0 C1 C3 C2
 *  f80Scale(out, a, b, cw)                              FSCALE: a * 2^trunc(b)
 *  f80Extract(outSig, outExp, a, cw)                    FXTRACT: outSig -> ST0, outExp -> ST1
 *  f80FromInt32(v, out), f80FromInt64(hi, lo, out)      FILD (int16 too via f80FromInt32)
 *  f80ToInt(a, bits, cw, truncate, out: Bits64)         FIST/FISTP (truncate=false), FISTTP
 *  f80FromFloat32(bits, out), f80FromFloat64(hi, lo, out)   FLD m32/m64
 *  f80ToFloat32(a, cw, out: Bits64) -> out.lo, f80ToFloat64(a, cw, out) -> out.hi:out.lo
 *  f80FromBcd(mem, off, out), f80ToBcd(a, cw, mem, off)  FBLD, FBSTP
 *  transcendental.ts: f80Sin, f80Cos, f80SinCos, f80Tan, f80Atan2, f80F2xm1, f80Yl2x, f80Yl2xp1
 */

export class F80 {
  se: number;
  hi: number;
  lo: number;
  constructor(se = 0, hi = 0, lo = 0) {
    this.se = se;
    this.hi = hi >>> 0;
    this.lo = lo >>> 0;
  }
  set(x: F80): this {
    this.se = x.se;
    this.hi = x.hi;
    this.lo = x.lo;
    return this;
  }
}

/** A 64-bit memory image as two uint32 halves (integer and float stores). */
export class Bits64 {
  hi = 0;
  lo = 0;
}

// Status word bits (SDM vol. 1 §8.1.3, Figure 8-4).
export const FE_IE = 0x01;
export const FE_DE = 0x02;
export const FE_ZE = 0x04;
export const FE_OE = 0x08;
export const FE_UE = 0x10;
export const FE_PE = 0x20;
export const FSW_C0 = 0x100;
export const FSW_C1 = 0x200;
export const FSW_C2 = 0x400;
export const FSW_C3 = 0x4000;

// Control word fields (SDM vol. 1 §8.1.5).
export const RC_NEAREST = 0;
export const RC_DOWN = 1;
export const RC_UP = 2;
export const RC_ZERO = 3;

export const BIAS = 16383;
/** Exponent adjustment applied to results with unmasked overflow/underflow (SDM §8.5.4, §8.5.5). */
export const UNMASKED_BIAS = 24576;

/** Real indefinite: the default QNaN produced by masked invalid operations (SDM §4.8.3.7). */
export function setIndefinite(out: F80): void {
  out.se = 0xffff;
  out.hi = 0xc0000000;
  out.lo = 0;
}

// ---------------------------------------------------------------------------------------------------
// Memory format
// ---------------------------------------------------------------------------------------------------

export function f80Load(mem: Uint8Array, off: number, out: F80): F80 {
  out.lo = (mem[off] | (mem[off + 1] << 8) | (mem[off + 2] << 16) | (mem[off + 3] << 24)) >>> 0;
  out.hi = (mem[off + 4] | (mem[off + 5] << 8) | (mem[off + 6] << 16) | (mem[off + 7] << 24)) >>> 0;
  out.se = mem[off + 8] | (mem[off + 9] << 8);
  return out;
}

export function f80Store(x: F80, mem: Uint8Array, off: number): void {
  mem[off] = x.lo;
  mem[off + 1] = x.lo >>> 8;
  mem[off + 2] = x.lo >>> 16;
  mem[off + 3] = x.lo >>> 24;
  mem[off + 4] = x.hi;
  mem[off + 5] = x.hi >>> 8;
  mem[off + 6] = x.hi >>> 16;
  mem[off + 7] = x.hi >>> 24;
  mem[off + 8] = x.se;
  mem[off + 9] = x.se >>> 8;
}

// ---------------------------------------------------------------------------------------------------
// Operand classification (SDM vol. 1 §4.2.2, §8.2.2 Table 8-3: unsupported encodings)
// ---------------------------------------------------------------------------------------------------

export const CLS_ZERO = 0;
export const CLS_FINITE = 1;
export const CLS_INF = 2;
export const CLS_QNAN = 3;
export const CLS_SNAN = 4;
/** Pseudo-NaN, pseudo-infinity and unnormal encodings: invalid operands since the 80387. */
export const CLS_UNSUPPORTED = 5;

/** An unpacked operand: finite values are normalized (J set), `exp` is biased and may be < 1. */
export class Unpacked {
  cls = 0;
  sign = 0;
  exp = 0;
  hi = 0;
  lo = 0;
  /** Denormal or pseudo-denormal encoding: raises DE when used as an operand (SDM §8.5.2). */
  denormal = false;
}

export function unpack(x: F80, u: Unpacked): Unpacked {
  const e = x.se & 0x7fff;
  let hi = x.hi;
  let lo = x.lo;
  u.sign = x.se >>> 15;
  u.denormal = false;
  if (e === 0x7fff) {
    if ((hi & 0x80000000) === 0) u.cls = CLS_UNSUPPORTED;
    else if ((hi & 0x7fffffff) === 0 && lo === 0) u.cls = CLS_INF;
    else u.cls = hi & 0x40000000 ? CLS_QNAN : CLS_SNAN;
    u.exp = e;
    u.hi = hi;
    u.lo = lo;
    return u;
  }
  if (e === 0) {
    if ((hi | lo) === 0) {
      u.cls = CLS_ZERO;
      u.exp = 0;
      u.hi = 0;
      u.lo = 0;
      return u;
    }
    // Denormals use the exponent 2^-16382 of exponent field 1 (SDM §4.8.3.2); a pseudo-denormal
    // (J = 1) is interpreted the same way.
    u.denormal = true;
    let exp = 1;
    if (hi === 0) {
      hi = lo;
      lo = 0;
      exp -= 32;
    }
    const z = Math.clz32(hi);
    if (z) {
      hi = ((hi << z) | (lo >>> (32 - z))) >>> 0;
      lo = (lo << z) >>> 0;
      exp -= z;
    }
    u.cls = CLS_FINITE;
    u.exp = exp;
    u.hi = hi;
    u.lo = lo;
    return u;
  }
  u.cls = hi & 0x80000000 ? CLS_FINITE : CLS_UNSUPPORTED; // unnormal: J = 0 with a nonzero exponent
  u.exp = e;
  u.hi = hi;
  u.lo = lo;
  return u;
}

const UA = new Unpacked();
const UB = new Unpacked();

// ---------------------------------------------------------------------------------------------------
// Shifting and rounding kernels (module scratch registers avoid allocation)
// ---------------------------------------------------------------------------------------------------

let s2 = 0;
let s1 = 0;
let s0 = 0;
/** (m2:m1:m0) >> n into s2:s1:s0, ORing every bit shifted out into bit 0 of s0 (sticky). */
function shr96(m2: number, m1: number, m0: number, n: number): void {
  if (n <= 0) {
    s2 = m2;
    s1 = m1;
    s0 = m0;
    return;
  }
  if (n >= 96) {
    s2 = 0;
    s1 = 0;
    s0 = (m2 | m1 | m0) !== 0 ? 1 : 0;
    return;
  }
  let sticky = 0;
  while (n >= 32) {
    sticky |= m0;
    m0 = m1;
    m1 = m2;
    m2 = 0;
    n -= 32;
  }
  if (n > 0) {
    sticky |= m0 << (32 - n);
    m0 = ((m0 >>> n) | (m1 << (32 - n))) >>> 0;
    m1 = ((m1 >>> n) | (m2 << (32 - n))) >>> 0;
    m2 = m2 >>> n;
  }
  s2 = m2;
  s1 = m1;
  s0 = (m0 | (sticky !== 0 ? 1 : 0)) >>> 0;
}

let g2 = 0;
let g1 = 0;
const R_INEXACT = 1;
const R_UP = 2;
const R_CARRY = 4;
/**
 * Rounds the significand m2:m1 (with bits below it in m0) to `p` = 24, 53 or 64 bits (IEEE 754 §4.3,
 * SDM §4.8.4). The result is left in g2:g1, the discarded bits cleared. Returns R_* bits; R_CARRY
 * means the significand overflowed to 2.0 and was renormalized to 1.0 (the caller bumps the exponent).
 */
function roundSig(m2: number, m1: number, m0: number, p: number, rc: number, sign: number): number {
  let lsb: number;
  let guard: number;
  let sticky: number;
  if (p === 64) {
    lsb = m1 & 1;
    guard = m0 >>> 31;
    sticky = m0 & 0x7fffffff;
  } else if (p === 53) {
    lsb = (m1 >>> 11) & 1;
    guard = (m1 >>> 10) & 1;
    sticky = (m1 & 0x3ff) | m0;
    m1 = (m1 & 0xfffff800) >>> 0;
  } else {
    lsb = (m2 >>> 8) & 1;
    guard = (m2 >>> 7) & 1;
    sticky = (m2 & 0x7f) | m1 | m0;
    m2 = (m2 & 0xffffff00) >>> 0;
    m1 = 0;
  }
  let res = 0;
  if ((guard | sticky) !== 0) {
    res = R_INEXACT;
    let up: boolean;
    if (rc === RC_NEAREST) up = guard !== 0 && (sticky !== 0 || lsb !== 0);
    else if (rc === RC_DOWN) up = sign !== 0;
    else if (rc === RC_UP) up = sign === 0;
    else up = false;
    if (up) {
      res |= R_UP;
      if (p === 64) {
        m1 = (m1 + 1) >>> 0;
        if (m1 === 0) m2 += 1;
      } else if (p === 53) {
        m1 += 0x800;
        if (m1 > 0xffffffff) {
          m1 -= 0x100000000;
          m2 += 1;
        }
      } else {
        m2 += 0x100;
      }
      if (m2 > 0xffffffff) {
        m2 = 0x80000000;
        res |= R_CARRY;
      }
    }
  }
  g2 = m2;
  g1 = m1;
  return res;
}

/** Rounded result of roundGeneric: significand g2:g1 and unbiased exponent gE. */
let gE = 0;

/**
 * Rounds sign * (m2:m1.m0 / 2^63) * 2^E (m2 bit 31 set) to a format with `p` significand bits and
 * normal exponents minE..maxE, per rounding control, with IEEE/x87 underflow (tininess detected before
 * rounding, SDM §4.9.1.5) and overflow handling. `biasAdjust` is the exponent adjustment for unmasked
 * OE/UE with a register destination (SDM §8.5.4/§8.5.5); 0 for memory destinations, where the caller
 * does not store on unmasked exceptions. Returns status flags; result in g2, g1, gE (g2 bit 31 clear
 * means denormal or zero). gE = maxE + 1 with g2:g1 = 0x80000000:0 means infinity.
 */
function roundGeneric(sign: number, E: number, m2: number, m1: number, m0: number, p: number,
  minE: number, maxE: number, cw: number, biasAdjust: number): number {
  const rc = (cw >>> 10) & 3;
  let flags = 0;
  let tiny = false;
  // Tininess is detected after rounding (IEEE 754 §7.5 option, as the host x87 shows): a value just
  // below 2^minE that rounds up to it at precision p is not tiny.
  if (E === minE - 1 && (roundSig(m2, m1, m0, p, rc, sign) & R_CARRY) !== 0) {
    // not tiny; rounds to the smallest normal, handled by the normal path below
  } else if (E < minE) {
    if ((cw & FE_UE) === 0) {
      flags |= FE_UE;
      if (biasAdjust) E += biasAdjust;
      if (biasAdjust && E < minE) {
        // Too tiny even with the bias (only FSCALE gets here): the host delivers a zero of the
        // result's sign, inexact and not rounded up, whatever the rounding control.
        g2 = 0;
        g1 = 0;
        gE = minE;
        return flags | FE_PE;
      }
    }
    if (E < minE) {
      tiny = true;
      shr96(m2, m1, m0, minE - E);
      m2 = s2;
      m1 = s1;
      m0 = s0;
      E = minE;
    }
  }
  const r = roundSig(m2, m1, m0, p, rc, sign);
  if (r & R_CARRY) E++;
  if (r & R_INEXACT) {
    flags |= FE_PE;
    if (r & R_UP) flags |= FSW_C1;
    if (tiny) flags |= FE_UE;
  }
  if (E > maxE) {
    if ((cw & FE_OE) === 0 && biasAdjust && E - biasAdjust > maxE) {
      // Too large even with the bias (only FSCALE gets here): the host delivers an infinity of the
      // result's sign, inexact and rounded up, whatever the rounding control.
      g2 = 0x80000000;
      g1 = 0;
      gE = maxE + 1;
      return flags | FE_OE | FE_PE | FSW_C1;
    } else if ((cw & FE_OE) === 0 && biasAdjust) {
      flags |= FE_OE;
      E -= biasAdjust;
    } else {
      // Masked overflow response, SDM §4.9.1.4 Table 4-10: infinity or the largest finite value.
      flags = (flags & ~FSW_C1) | FE_OE | FE_PE;
      const toInf = rc === RC_NEAREST || (rc === RC_DOWN && sign !== 0) || (rc === RC_UP && sign === 0);
      if (toInf) {
        flags |= FSW_C1;
        g2 = 0x80000000;
        g1 = 0;
        gE = maxE + 1;
        return flags;
      }
      g2 = p === 24 ? 0xffffff00 : 0xffffffff;
      g1 = p === 64 ? 0xffffffff : p === 53 ? 0xfffff800 : 0;
      gE = maxE;
      return flags;
    }
  }
  gE = E;
  return flags;
}

function precisionBits(cw: number): number {
  const pc = (cw >>> 8) & 3;
  return pc === 0 ? 24 : pc === 2 ? 53 : 64; // PC = 01 is reserved; treated as 64 bits
}

/** Rounds to the 80-bit register format (precision p) and packs into out. */
function roundPack(out: F80, sign: number, e: number, m2: number, m1: number, m0: number, cw: number,
  p: number): number {
  const flags = roundGeneric(sign, e - BIAS, m2, m1, m0, p, 1 - BIAS, BIAS, cw, UNMASKED_BIAS);
  out.hi = g2;
  out.lo = g1;
  if (gE > BIAS) out.se = (sign << 15) | 0x7fff;
  else out.se = (sign << 15) | (g2 & 0x80000000 ? gE + BIAS : 0);
  return flags;
}

/** Exact result from a 64-bit magnitude (integer conversions, FRNDINT). */
function packInt(out: F80, sign: number, hi: number, lo: number): void {
  if ((hi | lo) === 0) {
    out.se = sign << 15;
    out.hi = 0;
    out.lo = 0;
    return;
  }
  let e = BIAS + 63;
  if (hi === 0) {
    hi = lo;
    lo = 0;
    e -= 32;
  }
  const z = Math.clz32(hi);
  if (z) {
    hi = ((hi << z) | (lo >>> (32 - z))) >>> 0;
    lo = (lo << z) >>> 0;
    e -= z;
  }
  out.se = (sign << 15) | e;
  out.hi = hi;
  out.lo = lo;
}

function setZero(out: F80, sign: number): void {
  out.se = sign << 15;
  out.hi = 0;
  out.lo = 0;
}

function setInf(out: F80, sign: number): void {
  out.se = (sign << 15) | 0x7fff;
  out.hi = 0x80000000;
  out.lo = 0;
}

// ---------------------------------------------------------------------------------------------------
// NaN propagation (SDM vol. 1 §4.8.3.5 and Table 4-7)
// ---------------------------------------------------------------------------------------------------

/** One NaN or unsupported operand: quiet NaN out (IE if it was signaling), indefinite if unsupported. */
function nan1(out: F80, a: F80, ua: Unpacked): number {
  if (ua.cls === CLS_UNSUPPORTED) {
    setIndefinite(out);
    return FE_IE;
  }
  out.se = a.se;
  out.hi = (a.hi | 0x40000000) >>> 0;
  out.lo = a.lo;
  return ua.cls === CLS_SNAN ? FE_IE : 0;
}

/** At least one operand is a NaN or unsupported. */
function nan2(out: F80, a: F80, ua: Unpacked, b: F80, ub: Unpacked): number {
  if (ua.cls === CLS_UNSUPPORTED || ub.cls === CLS_UNSUPPORTED) {
    setIndefinite(out);
    return FE_IE;
  }
  const aNaN = ua.cls >= CLS_QNAN;
  const bNaN = ub.cls >= CLS_QNAN;
  const flags = ua.cls === CLS_SNAN || ub.cls === CLS_SNAN ? FE_IE : 0;
  let pick = a;
  if (aNaN && bNaN) {
    // Two NaNs: the one with the larger significand (Table 4-7); a QNaN wins over an SNaN. On equal
    // significands the positive one is returned (assumption: random payloads rarely tie in the test).
    if (ua.cls === CLS_SNAN && ub.cls === CLS_QNAN) pick = b;
    else if (ua.cls === CLS_QNAN && ub.cls === CLS_SNAN) pick = a;
    else {
      const ah = a.hi & 0x3fffffff;
      const bh = b.hi & 0x3fffffff;
      if (bh > ah || (bh === ah && b.lo > a.lo)) pick = b;
      else if (bh === ah && b.lo === a.lo && (b.se & 0x8000) === 0) pick = b;
    }
  } else if (bNaN) pick = b;
  out.se = pick.se;
  out.hi = (pick.hi | 0x40000000) >>> 0;
  out.lo = pick.lo;
  return flags;
}

// ---------------------------------------------------------------------------------------------------
// FADD / FSUB
// ---------------------------------------------------------------------------------------------------

function addSigned(out: F80, a: F80, b: F80, bFlip: number, cw: number): number {
  unpack(a, UA);
  unpack(b, UB);
  if (UA.cls >= CLS_QNAN || UB.cls >= CLS_QNAN) return nan2(out, a, UA, b, UB);
  let flags = UA.denormal || UB.denormal ? FE_DE : 0;
  const sa = UA.sign;
  const sb = UB.sign ^ bFlip;
  const rc = (cw >>> 10) & 3;
  if (UA.cls === CLS_INF || UB.cls === CLS_INF) {
    if (UA.cls === CLS_INF && UB.cls === CLS_INF && sa !== sb) {
      setIndefinite(out);
      return flags | FE_IE;
    }
    setInf(out, UA.cls === CLS_INF ? sa : sb);
    return flags;
  }
  if (UA.cls === CLS_ZERO && UB.cls === CLS_ZERO) {
    // IEEE 754 §6.3: sum of opposite zeros is +0 except when rounding down.
    setZero(out, sa === sb ? sa : rc === RC_DOWN ? 1 : 0);
    return flags;
  }
  const p = precisionBits(cw);
  if (UB.cls === CLS_ZERO) return flags | roundPack(out, sa, UA.exp, UA.hi, UA.lo, 0, cw, p);
  if (UA.cls === CLS_ZERO) return flags | roundPack(out, sb, UB.exp, UB.hi, UB.lo, 0, cw, p);

  // Order so that x has the larger exponent.
  let xs = sa, xe = UA.exp, xh = UA.hi, xl = UA.lo;
  let ys = sb, ye = UB.exp, yh = UB.hi, yl = UB.lo;
  if (ye > xe) {
    xs = sb; xe = UB.exp; xh = UB.hi; xl = UB.lo;
    ys = sa; ye = UA.exp; yh = UA.hi; yl = UA.lo;
  }
  shr96(yh, yl, 0, xe - ye);
  let m2: number, m1: number, m0: number;
  let e = xe;
  let sign = xs;
  if (xs === ys) {
    m0 = s0;
    let t = xl + s1;
    m1 = t >>> 0;
    t = xh + s2 + (t > 0xffffffff ? 1 : 0);
    m2 = t >>> 0;
    if (t > 0xffffffff) {
      // Carry out: shift right one, keeping the lost bit sticky.
      m0 = ((m0 >>> 1) | ((m1 & 1) << 31) | (m0 & 1)) >>> 0;
      m1 = ((m1 >>> 1) | ((m2 & 1) << 31)) >>> 0;
      m2 = ((m2 >>> 1) | 0x80000000) >>> 0;
      e++;
    }
  } else {
    // x - y; the difference is negative only when the exponents are equal and y > x.
    let d0 = 0 - s0;
    let borrow = d0 < 0 ? 1 : 0;
    m0 = d0 >>> 0;
    let d1 = xl - s1 - borrow;
    borrow = d1 < 0 ? 1 : 0;
    m1 = d1 >>> 0;
    let d2 = xh - s2 - borrow;
    if (d2 < 0) {
      // Negate the 96-bit two's complement difference.
      d0 = 0 - m0;
      borrow = d0 < 0 ? 1 : 0;
      m0 = d0 >>> 0;
      d1 = 0 - m1 - borrow;
      borrow = d1 < 0 ? 1 : 0;
      m1 = d1 >>> 0;
      d2 = -d2 - borrow;
      sign = ys;
    }
    m2 = d2 >>> 0;
    if ((m2 | m1 | m0) === 0) {
      // Exact cancellation: +0, or -0 when rounding down (IEEE 754 §6.3).
      setZero(out, rc === RC_DOWN ? 1 : 0);
      return flags;
    }
    while (m2 === 0) {
      m2 = m1;
      m1 = m0;
      m0 = 0;
      e -= 32;
    }
    const z = Math.clz32(m2);
    if (z) {
      m2 = ((m2 << z) | (m1 >>> (32 - z))) >>> 0;
      m1 = ((m1 << z) | (m0 >>> (32 - z))) >>> 0;
      m0 = (m0 << z) >>> 0;
      e -= z;
    }
  }
  return flags | roundPack(out, sign, e, m2, m1, m0, cw, p);
}

export function f80Add(out: F80, a: F80, b: F80, cw: number): number {
  return addSigned(out, a, b, 0, cw);
}

export function f80Sub(out: F80, a: F80, b: F80, cw: number): number {
  return addSigned(out, a, b, 1, cw);
}

// ---------------------------------------------------------------------------------------------------
// FMUL
// ---------------------------------------------------------------------------------------------------

let mh = 0;
let ml = 0;
/** 32x32 -> 64-bit product into mh:ml, exact in doubles by splitting one factor in 16-bit halves. */
function mul32(a: number, b: number): void {
  const p1 = (a & 0xffff) * b;
  const p2 = (a >>> 16) * b;
  const t = p1 + (p2 % 65536) * 65536;
  ml = t >>> 0;
  mh = Math.floor(p2 / 65536) + Math.floor(t / 4294967296);
}

let p3 = 0, p2 = 0, p1 = 0, p0 = 0;
/** 64x64 -> 128-bit product (ah:al)*(bh:bl) into p3:p2:p1:p0. */
function mul64(ah: number, al: number, bh: number, bl: number): void {
  mul32(al, bl);
  const llh = mh;
  p0 = ml;
  mul32(al, bh);
  const lhh = mh, lhl = ml;
  mul32(ah, bl);
  const hlh = mh, hll = ml;
  mul32(ah, bh);
  let t = llh + lhl + hll;
  p1 = t >>> 0;
  t = ml + lhh + hlh + Math.floor(t / 4294967296);
  p2 = t >>> 0;
  p3 = (mh + Math.floor(t / 4294967296)) >>> 0;
}

export function f80Mul(out: F80, a: F80, b: F80, cw: number): number {
  unpack(a, UA);
  unpack(b, UB);
  if (UA.cls >= CLS_QNAN || UB.cls >= CLS_QNAN) return nan2(out, a, UA, b, UB);
  const flags = UA.denormal || UB.denormal ? FE_DE : 0;
  const sign = UA.sign ^ UB.sign;
  if (UA.cls === CLS_INF || UB.cls === CLS_INF) {
    if (UA.cls === CLS_ZERO || UB.cls === CLS_ZERO) {
      setIndefinite(out);
      return flags | FE_IE;
    }
    setInf(out, sign);
    return flags;
  }
  if (UA.cls === CLS_ZERO || UB.cls === CLS_ZERO) {
    setZero(out, sign);
    return flags;
  }
  mul64(UA.hi, UA.lo, UB.hi, UB.lo);
  let e = UA.exp + UB.exp - BIAS + 1;
  let m2 = p3, m1 = p2, m0 = (p1 | (p0 !== 0 ? 1 : 0)) >>> 0;
  if ((m2 & 0x80000000) === 0) {
    // Product of two [1,2) significands lies in [1,4): normalize the [1,2) case.
    m2 = ((m2 << 1) | (m1 >>> 31)) >>> 0;
    m1 = ((m1 << 1) | (m0 >>> 31)) >>> 0;
    m0 = ((m0 << 1) | (m0 & 1)) >>> 0;
    e--;
  }
  return flags | roundPack(out, sign, e, m2, m1, m0, cw, precisionBits(cw));
}

// ---------------------------------------------------------------------------------------------------
// FDIV
// ---------------------------------------------------------------------------------------------------

export function f80Div(out: F80, a: F80, b: F80, cw: number): number {
  unpack(a, UA);
  unpack(b, UB);
  if (UA.cls >= CLS_QNAN || UB.cls >= CLS_QNAN) return nan2(out, a, UA, b, UB);
  let flags = UA.denormal || UB.denormal ? FE_DE : 0;
  const sign = UA.sign ^ UB.sign;
  if (UA.cls === CLS_INF) {
    if (UB.cls === CLS_INF) {
      setIndefinite(out);
      return flags | FE_IE;
    }
    setInf(out, sign);
    return flags;
  }
  if (UB.cls === CLS_INF) {
    setZero(out, sign);
    return flags;
  }
  if (UB.cls === CLS_ZERO) {
    if (UA.cls === CLS_ZERO) {
      setIndefinite(out);
      return flags | FE_IE;
    }
    // SDM §8.5.3: masked divide-by-zero returns a correctly signed infinity. The divide-by-zero
    // takes precedence over the denormal-operand exception (SDM §4.9.2; the host confirms DE clear).
    setInf(out, sign);
    return FE_ZE;
  }
  if (UA.cls === CLS_ZERO) {
    setZero(out, sign);
    return flags;
  }
  let e = UA.exp - UB.exp + BIAS;
  const b1 = UB.hi, b0 = UB.lo;
  let r2 = 0, r1 = UA.hi, r0 = UA.lo;
  if (r1 < b1 || (r1 === b1 && r0 < b0)) {
    r2 = r1 >>> 31;
    r1 = ((r1 << 1) | (r0 >>> 31)) >>> 0;
    r0 = (r0 << 1) >>> 0;
    e--;
  }
  // Restoring division, one quotient bit per step: 64 significand bits plus a guard bit; the
  // remainder supplies the sticky bit. Invariant: B <= 2*R < 4B.
  let q1 = 0, q0 = 0, guard = 0;
  for (let i = 0; i < 65; i++) {
    let bit = 0;
    if (r2 !== 0 || r1 > b1 || (r1 === b1 && r0 >= b0)) {
      let lo = r0 - b0;
      let borrow = 0;
      if (lo < 0) {
        lo += 4294967296;
        borrow = 1;
      }
      r1 = r2 * 4294967296 + r1 - b1 - borrow;
      r0 = lo;
      r2 = 0;
      bit = 1;
    }
    if (i < 64) {
      q1 = ((q1 << 1) | (q0 >>> 31)) >>> 0;
      q0 = ((q0 << 1) | bit) >>> 0;
    } else guard = bit;
    r2 = r1 >>> 31;
    r1 = ((r1 << 1) | (r0 >>> 31)) >>> 0;
    r0 = (r0 << 1) >>> 0;
  }
  const m0 = ((guard << 31) | ((r2 | r1 | r0) !== 0 ? 1 : 0)) >>> 0;
  flags |= roundPack(out, sign, e, q1, q0, m0, cw, precisionBits(cw));
  return flags;
}

// ---------------------------------------------------------------------------------------------------
// FSQRT (BigInt integer square root: rare enough that allocation does not matter)
// ---------------------------------------------------------------------------------------------------

/** floor(sqrt(n)) for n >= 0. */
export function isqrt(n: bigint): bigint {
  if (n < 2n) return n;
  const bits = n.toString(2).length;
  // Newton's iteration from an over-estimate decreases monotonically to floor(sqrt(n)).
  let x = 1n << BigInt((bits >> 1) + 1);
  for (;;) {
    const y = (x + n / x) >> 1n;
    if (y >= x) return x;
    x = y;
  }
}

export function sig64(hi: number, lo: number): bigint {
  return (BigInt(hi) << 32n) | BigInt(lo);
}

/**
 * Packs sign * M * 2^E (M > 0 a BigInt, any size) rounded per cw to precision p into out. `inexact`
 * forces the sticky bit (M is a truncation of the true value). Returns status flags.
 */
export function roundBig(out: F80, sign: number, M: bigint, E: number, inexact: boolean, cw: number,
  p: number): number {
  const len = M.toString(2).length;
  // Keep 96 bits: 64 significand bits, 32 below them, the rest folded into the sticky bit.
  let W: bigint;
  let sticky = inexact;
  if (len > 96) {
    const sh = BigInt(len - 96);
    W = M >> sh;
    if (!sticky && (W << sh) !== M) sticky = true;
  } else W = M << BigInt(96 - len);
  const m2 = Number(W >> 64n);
  const m1 = Number((W >> 32n) & 0xffffffffn);
  const m0 = (Number(W & 0xffffffffn) | (sticky ? 1 : 0)) >>> 0;
  return roundPack(out, sign, E + len - 1 + BIAS, m2, m1, m0, cw, p);
}

export function f80Sqrt(out: F80, a: F80, cw: number): number {
  unpack(a, UA);
  if (UA.cls >= CLS_QNAN) return nan1(out, a, UA);
  const flags = UA.denormal ? FE_DE : 0;
  if (UA.cls === CLS_ZERO) {
    setZero(out, UA.sign); // sqrt(-0) = -0 (IEEE 754 §6.3)
    return flags;
  }
  if (UA.sign) {
    // Invalid operation outranks the denormal-operand exception (SDM §4.9.2): DE is not reported.
    setIndefinite(out);
    return FE_IE;
  }
  if (UA.cls === CLS_INF) {
    setInf(out, 0);
    return flags;
  }
  // value = A * 2^(E - 63) with A the 64-bit significand; make the exponent even.
  let E = UA.exp - BIAS - 63;
  let A = sig64(UA.hi, UA.lo);
  if (E & 1) {
    A <<= 1n;
    E -= 1;
  }
  // 96-bit root: 64 significand bits, 32 guard bits, and the exactness test as the sticky bit.
  const N = A << 128n;
  const S = isqrt(N);
  return flags | roundBig(out, 0, S, (E - 128) / 2, S * S !== N, cw, precisionBits(cw));
}

// ---------------------------------------------------------------------------------------------------
// FRNDINT and integer conversions
// ---------------------------------------------------------------------------------------------------

let iHi = 0;
let iLo = 0;
/**
 * Rounds a finite nonzero unpacked value to an integer magnitude in iHi:iLo per rc. Returns R_* bits,
 * or -1 when the magnitude is 2^64 or more.
 */
function roundToIntMag(u: Unpacked, rc: number): number {
  const n = BIAS + 63 - u.exp;
  if (n < 0) return -1;
  shr96(u.hi, u.lo, 0, n);
  const r = roundSig(s2, s1, s0, 64, rc, u.sign);
  if (r & R_CARRY) return -1; // cannot happen for n >= 1; n = 0 is exact
  iHi = g2;
  iLo = g1;
  return r;
}

export function f80RoundInt(out: F80, a: F80, cw: number): number {
  unpack(a, UA);
  if (UA.cls >= CLS_QNAN) return nan1(out, a, UA);
  if (UA.cls !== CLS_FINITE) {
    out.set(a);
    return 0;
  }
  let flags = UA.denormal ? FE_DE : 0;
  const r = roundToIntMag(UA, (cw >>> 10) & 3);
  if (r < 0) {
    // |a| >= 2^63 is already an integer.
    out.set(a);
    return flags;
  }
  if (r & R_INEXACT) flags |= FE_PE | (r & R_UP ? FSW_C1 : 0);
  packInt(out, UA.sign, iHi, iLo);
  return flags;
}

export function f80FromInt32(v: number, out: F80): F80 {
  const sign = v < 0 ? 1 : 0;
  packInt(out, sign, 0, sign ? -v >>> 0 : v >>> 0);
  return out;
}

/** FILD m64: hi:lo is the two's complement image. */
export function f80FromInt64(hi: number, lo: number, out: F80): F80 {
  const sign = hi >>> 31;
  if (sign) {
    lo = -lo >>> 0;
    hi = (~hi + (lo === 0 ? 1 : 0)) >>> 0;
  }
  packInt(out, sign, hi >>> 0, lo >>> 0);
  return out;
}

/**
 * FIST/FISTP (rounding per RC) or FISTTP (truncate = true, SSE3) to a `bits` = 16, 32 or 64-bit
 * two's complement integer in out.hi:out.lo. NaN, infinity, unsupported or out-of-range operands give
 * IE and the integer indefinite (most negative value, SDM vol. 1 §4.8.3.7).
 */
export function f80ToInt(a: F80, bits: number, cw: number, truncate: boolean, out: Bits64): number {
  unpack(a, UA);
  const rc = truncate ? RC_ZERO : (cw >>> 10) & 3;
  // FIST/FISTTP raise no DE (SDM vol. 2 FIST: only #IS, #IA, #P).
  let flags = 0;
  out.hi = 0;
  out.lo = 0;
  if (UA.cls === CLS_ZERO) return flags;
  let r = -1;
  if (UA.cls === CLS_FINITE) r = roundToIntMag(UA, rc);
  let ok = r >= 0;
  if (ok) {
    // Range: -2^(bits-1) .. 2^(bits-1) - 1.
    const limHi = bits === 64 ? 0x80000000 : 0;
    const limLo = bits === 64 ? 0 : bits === 32 ? 0x80000000 : 0x8000;
    const over = iHi > limHi || (iHi === limHi && iLo > limLo) ||
      (iHi === limHi && iLo === limLo && UA.sign === 0);
    ok = !over;
  }
  if (!ok) {
    // Integer indefinite, SDM §4.8.3.7 ("integer indefinite" = most negative two's complement value).
    if (bits === 64) out.hi = 0x80000000;
    else out.lo = bits === 32 ? 0x80000000 : 0x8000;
    return flags | FE_IE;
  }
  if (r & R_INEXACT) flags |= FE_PE | (r & R_UP ? FSW_C1 : 0);
  let hi = iHi, lo = iLo;
  if (UA.sign) {
    lo = -lo >>> 0;
    hi = (~hi + (lo === 0 ? 1 : 0)) >>> 0;
  }
  if (bits === 64) out.hi = hi;
  out.lo = bits === 16 ? lo & 0xffff : lo;
  return flags;
}

// ---------------------------------------------------------------------------------------------------
// float32 / float64 conversions (FLD m32/m64, FST m32/m64)
// ---------------------------------------------------------------------------------------------------

/** FLD m32: exact widening; SNaN -> IE and quieted, denormal -> DE (SDM §4.8.3, §8.5.2). */
export function f80FromFloat32(bits: number, out: F80): number {
  const sign = bits >>> 31;
  const exp = (bits >>> 23) & 0xff;
  const frac = bits & 0x7fffff;
  if (exp === 0xff) {
    out.se = (sign << 15) | 0x7fff;
    out.lo = 0;
    if (frac === 0) {
      out.hi = 0x80000000;
      return 0;
    }
    out.hi = (0xc0000000 | (frac << 8)) >>> 0;
    return frac & 0x400000 ? 0 : FE_IE;
  }
  if (exp === 0) {
    if (frac === 0) {
      setZero(out, sign);
      return 0;
    }
    const z = Math.clz32(frac);
    out.se = (sign << 15) | (BIAS - 126 - (z - 8));
    out.hi = (frac << z) >>> 0;
    out.lo = 0;
    return FE_DE;
  }
  out.se = (sign << 15) | (exp - 127 + BIAS);
  out.hi = (0x80000000 | (frac << 8)) >>> 0;
  out.lo = 0;
  return 0;
}

/** FLD m64: hi:lo is the IEEE double image. */
export function f80FromFloat64(hi: number, lo: number, out: F80): number {
  const sign = hi >>> 31;
  const exp = (hi >>> 20) & 0x7ff;
  const fh = hi & 0xfffff;
  if (exp === 0x7ff) {
    out.se = (sign << 15) | 0x7fff;
    if ((fh | lo) === 0) {
      out.hi = 0x80000000;
      out.lo = 0;
      return 0;
    }
    out.hi = (0xc0000000 | (fh << 11) | (lo >>> 21)) >>> 0;
    out.lo = (lo << 11) >>> 0;
    return fh & 0x80000 ? 0 : FE_IE;
  }
  let h = ((fh << 11) | (lo >>> 21)) >>> 0;
  let l = (lo << 11) >>> 0;
  if (exp === 0) {
    if ((fh | lo) === 0) {
      setZero(out, sign);
      return 0;
    }
    let e = BIAS - 1022;
    if (h === 0) {
      h = l;
      l = 0;
      e -= 32;
    }
    const z = Math.clz32(h);
    if (z) {
      h = ((h << z) | (l >>> (32 - z))) >>> 0;
      l = (l << z) >>> 0;
      e -= z;
    }
    out.se = (sign << 15) | e;
    out.hi = h;
    out.lo = l;
    return FE_DE;
  }
  out.se = (sign << 15) | (exp - 1023 + BIAS);
  out.hi = (0x80000000 | h) >>> 0;
  out.lo = l;
  return 0;
}

/** Shared part of FST m32/m64: returns flags, or -1 after writing a special (NaN/inf/zero) value. */
function toFloat(a: F80, cw: number, p: number, minE: number, maxE: number): number {
  unpack(a, UA);
  if (UA.cls !== CLS_FINITE) return -1;
  // FST m32/m64 does not report DE for a denormal source (matches the host; SDM vol. 2 FST lists no #D).
  return roundGeneric(UA.sign, UA.exp - BIAS, UA.hi, UA.lo, 0, p, minE, maxE, cw, 0);
}

/** FST m32: result image in out.lo. Precision control does not apply to stores (SDM §8.1.5.2). */
export function f80ToFloat32(a: F80, cw: number, out: Bits64): number {
  const flags = toFloat(a, cw, 24, -126, 127);
  out.hi = 0;
  const sign = UA.sign << 31;
  if (flags < 0) {
    switch (UA.cls) {
      case CLS_ZERO: out.lo = sign >>> 0; return 0;
      case CLS_INF: out.lo = (sign | 0x7f800000) >>> 0; return 0;
      case CLS_UNSUPPORTED: out.lo = 0xffc00000; return FE_IE;
      default: // NaN: quieted, significand truncated (SDM §4.8.3.5)
        out.lo = (sign | 0x7fc00000 | ((UA.hi >>> 8) & 0x7fffff)) >>> 0;
        return UA.cls === CLS_SNAN ? FE_IE : 0;
    }
  }
  const expField = gE > 127 ? 0xff : g2 & 0x80000000 ? gE + 127 : 0;
  out.lo = (sign | (expField << 23) | (expField === 0xff ? 0 : (g2 >>> 8) & 0x7fffff)) >>> 0;
  return flags;
}

/** FST m64: result image in out.hi:out.lo. */
export function f80ToFloat64(a: F80, cw: number, out: Bits64): number {
  const flags = toFloat(a, cw, 53, -1022, 1023);
  const sign = UA.sign << 31;
  if (flags < 0) {
    out.lo = 0;
    switch (UA.cls) {
      case CLS_ZERO: out.hi = sign >>> 0; return 0;
      case CLS_INF: out.hi = (sign | 0x7ff00000) >>> 0; return 0;
      case CLS_UNSUPPORTED: out.hi = 0xfff80000; return FE_IE;
      default:
        out.hi = (sign | 0x7ff80000 | ((UA.hi >>> 11) & 0xfffff)) >>> 0;
        out.lo = ((UA.hi << 21) | (UA.lo >>> 11)) >>> 0;
        return UA.cls === CLS_SNAN ? FE_IE : 0;
    }
  }
  if (gE > 1023) {
    out.hi = (sign | 0x7ff00000) >>> 0;
    out.lo = 0;
    return flags;
  }
  const expField = g2 & 0x80000000 ? gE + 1023 : 0;
  out.hi = (sign | (expField << 20) | ((g2 >>> 11) & 0xfffff)) >>> 0;
  out.lo = ((g2 << 21) | (g1 >>> 11)) >>> 0;
  return flags;
}

// ---------------------------------------------------------------------------------------------------
// FCOM / FUCOM (SDM vol. 2 FCOM: C3 C2 C0 = 000 >, 001 <, 100 =, 111 unordered)
// ---------------------------------------------------------------------------------------------------

export function f80Compare(a: F80, b: F80, cw: number, unordered: boolean): number {
  void cw;
  unpack(a, UA);
  unpack(b, UB);
  if (UA.cls >= CLS_QNAN || UB.cls >= CLS_QNAN) {
    // FCOM: any NaN is invalid; FUCOM: only SNaN and unsupported encodings (SDM vol. 2 FUCOM).
    const invalid = !unordered || UA.cls >= CLS_SNAN || UB.cls >= CLS_SNAN;
    return FSW_C0 | FSW_C2 | FSW_C3 | (invalid ? FE_IE : 0);
  }
  const flags = UA.denormal || UB.denormal ? FE_DE : 0;
  const c = compareMag(UA, UB);
  return flags | (c === 0 ? FSW_C3 : c < 0 ? FSW_C0 : 0);
}

/** Signed comparison of two non-NaN unpacked values: -1, 0, 1. */
function compareMag(x: Unpacked, y: Unpacked): number {
  if (x.cls === CLS_ZERO && y.cls === CLS_ZERO) return 0;
  if (x.sign !== y.sign) return x.sign ? -1 : 1;
  const s = x.sign ? -1 : 1;
  const xr = x.cls === CLS_ZERO ? 0 : x.cls === CLS_INF ? 2 : 1;
  const yr = y.cls === CLS_ZERO ? 0 : y.cls === CLS_INF ? 2 : 1;
  if (xr !== yr) return xr > yr ? s : -s;
  if (xr !== 1) return 0;
  if (x.exp !== y.exp) return x.exp > y.exp ? s : -s;
  if (x.hi !== y.hi) return x.hi > y.hi ? s : -s;
  if (x.lo !== y.lo) return x.lo > y.lo ? s : -s;
  return 0;
}

// ---------------------------------------------------------------------------------------------------
// FPREM / FPREM1 (SDM vol. 2 FPREM, FPREM1)
// ---------------------------------------------------------------------------------------------------

/** The remainder is exact and never overflows, so only an unmasked underflow can arise from rounding
 *  it: a tiny remainder then signals UE and is stored with the exponent biased by 2^24576, like any
 *  unmasked underflow (SDM vol. 1 §4.9.1.5; the host does this for FPREM/FPREM1). */
const PREM_MASKS = FE_IE | FE_DE | FE_ZE | FE_OE | FE_PE;

export function f80Prem(out: F80, a: F80, b: F80, cw: number, ieee: boolean): number {
  unpack(a, UA);
  unpack(b, UB);
  if (UA.cls >= CLS_QNAN || UB.cls >= CLS_QNAN) return nan2(out, a, UA, b, UB);
  let flags = UA.denormal || UB.denormal ? FE_DE : 0;
  if (UA.cls === CLS_INF || UB.cls === CLS_ZERO) {
    setIndefinite(out);
    return FE_IE; // invalid outranks DE (SDM §4.9.2)
  }
  if (UA.cls === CLS_ZERO || UB.cls === CLS_INF) {
    // Dividend returned unchanged (normalized if it was a denormal).
    if (UA.cls === CLS_ZERO) setZero(out, UA.sign);
    else return flags | roundPack(out, UA.sign, UA.exp, UA.hi, UA.lo, 0, cw | PREM_MASKS, 64);
    return flags;
  }
  const D = UA.exp - UB.exp;
  const A = sig64(UA.hi, UA.lo);
  const B = sig64(UB.hi, UB.lo);
  let sign = UA.sign;
  if (D >= 64) {
    // Partial reduction (SDM vol. 2 FPREM "Operation"): Q = trunc((a/b) / 2^(D-N)), a -= b*Q*2^(D-N),
    // C2 = 1 and C0/C1/C3 cleared. N is implementation dependent (32..63); this host reduces the
    // exponent difference by a multiple of 32, i.e. N = 32 + (D mod 32), for FPREM and FPREM1 alike.
    const N = 32 + (D & 31);
    const num = A << BigInt(N);
    const R = num - (num / B) * B; // remainder in units of 2^(eb - 63 + D - N)
    if (R === 0n) setZero(out, sign);
    else flags |= roundBig(out, sign, R, UB.exp - BIAS - 63 + D - N, false, cw | PREM_MASKS, 64);
    return flags | FSW_C2;
  }
  // Complete reduction: exact quotient Q (chopped for FPREM, nearest-even for FPREM1).
  let Q: bigint;
  let R: bigint;
  let scaleE: number; // R is in units of 2^scaleE
  if (D >= 0) {
    const N = A << BigInt(D);
    Q = N / B;
    R = N - Q * B;
    scaleE = UB.exp - BIAS - 63;
    if (ieee && (2n * R > B || (2n * R === B && (Q & 1n) === 1n))) {
      Q += 1n;
      R = B - R;
      sign ^= 1;
    }
  } else {
    Q = 0n;
    R = A;
    scaleE = UA.exp - BIAS - 63;
    if (ieee && D === -1 && A > B) {
      // |a| > |b|/2: quotient rounds to 1.
      Q = 1n;
      R = 2n * B - A;
      sign ^= 1;
    }
  }
  const q = Number(Q & 7n);
  const cc = (q & 4 ? FSW_C0 : 0) | (q & 2 ? FSW_C3 : 0) | (q & 1 ? FSW_C1 : 0);
  if (R === 0n) setZero(out, UA.sign);
  else flags |= roundBig(out, sign, R, scaleE, false, cw | PREM_MASKS, 64);
  return flags | cc;
}

// ---------------------------------------------------------------------------------------------------
// FSCALE, FXTRACT
// ---------------------------------------------------------------------------------------------------

export function f80Scale(out: F80, a: F80, b: F80, cw: number): number {
  unpack(a, UA);
  unpack(b, UB);
  if (UA.cls >= CLS_QNAN || UB.cls >= CLS_QNAN) return nan2(out, a, UA, b, UB);
  const flags = UA.denormal || UB.denormal ? FE_DE : 0;
  if (UB.cls === CLS_INF) {
    // SDM vol. 2 FSCALE Table 3-44: 0 * 2^+inf and inf * 2^-inf are invalid.
    if ((UB.sign === 0 && UA.cls === CLS_ZERO) || (UB.sign === 1 && UA.cls === CLS_INF)) {
      setIndefinite(out);
      return flags | FE_IE;
    }
    if (UA.cls === CLS_ZERO || UA.cls === CLS_INF) out.set(a);
    else if (UB.sign) setZero(out, UA.sign);
    else setInf(out, UA.sign);
    return flags;
  }
  if (UA.cls !== CLS_FINITE) {
    out.set(a);
    return flags;
  }
  // Scale factor: ST1 truncated toward zero; clamp far outside the exponent range.
  let n = 0;
  if (UB.cls === CLS_FINITE && UB.exp >= BIAS) {
    const sh = BIAS + 63 - UB.exp;
    if (sh < 63 - 20) n = 1 << 20;
    else n = UB.hi >>> (sh - 32); // sh >= 43: the integer part lies in the high half (exact)
    if (UB.sign) n = -n;
  }
  return flags | roundPack(out, UA.sign, UA.exp + n, UA.hi, UA.lo, 0, cw, 64);
}

/** FXTRACT: outSig = significand with exponent 0 (to ST0), outExp = unbiased exponent (to ST1). */
export function f80Extract(outSig: F80, outExp: F80, a: F80, cw: number): number {
  void cw;
  unpack(a, UA);
  if (UA.cls >= CLS_QNAN) {
    const f = nan1(outSig, a, UA);
    outExp.set(outSig);
    return f;
  }
  if (UA.cls === CLS_ZERO) {
    // SDM vol. 2 FXTRACT: zero raises ZE, exponent -inf, significand zero of the same sign.
    setInf(outExp, 1);
    setZero(outSig, UA.sign);
    return FE_ZE;
  }
  if (UA.cls === CLS_INF) {
    setInf(outExp, 0);
    setInf(outSig, UA.sign);
    return 0;
  }
  const e = UA.exp - BIAS;
  f80FromInt32(e, outExp);
  outSig.se = (UA.sign << 15) | BIAS;
  outSig.hi = UA.hi;
  outSig.lo = UA.lo;
  return UA.denormal ? FE_DE : 0;
}

// ---------------------------------------------------------------------------------------------------
// Packed BCD (FBLD / FBSTP; SDM vol. 1 §4.7: 18 digits, sign in bit 7 of byte 9)
// ---------------------------------------------------------------------------------------------------

export function f80FromBcd(mem: Uint8Array, off: number, out: F80): F80 {
  // Digits 17..10 live in bytes 8..5 and digits 9..0 in bytes 4..0, two per byte, low digit in the
  // low nibble. value = high * 10^10 + low, assembled exactly in 32-bit halves.
  let low = 0;
  let high = 0;
  for (let i = 8; i >= 0; i--) {
    const byte = mem[off + i];
    const d = (byte >>> 4) * 10 + (byte & 15);
    if (i >= 5) high = high * 100 + d;
    else low = low * 100 + d;
  }
  mul32(high, 9765625); // 10^10 = 9765625 * 2^10
  let hi = mh * 1024 + (ml >>> 22);
  const t = ((ml << 10) >>> 0) + (low % 4294967296);
  hi += Math.floor(low / 4294967296) + Math.floor(t / 4294967296);
  packInt(out, mem[off + 9] >>> 7, hi >>> 0, t >>> 0);
  return out;
}

/** FBSTP: rounds per RC; out of range, NaN or infinity -> IE and the BCD indefinite. */
export function f80ToBcd(a: F80, cw: number, mem: Uint8Array, off: number): number {
  unpack(a, UA);
  let flags = 0; // FBSTP raises no DE (SDM vol. 2 FBSTP: #IS, #IA, #P)
  let r = 0;
  iHi = 0;
  iLo = 0;
  if (UA.cls === CLS_FINITE) r = roundToIntMag(UA, (cw >>> 10) & 3);
  else if (UA.cls !== CLS_ZERO) r = -1;
  let v = r >= 0 ? sig64(iHi, iLo) : 0n;
  if (r < 0 || v > 999999999999999999n) {
    // BCD indefinite (SDM vol. 1 §4.7, Table 4-4): FFFF C000 0000 0000 0000.
    mem.fill(0, off, off + 7);
    mem[off + 7] = 0xc0;
    mem[off + 8] = 0xff;
    mem[off + 9] = 0xff;
    return flags | FE_IE;
  }
  if (r & R_INEXACT) flags |= FE_PE | (r & R_UP ? FSW_C1 : 0);
  for (let i = 0; i < 9; i++) {
    const d = Number(v % 100n);
    v /= 100n;
    mem[off + i] = ((Math.floor(d / 10) << 4) | (d % 10)) & 0xff;
  }
  mem[off + 9] = UA.sign << 7;
  return flags;
}
