// System-mode tests: freestanding kernels (test/native/system/*.asm) assembled with nasm, loaded at
// 0x8000 and started in real mode. Each kernel checks its own expectations and reports "PASS name" /
// "FAIL name ..." lines on port 0xE9 and the number of failures on port 0xF4.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CpuStop } from '../src/cpu/cpu.ts';
import { runKernel, type KernelResult } from './system-harness.ts';

function checkReport(r: KernelResult, minPasses: number): void {
  const lines = r.text.split('\n').filter((l) => l.length);
  const fails = lines.filter((l) => !l.startsWith('PASS '));
  const passes = lines.length - fails.length;
  assert.deepEqual(fails, [], `kernel reported failures:\n${r.text}`);
  assert.equal(r.stop, null, `unexpected stop: ${r.stop?.message}\n${r.text}`);
  assert.equal(r.status, 0, `kernel did not finish (status ${r.status}) after ${r.instructions} instructions:\n${r.text}`);
  assert.ok(passes >= minPasses, `only ${passes} checks ran (expected ≥ ${minPasses}):\n${r.text}`);
}

const VERBOSE = process.env.TRAPEZE_SYSTEM_VERBOSE === '1';

for (const [name, min] of [['pmode', 90], ['paging', 30], ['tasks', 20], ['v86', 20], ['irq', 8]] as const) {
  test(`system kernel: ${name}`, () => {
    const r = runKernel(name);
    if (VERBOSE) process.stdout.write(r.text);
    checkReport(r, min);
  });
}

test('system kernel: triple fault stops the vCPU with CpuStop', () => {
  const r = runKernel('triple');
  assert.match(r.text, /PASS about to triple-fault/);
  assert.ok(r.stop instanceof CpuStop, `expected a CpuStop, got status ${r.status}:\n${r.text}`);
  assert.equal(r.stop.reason, 'triple-fault');
  assert.doesNotMatch(r.text, /FAIL/);
});
