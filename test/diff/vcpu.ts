// Runs cases on the vCPU through its test interface (src/cpu/testing.ts).

import type { UserTestCpu } from '../../src/cpu/testing.ts';
import { AREA, CODE_AT, DATA_AT, STACK_AT, landingPad, type CaseResult } from './format.ts';
import type { Case } from './generate.ts';

export interface Pristine {
  data: Uint8Array;
  stack: Uint8Array;
}

const AREAS = [DATA_AT, STACK_AT];

/** Merges [addr, len) ranges, clipped to the data and stack areas. */
export function clipRanges(ranges: [number, number][]): [number, number][] {
  const out: [number, number][] = [];
  for (const at of AREAS) {
    const rs: [number, number][] = [];
    for (const [a, n] of ranges) {
      const lo = Math.max(a, at), hi = Math.min(a + n, at + AREA);
      if (lo < hi) rs.push([lo, hi]);
    }
    rs.sort((x, y) => x[0] - y[0]);
    for (const [lo, hi] of rs) {
      const last = out[out.length - 1];
      if (last && lo <= last[0] + last[1] && last[0] >= at) last[1] = Math.max(last[1], hi - last[0]);
      else out.push([lo, hi - lo]);
    }
  }
  return out;
}

export function pristineByte(p: Pristine, a: number): number {
  return a >= STACK_AT ? p.stack[a - STACK_AT] : p.data[a - DATA_AT];
}

/** Initial byte at `a`: pristine contents overlaid with the case's patches. */
export function initialByte(c: Case, p: Pristine, a: number): number {
  let v = pristineByte(p, a);
  for (const q of c.patches) if (a >= q.addr && a < q.addr + q.bytes.length) v = q.bytes[a - q.addr];
  return v;
}

export class VcpuRunner {
  constructor(
    readonly cpu: UserTestCpu,
    readonly pristine: Pristine,
    readonly fxDefault: Uint8Array,
  ) {
    cpu.writeMem(DATA_AT, pristine.data);
    cpu.writeMem(STACK_AT, pristine.stack);
  }

  /**
   * Runs one case and reads back its architectural state.  Memory is read
   * in `ranges` (the areas the instruction was expected to touch) and then
   * put back to pristine there; `fullCheck` verifies the rest.
   */
  run(c: Case, ranges: [number, number][]): CaseResult {
    const cpu = this.cpu;
    const code = new Uint8Array(32);
    code.set(c.code);
    code.set(landingPad(CODE_AT + c.code.length), c.code.length);
    cpu.writeMem(CODE_AT, code);
    for (const p of c.patches) cpu.writeMem(p.addr, p.bytes);
    for (let i = 0; i < 8; i++) cpu.setGpr(i, c.gpr[i]);
    cpu.setEflags(c.eflags);
    cpu.loadFxsave(c.fx ?? this.fxDefault);
    cpu.setEip(CODE_AT);
    let vector: number;
    try {
      vector = cpu.step();
    } catch (e) {
      // Not an architectural outcome: report it as a mismatch, then reset memory.
      this.resetAll();
      throw e;
    }
    const gpr = new Uint32Array(8);
    for (let i = 0; i < 8; i++) gpr[i] = cpu.getGpr(i);
    const res: CaseResult = {
      vector,
      eip: cpu.getEip(),
      gpr,
      eflags: cpu.getEflags(),
      fx: cpu.storeFxsave().slice(),
      changes: new Map(),
    };
    for (const [a, n] of ranges) {
      const got = cpu.readMem(a, n);
      for (let k = 0; k < n; k++) if (got[k] !== initialByte(c, this.pristine, a + k)) res.changes.set(a + k, got[k]);
      cpu.writeMem(a, a >= STACK_AT ? this.pristine.stack.subarray(a - STACK_AT, a - STACK_AT + n) : this.pristine.data.subarray(a - DATA_AT, a - DATA_AT + n));
    }
    return res;
  }

  /** Addresses in the data/stack areas that differ from pristine (stray writes outside the ranges read back). */
  fullCheck(): number[] {
    const bad: number[] = [];
    for (const [at, p] of [[DATA_AT, this.pristine.data], [STACK_AT, this.pristine.stack]] as const) {
      const got = this.cpu.readMem(at, AREA);
      if (Buffer.compare(got, p) === 0) continue;
      for (let k = 0; k < AREA; k++) if (got[k] !== p[k]) bad.push(at + k);
    }
    return bad;
  }

  resetAll(): void {
    this.cpu.writeMem(DATA_AT, this.pristine.data);
    this.cpu.writeMem(STACK_AT, this.pristine.stack);
  }
}
