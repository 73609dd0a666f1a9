// Seeded randomness and the edge-biased operand values the generator draws from.

/** sfc32: small, fast, and good enough to spread cases; seeded so a failing
 *  run can be replayed exactly. */
export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;
  constructor(seed: number) {
    this.a = 0x9e3779b9;
    this.b = 0x243f6a88;
    this.c = 0xb7e15162;
    this.d = seed >>> 0;
    for (let i = 0; i < 16; i++) this.u32();
  }
  u32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }
  /** integer in [0, n) */
  int(n: number): number {
    return Math.floor((this.u32() / 0x100000000) * n);
  }
  /** integer in [lo, hi] */
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }
  chance(p: number): boolean {
    return this.u32() / 0x100000000 < p;
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)];
  }
  bytes(n: number): Uint8Array {
    const b = new Uint8Array(n);
    for (let i = 0; i < n; i++) b[i] = this.u32() & 0xff;
    return b;
  }
}

const EDGE8 = [0, 1, 2, 0x7f, 0x80, 0x81, 0xfe, 0xff, 0x0f, 0x10, 0x09, 0x0a, 0x99, 0x9a, 0xf9, 0x40];
const EDGE16 = [0, 1, 2, 0x7f, 0x80, 0xff, 0x100, 0x7fff, 0x8000, 0x8001, 0xfffe, 0xffff, 0x0fff, 0xf000];
const EDGE32 = [
  0, 1, 2, 0x7f, 0x80, 0xff, 0x7fff, 0x8000, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0x80000001, 0xfffffffe, 0xffffffff,
  0xffff8000, 0x00ff00ff, 0x55555555, 0xaaaaaaaa,
];

/** An operand value of `bits` width, biased towards the values where
 *  carries, overflows and sign changes happen. */
export function edge(r: Rng, bits: number): number {
  const mask = bits >= 32 ? 0xffffffff : (1 << bits) - 1;
  const k = r.int(10);
  if (k < 5) return (bits === 8 ? r.pick(EDGE8) : bits === 16 ? r.pick(EDGE16) : r.pick(EDGE32)) & mask;
  if (k < 6) return r.int(33) & mask; // small values: shift counts, loop counts
  if (k < 7) return (-r.range(1, 32) >>> 0) & mask; // small negatives
  return r.u32() & mask;
}

/** A 32-bit register value whose low `bits` (and, for byte registers, also
 *  bits 8-15, which AH/CH/DH/BH name) are edge-biased. */
export function edgeReg(r: Rng, bits: number): number {
  let v = r.u32();
  if (r.chance(0.3) && bits >= 32) return edge(r, 32);
  if (r.chance(0.75)) {
    if (bits >= 32) v = edge(r, 32);
    else v = ((v & ~((1 << bits) - 1)) | edge(r, bits)) >>> 0;
  }
  if (bits === 8 && r.chance(0.6)) v = ((v & ~0xff00) | (edge(r, 8) << 8)) >>> 0;
  return v >>> 0;
}

// ---- floating point -------------------------------------------------------

const F64_EDGE = [
  0, -0, 1, -1, 2, 0.5, 1.5, 3, 10, -10, 1 / 3, Math.PI, 1e10, -1e-10, 65536, 2 ** 31, -(2 ** 31), 2 ** 63, 2 ** 64, 0.1,
  Infinity, -Infinity, NaN, Number.MAX_VALUE, -Number.MAX_VALUE, Number.MIN_VALUE, 2.2250738585072014e-308, 2.225073858507201e-308,
  3.4028234663852886e38, 1.1754943508222875e-38, 1.401298464324817e-45, 1e-40, 2147483647.5, -2147483648.5, 32767.5, -32768.5,
];

/** An IEEE double's bit pattern (as 8 little-endian bytes), edge-biased:
 *  ±0, ±1, denormals, the largest/smallest normals, infinities, quiet and
 *  signalling NaNs, integers at conversion limits, and random patterns. */
export function f64Bytes(r: Rng): Uint8Array {
  const b = new Uint8Array(8);
  const dv = new DataView(b.buffer);
  const k = r.int(10);
  if (k < 5) dv.setFloat64(0, r.pick(F64_EDGE), true);
  else if (k < 6) {
    // NaNs with payloads, including signalling ones (quiet bit clear).
    dv.setUint32(0, r.u32(), true);
    dv.setUint32(4, (r.chance(0.5) ? 0xfff00000 : 0x7ff00000) | (r.u32() & 0xfffff) | (r.chance(0.5) ? 0x80000 : 1), true);
  } else if (k < 7) {
    dv.setUint32(0, r.u32(), true); // denormal
    dv.setUint32(4, (r.chance(0.5) ? 0x80000000 : 0) | (r.u32() & 0xfffff), true);
  } else if (k < 9) dv.setFloat64(0, (r.u32() / 65536 - 32768) * (r.chance(0.5) ? 1 : 1 / 4096), true);
  else {
    dv.setUint32(0, r.u32(), true);
    dv.setUint32(4, r.u32(), true);
  }
  return b;
}

const F32_EDGE_BITS = [
  0x00000000, 0x80000000, 0x3f800000, 0xbf800000, 0x40000000, 0x3f000000, 0x7f800000, 0xff800000, 0x7fc00000, 0xffc00000,
  0x7f800001, 0x7fbfffff, 0x00000001, 0x807fffff, 0x00800000, 0x7f7fffff, 0xff7fffff, 0x4f000000, 0xcf000000, 0x4effffff,
  0x3eaaaaab, 0x47000000, 0xc7000100,
];

export function f32Bytes(r: Rng): Uint8Array {
  const b = new Uint8Array(4);
  const dv = new DataView(b.buffer);
  const k = r.int(10);
  if (k < 5) dv.setUint32(0, r.pick(F32_EDGE_BITS), true);
  else if (k < 7) dv.setFloat32(0, (r.u32() / 65536 - 32768) * (r.chance(0.5) ? 1 : 1 / 1024), true);
  else if (k < 8) dv.setUint32(0, (r.u32() & 0x807fffff) >>> 0, true); // denormal or zero
  else dv.setUint32(0, r.u32(), true);
  return b;
}

/** An 80-bit extended value (10 bytes): mostly converted doubles, plus
 *  encodings only the extended format has (denormals, pseudo-denormals,
 *  unnormals, the largest finite value). */
export function f80Bytes(r: Rng): Uint8Array {
  const out = new Uint8Array(10);
  const dv = new DataView(out.buffer);
  const k = r.int(10);
  if (k < 7) {
    const d = new DataView(f64Bytes(r).buffer);
    const hi = d.getUint32(4, true);
    const lo = d.getUint32(0, true);
    const sign = hi >>> 31;
    const exp = (hi >>> 20) & 0x7ff;
    let mant = (BigInt(hi & 0xfffff) << 32n) | BigInt(lo);
    let e15: number;
    let m64: bigint;
    if (exp === 0x7ff) {
      e15 = 0x7fff;
      m64 = (1n << 63n) | (mant << 11n);
    } else if (exp === 0) {
      if (mant === 0n) {
        e15 = 0;
        m64 = 0n;
      } else {
        // A double denormal is a normal extended number.
        let e = 1 - 1023;
        while (!(mant & (1n << 52n))) {
          mant <<= 1n;
          e--;
        }
        e15 = e + 16383;
        m64 = mant << 11n;
      }
    } else {
      e15 = exp - 1023 + 16383;
      m64 = (1n << 63n) | (mant << 11n);
    }
    dv.setBigUint64(0, m64, true);
    dv.setUint16(8, (sign << 15) | e15, true);
  } else if (k < 8) {
    dv.setBigUint64(0, BigInt(r.u32() & 0x7fffffff) << 32n | BigInt(r.u32()), true); // denormal
    dv.setUint16(8, r.chance(0.5) ? 0x8000 : 0, true);
  } else if (k < 9) {
    dv.setBigUint64(0, r.chance(0.5) ? 0xffffffffffffffffn : (BigInt(r.u32()) << 32n) | BigInt(r.u32()), true);
    dv.setUint16(8, r.pick([0x7ffe, 0xfffe, 0x0001, 0x8001, 0x3fff, 0x0000]), true);
  } else {
    // Unnormals and pseudo-NaNs/infinities (integer bit clear): invalid operands.
    dv.setBigUint64(0, (BigInt(r.u32() & 0x7fffffff) << 32n) | BigInt(r.u32()), true);
    dv.setUint16(8, r.pick([0x3fff, 0x4000, 0x7fff, 0xffff, 0x1234]), true);
  }
  return out;
}
