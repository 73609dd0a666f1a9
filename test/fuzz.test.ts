// Fuzzes the vCPU with random instruction streams at CPL 3 and CPL 0 (src/cpu/fuzz.ts): no host
// exception may escape, no stream may hang, and host memory must stay bounded.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runCampaign } from '../src/cpu/fuzz.ts';
import { CPU } from '../src/cpu/cpu.ts';
import { GuestMemory } from '../src/memory/guest-memory.ts';
import { enterFlatProtectedMode } from '../src/cpu/testing.ts';

test('fuzz: 120,000 random streams at CPL 3 and CPL 0 raise no host exception', () => {
  const stats = runCampaign({ seed: 0x7ea5e, streams: 120_000, cpl: 'both', hangMillis: 2000 });
  const first = stats.hostExceptions[0];
  assert.equal(stats.hostExceptions.length, 0,
    first && `host exception at CPL ${first.mode}, stream ${first.stream}, regs ${first.regs.map((r) => (r >>> 0).toString(16)).join(' ')}:\n${first.error}`);
  assert.deepEqual(stats.hangs, []);
  assert.equal(stats.streams, 120_000);
  assert.equal(stats.byMode[0], 60_000);
  assert.equal(stats.byMode[3], 60_000);
  // The streams really ran: most end in a guest exception, and some CPL-0 ones in a triple fault.
  assert.ok(stats.instructions > stats.streams, `only ${stats.instructions} instructions`);
  assert.ok(stats.exceptions > stats.streams / 2);
  assert.ok(stats.rssPeak - stats.rssStart < 256 << 20, `rss grew by ${(stats.rssPeak - stats.rssStart) >> 20} MiB`);
});

test('fuzz: a run of prefixes longer than 15 bytes is #GP(0), not host stack exhaustion', () => {
  const mem = new GuestMemory(1 << 20);
  const cpu = new CPU(mem);
  enterFlatProtectedMode(cpu, 3);
  mem.writeBytes(0x10000, new Uint8Array(50_000).fill(0x66));
  let vector = -1, code = -1;
  cpu.hooks.exception = (v, c) => { vector = v; code = c; cpu.stopSlice = true; return true; };
  cpu.eip = 0x10000;
  cpu.run(10);
  assert.equal(vector, 13);
  assert.equal(code, 0);
  assert.equal(cpu.eip, 0x10000, 'the fault restarts at the first prefix');
});
