// Operand access shared by the instruction handlers: sized registers, the ModRM r/m operand, and the
// arithmetic core (ALU, shifts, multiply/divide) with its flag rules from the Intel SDM vol. 2 entries.

import type { CPU } from './cpu.ts';
import { LZ_ADC, LZ_ADD, LZ_SBB, LZ_SUB } from './cpu.ts';
import { AF, ARITH, CF, OF, EXC_DE } from './constants.ts';

const R8 = new Uint8Array([0, 4, 8, 12, 1, 5, 9, 13]);
export const MASK = [0, 0xff, 0xffff, 0, 0xffffffff];
export const SIGN = [0, 0x80, 0x8000, 0, 0x80000000];

/** Truncates v to an unsigned value of `sz` bytes. */
export function trunc(v: number, sz: number): number { return sz === 4 ? v >>> 0 : v & MASK[sz]; }
/** Sign-extends an unsigned `sz`-byte value to int32. */
export function sext(v: number, sz: number): number { return sz === 4 ? v | 0 : sz === 2 ? (v << 16) >> 16 : (v << 24) >> 24; }

/** Operand size in bytes of a non-byte instruction. */
export function osz(c: CPU): number { return c.os32 ? 4 : 2; }

export function regGet(c: CPU, i: number, sz: number): number {
  return sz === 4 ? c.r32[i] >>> 0 : sz === 2 ? c.r16[i << 1] : c.r8[R8[i]];
}

export function regSet(c: CPU, i: number, sz: number, v: number): void {
  if (sz === 4) c.r32[i] = v; else if (sz === 2) c.r16[i << 1] = v; else c.r8[R8[i]] = v;
}

export function linRead(c: CPU, lin: number, sz: number): number {
  return sz === 4 ? c.readLin32(lin) >>> 0 : sz === 2 ? c.readLin16(lin) : c.readLin8(lin);
}

export function linWrite(c: CPU, lin: number, sz: number, v: number): void {
  if (sz === 4) c.writeLin32(lin, v); else if (sz === 2) c.writeLin16(lin, v); else c.writeLin8(lin, v);
}

/**
 * The linear address of a memory r/m operand of `sz` bytes, checked for the access kind. For a
 * read-modify-write, the write permission (page and segment) is checked before anything is read, so a
 * fault leaves the destination and flags untouched. Only call for m < 0xC0.
 */
export function rmLin(c: CPU, m: number, sz: number, write: boolean): number {
  return write ? c.eaRmw(m, sz) : c.eaRead(m, sz);
}

/** Reads the r/m operand (after fetchModrm). */
export function rmRead(c: CPU, m: number, sz: number): number {
  if (m >= 0xc0) return regGet(c, m & 7, sz);
  return linRead(c, c.eaRead(m, sz), sz);
}

/** Writes the r/m operand when it was not read first (MOV, SETcc, POP r/m). */
export function rmWrite(c: CPU, m: number, sz: number, v: number): void {
  if (m >= 0xc0) regSet(c, m & 7, sz, v);
  else linWrite(c, c.eaRmw(m, sz), sz, v);
}

/**
 * Read-modify-write of the r/m operand: `f(old)` gives the new value, or undefined to skip the write
 * (CMP, TEST). Memory is probed for write first.
 */
export function rmModify(c: CPU, m: number, sz: number, f: (old: number) => number | undefined): void {
  if (m >= 0xc0) {
    const r = f(regGet(c, m & 7, sz));
    if (r !== undefined) regSet(c, m & 7, sz, r);
    return;
  }
  const l = rmLin(c, m, sz, true);
  const r = f(linRead(c, l, sz));
  if (r !== undefined) linWrite(c, l, sz, r);
}

// Read-modify-write without a callback: rmwRead returns the old value of the r/m operand (memory is
// probed for write first) and remembers where it lives; rmwWrite stores the new value there. Nothing may
// start another RMW in between. This replaces closures that rmModify would allocate on every execution.
let rmwAddr = 0;
export function rmwRead(c: CPU, m: number, sz: number): number {
  if (m >= 0xc0) return regGet(c, m & 7, sz);
  rmwAddr = c.eaRmw(m, sz);
  return linRead(c, rmwAddr, sz);
}
export function rmwWrite(c: CPU, m: number, sz: number, v: number): void {
  if (m >= 0xc0) regSet(c, m & 7, sz, v); else linWrite(c, rmwAddr, sz, v);
}

// --- ALU (ADD OR ADC SBB AND SUB XOR CMP, in ModRM /reg order) ---

export const ALU_ADD = 0, ALU_OR = 1, ALU_ADC = 2, ALU_SBB = 3, ALU_AND = 4, ALU_SUB = 5, ALU_XOR = 6, ALU_CMP = 7;

/** Computes `a op b` on unsigned `sz`-byte values, sets the flags, and returns the (unsigned) result. */
export function alu(c: CPU, op: number, a: number, b: number, sz: number): number {
  const bits = sz << 3;
  const mask = sz === 4 ? -1 : sz === 2 ? 0xffff : 0xff;
  let r: number;
  // The lazy state is stored inline (rather than through setLazy) to keep this function small enough
  // for V8 to inline into the handlers.
  switch (op) {
    case ALU_ADD: r = ((a + b) & mask) >>> 0; c.lzOp = LZ_ADD; break;
    case ALU_ADC: { const cin = c.getCF(); r = ((a + b + cin) & mask) >>> 0; c.lzCin = cin; c.lzOp = LZ_ADC; break; }
    case ALU_SBB: { const cin = c.getCF(); r = ((a - b - cin) & mask) >>> 0; c.lzCin = cin; c.lzOp = LZ_SBB; break; }
    case ALU_SUB: case ALU_CMP: r = ((a - b) & mask) >>> 0; c.lzOp = LZ_SUB; break;
    default:
      r = ((op === ALU_OR ? a | b : op === ALU_AND ? a & b : a ^ b) & mask) >>> 0;
      c.setResultFlags(r, bits, 0);
      return r;
  }
  c.lzA = a; c.lzB = b; c.lzRes = r; c.lzBits = bits; c.lzMask = ARITH;
  return r;
}

// INC/DEC leave CF alone. Only CF is folded into `flags` (not all pending flags, as setLazy with a
// partial mask would): every other arithmetic flag is about to be replaced by the new lazy state.
export function inc(c: CPU, a: number, sz: number): number {
  const r = trunc(a + 1, sz);
  c.flags = (c.flags & ~CF) | c.getCF();
  c.lzOp = LZ_ADD; c.lzA = a; c.lzB = 1; c.lzRes = r; c.lzBits = sz << 3;
  c.lzMask = ARITH & ~CF;
  return r;
}

export function dec(c: CPU, a: number, sz: number): number {
  const r = trunc(a - 1, sz);
  c.flags = (c.flags & ~CF) | c.getCF();
  c.lzOp = LZ_SUB; c.lzA = a; c.lzB = 1; c.lzRes = r; c.lzBits = sz << 3;
  c.lzMask = ARITH & ~CF;
  return r;
}

export function neg(c: CPU, a: number, sz: number): number {
  const r = trunc(-a, sz);
  c.setLazy(LZ_SUB, 0, a, r, sz << 3);
  return r;
}

// --- Shifts and rotates (group 2: ROL ROR RCL RCR SHL SHR SAL SAR), SDM vol. 2 "RCL/RCR/ROL/ROR", "SAL/SAR/SHL/SHR" ---

/** Returns the new value, or -1 when the masked count is 0 (no write, flags untouched). */
export function shift(c: CPU, op: number, a: number, count: number, sz: number): number {
  const bits = sz << 3;
  count &= 0x1f;
  if (count === 0) return -1;
  const msb = SIGN[sz];
  let r: number, cf: number, of: number;
  switch (op) {
    case 0: { // ROL
      const n = count % bits;
      r = n === 0 ? a : trunc((a << n) | (a >>> (bits - n)), sz);
      cf = r & 1;
      of = ((r & msb) !== 0 ? 1 : 0) ^ cf;
      c.setFlagBits(CF | OF, cf | (of ? OF : 0));
      return r;
    }
    case 1: { // ROR
      const n = count % bits;
      r = n === 0 ? a : trunc((a >>> n) | (a << (bits - n)), sz);
      cf = (r & msb) !== 0 ? 1 : 0;
      of = cf ^ ((r & (msb >>> 1)) !== 0 ? 1 : 0);
      c.setFlagBits(CF | OF, cf | (of ? OF : 0));
      return r;
    }
    case 2: { // RCL: rotate the (bits+1)-bit quantity CF:a left
      const n = sz === 4 ? count : count % (bits + 1);
      if (n === 0) return a;
      let v = a, carry = c.getCF();
      for (let i = 0; i < n; i++) {
        const out = (v & msb) !== 0 ? 1 : 0;
        v = trunc(v * 2 + carry, sz);
        carry = out;
      }
      of = ((v & msb) !== 0 ? 1 : 0) ^ carry;
      c.setFlagBits(CF | OF, carry | (of ? OF : 0));
      return v;
    }
    case 3: { // RCR
      const n = sz === 4 ? count : count % (bits + 1);
      if (n === 0) return a;
      let v = a, carry = c.getCF();
      of = ((a & msb) !== 0 ? 1 : 0) ^ carry;
      for (let i = 0; i < n; i++) {
        const out = v & 1;
        v = (v >>> 1) | (carry ? msb : 0);
        v = trunc(v, sz);
        carry = out;
      }
      c.setFlagBits(CF | OF, carry | (of ? OF : 0));
      return v;
    }
    case 4: case 6: { // SHL/SAL
      if (count < bits) { r = trunc(a << count, sz); cf = (a >>> (bits - count)) & 1; }
      else { r = 0; cf = count === bits ? a & 1 : 0; }
      of = ((r & msb) !== 0 ? 1 : 0) ^ cf;
      c.setResultFlags(r, bits, cf | (of ? OF : 0) | AF);
      return r;
    }
    case 5: { // SHR
      if (count < bits) { r = a >>> count; cf = (a >>> (count - 1)) & 1; }
      else { r = 0; cf = count === bits ? (a >>> (bits - 1)) & 1 : 0; }
      of = (a & msb) !== 0 ? 1 : 0;
      c.setResultFlags(r, bits, cf | (of ? OF : 0) | AF);
      return r;
    }
    default: { // SAR
      const s = sext(a, sz);
      if (count < bits) { r = trunc(s >> count, sz); cf = (s >> (count - 1)) & 1; }
      else { r = trunc(s >> 31, sz); cf = s < 0 ? 1 : 0; }
      c.setResultFlags(r, bits, cf | AF);
      return r;
    }
  }
}

/** SHLD/SHRD (SDM vol. 2 "SHLD", "SHRD"): returns -1 when the masked count is 0. */
export function shiftDouble(c: CPU, left: boolean, dst: number, src: number, count: number, sz: number): number {
  const bits = sz << 3;
  count &= 0x1f;
  if (count === 0) return -1;
  const msb = SIGN[sz];
  let r: number, cf: number;
  if (sz === 4) {
    if (left) { r = ((dst << count) | (src >>> (32 - count))) >>> 0; cf = (dst >>> (32 - count)) & 1; }
    else { r = ((dst >>> count) | (src << (32 - count))) >>> 0; cf = (dst >>> (count - 1)) & 1; }
  } else {
    // 16-bit: the operands form a 32-bit (or, for counts > 16, a 48-bit) pattern; results past 16 are
    // architecturally undefined, so we use the natural wider-shift pattern.
    if (left) {
      const wide = dst * 0x10000 + src; // dst:src
      const ext = wide * 0x10000 + dst; // dst:src:dst, so counts 17..31 shift src then dst in
      r = Math.floor(ext / 2 ** (32 - count)) % 0x10000;
      cf = Math.floor(ext / 2 ** (48 - count)) % 2;
    } else {
      const wide = src * 0x10000 + dst; // src:dst
      const ext = dst * 0x100000000 + wide; // dst:src:dst
      r = Math.floor(ext / 2 ** count) % 0x10000;
      cf = Math.floor(ext / 2 ** (count - 1)) % 2;
    }
  }
  const of = ((r ^ dst) & msb) !== 0 ? OF : 0;
  c.setResultFlags(r, bits, cf | of | AF);
  return r;
}

// --- Multiply and divide ---

let mulHi = 0;
/** Unsigned 32×32 → 64 multiply; returns the low half, the high half in `mulHigh()`. */
export function mulu32(a: number, b: number): number {
  const aL = a & 0xffff, aH = a >>> 16, bL = b & 0xffff, bH = b >>> 16;
  const ll = aL * bL, lh = aL * bH, hl = aH * bL, hh = aH * bH;
  const mid = (ll >>> 16) + (lh & 0xffff) + (hl & 0xffff);
  mulHi = (hh + (lh >>> 16) + (hl >>> 16) + Math.floor(mid / 0x10000)) >>> 0;
  return (((mid & 0xffff) << 16) | (ll & 0xffff)) >>> 0;
}
export function mulHigh(): number { return mulHi; }

/** Signed 32×32 → 64 multiply of int32 values; low half returned, high half in `mulHigh()`. */
export function muls32(a: number, b: number): number {
  const lo = mulu32(a >>> 0, b >>> 0);
  let hi = mulHi;
  if (a < 0) hi = (hi - (b >>> 0)) >>> 0;
  if (b < 0) hi = (hi - (a >>> 0)) >>> 0;
  mulHi = hi;
  return lo;
}

/** MUL: unsigned multiply of the accumulator (SDM vol. 2 "MUL"). SF ZF AF PF are undefined. */
export function mul(c: CPU, src: number, sz: number): void {
  let high: number;
  if (sz === 1) {
    const r = c.r8[0] * src;
    c.r16[0] = r;
    high = r >>> 8;
    c.setResultFlags(r & 0xff, 8, high ? CF | OF : 0);
  } else if (sz === 2) {
    const r = c.r16[0] * src;
    c.r16[0] = r; c.r16[4] = r >>> 16;
    high = r >>> 16;
    c.setResultFlags(r & 0xffff, 16, high ? CF | OF : 0);
  } else {
    const lo = mulu32(c.r32[0] >>> 0, src);
    high = mulHi;
    c.r32[0] = lo; c.r32[2] = high;
    c.setResultFlags(lo, 32, high ? CF | OF : 0);
  }
}

/** IMUL with one operand: the full product in the accumulator pair. */
export function imul1(c: CPU, src: number, sz: number): void {
  if (sz === 1) {
    const r = ((c.r8[0] << 24) >> 24) * sext(src, 1);
    c.r16[0] = r;
    c.setResultFlags(r & 0xff, 8, r === ((r << 24) >> 24) ? 0 : CF | OF);
  } else if (sz === 2) {
    const r = ((c.r16[0] << 16) >> 16) * sext(src, 2);
    c.r16[0] = r; c.r16[4] = r >> 16;
    c.setResultFlags(r & 0xffff, 16, r === ((r << 16) >> 16) ? 0 : CF | OF);
  } else {
    const lo = muls32(c.r32[0], src | 0);
    const hi = mulHi;
    c.r32[0] = lo; c.r32[2] = hi;
    c.setResultFlags(lo, 32, (hi | 0) === ((lo | 0) >> 31) ? 0 : CF | OF);
  }
}

/** IMUL with two or three operands: truncated product, CF=OF=overflow. */
export function imulTrunc(c: CPU, a: number, b: number, sz: number): number {
  if (sz === 2) {
    const r = sext(a, 2) * sext(b, 2);
    const t = r & 0xffff;
    c.setResultFlags(t, 16, r === ((r << 16) >> 16) ? 0 : CF | OF);
    return t;
  }
  const lo = muls32(a | 0, b | 0);
  c.setResultFlags(lo, 32, (mulHi | 0) === ((lo | 0) >> 31) ? 0 : CF | OF);
  return lo;
}

/**
 * Unsigned 64/32 division in base 2^16 digits, exact in doubles. Returns the quotient or -1 when it does
 * not fit in 32 bits; the remainder is left in `divRem`.
 */
let divRem = 0;
export function divu64(hi: number, lo: number, d: number): number {
  if (hi >= d) return -1;
  let r = hi, q = 0;
  for (const chunk of [lo >>> 16, lo & 0xffff]) {
    const t = r * 0x10000 + chunk;
    let qd = Math.floor(t / d);
    let rr = t - qd * d;
    if (rr < 0) { qd--; rr += d; } else if (rr >= d) { qd++; rr -= d; }
    q = q * 0x10000 + qd;
    r = rr;
  }
  divRem = r;
  return q;
}

/** DIV (SDM vol. 2 "DIV"): #DE on a zero divisor or a quotient too large. Flags undefined (left as they are). */
export function div(c: CPU, d: number, sz: number): void {
  if (d === 0) c.fault(EXC_DE);
  if (sz === 1) {
    const n = c.r16[0];
    const q = Math.floor(n / d);
    if (q > 0xff) c.fault(EXC_DE);
    c.r8[0] = q; c.r8[1] = n % d;
  } else if (sz === 2) {
    const n = c.r16[4] * 0x10000 + c.r16[0];
    const q = Math.floor(n / d);
    if (q > 0xffff) c.fault(EXC_DE);
    c.r16[0] = q; c.r16[4] = n % d;
  } else {
    const q = divu64(c.r32[2] >>> 0, c.r32[0] >>> 0, d);
    if (q < 0) c.fault(EXC_DE);
    c.r32[0] = q; c.r32[2] = divRem;
  }
}

/** IDIV: signed, quotient truncated toward zero, remainder has the dividend's sign. */
export function idiv(c: CPU, dRaw: number, sz: number): void {
  const d = sext(dRaw, sz);
  if (d === 0) c.fault(EXC_DE);
  if (sz === 1 || sz === 2) {
    const n = sz === 1 ? (c.r16[0] << 16) >> 16 : (c.r16[4] << 16) | c.r16[0];
    const q = Math.trunc(n / d);
    const lim = sz === 1 ? 0x80 : 0x8000;
    if (q >= lim || q < -lim) c.fault(EXC_DE);
    const rem = n - q * d;
    if (sz === 1) { c.r8[0] = q; c.r8[1] = rem; } else { c.r16[0] = q; c.r16[4] = rem; }
    return;
  }
  let hi = c.r32[2] >>> 0, lo = c.r32[0] >>> 0;
  const negN = (hi & 0x80000000) !== 0;
  if (negN) { lo = (~lo + 1) >>> 0; hi = (~hi + (lo === 0 ? 1 : 0)) >>> 0; }
  const ad = Math.abs(d);
  const q = divu64(hi, lo, ad);
  if (q < 0) c.fault(EXC_DE);
  const negQ = negN !== (d < 0);
  if (negQ ? q > 0x80000000 : q > 0x7fffffff) c.fault(EXC_DE);
  c.r32[0] = negQ ? -q : q;
  c.r32[2] = negN ? -divRem : divRem;
}
