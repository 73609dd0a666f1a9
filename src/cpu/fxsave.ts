// The FXSAVE/FXRSTOR 512-byte image (SDM vol. 2 "FXSAVE", Table 3-53, 32-bit layout): the interchange
// format for x87/MMX/SSE state, used by the instructions themselves and by tests and snapshots.

import type { CPU } from './cpu.ts';
import { MXCSR_MASK } from './sse-state.ts';

/** The x87 tag (00 valid, 01 zero, 10 special) a register's contents imply (SDM vol. 1 §8.1.7). */
export function tagFor(c: CPU, phys: number): number {
  const f = c.fpu;
  const exp = f.se[phys] & 0x7fff;
  const lo = f.lo[phys], hi = f.hi[phys];
  if (exp === 0x7fff) return 2;
  if (exp === 0) return lo === 0 && hi === 0 ? 1 : 2;
  return (hi & 0x80000000) ? 0 : 2; // unnormals are special
}

export function storeFxsave(c: CPU, out: Uint8Array = new Uint8Array(512)): Uint8Array {
  const f = c.fpu;
  const dv = new DataView(out.buffer, out.byteOffset, 512);
  dv.setUint16(0, f.fcw, true);
  dv.setUint16(2, f.statusWord, true);
  let abridged = 0;
  for (let i = 0; i < 8; i++) if (((f.ftw >> (2 * i)) & 3) !== 3) abridged |= 1 << i;
  out[4] = abridged; out[5] = 0;
  dv.setUint16(6, f.fop & 0x7ff, true);
  dv.setUint32(8, f.fip >>> 0, true);
  dv.setUint16(12, f.fcs, true); dv.setUint16(14, 0, true);
  dv.setUint32(16, f.fdp >>> 0, true);
  dv.setUint16(20, f.fds, true); dv.setUint16(22, 0, true);
  dv.setUint32(24, c.sse.mxcsr >>> 0, true);
  dv.setUint32(28, MXCSR_MASK, true);
  for (let i = 0; i < 8; i++) {
    const p = (f.top + i) & 7;
    const o = 32 + i * 16;
    dv.setUint32(o, f.lo[p] >>> 0, true);
    dv.setUint32(o + 4, f.hi[p] >>> 0, true);
    dv.setUint16(o + 8, f.se[p], true);
    for (let k = 10; k < 16; k++) out[o + k] = 0;
  }
  out.set(c.sse.bytes, 160);
  out.fill(0, 288, 512);
  return out;
}

/** Loads the image; returns false (caller raises #GP) when MXCSR has reserved bits set. */
export function loadFxsave(c: CPU, img: Uint8Array): boolean {
  const dv = new DataView(img.buffer, img.byteOffset, 512);
  const mxcsr = dv.getUint32(24, true);
  if (mxcsr & ~MXCSR_MASK) return false;
  const f = c.fpu;
  // Like FLDCW: reserved FCW bits 7 and 13-15 load as 0, bit 6 as 1 (SDM vol. 1 Figure 8-6); ES and B
  // follow from the loaded flags and masks, whatever the image says (both as on the host).
  f.fcw = (dv.getUint16(0, true) & 0x1f3f) | 0x40;
  f.statusWord = dv.getUint16(2, true);
  if (f.fsw & ~f.fcw & 0x3f) f.fsw |= 0x8080; else f.fsw &= ~0x8080;
  f.fop = dv.getUint16(6, true) & 0x7ff;
  f.fip = dv.getUint32(8, true) | 0;
  f.fcs = dv.getUint16(12, true);
  f.fdp = dv.getUint32(16, true) | 0;
  f.fds = dv.getUint16(20, true);
  c.sse.mxcsr = mxcsr;
  for (let i = 0; i < 8; i++) {
    const p = (f.top + i) & 7;
    const o = 32 + i * 16;
    f.lo[p] = dv.getUint32(o, true) | 0;
    f.hi[p] = dv.getUint32(o + 4, true) | 0;
    f.se[p] = dv.getUint16(o + 8, true);
  }
  const abridged = img[4];
  let ftw = 0;
  for (let p = 0; p < 8; p++) ftw |= ((abridged >> p) & 1 ? tagFor(c, p) : 3) << (2 * p);
  f.ftw = ftw;
  c.sse.bytes.set(img.subarray(160, 288));
  return true;
}
