// Differential test of the MMX/SSE/SSE2 instructions against the host CPU.
//
// A small native i386 program (test/native/simd) runs each case's single instruction with a given
// FXSAVE image (x87/MMX/XMM/MXCSR), GPRs, EFLAGS and a 64-byte data window, and reports the exception
// vector and the resulting state; the same case runs on the vCPU and every compared bit must match.
// RCPPS/RSQRTPS are approximations whose tables differ between vendors: those results are checked
// against the architectural bound |rel. error| ≤ 1.5·2^-12 instead (SDM vol. 2 "RCPPS").

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createUserTestCpu } from '../src/cpu/testing.ts';
import { Rng } from './diff/rng.ts';
import { i386Command, nativeOnly } from '../src/guest/i386-host.mjs';

const SRC = join(dirname(fileURLToPath(import.meta.url)), 'native', 'simd');
const CODE = 0x00100000, DATA = 0x00200000;
const IN_SIZE = 16 + 32 + 4 + 64 + 512, OUT_SIZE = 4 + 32 + 4 + 64 + 512;

function buildNative(): string {
  const h = createHash('sha256');
  for (const f of ['harness.c', 'tramp.asm']) h.update(readFileSync(join(SRC, f)));
  const dir = join(tmpdir(), `trapeze-simd-${h.digest('hex').slice(0, 16)}`);
  const exe = join(dir, 'harness');
  if (existsSync(exe)) return exe;
  mkdirSync(dir, { recursive: true });
  const run = (cmd: string, args: string[]) => {
    const r = spawnSync(cmd, args, { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`${cmd} failed: ${r.error?.message ?? r.stderr}`);
  };
  const tmp = `${exe}.${process.pid}`;
  run('nasm', ['-f', 'elf32', '-o', `${tmp}.o`, join(SRC, 'tramp.asm')]);
  run('gcc', ['-m32', '-O2', '-static', '-o', tmp, join(SRC, 'harness.c'), `${tmp}.o`]);
  renameSync(tmp, exe);
  return exe;
}

// ---- instruction forms ------------------------------------------------------------------------------

type Val = 'f32' | 'f64' | 'int';
interface Form {
  name: string; cat: string; op: number[]; val: Val;
  /** 'rr' register only, 'm' memory only, 'both'. */
  rm: 'rr' | 'm' | 'both';
  /** Memory operand size and whether the aligned form requires alignment. */
  mem?: number; align?: boolean;
  imm?: 'any' | 'cmp' | 'shift';
  /** Fixed ModRM reg field (groups). */
  grp?: number;
  /** reg field names a GPR destination / r/m names a GPR source. */
  regGpr?: boolean; rmGpr?: boolean;
  maskmov?: boolean;
  approx?: boolean;
}
const FORMS: Form[] = [];
const add = (f: Form) => FORMS.push(f);

const INT_OPS = [0x60, 0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6a, 0x6b, 0x74, 0x75, 0x76,
  0xd1, 0xd2, 0xd3, 0xd4, 0xd5, 0xd8, 0xd9, 0xda, 0xdb, 0xdc, 0xdd, 0xde, 0xdf, 0xe0, 0xe1, 0xe2, 0xe3, 0xe4, 0xe5,
  0xe8, 0xe9, 0xea, 0xeb, 0xec, 0xed, 0xee, 0xef, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf8, 0xf9, 0xfa, 0xfb, 0xfc, 0xfd, 0xfe];
for (const op of INT_OPS) {
  add({ name: `mmx 0f${op.toString(16)}`, cat: 'mmx-int', op: [0x0f, op], val: 'int', rm: 'both', mem: 8 });
  add({ name: `sse2 66 0f${op.toString(16)}`, cat: 'sse2-int', op: [0x66, 0x0f, op], val: 'int', rm: 'both', mem: 16, align: true });
}
for (const op of [0x6c, 0x6d]) add({ name: `punpck*qdq ${op.toString(16)}`, cat: 'sse2-int', op: [0x66, 0x0f, op], val: 'int', rm: 'both', mem: 16, align: true });
for (const [op, grps] of [[0x71, [2, 4, 6]], [0x72, [2, 4, 6]], [0x73, [2, 6]]] as const) {
  for (const g of grps) {
    add({ name: `mmx shift ${op.toString(16)}/${g}`, cat: 'mmx-int', op: [0x0f, op], val: 'int', rm: 'rr', grp: g, imm: 'shift' });
    add({ name: `sse2 shift ${op.toString(16)}/${g}`, cat: 'sse2-int', op: [0x66, 0x0f, op], val: 'int', rm: 'rr', grp: g, imm: 'shift' });
  }
}
for (const g of [3, 7]) add({ name: `sse2 pslldq/psrldq /${g}`, cat: 'sse2-int', op: [0x66, 0x0f, 0x73], val: 'int', rm: 'rr', grp: g, imm: 'shift' });
// Moves and the SSE integer additions.
const mv = (name: string, op: number[], rm: Form['rm'], extra: Partial<Form> = {}) =>
  add({ name, cat: 'moves', op, val: 'int', rm, ...extra });
mv('movd mm,r/m32', [0x0f, 0x6e], 'both', { mem: 4, rmGpr: true });
mv('movd xmm,r/m32', [0x66, 0x0f, 0x6e], 'both', { mem: 4, rmGpr: true });
mv('movd r/m32,mm', [0x0f, 0x7e], 'both', { mem: 4, rmGpr: true });
mv('movd r/m32,xmm', [0x66, 0x0f, 0x7e], 'both', { mem: 4, rmGpr: true });
mv('movq xmm,xmm/m64', [0xf3, 0x0f, 0x7e], 'both', { mem: 8 });
mv('movq xmm/m64,xmm', [0x66, 0x0f, 0xd6], 'both', { mem: 8 });
mv('movq2dq', [0xf3, 0x0f, 0xd6], 'rr');
mv('movdq2q', [0xf2, 0x0f, 0xd6], 'rr');
mv('movq mm,mm/m64', [0x0f, 0x6f], 'both', { mem: 8 });
mv('movq mm/m64,mm', [0x0f, 0x7f], 'both', { mem: 8 });
mv('movntq', [0x0f, 0xe7], 'm', { mem: 8 });
for (const [n, p, op, al] of [['movdqa', 0x66, 0x6f, true], ['movdqu', 0xf3, 0x6f, false], ['movdqa st', 0x66, 0x7f, true], ['movdqu st', 0xf3, 0x7f, false],
  ['movups', 0, 0x10, false], ['movupd', 0x66, 0x10, false], ['movups st', 0, 0x11, false], ['movaps', 0, 0x28, true], ['movapd', 0x66, 0x28, true],
  ['movaps st', 0, 0x29, true], ['movss', 0xf3, 0x10, false], ['movsd', 0xf2, 0x10, false], ['movss st', 0xf3, 0x11, false], ['movsd st', 0xf2, 0x11, false],
  ['movlps/movhlps', 0, 0x12, false], ['movhps/movlhps', 0, 0x16, false], ['unpcklps', 0, 0x14, true], ['unpckhps', 0, 0x15, true],
  ['unpcklpd', 0x66, 0x14, true], ['unpckhpd', 0x66, 0x15, true], ['andps', 0, 0x54, true], ['andnpd', 0x66, 0x55, true], ['orps', 0, 0x56, true], ['xorpd', 0x66, 0x57, true],
] as const) {
  const sz = n.startsWith('movss') ? 4 : n.startsWith('movsd') || n.includes('lps') || n.includes('hps') ? 8 : 16;
  mv(n, p ? [p, 0x0f, op] : [0x0f, op], 'both', { mem: sz, align: al });
}
for (const [n, p, op] of [['movlps st', 0, 0x13], ['movhps st', 0, 0x17], ['movlpd', 0x66, 0x12], ['movhpd', 0x66, 0x16], ['movlpd st', 0x66, 0x13], ['movhpd st', 0x66, 0x17]] as const) {
  mv(n, p ? [p, 0x0f, op] : [0x0f, op], 'm', { mem: 8 });
}
mv('movntps', [0x0f, 0x2b], 'm', { mem: 16, align: true });
mv('movntdq', [0x66, 0x0f, 0xe7], 'm', { mem: 16, align: true });
mv('movnti', [0x0f, 0xc3], 'm', { mem: 4, regGpr: true });
mv('movmskps', [0x0f, 0x50], 'rr', { regGpr: true });
mv('movmskpd', [0x66, 0x0f, 0x50], 'rr', { regGpr: true });
mv('pmovmskb mm', [0x0f, 0xd7], 'rr', { regGpr: true });
mv('pmovmskb xmm', [0x66, 0x0f, 0xd7], 'rr', { regGpr: true });
mv('pextrw mm', [0x0f, 0xc5], 'rr', { regGpr: true, imm: 'any' });
mv('pextrw xmm', [0x66, 0x0f, 0xc5], 'rr', { regGpr: true, imm: 'any' });
mv('pinsrw mm', [0x0f, 0xc4], 'both', { rmGpr: true, imm: 'any', mem: 2 });
mv('pinsrw xmm', [0x66, 0x0f, 0xc4], 'both', { rmGpr: true, imm: 'any', mem: 2 });
mv('pshufw', [0x0f, 0x70], 'both', { imm: 'any', mem: 8 });
for (const p of [0x66, 0xf3, 0xf2]) mv(`pshuf ${p.toString(16)}`, [p, 0x0f, 0x70], 'both', { imm: 'any', mem: 16, align: true });
mv('shufps', [0x0f, 0xc6], 'both', { imm: 'any', mem: 16, align: true });
mv('shufpd', [0x66, 0x0f, 0xc6], 'both', { imm: 'any', mem: 16, align: true });
mv('maskmovq', [0x0f, 0xf7], 'rr', { maskmov: true });
mv('maskmovdqu', [0x66, 0x0f, 0xf7], 'rr', { maskmov: true });
mv('emms', [0x0f, 0x77], 'rr', { grp: -1 });
// Floating-point arithmetic, compares and conversions.
const FPK = [[0, 'ps', 'f32', 16], [0x66, 'pd', 'f64', 16], [0xf3, 'ss', 'f32', 4], [0xf2, 'sd', 'f64', 8]] as const;
for (const [p, sfx, val, mem] of FPK) {
  const pre = p ? [p] : [];
  const cat = val === 'f32' ? 'sse-fp' : 'sse2-fp';
  for (const [n, op] of [['add', 0x58], ['mul', 0x59], ['sub', 0x5c], ['min', 0x5d], ['div', 0x5e], ['max', 0x5f], ['sqrt', 0x51]] as const) {
    add({ name: n + sfx, cat, op: [...pre, 0x0f, op], val, rm: 'both', mem, align: mem === 16 });
  }
  add({ name: 'cmp' + sfx, cat: 'sse-cmp', op: [...pre, 0x0f, 0xc2], val, rm: 'both', mem, align: mem === 16, imm: 'cmp' });
}
for (const [p, val, mem] of [[0, 'f32', 4], [0x66, 'f64', 8]] as const) {
  for (const op of [0x2e, 0x2f]) add({ name: `comi ${p} ${op}`, cat: 'sse-cmp', op: p ? [p, 0x0f, op] : [0x0f, op], val, rm: 'both', mem });
}
add({ name: 'rcpps', cat: 'sse-rcp', op: [0x0f, 0x53], val: 'f32', rm: 'both', mem: 16, align: true, approx: true });
add({ name: 'rcpss', cat: 'sse-rcp', op: [0xf3, 0x0f, 0x53], val: 'f32', rm: 'both', mem: 4, approx: true });
add({ name: 'rsqrtps', cat: 'sse-rcp', op: [0x0f, 0x52], val: 'f32', rm: 'both', mem: 16, align: true, approx: true });
add({ name: 'rsqrtss', cat: 'sse-rcp', op: [0xf3, 0x0f, 0x52], val: 'f32', rm: 'both', mem: 4, approx: true });
const cv = (name: string, op: number[], val: Val, rm: Form['rm'], mem: number, extra: Partial<Form> = {}) =>
  add({ name, cat: 'cvt', op, val, rm, mem, ...extra });
cv('cvtpi2ps', [0x0f, 0x2a], 'int', 'both', 8);
cv('cvtpi2pd', [0x66, 0x0f, 0x2a], 'int', 'both', 8);
cv('cvtsi2ss', [0xf3, 0x0f, 0x2a], 'int', 'both', 4, { rmGpr: true });
cv('cvtsi2sd', [0xf2, 0x0f, 0x2a], 'int', 'both', 4, { rmGpr: true });
for (const op of [0x2c, 0x2d]) {
  cv(`cvt(t)ps2pi ${op}`, [0x0f, op], 'f32', 'both', 8);
  cv(`cvt(t)pd2pi ${op}`, [0x66, 0x0f, op], 'f64', 'both', 16, { align: true });
  cv(`cvt(t)ss2si ${op}`, [0xf3, 0x0f, op], 'f32', 'both', 4, { regGpr: true });
  cv(`cvt(t)sd2si ${op}`, [0xf2, 0x0f, op], 'f64', 'both', 8, { regGpr: true });
}
cv('cvtps2pd', [0x0f, 0x5a], 'f32', 'both', 8);
cv('cvtpd2ps', [0x66, 0x0f, 0x5a], 'f64', 'both', 16, { align: true });
cv('cvtss2sd', [0xf3, 0x0f, 0x5a], 'f32', 'both', 4);
cv('cvtsd2ss', [0xf2, 0x0f, 0x5a], 'f64', 'both', 8);
cv('cvtdq2ps', [0x0f, 0x5b], 'int', 'both', 16, { align: true });
cv('cvtps2dq', [0x66, 0x0f, 0x5b], 'f32', 'both', 16, { align: true });
cv('cvttps2dq', [0xf3, 0x0f, 0x5b], 'f32', 'both', 16, { align: true });
cv('cvttpd2dq', [0x66, 0x0f, 0xe6], 'f64', 'both', 16, { align: true });
cv('cvtpd2dq', [0xf2, 0x0f, 0xe6], 'f64', 'both', 16, { align: true });
cv('cvtdq2pd', [0xf3, 0x0f, 0xe6], 'int', 'both', 8);
add({ name: 'stmxcsr', cat: 'moves', op: [0x0f, 0xae], val: 'int', rm: 'm', mem: 4, grp: 3 });
add({ name: 'ldmxcsr', cat: 'moves', op: [0x0f, 0xae], val: 'int', rm: 'm', mem: 4, grp: 2 });

// ---- values -------------------------------------------------------------------------------------------

const f32w = new Float32Array(1), f32u = new Uint32Array(f32w.buffer);
const F32_EDGE = [0, 0x80000000, 1, 0x80000001, 0x007fffff, 0x807fffff, 0x00800000, 0x80800000, 0x7f7fffff, 0xff7fffff,
  0x7f800000, 0xff800000, 0x7fc00000, 0xffc00000, 0x7fc12345, 0x7f800001, 0xffa00000, 0x3f800000, 0xbf800000, 0x3f000000,
  0x4b800001, 0x4effffff, 0x4f000000, 0xcf000000, 0xcf000001, 0x3fffffff, 0x00400000, 0x7effffff, 0x0ffffff0, 0x3f7fffff];
const F64_EDGE: [number, number][] = [[0, 0], [0, 0x80000000], [1, 0], [1, 0x80000000], [0xffffffff, 0xfffff], [0, 0x100000], [0, 0x80100000],
  [0xffffffff, 0x7fefffff], [0xffffffff, 0xffefffff], [0, 0x7ff00000], [0, 0xfff00000], [0, 0x7ff80000], [0, 0xfff80000],
  [0x12345678, 0x7ff81234], [1, 0x7ff00000], [0, 0xfff40000], [0, 0x3ff00000], [0, 0xbff00000], [0, 0x3fe00000],
  [0, 0x41e00000], [0x00200000, 0xc1e00000], [0xffc00000, 0x41dfffff], [0, 0xc1e00000], [0xe0000000, 0x47efffff],
  [0x20000000, 0x36a00000], [0, 0x380fffff], [0x10000000, 0x3ff00000], [0xffffffff, 0x3fefffff], [0, 0x00080000]];

function f32Value(r: Rng): number {
  const k = r.int(10);
  if (k < 3) return r.pick(F32_EDGE) >>> 0;
  if (k < 5) return r.u32();
  if (k < 7) { f32w[0] = (r.int(2001) - 1000) / r.pick([1, 2, 4, 3, 7, 1024]); return f32u[0]; }
  if (k < 8) return ((r.int(2) << 31) | (r.int(256) << 23) | r.int(8)) >>> 0; // few significand bits
  if (k < 9) return ((r.int(2) << 31) | (r.range(100, 150) << 23) | (r.u32() & 0x7fffff)) >>> 0; // mid-range
  return ((r.int(2) << 31) | (r.int(3) << 23) | (r.u32() & 0x7fffff)) >>> 0; // tiny
}
function f64Value(r: Rng): [number, number] {
  const k = r.int(10);
  if (k < 3) { const [lo, hi] = r.pick(F64_EDGE); return [lo >>> 0, hi >>> 0]; }
  if (k < 5) return [r.u32(), r.u32()];
  if (k < 7) { const d = new Float64Array([(r.int(2001) - 1000) / r.pick([1, 2, 4, 3, 7, 1024])]); const w = new Uint32Array(d.buffer); return [w[0], w[1]]; }
  if (k < 8) return [r.int(4), ((r.int(2) << 31) | (r.int(2048) << 20)) >>> 0];
  if (k < 9) return [r.u32(), ((r.int(2) << 31) | (r.range(0x380, 0x480) << 20) | (r.u32() & 0xfffff)) >>> 0];
  return [r.u32(), ((r.int(2) << 31) | (r.int(3) << 20) | (r.u32() & 0xfffff)) >>> 0];
}
const INT_EDGE = [0, 1, 0xffffffff, 0x7fffffff, 0x80000000, 0x7fff, 0x8000, 0xffff, 0x7f7f7f7f, 0x80808080, 0x00ff00ff, 0x12345678];
function fill16(r: Rng, val: Val, out: DataView, o: number): void {
  for (let i = 0; i < 16; i += val === 'f64' ? 8 : 4) {
    if (val === 'f64') { const [lo, hi] = f64Value(r); out.setUint32(o + i, lo, true); out.setUint32(o + i + 4, hi, true); }
    else if (val === 'f32') out.setUint32(o + i, f32Value(r), true);
    else out.setUint32(o + i, r.chance(0.3) ? r.pick(INT_EDGE) : r.chance(0.3) ? r.int(80) : r.u32(), true);
  }
}

// ---- case generation ----------------------------------------------------------------------------------

interface Case { form: Form; input: Uint8Array }

function makeCase(r: Rng, form: Form): Case {
  const input = new Uint8Array(IN_SIZE);
  const dv = new DataView(input.buffer);
  const code: number[] = [...form.op];
  const useMem = form.rm === 'm' || (form.rm === 'both' && r.chance(0.4));
  let reg = form.grp !== undefined && form.grp >= 0 ? form.grp : r.int(8);
  if (form.regGpr) while (reg === 4) reg = r.int(8);
  let rmv = r.int(8);
  if (form.rmGpr) while (rmv === 4) rmv = r.int(8);
  let esi = DATA + 16;
  if (form.grp === -1) { /* no ModRM */ } else if (useMem) {
    const disp = r.chance(0.5) ? 0 : 16;
    if (form.align && r.chance(0.08)) esi += r.range(1, 15);
    code.push(disp ? 0x46 | (reg << 3) : 0x06 | (reg << 3));
    if (disp) code.push(disp);
  } else code.push(0xc0 | (reg << 3) | rmv);
  if (form.imm === 'any') code.push(r.int(256));
  else if (form.imm === 'cmp') code.push(r.int(8));
  else if (form.imm === 'shift') code.push(r.chance(0.8) ? r.int(r.pick([8, 16, 32, 64])) : r.int(256));
  input.set(code, 0);
  input[15] = code.length;
  for (let i = 0; i < 8; i++) dv.setUint32(16 + i * 4, r.chance(0.3) ? r.pick(INT_EDGE) : r.u32(), true);
  dv.setUint32(16 + 6 * 4, esi, true);
  if (form.maskmov) dv.setUint32(16 + 7 * 4, DATA + r.int(40), true);
  dv.setUint32(48, 0x202 | (r.u32() & 0x8d5), true);
  const memVal: Val = form.name === 'ldmxcsr' ? 'int' : form.val;
  for (let o = 0; o < 64; o += 16) fill16(r, memVal, dv, 52 + o);
  if (form.name === 'ldmxcsr') dv.setUint32(52 + 16, r.chance(0.8) ? r.u32() & 0xffff : r.u32(), true);
  // FXSAVE image: FCW default, random TOP and abridged tags, MMX registers with int values.
  const fx = 116;
  dv.setUint16(fx, 0x037f, true);
  dv.setUint16(fx + 2, r.int(8) << 11, true);
  input[fx + 4] = r.int(256);
  for (let i = 0; i < 8; i++) {
    const mmVal: Val = form.cat === 'cvt' && form.val === 'int' ? 'int' : 'int';
    fill16(r, mmVal, dv, fx + 32 + i * 16);
    dv.setUint16(fx + 32 + i * 16 + 8, r.chance(0.5) ? 0xffff : r.u32() & 0xffff, true);
    for (let k = 10; k < 16; k++) input[fx + 32 + i * 16 + k] = 0;
  }
  for (let i = 0; i < 8; i++) fill16(r, form.val, dv, fx + 160 + i * 16);
  // MXCSR: a random rounding mode and FTZ/DAZ; flags clear or random; mostly masked exceptions.
  let mx = (r.int(4) << 13) | (r.chance(0.3) ? 0x8000 : 0) | (r.chance(0.3) ? 0x40 : 0);
  mx |= r.chance(0.5) ? 0 : r.chance(0.5) ? 0x20 : r.int(64);
  mx |= r.chance(0.8) ? 0x1f80 : (r.int(64) << 7);
  if (r.chance(0.3)) mx = 0x1f80 | (r.chance(0.5) ? 0x20 : 0);
  dv.setUint32(fx + 24, mx, true);
  return { form, input };
}

// ---- running on the vCPU and comparing -----------------------------------------------------------------

const vcpu = createUserTestCpu(4 << 20);

function runVcpu(input: Uint8Array): Uint8Array {
  const out = new Uint8Array(OUT_SIZE);
  const dv = new DataView(input.buffer, input.byteOffset);
  vcpu.writeMem(CODE, input.subarray(0, input[15]));
  vcpu.writeMem(DATA, input.subarray(52, 116));
  for (let i = 0; i < 8; i++) vcpu.setGpr(i, dv.getUint32(16 + i * 4, true));
  vcpu.setGpr(4, 0x3ff000);
  vcpu.setEflags(dv.getUint32(48, true));
  vcpu.setEip(CODE);
  vcpu.loadFxsave(input.slice(116, 628));
  const v = vcpu.step();
  const o = new DataView(out.buffer);
  o.setInt32(0, v, true);
  for (let i = 0; i < 8; i++) o.setUint32(4 + i * 4, vcpu.getGpr(i), true);
  o.setUint32(36, vcpu.getEflags(), true);
  out.set(vcpu.readMem(DATA, 64), 40);
  out.set(vcpu.storeFxsave(), 104);
  return out;
}

/** Byte ranges compared: vector, GPRs but ESP, EFLAGS (arith bits), data, FCW/FSW/FTW, MXCSR, ST/MM, XMM. */
function diff(form: Form, nat: Uint8Array, emu: Uint8Array): string | null {
  const nd = new DataView(nat.buffer, nat.byteOffset), ed = new DataView(emu.buffer, emu.byteOffset);
  const nv = nd.getInt32(0, true), ev = ed.getInt32(0, true);
  if (nv !== ev) return `vector native ${nv} vcpu ${ev}`;
  for (let i = 0; i < 8; i++) if (i !== 4 && nd.getUint32(4 + i * 4, true) !== ed.getUint32(4 + i * 4, true)) return `gpr${i}`;
  if ((nd.getUint32(36, true) & 0x8d5) !== (ed.getUint32(36, true) & 0x8d5)) return `eflags ${nd.getUint32(36, true).toString(16)} vs ${ed.getUint32(36, true).toString(16)}`;
  for (let i = 40; i < 104; i++) if (nat[i] !== emu[i]) return `mem+${i - 40}`;
  const fx = 104;
  for (const [a, b, what] of [[0, 5, 'fcw/fsw/ftw'], [24, 28, 'mxcsr']] as const) {
    for (let i = a; i < b; i++) if (nat[fx + i] !== emu[fx + i]) return `${what} native ${Buffer.from(nat.subarray(fx + a, fx + b)).toString('hex')} vcpu ${Buffer.from(emu.subarray(fx + a, fx + b)).toString('hex')}`;
  }
  for (let r = 0; r < 8; r++) for (let i = 0; i < 10; i++) if (nat[fx + 32 + r * 16 + i] !== emu[fx + 32 + r * 16 + i]) return `st${r}`;
  for (let x = 0; x < 8; x++) {
    for (let w = 0; w < 4; w++) {
      const o = fx + 160 + x * 16 + w * 4;
      const a = nd.getUint32(o, true), b = ed.getUint32(o, true);
      if (a === b) continue;
      if (form.approx && approxOk(a, b)) continue;
      return `xmm${x}[${w}] native ${a.toString(16)} vcpu ${b.toString(16)}`;
    }
  }
  return null;
}

/** Two RCP/RSQRT results agree if equal, or both finite, same sign and within 2·1.5·2^-12 of each other. */
function approxOk(a: number, b: number): boolean {
  f32u[0] = a; const x = f32w[0]; f32u[0] = b; const y = f32w[0];
  if (!Number.isFinite(x) || !Number.isFinite(y) || Math.sign(x) !== Math.sign(y)) return false;
  if (Math.abs(x) < 2 ** -125 || Math.abs(y) < 2 ** -125) return Math.abs(x - y) < 2 ** -125; // flush region
  return Math.abs(x - y) <= 3 * 2 ** -12 * Math.abs(x);
}

test('SIMD differential against the host CPU', { skip: nativeOnly('SSE results and MXCSR flags bit for bit (it sets no MXCSR.DE for denormal operands)') || false }, () => {
  const exe = buildNative();
  const seed = Number(process.env.SIMD_SEED ?? 12345);
  const r = new Rng(seed);
  const perForm = Number(process.env.SIMD_PER_FORM ?? 220);
  const cases: Case[] = [];
  // Floating-point forms carry the rounding/flag/NaN logic: give them three times the cases.
  for (const f of FORMS) for (let i = 0, n = /fp|cmp|cvt/.test(f.cat) ? 3 * perForm : perForm; i < n; i++) cases.push(makeCase(r, f));
  const inBuf = new Uint8Array(cases.length * IN_SIZE);
  cases.forEach((c, i) => inBuf.set(c.input, i * IN_SIZE));
  const dir = join(tmpdir(), `trapeze-simd-run-${process.pid}`);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'in'), inBuf);
  const { cmd, args } = i386Command(exe, [join(dir, 'in'), join(dir, 'out')]);
  const res = spawnSync(cmd, args, { encoding: 'utf8' });
  assert.equal(res.status, 0, `native harness failed: ${res.stderr}`);
  const outBuf = readFileSync(join(dir, 'out'));
  assert.equal(outBuf.length, cases.length * OUT_SIZE);
  const stats = new Map<string, { n: number; bad: number }>();
  const failures: string[] = [];
  cases.forEach((c, i) => {
    const nat = outBuf.subarray(i * OUT_SIZE, (i + 1) * OUT_SIZE);
    let emu: Uint8Array, d: string | null;
    try { emu = runVcpu(c.input); d = diff(c.form, nat, emu); } catch (e) { d = `threw ${(e as Error).message}`; }
    const s = stats.get(c.form.cat) ?? { n: 0, bad: 0 };
    s.n++;
    if (d) {
      s.bad++;
      if (failures.length < 60 && failures.filter((f) => f.startsWith(c.form.name + ' ')).length < 3) {
        const hex = (a: Uint8Array) => Buffer.from(a).toString('hex');
        failures.push(`${c.form.name} [${hex(c.input.subarray(0, c.input[15]))}] mxcsr=${new DataView(c.input.buffer).getUint32(116 + 24, true).toString(16)}: ${d}`);
      }
    }
    stats.set(c.form.cat, s);
  });
  for (const [cat, s] of stats) console.log(`simd: ${cat} ${s.n} cases, ${s.bad} mismatches`);
  if (failures.length) console.log(failures.join('\n'));
  assert.equal(failures.length, 0, `${failures.length} mismatching cases (first shown above)`);
});
