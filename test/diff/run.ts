// The differential run: generate cases, run them natively in batches (the
// next batch runs in the harness while the vCPU works on the current one),
// run each on the vCPU, compare.

import type { UserTestCpu } from '../../src/cpu/testing.ts';
import { compareResults, describeMismatch } from './compare.ts';
import { AREA, decodeResults, encodeCases, type CaseResult } from './format.ts';
import { FORMS } from './forms.ts';
import { generate, type Case, type Category, type Form } from './generate.ts';
import { buildHarness, runNative } from './native.ts';
import { Rng } from './rng.ts';
import { clipRanges, VcpuRunner, type Pristine } from './vcpu.ts';

export interface DiffOptions {
  total: number; // cases, spread over the selected forms by weight
  seed: number;
  filter?: RegExp; // on "category form-name"
  createCpu: () => UserTestCpu;
  batch?: number;
  fullCheckEvery?: number; // cases between checks of the whole data and stack areas
  keep?: number; // mismatch descriptions kept
}

export interface CategoryStats {
  cases: number;
  mismatches: number;
  exceptions: number; // cases where the oracle saw an exception
}

export interface DiffReport {
  stats: Map<Category, CategoryStats>;
  mismatches: string[];
  mismatchCount: number;
  perForm: Map<string, number>; // form name -> mismatches
  nativeMs: number;
  vcpuMs: number;
}

/** The FXSAVE image of a freshly FNINIT'ed FPU with default MXCSR. */
export function defaultFx(): Uint8Array {
  const fx = new Uint8Array(512);
  const dv = new DataView(fx.buffer);
  dv.setUint16(0, 0x037f, true);
  dv.setUint32(24, 0x1f80, true);
  return fx;
}

/** How many cases each form gets: its share of `total` by weight, at least one. */
export function schedule(forms: Form[], total: number): number[] {
  const w = forms.reduce((s, f) => s + (f.weight ?? 1), 0);
  return forms.map((f) => Math.max(1, Math.round((total * (f.weight ?? 1)) / w)));
}

export async function runDiff(o: DiffOptions): Promise<DiffReport> {
  const rng = new Rng(o.seed);
  const pristine: Pristine = { data: rng.bytes(AREA), stack: rng.bytes(AREA) };
  const fxDefault = defaultFx();
  const forms = FORMS.filter((f) => !o.filter || o.filter.test(`${f.cat} ${f.name}`));
  if (forms.length === 0) throw new Error('no instruction form matches the filter');
  const counts = schedule(forms, o.total);
  // Interleave the forms so every batch mixes instructions (a stray write by
  // one form is then caught next to unrelated forms, not hidden by them).
  const order: number[] = [];
  counts.forEach((n, i) => {
    for (let k = 0; k < n; k++) order.push(i);
  });
  for (let i = order.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [order[i], order[j]] = [order[j], order[i]];
  }

  const exe = buildHarness();
  const batch = o.batch ?? 20000;
  const fullEvery = o.fullCheckEvery ?? 64;
  const keep = o.keep ?? 5;
  const report: DiffReport = { stats: new Map(), mismatches: [], mismatchCount: 0, perForm: new Map(), nativeMs: 0, vcpuMs: 0 };
  const runner = new VcpuRunner(o.createCpu(), pristine, fxDefault);

  const makeBatch = (start: number) => {
    const cases: Case[] = [];
    for (let k = start; k < Math.min(order.length, start + batch); k++) cases.push(generate(rng, forms[order[k]], fxDefault, pristine));
    const t0 = Date.now();
    const p = runNative(exe, encodeCases(pristine.data, pristine.stack, fxDefault, cases)).then((buf) => {
      report.nativeMs += Date.now() - t0;
      return decodeResults(buf, cases, fxDefault);
    });
    return { cases, results: p };
  };

  const fail = (c: Case, exp: CaseResult, got: CaseResult | null, diffs: string[]) => {
    report.mismatchCount++;
    report.stats.get(c.form.cat)!.mismatches++;
    report.perForm.set(c.form.name, (report.perForm.get(c.form.name) ?? 0) + 1);
    if (report.mismatches.length < keep) report.mismatches.push(describeMismatch(c, exp, got, diffs));
  };

  const check = (c: Case, exp: CaseResult): boolean => {
    const st = report.stats.get(c.form.cat) ?? { cases: 0, mismatches: 0, exceptions: 0 };
    report.stats.set(c.form.cat, st);
    st.cases++;
    if (exp.vector !== -1) st.exceptions++;
    const ranges = clipRanges([
      ...c.windows,
      ...c.patches.map((p): [number, number] => [p.addr, p.bytes.length]),
      ...[...exp.changes.keys()].map((a): [number, number] => [a, 1]),
    ]);
    let got: CaseResult;
    try {
      got = runner.run(c, ranges);
    } catch (e) {
      fail(c, exp, null, [`vCPU threw: ${e instanceof Error ? (e.stack ?? e.message).split('\n').slice(0, 4).join(' | ') : String(e)}`]);
      return false;
    }
    const diffs = compareResults(c, exp, got, pristine);
    if (diffs.length) fail(c, exp, got, diffs);
    return diffs.length === 0;
  };

  let next = makeBatch(0);
  for (let start = 0; start < order.length; start += batch) {
    const cur = next;
    const results = await cur.results;
    if (start + batch < order.length) next = makeBatch(start + batch);
    const t0 = Date.now();
    for (let b = 0; b < cur.cases.length; b += fullEvery) {
      const end = Math.min(cur.cases.length, b + fullEvery);
      for (let k = b; k < end; k++) check(cur.cases[k], results[k]);
      const stray = runner.fullCheck();
      if (stray.length === 0) continue;
      // Something wrote outside the ranges read back: replay the block case
      // by case with a full check after each to name the culprit.
      runner.resetAll();
      let named = false;
      for (let k = b; k < end; k++) {
        const c = cur.cases[k];
        const exp = results[k];
        try {
          runner.run(c, clipRanges([...c.windows, ...c.patches.map((p): [number, number] => [p.addr, p.bytes.length])]));
        } catch {
          continue; // already reported
        }
        const bad = runner.fullCheck();
        if (bad.length) {
          runner.resetAll();
          const stray = bad.filter((a) => !exp.changes.has(a));
          if (stray.length) {
            named = true;
            fail(c, exp, null, [`stray memory writes at ${stray.slice(0, 8).map((a) => a.toString(16)).join(' ')}${stray.length > 8 ? ' ...' : ''}`]);
          }
        }
      }
      if (!named) {
        // The write did not happen again when replayed: still a failure.
        const list = stray.slice(0, 8).map((a) => a.toString(16)).join(' ');
        fail(cur.cases[b], results[b], null, [`stray memory writes at ${list} by one of ${end - b} cases starting here, not reproducible one by one`]);
      }
    }
    report.vcpuMs += Date.now() - t0;
  }
  return report;
}
