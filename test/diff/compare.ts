// Compares the vCPU's result with the native oracle's, masking only what
// the architecture leaves undefined, and formats mismatches for humans.

import { GPR_NAMES, type CaseResult } from './format.ts';
import type { Case } from './generate.ts';
import { undefinedEflags, undefinedFsw } from './undefined.ts';
import { initialByte, type Pristine } from './vcpu.ts';

const hex = (v: number, w = 8) => (v >>> 0).toString(16).padStart(w, '0');
const hexBytes = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join(' ');

const VECTORS: Record<number, string> = {
  [-1]: 'none', 0: '#DE', 1: '#DB', 3: '#BP', 4: '#OF', 5: '#BR', 6: '#UD', 7: '#NM', 12: '#SS', 13: '#GP', 14: '#PF', 16: '#MF',
  17: '#AC', 19: '#XM',
};
export const vectorName = (v: number) => `${VECTORS[v] ?? `vector ${v}`}${v >= 0 ? ` (${v})` : ''}`;

// EFLAGS.RF is never visible to the pushes the native side records with, so it is not compared.
const EFLAGS_IGNORED = 0x10000;

/*
 * FXSAVE fields compared.  Not compared: FOP, FIP/FCS, FDP/FDS (AMD's FXSAVE
 * stores them only while an exception is pending, and the selectors differ
 * between a Linux process and the vCPU), MXCSR_MASK (a property of each CPU),
 * the reserved bytes of every register slot and everything from byte 288 on
 * (XMM8-15 and reserved space, not visible in 32-bit mode).
 */
interface FxField {
  name: string;
  off: number;
  len: number;
}
const FX_FIELDS: FxField[] = [
  { name: 'fcw', off: 0, len: 2 },
  { name: 'fsw', off: 2, len: 2 },
  { name: 'ftw', off: 4, len: 1 },
  { name: 'mxcsr', off: 24, len: 4 },
  ...Array.from({ length: 8 }, (_, i) => ({ name: `st${i}`, off: 32 + 16 * i, len: 10 })),
  ...Array.from({ length: 8 }, (_, i) => ({ name: `xmm${i}`, off: 160 + 16 * i, len: 16 })),
];

function fxField(fx: Uint8Array, f: FxField): string {
  const b = fx.subarray(f.off, f.off + f.len);
  if (f.len <= 4) {
    let v = 0;
    for (let k = f.len - 1; k >= 0; k--) v = v * 256 + b[k];
    return hex(v, f.len * 2);
  }
  return Array.from(b).reverse().map((x) => x.toString(16).padStart(2, '0')).join('');
}

/** Orders finite 80-bit values so that neighbours differ by one: exponent then fraction (the
 *  integer bit is implied by a nonzero exponent), so a 1-ulp step across a binade is still 1. */
function f80Ordinal(b: Uint8Array): bigint | null {
  const dv = new DataView(b.buffer, b.byteOffset, 10);
  const se = dv.getUint16(8, true);
  const exp = se & 0x7fff;
  const sig = dv.getBigUint64(0, true);
  if (exp === 0x7fff || (exp !== 0 && !(sig >> 63n))) return null; // NaN, infinity, unnormal: exact only
  const ord = (BigInt(exp) << 63n) + (sig & ((1n << 63n) - 1n)) + (exp === 0 ? sig >> 63n << 63n : 0n);
  return se & 0x8000 ? -ord : ord;
}

function withinUlps(a: Uint8Array, b: Uint8Array, ulp: number): boolean {
  let same = true;
  for (let k = 0; k < 10; k++) if (a[k] !== b[k]) same = false;
  if (same) return true;
  const x = f80Ordinal(a), y = f80Ordinal(b);
  if (x === null || y === null || (a[9] ^ b[9]) & 0x80) return false; // the sign is always exact
  const d = x > y ? x - y : y - x;
  return d <= BigInt(ulp);
}

/** Differences between the oracle's result and the vCPU's, one readable line each (empty = match). */
export function compareResults(c: Case, exp: CaseResult, got: CaseResult, pristine: Pristine): string[] {
  const diffs: string[] = [];
  if (exp.vector !== got.vector) diffs.push(`exception: expected ${vectorName(exp.vector)}, got ${vectorName(got.vector)}`);
  if (exp.eip !== got.eip) diffs.push(`eip: expected ${hex(exp.eip)}, got ${hex(got.eip)}`);
  for (let i = 0; i < 8; i++) {
    if (exp.gpr[i] !== got.gpr[i]) diffs.push(`${GPR_NAMES[i]}: expected ${hex(exp.gpr[i])}, got ${hex(got.gpr[i])}`);
  }
  // Undefined flags are free only when the instruction completed; a fault
  // must leave EFLAGS exactly as it was.
  const ctx = { os: c.form.os, count: c.count };
  const completed = exp.vector === -1;
  const undef = completed ? undefinedEflags(c.form.mnem, ctx) : 0;
  const fd = (exp.eflags ^ got.eflags) & ~(undef | EFLAGS_IGNORED);
  if (fd) diffs.push(`eflags: expected ${hex(exp.eflags)}, got ${hex(got.eflags)} (differ ${hex(fd)}, undefined ${hex(undef, 3)})`);
  const approx = c.form.approx;
  const fswUndef = (completed ? undefinedFsw(c.form.mnem, ctx) : 0) | (approx?.fsw ?? 0);
  for (const f of FX_FIELDS) {
    if (approx && f.name.startsWith('st') && approx.st.includes(f.off / 16 - 2)) {
      if (!withinUlps(exp.fx.subarray(f.off, f.off + 10), got.fx.subarray(f.off, f.off + 10), approx.ulp)) {
        diffs.push(`${f.name}: expected ${fxField(exp.fx, f)}, got ${fxField(got.fx, f)} (more than ${approx.ulp} ulp apart)`);
      }
      continue;
    }
    let same = true;
    for (let k = 0; k < f.len; k++) {
      let m = 0xff;
      if (f.name === 'fsw') m = ~(fswUndef >>> (8 * k)) & 0xff;
      if ((exp.fx[f.off + k] ^ got.fx[f.off + k]) & m) same = false;
    }
    if (!same) diffs.push(`${f.name}: expected ${fxField(exp.fx, f)}, got ${fxField(got.fx, f)}`);
  }
  const addrs = new Set([...exp.changes.keys(), ...got.changes.keys()]);
  const memDiffs: string[] = [];
  for (const a of [...addrs].sort((x, y) => x - y)) {
    if (c.form.memSkip && c.ea >= 0 && c.form.memSkip.some(([lo, hi]) => a - c.ea >= lo && a - c.ea < hi)) continue;
    const init = initialByte(c, pristine, a);
    const e = exp.changes.get(a) ?? init;
    const g = got.changes.get(a) ?? init;
    if (e !== g) memDiffs.push(`mem[${hex(a)}]: expected ${hex(e, 2)}, got ${hex(g, 2)} (was ${hex(init, 2)})`);
  }
  if (memDiffs.length > 8) diffs.push(...memDiffs.slice(0, 8), `... ${memDiffs.length - 8} more memory bytes differ`);
  else diffs.push(...memDiffs);
  return diffs;
}

/** A multi-line description of a mismatching case. */
export function describeMismatch(c: Case, exp: CaseResult, got: CaseResult | null, diffs: string[]): string {
  const lines: string[] = [];
  lines.push(`${c.form.name} [${c.form.cat}]  bytes: ${hexBytes(c.code)}${c.count !== undefined ? `  count=${c.count}` : ''}`);
  lines.push(`  in:  ${GPR_NAMES.map((n, i) => `${n}=${hex(c.gpr[i])}`).join(' ')} eflags=${hex(c.eflags)}`);
  if (c.ea >= 0) lines.push(`  memory operand at ${hex(c.ea)}`);
  for (const p of c.patches.slice(0, 4)) lines.push(`  mem[${hex(p.addr)}] = ${hexBytes(p.bytes)}`);
  if (c.patches.length > 4) lines.push(`  ... ${c.patches.length - 4} more memory patches`);
  if (c.fx) {
    const changed = FX_FIELDS.map((f) => `${f.name}=${fxField(c.fx!, f)}`);
    lines.push(`  fx in: ${changed.slice(0, 5).join(' ')}`);
    lines.push(`         ${changed.slice(5, 13).join(' ')}`);
    lines.push(`         ${changed.slice(13).join(' ')}`);
  }
  lines.push(`  expected: exception ${vectorName(exp.vector)}${exp.signo ? ` (signal ${exp.signo}, code ${exp.sicode}, err ${hex(exp.err ?? 0, 4)}, addr ${hex(exp.faultAddr ?? 0)})` : ''}, eip=${hex(exp.eip)}`);
  lines.push(`            ${GPR_NAMES.map((n, i) => `${n}=${hex(exp.gpr[i])}`).join(' ')} eflags=${hex(exp.eflags)}`);
  if (got) {
    lines.push(`  got:      exception ${vectorName(got.vector)}, eip=${hex(got.eip)}`);
    lines.push(`            ${GPR_NAMES.map((n, i) => `${n}=${hex(got.gpr[i])}`).join(' ')} eflags=${hex(got.eflags)}`);
  }
  for (const d of diffs) lines.push(`  differs: ${d}`);
  return lines.join('\n');
}
