// Differential test of the vCPU against this host's CPU, one instruction at a
// time (see test/diff/ and test/native/diff/).
//
//   DIFF_CASES=<n>      total cases (default 200000)
//   DIFF_SEED=<n>       reproduce a run (the seed is printed); DIFF_SEED=random for a fresh one
//   DIFF_FILTER=<re>    only forms whose "category name" matches
//   DIFF_SHOW=<n>       mismatches printed in full (default 5)

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createUserTestCpu } from '../src/cpu/testing.ts';
import { AREA, CODE_AT, DATA_AT, STACK_AT, decodeResults, encodeCases, type CaseInput } from './diff/format.ts';
import { FORMS } from './diff/forms.ts';
import { generate } from './diff/generate.ts';
import { buildHarness, runNative } from './diff/native.ts';
import { Rng } from './diff/rng.ts';
import { defaultFx, runDiff } from './diff/run.ts';
import { undefinedEflags, AF, OF, CF } from './diff/undefined.ts';
import { nativeOnly } from '../src/guest/i386-host.mjs';

const NATIVE_ONLY = nativeOnly('single instructions with all their flags, the undefined ones included, and their faults with the FXSAVE image of the signal frame');

const env = process.env;
const TOTAL = Number(env.DIFF_CASES ?? 200000);
// A fixed default seed keeps `npm test` deterministic: seed 277525189 makes the *native oracle* itself
// crash (it ends up executing its own data; a harness bug still to be found), which says nothing about
// the vCPU. DIFF_SEED=random draws a fresh seed, for longer campaigns.
const SEED = env.DIFF_SEED === 'random' ? (Date.now() ^ (process.pid << 16)) >>> 0
  : env.DIFF_SEED !== undefined ? Number(env.DIFF_SEED) >>> 0 : 1621496933;

// The oracle has to be right before anything is judged against it: a few
// cases whose outcome is known from the manual.
test('native oracle: known results', { skip: NATIVE_ONLY || false }, async () => {
  const exe = buildHarness();
  const fx = defaultFx();
  const zero = new Uint8Array(AREA);
  const mk = (code: number[], gpr: number[], eflags = 0x202, patches: CaseInput['patches'] = []): CaseInput => ({
    gpr: Uint32Array.from(gpr), eflags, code: Uint8Array.from(code), patches, fx: null,
  });
  const esp = STACK_AT + 0x800;
  const cases: CaseInput[] = [
    mk([0x01, 0xc8], [0xffffffff, 1, 0, 0, esp, 0, 0, 0]), // add eax, ecx
    mk([0xf7, 0xf1], [5, 0, 0, 0, esp, 0, 0, 0]), // div ecx by 0 -> #DE
    mk([0x0f, 0x0b], [0, 0, 0, 0, esp, 0, 0, 0]), // ud2 -> #UD
    mk([0xcc], [0, 0, 0, 0, esp, 0, 0, 0]), // int3 -> #BP, a trap: eip after it
    mk([0x50], [0x11223344, 0, 0, 0, esp, 0, 0, 0]), // push eax
    mk([0x74, 0x1e], [0, 0, 0, 0, esp, 0, 0, 0], 0x242), // jz +0x1e, ZF=1 -> landing pad at CODE_AT+0x20
    mk([0x8b, 0x03], [0, 0, 0, 0x00500000, esp, 0, 0, 0]), // mov eax, [ebx] unmapped -> #PF
    mk([0x8b, 0x03], [0, 0, 0, DATA_AT + 16, esp, 0, 0, 0], 0x202, [{ addr: DATA_AT + 16, bytes: Uint8Array.of(1, 2, 3, 4) }]),
  ];
  // divss xmm0, xmm1 with 1.0 / 0.0 and ZM clear: #XM, and the signal frame's
  // FXSAVE image must show the ZE flag the fault set in MXCSR.
  const sse = fx.slice();
  new DataView(sse.buffer).setUint32(24, 0x1f80 & ~0x200, true);
  new DataView(sse.buffer).setFloat32(160, 1, true);
  cases.push({ ...mk([0xf3, 0x0f, 0x5e, 0xc1], [0, 0, 0, 0, esp, 0, 0, 0]), fx: sse });
  // fwait with an unmasked exception pending in FSW: #MF, state unchanged.
  const x87 = fx.slice();
  new DataView(x87.buffer).setUint16(0, 0x037e, true); // IM unmasked
  new DataView(x87.buffer).setUint16(2, 0x8081, true); // IE, ES, B
  cases.push({ ...mk([0x9b], [0, 0, 0, 0, esp, 0, 0, 0]), fx: x87 });
  const res = decodeResults(await runNative(exe, encodeCases(zero, zero, fx, cases)), cases, fx);
  assert.equal(res[8].vector, 19);
  assert.equal(new DataView(res[8].fx.buffer, res[8].fx.byteOffset).getUint32(24, true), (0x1f80 & ~0x200) | 4);
  assert.equal(res[9].vector, 16);
  assert.equal(res[9].eip, CODE_AT);
  assert.equal(new DataView(res[9].fx.buffer, res[9].fx.byteOffset).getUint16(2, true), 0x8081);
  assert.equal(res[0].vector, -1);
  assert.equal(res[0].gpr[0], 0);
  assert.equal(res[0].eflags & 0x8d5, 0x55); // CF PF AF ZF
  assert.equal(res[0].eip, CODE_AT + 2);
  assert.equal(res[1].vector, 0);
  assert.equal(res[1].eip, CODE_AT);
  assert.equal(res[2].vector, 6);
  assert.equal(res[3].vector, 3);
  assert.equal(res[3].eip, CODE_AT + 1);
  assert.equal(res[4].gpr[4], esp - 4);
  assert.deepEqual([esp - 4, esp - 3, esp - 2, esp - 1].map((a) => res[4].changes.get(a)), [0x44, 0x33, 0x22, 0x11]);
  assert.equal(res[5].eip, CODE_AT + 0x20);
  assert.equal(res[6].vector, 14);
  assert.equal(res[7].gpr[0], 0x04030201);
  assert.equal(res[7].changes.size, 0);
});

test('undefined-flag table follows the count rules', () => {
  assert.equal(undefinedEflags('shl', { os: 32, count: 0 }), 0);
  assert.equal(undefinedEflags('shl', { os: 32, count: 1 }), AF);
  assert.equal(undefinedEflags('shl', { os: 32, count: 33 }), AF); // masked to 1
  assert.equal(undefinedEflags('shl', { os: 8, count: 9 }), AF | OF | CF);
  assert.equal(undefinedEflags('sar', { os: 8, count: 9 }), AF | OF);
  assert.equal(undefinedEflags('rcl', { os: 8, count: 2 }), OF);
  assert.equal(undefinedEflags('adc', { os: 32 }), 0);
});

test('every form generates valid cases', () => {
  const rng = new Rng(1);
  const p = { data: new Uint8Array(AREA), stack: new Uint8Array(AREA) };
  for (const f of FORMS) for (let k = 0; k < 20; k++) generate(rng, f, defaultFx(), p);
});

test(`differential: vCPU vs host CPU (${TOTAL} cases, seed ${SEED})`, { timeout: 30 * 60_000, skip: NATIVE_ONLY || false }, async () => {
  console.log(`diff: seed ${SEED} (DIFF_SEED=${SEED} DIFF_CASES=${TOTAL} reproduces this run)`);
  const rep = await runDiff({
    total: TOTAL,
    seed: SEED,
    filter: env.DIFF_FILTER ? new RegExp(env.DIFF_FILTER) : undefined,
    createCpu: () => createUserTestCpu(),
    keep: Number(env.DIFF_SHOW ?? 5),
  });
  for (const [cat, s] of [...rep.stats].sort()) {
    console.log(`diff: ${cat} ${s.cases} cases (${s.exceptions} raising exceptions), ${s.mismatches} mismatches`);
  }
  console.log(`diff: native ${rep.nativeMs} ms, vCPU ${rep.vcpuMs} ms`);
  if (rep.mismatchCount) {
    const worst = [...rep.perForm].sort((a, b) => b[1] - a[1]).slice(0, 15).map(([n, k]) => `${n}: ${k}`);
    assert.fail(`${rep.mismatchCount} mismatches (seed ${SEED}); by form: ${worst.join(', ')}\n\n${rep.mismatches.join('\n\n')}`);
  }
});
