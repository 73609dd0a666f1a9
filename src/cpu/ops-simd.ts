// MMX, SSE and SSE2 (SDM vol. 1 ch. 9-11, vol. 2 instruction entries), 32-bit mode, no SSE3.
//
// Most 0F xx opcodes here are selected by a mandatory prefix (SDM vol. 2 §2.1.2): none, 66, F3 or F2;
// F2/F3 take precedence over 66. Each opcode gets one dispatcher over four slots.
//
// Operands go through three 16-byte scratch vectors: A (the destination register's old value), B (the
// source operand, register or memory) and R (the result), so each instruction is a small function over
// typed-array lanes. Results are written back only after every fault check, keeping exceptions precise.

import type { CPU } from './cpu.ts';
import { def2 } from './optable.ts';
import { CR0_EM, CR0_TS, CR4_OSFXSR, EXC_MF, EXC_NM } from './constants.ts';
import { MXCSR_MASK } from './sse-state.ts';
import { loadFxsave, storeFxsave } from './fxsave.ts';
import {
  F32, F64, OP_ADD, OP_DIV, OP_MUL, OP_SUB, binop, comi, compare, cvtff, cvtfi, cvtif, fpBegin, fpEnd,
  minmax, sqrtop, type Fmt,
} from './simd-fp.ts';

type Handler = (c: CPU) => void;

class Vec {
  readonly u8 = new Uint8Array(16);
  readonly i8 = new Int8Array(this.u8.buffer);
  readonly u16 = new Uint16Array(this.u8.buffer);
  readonly i16 = new Int16Array(this.u8.buffer);
  readonly u32 = new Uint32Array(this.u8.buffer);
  readonly i32 = new Int32Array(this.u8.buffer);
}
const A = new Vec(), B = new Vec(), R = new Vec();
const img512 = new Uint8Array(512);

// ---------------------------------------------------------------------------------------------------
// Prefix dispatch

const NP = 0, P66 = 1, PF3 = 2, PF2 = 3;
const slots: (Handler | undefined)[][] = Array.from({ length: 256 }, () => [undefined, undefined, undefined, undefined]);
const slotNames: string[] = new Array<string>(256).fill('');

function sdef(op: number, pfx: number, name: string, h: Handler): void {
  const s = slots[op];
  s[pfx] = h;
  if (!slotNames[op]) {
    slotNames[op] = name;
    def2(op, name, (c) => {
      const p = c.rep === 0xf3 ? PF3 : c.rep === 0xf2 ? PF2 : c.os32 !== c.cs32 ? P66 : NP;
      const hh = s[p];
      if (!hh) return c.ud();
      hh(c);
    });
  }
}

// ---------------------------------------------------------------------------------------------------
// Availability checks (SDM vol. 3A §2.5 CR0.EM/TS, §13.1 CR4.OSFXSR; vol. 2 exception tables 22-x/23-x)

/**
 * MMX register instructions: #UD if CR0.EM, #NM if CR0.TS, #MF if an x87 exception is pending. Handlers
 * then make the x87→MMX transition (TOP=0, all tags valid, SDM vol. 1 §9.5.1) once their memory operand
 * has been read: observed on the host, a #GP on the operand leaves x87 state alone but an #XM does not.
 */
function chkMmx(c: CPU): void {
  if (c.cr0 & CR0_EM) c.ud();
  if (c.cr0 & CR0_TS) c.fault(EXC_NM);
  if (c.fpu.fsw & 0x80) c.fault(EXC_MF);
}

/** SSE/SSE2 instructions: #UD if CR0.EM or CR4.OSFXSR=0, #NM if CR0.TS. */
function chkSse(c: CPU): void {
  if ((c.cr0 & CR0_EM) || !(c.cr4 & CR4_OSFXSR)) c.ud();
  if (c.cr0 & CR0_TS) c.fault(EXC_NM);
}

/** SSE instructions with an MMX operand also see pending x87 exceptions. */
function chkSseMmx(c: CPU): void {
  chkSse(c);
  if (c.fpu.fsw & 0x80) c.fault(EXC_MF);
}

// ---------------------------------------------------------------------------------------------------
// Operand access

function getMm(c: CPU, v: Vec, r: number): void { v.i32[0] = c.fpu.lo[r]; v.i32[1] = c.fpu.hi[r]; }
function putMm(c: CPU, v: Vec, r: number): void { c.fpu.setMmx(r, v.i32[0], v.i32[1]); }
function getX(c: CPU, v: Vec, r: number): void {
  const x = c.sse.xmm, o = r << 2;
  v.i32[0] = x[o]; v.i32[1] = x[o + 1]; v.i32[2] = x[o + 2]; v.i32[3] = x[o + 3];
}
function putX(c: CPU, v: Vec, r: number): void {
  const x = c.sse.xmm, o = r << 2;
  x[o] = v.i32[0]; x[o + 1] = v.i32[1]; x[o + 2] = v.i32[2]; x[o + 3] = v.i32[3];
}

// The memory operand of the current instruction: computed by `decodeMem` (before any immediate byte is
// fetched), accessed by readMem/writeMem.
let mSeg = 0, mOff = 0;

function decodeMem(c: CPU, m: number): void { mOff = c.ea(m); mSeg = c.eaSeg; }

/** 16-byte operands of the aligned forms must be 16-byte aligned (#GP(0), SDM vol. 1 §4.1.1). */
function checkAlign(c: CPU): void { if ((c.segBase[mSeg] + mOff) & 15) c.gp(0); }

function readMem(c: CPU, v: Vec, n: number, align: boolean): void {
  if (n === 4) { v.i32[0] = c.rd32(mSeg, mOff); return; }
  if (n === 8) { c.rd64(mSeg, mOff, v.i32, 0); return; }
  if (align) checkAlign(c);
  c.rdBytes(mSeg, mOff, 16, v.u8);
}

function writeMem(c: CPU, v: Vec, n: number, align: boolean): void {
  if (n === 4) { c.wr32(mSeg, mOff, v.i32[0]); return; }
  if (n === 8) { c.wr64(mSeg, mOff, v.i32[0], v.i32[1]); return; }
  if (align) checkAlign(c);
  c.wrBytes(mSeg, mOff, v.u8, 16);
}

/**
 * Reads the source r/m operand into B: an XMM (xmm=true) or MMX register, or `n` bytes of memory.
 * Fetches an imm8 after the ModRM bytes when asked and returns it.
 */
function source(c: CPU, m: number, xmm: boolean, n: number, align: boolean, imm = false): number {
  if (m >= 0xc0) {
    const i = imm ? c.fetch8() : 0;
    if (xmm) getX(c, B, m & 7); else getMm(c, B, m & 7);
    return i;
  }
  decodeMem(c, m);
  const i = imm ? c.fetch8() : 0;
  readMem(c, B, n, align);
  return i;
}

// ---------------------------------------------------------------------------------------------------
// Packed integer instructions (MMX 0F xx on mm, SSE2 66 0F xx on xmm): lane functions over A, B → R.

type LaneFn = (n: number) => void;
type Arr = Uint8Array | Int8Array | Uint16Array | Int16Array | Uint32Array | Int32Array;
type ViewKey = 'u8' | 'i8' | 'u16' | 'i16' | 'u32' | 'i32';
const BYTES: Record<ViewKey, number> = { u8: 1, i8: 1, u16: 2, i16: 2, u32: 4, i32: 4 };

/** Element-wise r = f(a, b); the typed array's store wraps to the lane width. */
function lanes(k: ViewKey, f: (x: number, y: number) => number): LaneFn {
  const a = A[k] as Arr, b = B[k] as Arr, r = R[k] as Arr, w = BYTES[k];
  return (n) => { for (let i = 0, e = n / w; i < e; i++) r[i] = f(a[i], b[i]); };
}

const clamp = (lo: number, hi: number) => (v: number) => (v < lo ? lo : v > hi ? hi : v);
const sat8 = clamp(-128, 127), satu8 = clamp(0, 255), sat16 = clamp(-32768, 32767), satu16 = clamp(0, 65535);

/** 64-bit lanes as word pairs (PADDQ/PSUBQ/PMULUDQ). */
function qwords(f: (al: number, ah: number, bl: number, bh: number, i: number) => void): LaneFn {
  return (n) => { for (let i = 0; i < n / 4; i += 2) f(A.u32[i], A.u32[i + 1], B.u32[i], B.u32[i + 1], i); };
}

/** Unsigned 32×32→64 multiply, result into R words i, i+1. */
function mulu64(a: number, b: number, i: number): void {
  const al = a & 0xffff, ah = a >>> 16, bl = b & 0xffff, bh = b >>> 16;
  const ll = al * bl, lh = al * bh, hl = ah * bl;
  const mid = (ll >>> 16) + (lh & 0xffff) + (hl & 0xffff);
  R.u32[i] = ((mid & 0xffff) * 0x10000) + (ll & 0xffff);
  R.u32[i + 1] = ah * bh + (lh >>> 16) + (hl >>> 16) + Math.floor(mid / 0x10000);
}

/** PACKSS/PACKUS: A's lanes then B's lanes, narrowed with saturation. */
function pack(src: 'i16' | 'i32', dst: 'i8' | 'u8' | 'i16', sat: (v: number) => number): LaneFn {
  return (n) => {
    const cnt = n / BYTES[src];
    const r = R[dst] as Arr, a = A[src] as Arr, b = B[src] as Arr;
    for (let i = 0; i < cnt; i++) { r[i] = sat(a[i]); r[i + cnt] = sat(b[i]); }
  };
}

/** PUNPCKL/H: interleave the low (or high) halves of A and B. */
function unpack(k: ViewKey | 'q', high: boolean): LaneFn {
  return (n) => {
    if (k === 'q') {
      const o = high ? 2 : 0;
      R.i32[0] = A.i32[o]; R.i32[1] = A.i32[o + 1]; R.i32[2] = B.i32[o]; R.i32[3] = B.i32[o + 1];
      return;
    }
    const a = A[k] as Arr, b = B[k] as Arr, r = R[k] as Arr;
    const half = n / BYTES[k] / 2, o = high ? half : 0;
    for (let i = 0; i < half; i++) { r[2 * i] = a[o + i]; r[2 * i + 1] = b[o + i]; }
  };
}

/** The shift count of PSxx: the whole low quadword of B, saturating (SDM vol. 2 "PSLLW"). */
function shiftCount(): number { return B.u32[1] !== 0 ? 0xffffffff : B.u32[0]; }

function shiftLanes(k: 'u16' | 'i16' | 'u32' | 'i32', kind: 'l' | 'r' | 'a'): LaneFn {
  const bits = BYTES[k] * 8;
  return (n) => {
    const cnt = shiftCount();
    const a = A[k] as Arr, r = R[k] as Arr, e = n / BYTES[k];
    for (let i = 0; i < e; i++) {
      if (kind === 'a') r[i] = a[i] >> (cnt >= bits ? bits - 1 : cnt);
      else if (cnt >= bits) r[i] = 0;
      else r[i] = kind === 'l' ? a[i] << cnt : a[i] >>> cnt;
    }
  };
}

function shiftQ(left: boolean): LaneFn {
  return (n) => {
    const cnt = shiftCount();
    for (let i = 0; i < n / 4; i += 2) {
      const lo = A.u32[i], hi = A.u32[i + 1];
      let rl: number, rh: number;
      if (cnt >= 64) { rl = 0; rh = 0; }
      else if (cnt === 0) { rl = lo; rh = hi; }
      else if (cnt >= 32) { if (left) { rh = lo << (cnt - 32); rl = 0; } else { rl = hi >>> (cnt - 32); rh = 0; } }
      else if (left) { rh = (hi << cnt) | (lo >>> (32 - cnt)); rl = lo << cnt; }
      else { rl = (lo >>> cnt) | (hi << (32 - cnt)); rh = hi >>> cnt; }
      R.u32[i] = rl; R.u32[i + 1] = rh;
    }
  };
}

/** PSLLDQ/PSRLDQ: whole-register byte shift (SSE2 only). */
function shiftDq(left: boolean): LaneFn {
  return () => {
    const cnt = Math.min(shiftCount(), 16);
    for (let i = 0; i < 16; i++) {
      const s = left ? i - cnt : i + cnt;
      R.u8[i] = s >= 0 && s < 16 ? A.u8[s] : 0;
    }
  };
}

const INT_OPS: [number, string, LaneFn, boolean?][] = [
  // [opcode, name, lanes, sse2-only (no MMX form)]
  [0x60, 'punpcklbw', unpack('u8', false)], [0x61, 'punpcklwd', unpack('u16', false)], [0x62, 'punpckldq', unpack('u32', false)],
  [0x63, 'packsswb', pack('i16', 'i8', sat8)], [0x64, 'pcmpgtb', lanes('i8', (x, y) => (x > y ? -1 : 0))],
  [0x65, 'pcmpgtw', lanes('i16', (x, y) => (x > y ? -1 : 0))], [0x66, 'pcmpgtd', lanes('i32', (x, y) => (x > y ? -1 : 0))],
  [0x67, 'packuswb', pack('i16', 'u8', satu8)],
  [0x68, 'punpckhbw', unpack('u8', true)], [0x69, 'punpckhwd', unpack('u16', true)], [0x6a, 'punpckhdq', unpack('u32', true)],
  [0x6b, 'packssdw', pack('i32', 'i16', sat16)], [0x6c, 'punpcklqdq', unpack('q', false), true], [0x6d, 'punpckhqdq', unpack('q', true), true],
  [0x74, 'pcmpeqb', lanes('u8', (x, y) => (x === y ? -1 : 0))], [0x75, 'pcmpeqw', lanes('u16', (x, y) => (x === y ? -1 : 0))],
  [0x76, 'pcmpeqd', lanes('i32', (x, y) => (x === y ? -1 : 0))],
  [0xd1, 'psrlw', shiftLanes('u16', 'r')], [0xd2, 'psrld', shiftLanes('u32', 'r')], [0xd3, 'psrlq', shiftQ(false)],
  [0xd4, 'paddq', qwords((al, ah, bl, bh, i) => { const lo = al + bl; R.u32[i] = lo; R.u32[i + 1] = ah + bh + (lo > 0xffffffff ? 1 : 0); })],
  [0xd5, 'pmullw', lanes('i16', (x, y) => Math.imul(x, y))],
  [0xd8, 'psubusb', lanes('u8', (x, y) => satu8(x - y))], [0xd9, 'psubusw', lanes('u16', (x, y) => satu16(x - y))],
  [0xda, 'pminub', lanes('u8', (x, y) => (x < y ? x : y))], [0xdb, 'pand', lanes('i32', (x, y) => x & y)],
  [0xdc, 'paddusb', lanes('u8', (x, y) => satu8(x + y))], [0xdd, 'paddusw', lanes('u16', (x, y) => satu16(x + y))],
  [0xde, 'pmaxub', lanes('u8', (x, y) => (x > y ? x : y))], [0xdf, 'pandn', lanes('i32', (x, y) => ~x & y)],
  [0xe0, 'pavgb', lanes('u8', (x, y) => (x + y + 1) >> 1)], [0xe1, 'psraw', shiftLanes('i16', 'a')],
  [0xe2, 'psrad', shiftLanes('i32', 'a')], [0xe3, 'pavgw', lanes('u16', (x, y) => (x + y + 1) >> 1)],
  [0xe4, 'pmulhuw', lanes('u16', (x, y) => Math.floor((x * y) / 65536))], [0xe5, 'pmulhw', lanes('i16', (x, y) => (x * y) >> 16)],
  [0xe8, 'psubsb', lanes('i8', (x, y) => sat8(x - y))], [0xe9, 'psubsw', lanes('i16', (x, y) => sat16(x - y))],
  [0xea, 'pminsw', lanes('i16', (x, y) => (x < y ? x : y))], [0xeb, 'por', lanes('i32', (x, y) => x | y)],
  [0xec, 'paddsb', lanes('i8', (x, y) => sat8(x + y))], [0xed, 'paddsw', lanes('i16', (x, y) => sat16(x + y))],
  [0xee, 'pmaxsw', lanes('i16', (x, y) => (x > y ? x : y))], [0xef, 'pxor', lanes('i32', (x, y) => x ^ y)],
  [0xf1, 'psllw', shiftLanes('u16', 'l')], [0xf2, 'pslld', shiftLanes('u32', 'l')], [0xf3, 'psllq', shiftQ(true)],
  [0xf4, 'pmuludq', qwords((al, _ah, bl, _bh, i) => mulu64(al, bl, i))],
  [0xf5, 'pmaddwd', (n) => { for (let i = 0; i < n / 4; i++) R.i32[i] = (A.i16[2 * i] * B.i16[2 * i] + A.i16[2 * i + 1] * B.i16[2 * i + 1]) | 0; }],
  [0xf6, 'psadbw', (n) => {
    for (let q = 0; q < n; q += 8) {
      let s = 0;
      for (let i = q; i < q + 8; i++) s += Math.abs(A.u8[i] - B.u8[i]);
      R.i32[q >> 2] = s; R.i32[(q >> 2) + 1] = 0;
    }
  }],
  [0xf8, 'psubb', lanes('u8', (x, y) => x - y)], [0xf9, 'psubw', lanes('u16', (x, y) => x - y)],
  [0xfa, 'psubd', lanes('i32', (x, y) => x - y)],
  [0xfb, 'psubq', qwords((al, ah, bl, bh, i) => { R.u32[i] = al - bl; R.u32[i + 1] = ah - bh - (al < bl ? 1 : 0); })],
  [0xfc, 'paddb', lanes('u8', (x, y) => x + y)], [0xfd, 'paddw', lanes('u16', (x, y) => x + y)],
  [0xfe, 'paddd', lanes('i32', (x, y) => x + y)],
];

/** MMX form: op mm, mm/m64. */
function mmxOp(f: LaneFn): Handler {
  return (c) => {
    chkMmx(c);
    const m = c.fetchModrm(), d = (m >> 3) & 7;
    source(c, m, false, 8, false);
    c.fpu.enterMmx();
    getMm(c, A, d);
    f(8);
    putMm(c, R, d);
  };
}

/** SSE2 form: op xmm, xmm/m128 (aligned). */
function xmmOp(f: LaneFn): Handler {
  return (c) => {
    chkSse(c);
    const m = c.fetchModrm(), d = (m >> 3) & 7;
    source(c, m, true, 16, true);
    getX(c, A, d);
    f(16);
    putX(c, R, d);
  };
}

for (const [op, name, f, sse2Only] of INT_OPS) {
  if (!sse2Only) sdef(op, NP, name, mmxOp(f));
  sdef(op, P66, name, xmmOp(f));
}

// Shift-by-immediate groups 0F 71/72/73 (/2 logical right, /4 arithmetic right, /6 left; 73 /3 and /7 are
// the SSE2 byte shifts). The register operand is in r/m; the count is an imm8.
const SHIFT_GROUPS: [number, (LaneFn | undefined)[]][] = [
  [0x71, [, , shiftLanes('u16', 'r'), , shiftLanes('i16', 'a'), , shiftLanes('u16', 'l')]],
  [0x72, [, , shiftLanes('u32', 'r'), , shiftLanes('i32', 'a'), , shiftLanes('u32', 'l')]],
  [0x73, [, , shiftQ(false), shiftDq(false), , , shiftQ(true), shiftDq(true)]],
];
for (const [op, fns] of SHIFT_GROUPS) {
  for (const xmm of [false, true]) {
    sdef(op, xmm ? P66 : NP, `pshift-grp${op & 3}`, (c) => {
      if (xmm) chkSse(c); else chkMmx(c);
      const m = c.fetchModrm(), g = (m >> 3) & 7;
      const f = fns[g];
      if (m < 0xc0 || !f || (!xmm && (g === 3 || g === 7))) return c.ud();
      B.u32[0] = c.fetch8(); B.u32[1] = 0;
      if (xmm) { getX(c, A, m & 7); f(16); putX(c, R, m & 7); } else { getMm(c, A, m & 7); f(8); putMm(c, R, m & 7); }
    });
  }
}

// EMMS (0F 77): marks all x87 registers empty (SDM vol. 2 "EMMS").
sdef(0x77, NP, 'emms', (c) => { chkMmx(c); c.fpu.enterMmx(); c.fpu.emms(); }); // TOP is 0 afterwards too (host-verified)

// ---------------------------------------------------------------------------------------------------
// Integer moves and the SSE additions to MMX

// MOVD mm/xmm, r/m32 (0F 6E, 66 0F 6E): zero-extends into the vector register.
sdef(0x6e, NP, 'movd', (c) => {
  chkMmx(c);
  const m = c.fetchModrm();
  const v = m >= 0xc0 ? c.r32[m & 7] : (decodeMem(c, m), c.rd32(mSeg, mOff));
  c.fpu.setMmx((m >> 3) & 7, v, 0);
});
sdef(0x6e, P66, 'movd', (c) => {
  chkSse(c);
  const m = c.fetchModrm();
  const v = m >= 0xc0 ? c.r32[m & 7] : (decodeMem(c, m), c.rd32(mSeg, mOff));
  R.i32.fill(0); R.i32[0] = v; putX(c, R, (m >> 3) & 7);
});
// MOVD r/m32, mm/xmm (0F 7E, 66 0F 7E).
for (const xmm of [false, true]) {
  sdef(0x7e, xmm ? P66 : NP, 'movd', (c) => {
    if (xmm) chkSse(c); else chkMmx(c);
    const m = c.fetchModrm(), s = (m >> 3) & 7;
    const v = xmm ? c.sse.xmm[s << 2] : c.fpu.lo[s];
    if (m >= 0xc0) c.r32[m & 7] = v; else { decodeMem(c, m); c.wr32(mSeg, mOff, v); }
    if (!xmm) c.fpu.enterMmx();
  });
}
// MOVQ xmm, xmm/m64 (F3 0F 7E): loads the low quadword and zeroes the high one.
sdef(0x7e, PF3, 'movq', (c) => {
  chkSse(c);
  const m = c.fetchModrm();
  source(c, m, true, 8, false);
  R.i32.fill(0); R.i32[0] = B.i32[0]; R.i32[1] = B.i32[1];
  putX(c, R, (m >> 3) & 7);
});
// MOVQ xmm/m64, xmm (66 0F D6): a register destination gets its high quadword zeroed.
sdef(0xd6, P66, 'movq', (c) => {
  chkSse(c);
  const m = c.fetchModrm();
  getX(c, A, (m >> 3) & 7);
  if (m >= 0xc0) { R.i32.fill(0); R.i32[0] = A.i32[0]; R.i32[1] = A.i32[1]; putX(c, R, m & 7); }
  else { decodeMem(c, m); writeMem(c, A, 8, false); }
});
// MOVQ2DQ xmm, mm (F3 0F D6) and MOVDQ2Q mm, xmm (F2 0F D6): register forms only.
sdef(0xd6, PF3, 'movq2dq', (c) => {
  chkSseMmx(c);
  const m = c.fetchModrm();
  if (m < 0xc0) c.ud();
  c.fpu.enterMmx();
  getMm(c, B, m & 7);
  R.i32.fill(0); R.i32[0] = B.i32[0]; R.i32[1] = B.i32[1];
  putX(c, R, (m >> 3) & 7);
});
sdef(0xd6, PF2, 'movdq2q', (c) => {
  chkSseMmx(c);
  const m = c.fetchModrm();
  if (m < 0xc0) c.ud();
  getX(c, B, m & 7);
  putMm(c, B, (m >> 3) & 7);
});

// MOVQ mm, mm/m64 (0F 6F) and MOVQ mm/m64, mm (0F 7F); MOVNTQ m64, mm (0F E7).
sdef(0x6f, NP, 'movq', (c) => { chkMmx(c); const m = c.fetchModrm(); source(c, m, false, 8, false); putMm(c, B, (m >> 3) & 7); });
function storeMm(memOnly: boolean): Handler {
  return (c) => {
    chkMmx(c);
    const m = c.fetchModrm();
    getMm(c, A, (m >> 3) & 7);
    if (m >= 0xc0) { if (memOnly) c.ud(); putMm(c, A, m & 7); return; }
    decodeMem(c, m); writeMem(c, A, 8, false);
    c.fpu.enterMmx();
  };
}
sdef(0x7f, NP, 'movq', storeMm(false));
sdef(0xe7, NP, 'movntq', storeMm(true));

/** 128-bit loads (MOVDQA/MOVDQU/MOVAPS/MOVUPS/MOVAPD/MOVUPD) and stores (incl. MOVNTDQ/MOVNTPS/MOVNTPD). */
function load128(align: boolean): Handler {
  return (c) => { chkSse(c); const m = c.fetchModrm(); source(c, m, true, 16, align); putX(c, B, (m >> 3) & 7); };
}
function store128(align: boolean, memOnly: boolean): Handler {
  return (c) => {
    chkSse(c);
    const m = c.fetchModrm();
    getX(c, A, (m >> 3) & 7);
    if (m >= 0xc0) { if (memOnly) c.ud(); putX(c, A, m & 7); return; }
    decodeMem(c, m); writeMem(c, A, 16, align);
  };
}
sdef(0x6f, P66, 'movdqa', load128(true)); sdef(0x6f, PF3, 'movdqu', load128(false));
sdef(0x7f, P66, 'movdqa', store128(true, false)); sdef(0x7f, PF3, 'movdqu', store128(false, false));
sdef(0xe7, P66, 'movntdq', store128(true, true));
sdef(0x10, NP, 'movups', load128(false)); sdef(0x10, P66, 'movupd', load128(false));
sdef(0x11, NP, 'movups', store128(false, false)); sdef(0x11, P66, 'movupd', store128(false, false));
sdef(0x28, NP, 'movaps', load128(true)); sdef(0x28, P66, 'movapd', load128(true));
sdef(0x29, NP, 'movaps', store128(true, false)); sdef(0x29, P66, 'movapd', store128(true, false));
sdef(0x2b, NP, 'movntps', store128(true, true)); sdef(0x2b, P66, 'movntpd', store128(true, true));

// MOVNTI m32, r32 (0F C3).
sdef(0xc3, NP, 'movnti', (c) => {
  chkSse(c);
  const m = c.fetchModrm();
  if (m >= 0xc0) c.ud();
  decodeMem(c, m); c.wr32(mSeg, mOff, c.r32[(m >> 3) & 7]);
});

// PSHUFW mm, mm/m64, imm8 (0F 70); PSHUFD (66), PSHUFHW (F3), PSHUFLW (F2) on xmm.
sdef(0x70, NP, 'pshufw', (c) => {
  chkMmx(c);
  const m = c.fetchModrm();
  const imm = source(c, m, false, 8, false, true);
  for (let i = 0; i < 4; i++) R.u16[i] = B.u16[(imm >> (2 * i)) & 3];
  putMm(c, R, (m >> 3) & 7);
});
for (const [pfx, name, words, base] of [[P66, 'pshufd', 0, 0], [PF3, 'pshufhw', 1, 4], [PF2, 'pshuflw', 1, 0]] as const) {
  sdef(0x70, pfx, name, (c) => {
    chkSse(c);
    const m = c.fetchModrm();
    const imm = source(c, m, true, 16, true, true);
    if (!words) { for (let i = 0; i < 4; i++) R.i32[i] = B.i32[(imm >> (2 * i)) & 3]; }
    else {
      R.i32.set(B.i32);
      for (let i = 0; i < 4; i++) R.u16[base + i] = B.u16[base + ((imm >> (2 * i)) & 3)];
    }
    putX(c, R, (m >> 3) & 7);
  });
}

// PINSRW mm/xmm, r32/m16, imm8 (0F C4); PEXTRW r32, mm/xmm, imm8 (0F C5, register form only).
for (const xmm of [false, true]) {
  sdef(0xc4, xmm ? P66 : NP, 'pinsrw', (c) => {
    if (xmm) chkSse(c); else chkMmx(c);
    const m = c.fetchModrm(), d = (m >> 3) & 7;
    let v: number, imm: number;
    if (m >= 0xc0) { imm = c.fetch8(); v = c.r32[m & 7]; }
    else { decodeMem(c, m); imm = c.fetch8(); v = c.rd16(mSeg, mOff); }
    if (xmm) { getX(c, R, d); R.u16[imm & 7] = v; putX(c, R, d); }
    else { getMm(c, R, d); R.u16[imm & 3] = v; putMm(c, R, d); }
  });
  sdef(0xc5, xmm ? P66 : NP, 'pextrw', (c) => {
    if (xmm) chkSse(c); else chkMmx(c);
    const m = c.fetchModrm();
    if (m < 0xc0) c.ud();
    const imm = c.fetch8();
    if (xmm) { getX(c, B, m & 7); c.r32[(m >> 3) & 7] = B.u16[imm & 7]; }
    else { getMm(c, B, m & 7); c.r32[(m >> 3) & 7] = B.u16[imm & 3]; c.fpu.enterMmx(); }
  });
  // PMOVMSKB r32, mm/xmm (0F D7): the byte sign bits.
  sdef(0xd7, xmm ? P66 : NP, 'pmovmskb', (c) => {
    if (xmm) chkSse(c); else chkMmx(c);
    const m = c.fetchModrm();
    if (m < 0xc0) c.ud();
    if (xmm) getX(c, B, m & 7); else getMm(c, B, m & 7);
    let r = 0;
    for (let i = 0, n = xmm ? 16 : 8; i < n; i++) r |= (B.u8[i] >> 7) << i;
    c.r32[(m >> 3) & 7] = r;
    if (!xmm) c.fpu.enterMmx();
  });
  // MASKMOVQ mm, mm / MASKMOVDQU xmm, xmm (0F F7): stores the bytes whose mask byte has bit 7 set to
  // DS:(E)DI (segment overridable), SDM vol. 2 "MASKMOVQ".
  sdef(0xf7, xmm ? P66 : NP, xmm ? 'maskmovdqu' : 'maskmovq', (c) => {
    if (xmm) chkSse(c); else chkMmx(c);
    const m = c.fetchModrm();
    if (m < 0xc0) c.ud();
    if (xmm) { getX(c, A, (m >> 3) & 7); getX(c, B, m & 7); } else { getMm(c, A, (m >> 3) & 7); getMm(c, B, m & 7); }
    const seg = c.dataSeg(), base = c.as32 ? c.r32[7] : c.r16[14];
    for (let i = 0, n = xmm ? 16 : 8; i < n; i++) {
      if (B.u8[i] & 0x80) c.wr8(seg, c.as32 ? (base + i) | 0 : (base + i) & 0xffff, A.u8[i]);
    }
    if (!xmm) c.fpu.enterMmx();
  });
}

// ---------------------------------------------------------------------------------------------------
// Floating point: packed/scalar single (no prefix / F3) and double (66 / F2)

interface Kind { F: Fmt; n: number; mem: number; align: boolean }
const PS: Kind = { F: F32, n: 4, mem: 16, align: true };
const PD: Kind = { F: F64, n: 2, mem: 16, align: true };
const SS: Kind = { F: F32, n: 1, mem: 4, align: false };
const SD: Kind = { F: F64, n: 1, mem: 8, align: false };
const KINDS: [number, Kind, string][] = [[NP, PS, 'ps'], [P66, PD, 'pd'], [PF3, SS, 'ss'], [PF2, SD, 'sd']];

/** Element-wise FP instruction: R starts as the destination (scalar forms keep its upper part). */
function fpOp(k: Kind, body: (F: Fmt, w: number, imm: number) => void, imm = false): Handler {
  return (c) => {
    chkSse(c);
    const m = c.fetchModrm(), d = (m >> 3) & 7;
    const iv = source(c, m, true, k.mem, k.align, imm);
    getX(c, A, d);
    R.i32.set(A.i32);
    fpBegin(c);
    for (let e = 0; e < k.n; e++) body(k.F, e * k.F.words, iv);
    fpEnd(c);
    putX(c, R, d);
  };
}

const ARITH: [number, string, number][] = [[0x58, 'add', OP_ADD], [0x59, 'mul', OP_MUL], [0x5c, 'sub', OP_SUB], [0x5e, 'div', OP_DIV]];
for (const [pfx, k, sfx] of KINDS) {
  for (const [op, name, code] of ARITH) {
    sdef(op, pfx, name + sfx, fpOp(k, (F, w) => binop(F, code, R.i32, w, A.i32, w, B.i32, w)));
  }
  sdef(0x5d, pfx, 'min' + sfx, fpOp(k, (F, w) => minmax(F, false, R.i32, w, A.i32, w, B.i32, w)));
  sdef(0x5f, pfx, 'max' + sfx, fpOp(k, (F, w) => minmax(F, true, R.i32, w, A.i32, w, B.i32, w)));
  sdef(0x51, pfx, 'sqrt' + sfx, fpOp(k, (F, w) => sqrtop(F, R.i32, w, B.i32, w)));
  sdef(0xc2, pfx, 'cmp' + sfx, fpOp(k, (F, w, imm) => {
    const t = compare(F, imm & 7, A.i32, w, B.i32, w) ? -1 : 0;
    R.i32[w] = t; if (F.words === 2) R.i32[w + 1] = t;
  }, true));
}

// COMISS/UCOMISS (0F 2F/2E) and COMISD/UCOMISD (66): ZF PF CF from the comparison, OF SF AF cleared.
for (const [pfx, k, sfx] of [[NP, SS, 'ss'], [P66, SD, 'sd']] as const) {
  for (const [op, ordered] of [[0x2e, false], [0x2f, true]] as const) {
    sdef(op, pfx, (ordered ? 'comi' : 'ucomi') + sfx, (c) => {
      chkSse(c);
      const m = c.fetchModrm();
      source(c, m, true, k.mem, false);
      getX(c, A, (m >> 3) & 7);
      fpBegin(c);
      const f = comi(k.F, ordered, A.i32, 0, B.i32, 0);
      fpEnd(c);
      c.setFlagBits(0x8d5, f);
    });
  }
}

// Bitwise logic on packed FP (0F 54-57 and 66): identical for singles and doubles.
const LOGIC: [number, string, (x: number, y: number) => number][] = [
  [0x54, 'and', (x, y) => x & y], [0x55, 'andn', (x, y) => ~x & y], [0x56, 'or', (x, y) => x | y], [0x57, 'xor', (x, y) => x ^ y],
];
for (const [op, name, f] of LOGIC) {
  sdef(op, NP, name + 'ps', xmmOp(lanes('i32', f)));
  sdef(op, P66, name + 'pd', xmmOp(lanes('i32', f)));
}

// UNPCKLPS/UNPCKHPS/UNPCKLPD/UNPCKHPD (0F 14/15).
sdef(0x14, NP, 'unpcklps', xmmOp(unpack('u32', false))); sdef(0x15, NP, 'unpckhps', xmmOp(unpack('u32', true)));
sdef(0x14, P66, 'unpcklpd', xmmOp(unpack('q', false))); sdef(0x15, P66, 'unpckhpd', xmmOp(unpack('q', true)));

// SHUFPS/SHUFPD (0F C6 ib): low result elements from the destination, high ones from the source.
sdef(0xc6, NP, 'shufps', (c) => {
  chkSse(c);
  const m = c.fetchModrm(), d = (m >> 3) & 7;
  const imm = source(c, m, true, 16, true, true);
  getX(c, A, d);
  R.i32[0] = A.i32[imm & 3]; R.i32[1] = A.i32[(imm >> 2) & 3]; R.i32[2] = B.i32[(imm >> 4) & 3]; R.i32[3] = B.i32[(imm >> 6) & 3];
  putX(c, R, d);
});
sdef(0xc6, P66, 'shufpd', (c) => {
  chkSse(c);
  const m = c.fetchModrm(), d = (m >> 3) & 7;
  const imm = source(c, m, true, 16, true, true);
  getX(c, A, d);
  const a = (imm & 1) * 2, b = ((imm >> 1) & 1) * 2;
  R.i32[0] = A.i32[a]; R.i32[1] = A.i32[a + 1]; R.i32[2] = B.i32[b]; R.i32[3] = B.i32[b + 1];
  putX(c, R, d);
});

// MOVSS/MOVSD (F3/F2 0F 10/11): memory loads zero the upper part, register moves keep it.
for (const [pfx, words, name] of [[PF3, 1, 'movss'], [PF2, 2, 'movsd']] as const) {
  sdef(0x10, pfx, name, (c) => {
    chkSse(c);
    const m = c.fetchModrm(), d = (m >> 3) & 7;
    source(c, m, true, words * 4, false);
    if (m >= 0xc0) getX(c, R, d); else R.i32.fill(0);
    for (let i = 0; i < words; i++) R.i32[i] = B.i32[i];
    putX(c, R, d);
  });
  sdef(0x11, pfx, name, (c) => {
    chkSse(c);
    const m = c.fetchModrm();
    getX(c, A, (m >> 3) & 7);
    if (m >= 0xc0) { getX(c, R, m & 7); for (let i = 0; i < words; i++) R.i32[i] = A.i32[i]; putX(c, R, m & 7); }
    else { decodeMem(c, m); writeMem(c, A, words * 4, false); }
  });
}

// MOVLPS/MOVLPD/MOVHLPS (0F 12), MOVHPS/MOVHPD/MOVLHPS (0F 16) and their stores (0F 13, 0F 17).
for (const [pfx, regOk] of [[NP, true], [P66, false]] as const) {
  for (const high of [false, true]) {
    const half = high ? 2 : 0;
    sdef(high ? 0x16 : 0x12, pfx, high ? 'movhp' : 'movlp', (c) => {
      chkSse(c);
      const m = c.fetchModrm(), d = (m >> 3) & 7;
      if (m >= 0xc0 && !regOk) c.ud();
      getX(c, R, d);
      if (m >= 0xc0) { getX(c, B, m & 7); const s = high ? 0 : 2; B.i32[0] = B.i32[s]; B.i32[1] = B.i32[s + 1]; } // MOVLHPS / MOVHLPS
      else { decodeMem(c, m); readMem(c, B, 8, false); }
      R.i32[half] = B.i32[0]; R.i32[half + 1] = B.i32[1];
      putX(c, R, d);
    });
    sdef(high ? 0x17 : 0x13, pfx, high ? 'movhp' : 'movlp', (c) => {
      chkSse(c);
      const m = c.fetchModrm();
      if (m >= 0xc0) c.ud();
      getX(c, A, (m >> 3) & 7);
      A.i32[0] = A.i32[half]; A.i32[1] = A.i32[half + 1];
      decodeMem(c, m); writeMem(c, A, 8, false);
    });
  }
}

// MOVMSKPS/MOVMSKPD r32, xmm (0F 50): the element sign bits.
for (const [pfx, words] of [[NP, 1], [P66, 2]] as const) {
  sdef(0x50, pfx, 'movmskp', (c) => {
    chkSse(c);
    const m = c.fetchModrm();
    if (m < 0xc0) c.ud();
    getX(c, B, m & 7);
    let r = 0;
    for (let e = 0; e < 4 / words; e++) r |= (B.u32[e * words + words - 1] >>> 31) << e;
    c.r32[(m >> 3) & 7] = r;
  });
}

// RCPPS/RCPSS (0F 53) and RSQRTPS/RSQRTSS (0F 52): approximations with relative error ≤ 1.5·2^-12
// (SDM vol. 2 "RCPPS"). We return the exact result rounded to 12 significand bits. Denormal operands are
// treated as zeros and tiny results are flushed, as hardware does; no MXCSR flags are affected.
const apF = new Float32Array(1), apI = new Int32Array(apF.buffer);
function approx(rsqrt: boolean, bits: number): number {
  apI[0] = bits;
  const x = apF[0];
  const e = (bits >>> 23) & 0xff;
  if (e === 0xff && (bits & 0x7fffff)) return bits | 0x400000;
  const neg = bits < 0;
  if (e === 0) return neg ? (rsqrt ? 0xff800000 | 0 : 0xff800000 | 0) : 0x7f800000;
  if (rsqrt && neg) return 0xffc00000 | 0;
  if (e === 0xff) return neg ? (0x80000000 | 0) : 0;
  const r = rsqrt ? 1 / Math.sqrt(x) : 1 / x;
  if (Math.abs(r) < 2 ** -126) return neg ? 0x80000000 | 0 : 0;
  apF[0] = r;
  return ((apI[0] + 0x400) & ~0x7ff) | 0;
}
for (const [op, rs] of [[0x52, true], [0x53, false]] as const) {
  for (const [pfx, k] of [[NP, PS], [PF3, SS]] as const) {
    sdef(op, pfx, rs ? 'rsqrt' : 'rcp', (c) => {
      chkSse(c);
      const m = c.fetchModrm(), d = (m >> 3) & 7;
      source(c, m, true, k.mem, k.align);
      getX(c, R, d);
      for (let e = 0; e < k.n; e++) R.i32[e] = approx(rs, B.i32[e]);
      putX(c, R, d);
    });
  }
}

// ---------------------------------------------------------------------------------------------------
// Conversions (SDM vol. 2 CVT*)

/** Conversion skeleton: reads source, R = destination xmm (or zero), body fills R, flags, write-back. */
function cvt(srcXmm: boolean, srcBytes: number, align: boolean, dst: 'x' | 'x0' | 'mm' | 'r32', body: () => void, mmxSrc = false): Handler {
  return (c) => {
    if (mmxSrc || dst === 'mm') chkSseMmx(c); else chkSse(c);
    const m = c.fetchModrm(), d = (m >> 3) & 7;
    if (!srcXmm && m >= 0xc0 && !mmxSrc) { B.i32[0] = c.r32[m & 7]; } // r/m32 integer source
    else source(c, m, srcXmm, srcBytes, align);
    if (dst === 'mm' || (mmxSrc && m >= 0xc0)) c.fpu.enterMmx(); // memory-source CVTPI2Px stays in x87 mode
    if (dst === 'x') getX(c, R, d); else R.i32.fill(0);
    fpBegin(c);
    body();
    fpEnd(c);
    if (dst === 'mm') putMm(c, R, d);
    else if (dst === 'r32') c.r32[d] = R.i32[0];
    else putX(c, R, d);
  };
}
// CVTPI2PS xmm, mm/m64; CVTPI2PD xmm, mm/m64; CVTSI2SS/CVTSI2SD xmm, r/m32 (0F 2A).
sdef(0x2a, NP, 'cvtpi2ps', cvt(false, 8, false, 'x', () => { cvtif(F32, R.i32, 0, B.i32[0]); cvtif(F32, R.i32, 1, B.i32[1]); }, true));
sdef(0x2a, P66, 'cvtpi2pd', cvt(false, 8, false, 'x', () => { cvtif(F64, R.i32, 0, B.i32[0]); cvtif(F64, R.i32, 2, B.i32[1]); }, true));
sdef(0x2a, PF3, 'cvtsi2ss', cvt(false, 4, false, 'x', () => cvtif(F32, R.i32, 0, B.i32[0])));
sdef(0x2a, PF2, 'cvtsi2sd', cvt(false, 4, false, 'x', () => cvtif(F64, R.i32, 0, B.i32[0])));
// CVT(T)PS2PI mm, xmm/m64; CVT(T)PD2PI mm, xmm/m128; CVT(T)SS2SI, CVT(T)SD2SI r32 (0F 2C truncating, 2D).
for (const [op, t] of [[0x2c, true], [0x2d, false]] as const) {
  sdef(op, NP, t ? 'cvttps2pi' : 'cvtps2pi', cvt(true, 8, false, 'mm', () => { R.i32[0] = cvtfi(F32, B.i32, 0, t); R.i32[1] = cvtfi(F32, B.i32, 1, t); }));
  sdef(op, P66, t ? 'cvttpd2pi' : 'cvtpd2pi', cvt(true, 16, true, 'mm', () => { R.i32[0] = cvtfi(F64, B.i32, 0, t); R.i32[1] = cvtfi(F64, B.i32, 2, t); }));
  sdef(op, PF3, t ? 'cvttss2si' : 'cvtss2si', cvt(true, 4, false, 'r32', () => { R.i32[0] = cvtfi(F32, B.i32, 0, t); }));
  sdef(op, PF2, t ? 'cvttsd2si' : 'cvtsd2si', cvt(true, 8, false, 'r32', () => { R.i32[0] = cvtfi(F64, B.i32, 0, t); }));
}
// CVTPS2PD xmm, xmm/m64; CVTPD2PS; CVTSS2SD; CVTSD2SS (0F 5A).
sdef(0x5a, NP, 'cvtps2pd', cvt(true, 8, false, 'x0', () => { cvtff(F32, F64, R.i32, 0, B.i32, 0); cvtff(F32, F64, R.i32, 2, B.i32, 1); }));
sdef(0x5a, P66, 'cvtpd2ps', cvt(true, 16, true, 'x0', () => { cvtff(F64, F32, R.i32, 0, B.i32, 0); cvtff(F64, F32, R.i32, 1, B.i32, 2); }));
sdef(0x5a, PF3, 'cvtss2sd', cvt(true, 4, false, 'x', () => cvtff(F32, F64, R.i32, 0, B.i32, 0)));
sdef(0x5a, PF2, 'cvtsd2ss', cvt(true, 8, false, 'x', () => cvtff(F64, F32, R.i32, 0, B.i32, 0)));
// CVTDQ2PS, CVTPS2DQ (66), CVTTPS2DQ (F3) (0F 5B); CVTTPD2DQ (66), CVTPD2DQ (F2), CVTDQ2PD (F3) (0F E6).
sdef(0x5b, NP, 'cvtdq2ps', cvt(true, 16, true, 'x0', () => { for (let i = 0; i < 4; i++) cvtif(F32, R.i32, i, B.i32[i]); }));
sdef(0x5b, P66, 'cvtps2dq', cvt(true, 16, true, 'x0', () => { for (let i = 0; i < 4; i++) R.i32[i] = cvtfi(F32, B.i32, i, false); }));
sdef(0x5b, PF3, 'cvttps2dq', cvt(true, 16, true, 'x0', () => { for (let i = 0; i < 4; i++) R.i32[i] = cvtfi(F32, B.i32, i, true); }));
sdef(0xe6, P66, 'cvttpd2dq', cvt(true, 16, true, 'x0', () => { R.i32[0] = cvtfi(F64, B.i32, 0, true); R.i32[1] = cvtfi(F64, B.i32, 2, true); }));
sdef(0xe6, PF2, 'cvtpd2dq', cvt(true, 16, true, 'x0', () => { R.i32[0] = cvtfi(F64, B.i32, 0, false); R.i32[1] = cvtfi(F64, B.i32, 2, false); }));
sdef(0xe6, PF3, 'cvtdq2pd', cvt(true, 8, false, 'x0', () => { const x = B.i32[0], y = B.i32[1]; cvtif(F64, R.i32, 0, x); cvtif(F64, R.i32, 2, y); }));

// ---------------------------------------------------------------------------------------------------
// Group 15 (0F AE): FXSAVE /0, FXRSTOR /1, LDMXCSR /2, STMXCSR /3, CLFLUSH /7 (memory forms);
// LFENCE /5, MFENCE /6, SFENCE /7 (register forms). Fences are no-ops for one in-order vCPU.
sdef(0xae, NP, 'grp15', (c) => {
  const m = c.fetchModrm(), g = (m >> 3) & 7;
  if (m >= 0xc0) { if (g < 5) c.ud(); return; }
  switch (g) {
    case 0: case 1: { // SDM vol. 2 "FXSAVE": #NM if CR0.TS or CR0.EM; #GP(0) unless 16-byte aligned
      if (c.cr0 & (CR0_TS | CR0_EM)) c.fault(EXC_NM);
      decodeMem(c, m);
      checkAlign(c);
      if (g === 0) {
        // The whole 512-byte area must be writable, but bytes 288-511 are left as they were (SDM vol. 2
        // "FXSAVE": reserved/available to software in the 32-bit layout).
        c.probeWrite(c.lin(mSeg, mOff, 512, true), 512);
        c.wrBytes(mSeg, mOff, storeFxsave(c, img512), 288);
      }
      else {
        c.rdBytes(mSeg, mOff, 512, img512);
        if (!loadFxsave(c, img512)) c.gp(0);
      }
      return;
    }
    case 2: {
      chkSse(c);
      decodeMem(c, m);
      const v = c.rd32(mSeg, mOff);
      if (v & ~MXCSR_MASK) c.gp(0);
      c.sse.mxcsr = v;
      return;
    }
    case 3: chkSse(c); decodeMem(c, m); c.wr32(mSeg, mOff, c.sse.mxcsr); return;
    case 7: decodeMem(c, m); c.probeRead(c.lin(mSeg, mOff, 1, false), 1); return; // CLFLUSH: checked like a byte read
    default: c.ud();
  }
});
