// String instructions (SDM vol. 2 "MOVS", "CMPS", "STOS", "LODS", "SCAS", "INS", "OUTS", "REP"):
// the address size picks SI/DI/CX or ESI/EDI/ECX, DF the direction. A REP instruction runs a bounded
// number of iterations per step and then restarts itself, so interrupts are taken between iterations
// and a fault leaves the registers describing exactly the iterations done (SDM vol. 1 §7.3.9.2).

import type { CPU } from './cpu.ts';
import { def1 } from './optable.ts';
import { ALU_CMP, alu, linRead, linWrite, osz, regGet, regSet } from './operands.ts';
import { DF, ES } from './constants.ts';
import { checkIoPermission } from './system.ts';

/** Iterations of one REP instruction before it yields to the run loop. */
const REP_CHUNK = 4096;

function indexReg(c: CPU, r: number): number { return c.as32 ? c.r32[r] : c.r16[r << 1]; }
function advance(c: CPU, r: number, delta: number): void {
  if (c.as32) c.r32[r] = (c.r32[r] + delta) | 0; else c.r16[r << 1] = c.r16[r << 1] + delta;
}
function counter(c: CPU): number { return c.as32 ? c.r32[1] >>> 0 : c.r16[2]; }
function decCounter(c: CPU): void { if (c.as32) c.r32[1] = (c.r32[1] - 1) | 0; else c.r16[2] = c.r16[2] - 1; }

/**
 * Runs `body` once without REP, or up to the count with REP. `cmp` instructions stop on the REPE/REPNE
 * condition. Registers are updated after each completed iteration.
 */
function repeat(c: CPU, cmp: boolean, body: () => void): void {
  if (c.rep === 0) { body(); return; }
  let n = 0;
  while (counter(c) !== 0) {
    body();
    decCounter(c);
    if (cmp && (c.rep === 0xf3 ? !c.getZF() : c.getZF())) return;
    if (++n >= REP_CHUNK && counter(c) !== 0) { c.eip = c.prevEip; return; }
  }
}

/**
 * REP MOVS/STOS fast path (32-bit addresses, DF=0, flat segments): copies or fills as many whole elements
 * as lie in the current source and destination pages with one TLB check per page. It stops, leaving the
 * registers exact, wherever the per-element path must take over: an element straddling a page, a page not
 * yet in the TLB with the needed permission (the per-element path then walks, and faults precisely), MMIO
 * (never has fast-path TLB bits), or a destination overlapping just above the source (MOVS must then
 * replicate the pattern element by element, not memmove). Returns the elements done.
 */
function repFast(c: CPU, sz: number, src: number, fill: number, limit: number): number {
  const r = c.r32, pool = c.pool;
  let done = 0;
  while (done < limit) {
    const count = r[1] >>> 0;
    if (count === 0) break;
    const dl = (c.segBase[ES] + r[7]) | 0;
    const dv = dl >>> 12;
    if (!(c.tlbFlags[dv] & c.wrMask)) break;
    let k = Math.min(count, limit - done, ((0x1000 - (dl & 0xfff)) / sz) | 0);
    const dh = c.tlbHost[dv] | (dl & 0xfff);
    if (src >= 0) {
      const sl = (c.segBase[src] + r[6]) | 0;
      const sv = sl >>> 12;
      if (!(c.tlbFlags[sv] & c.rdMask)) break;
      k = Math.min(k, ((0x1000 - (sl & 0xfff)) / sz) | 0);
      if (k === 0) break;
      const sh = c.tlbHost[sv] | (sl & 0xfff);
      const bytes = k * sz;
      if (dh > sh && dh < sh + bytes) break;
      pool.copyWithin(dh, sh, sh + bytes);
      r[6] = (r[6] + bytes) | 0;
    } else {
      if (k === 0) break;
      if (sz === 1) pool.fill(fill, dh, dh + k);
      else if (sz === 2) for (let i = 0; i < k; i++) c.dv.setUint16(dh + 2 * i, fill, true);
      else for (let i = 0; i < k; i++) c.dv.setInt32(dh + 4 * i, fill, true);
    }
    r[7] = (r[7] + k * sz) | 0;
    r[1] = (r[1] - k) | 0;
    done += k;
  }
  return done;
}

/**
 * REP MOVS/STOS: the fast path where it applies, else one element the per-element way, then the fast path
 * again. The element the fast path cannot do is usually the first on a page missing from the TLB (after a
 * CR3 write, every page of a kernel copy to or from user memory): doing it the slow way fills the TLB, or
 * faults precisely, and the rest of the page goes fast again instead of the whole chunk going slow.
 */
function repMoveFill(c: CPU, sz: number, src: number, fill: number, one: () => void): void {
  if (!c.as32 || (c.flags & DF) || !(c.segFast[ES] & 2) || (src >= 0 && !(c.segFast[src] & 1))) {
    repeat(c, false, one);
    return;
  }
  let n = 0;
  for (;;) {
    n += repFast(c, sz, src, fill, REP_CHUNK - n);
    if (counter(c) === 0) return;
    if (n >= REP_CHUNK) { c.eip = c.prevEip; return; }
    one();
    decCounter(c);
    n++;
  }
}

const stringOps = (sz1: boolean) => {
  const size = (c: CPU) => (sz1 ? 1 : osz(c));
  const step = (c: CPU, sz: number) => ((c.flags & DF) ? -sz : sz);

  const movs = (c: CPU) => {
    const sz = size(c), d = step(c, sz), src = c.dataSeg();
    const one = (): void => {
      const v = linRead(c, c.lin(src, indexReg(c, 6), sz, false), sz);
      linWrite(c, c.lin(ES, indexReg(c, 7), sz, true), sz, v);
      advance(c, 6, d); advance(c, 7, d);
    };
    if (c.rep) repMoveFill(c, sz, src, 0, one); else one();
  };
  const cmps = (c: CPU) => {
    const sz = size(c), d = step(c, sz), src = c.dataSeg();
    repeat(c, true, () => {
      const a = linRead(c, c.lin(src, indexReg(c, 6), sz, false), sz);
      const b = linRead(c, c.lin(ES, indexReg(c, 7), sz, false), sz);
      alu(c, ALU_CMP, a, b, sz);
      advance(c, 6, d); advance(c, 7, d);
    });
  };
  const stos = (c: CPU) => {
    const sz = size(c), d = step(c, sz);
    const v = regGet(c, 0, sz);
    const one = (): void => {
      linWrite(c, c.lin(ES, indexReg(c, 7), sz, true), sz, v);
      advance(c, 7, d);
    };
    if (c.rep) repMoveFill(c, sz, -1, v, one); else one();
  };
  const lods = (c: CPU) => {
    const sz = size(c), d = step(c, sz), src = c.dataSeg();
    repeat(c, false, () => {
      regSet(c, 0, sz, linRead(c, c.lin(src, indexReg(c, 6), sz, false), sz));
      advance(c, 6, d);
    });
  };
  const scas = (c: CPU) => {
    const sz = size(c), d = step(c, sz);
    repeat(c, true, () => {
      const b = linRead(c, c.lin(ES, indexReg(c, 7), sz, false), sz);
      alu(c, ALU_CMP, regGet(c, 0, sz), b, sz);
      advance(c, 7, d);
    });
  };
  const ins = (c: CPU) => {
    const sz = size(c), d = step(c, sz);
    const port = c.r16[4];
    checkIoPermission(c, port, sz);
    repeat(c, false, () => {
      const l = c.lin(ES, indexReg(c, 7), sz, true);
      c.probeWrite(l, sz);
      linWrite(c, l, sz, c.io.in(port, sz as 1 | 2 | 4));
      advance(c, 7, d);
    });
  };
  const outs = (c: CPU) => {
    const sz = size(c), d = step(c, sz), src = c.dataSeg();
    const port = c.r16[4];
    checkIoPermission(c, port, sz);
    repeat(c, false, () => {
      c.io.out(port, sz as 1 | 2 | 4, linRead(c, c.lin(src, indexReg(c, 6), sz, false), sz));
      advance(c, 6, d);
    });
  };
  return { movs, cmps, stos, lods, scas, ins, outs };
};

const b = stringOps(true), v = stringOps(false);
def1(0x6c, 'insb', b.ins); def1(0x6d, 'ins', v.ins);
def1(0x6e, 'outsb', b.outs); def1(0x6f, 'outs', v.outs);
def1(0xa4, 'movsb', b.movs); def1(0xa5, 'movs', v.movs);
def1(0xa6, 'cmpsb', b.cmps); def1(0xa7, 'cmps', v.cmps);
def1(0xaa, 'stosb', b.stos); def1(0xab, 'stos', v.stos);
def1(0xac, 'lodsb', b.lods); def1(0xad, 'lods', v.lods);
def1(0xae, 'scasb', b.scas); def1(0xaf, 'scas', v.scas);
