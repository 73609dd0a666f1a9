// The 8254 driven like Linux: HZ tick in mode 2, TSC calibration on channel 2 through port 0x61, latch
// and read-back commands, BCD, gate-triggered modes, and re-delivery of edges after a host stall.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { IoBus } from '../src/machine/io-bus.ts';
import { IrqLine } from '../src/machine/irq.ts';
import { Clock } from '../src/machine/clock.ts';
import { Pit8254, pitNs, pitTicks, PIT_HZ } from '../src/devices/isa/pit8254.ts';

function setup() {
  const clock = new Clock({ manual: true });
  const bus = new IoBus();
  const edges = { rising: 0, level: false };
  const irq0 = new IrqLine([{ sink: { setIrq: (_l, v) => { if (v && !edges.level) edges.rising++; edges.level = v; } }, line: 0 }]);
  const pit = new Pit8254(clock, irq0);
  pit.register(bus);
  return { clock, bus, pit, edges };
}
const ticksToNs = (t: number) => pitNs(t);

test('tick conversions are exact over long spans', () => {
  assert.equal(pitTicks(1e9), PIT_HZ);
  assert.equal(pitTicks(86400e9 * 30), PIT_HZ * 86400 * 30);
  for (const k of [1, 2, 11932, 65536, 1e9 + 7]) { assert.equal(pitTicks(pitNs(k)), k); assert.equal(pitTicks(pitNs(k) - 1), k - 1); }
});

test('mode 2 at HZ=100 gives 100 IRQ0 edges a second', () => {
  const t = setup();
  t.bus.out(0x43, 1, 0x34); t.bus.out(0x40, 1, 11932 & 0xff); t.bus.out(0x40, 1, 11932 >> 8);
  const start = t.edges.rising; // programming mode 2 drives OUT high
  for (let i = 0; i < 1000; i++) t.clock.advance(1e6);
  assert.equal(t.edges.rising - start, Math.floor(PIT_HZ / 11932));
});

test('edges the host delivered late are re-delivered, so the tick count keeps up with time', () => {
  const t = setup();
  t.bus.out(0x43, 1, 0x34); t.bus.out(0x40, 1, 0x9c); t.bus.out(0x40, 1, 0x2e); // mode 2, 100 Hz
  const start = t.edges.rising;
  t.clock.advance(10.5e6); // first period (it ends at 10.0002 ms: N = 11932 clocks)
  t.clock.advance(55e6); // the host ran guest code past five period ends: one edge now, four owed
  assert.equal(t.edges.rising - start, 2);
  for (let i = 0; i < 20; i++) t.clock.advance(0.25e6); // to 70 ms: the four owed edges, then period 7
  assert.equal(t.edges.rising - start, 7);
  for (let i = 0; i < 30; i++) t.clock.advance(1e6); // back to the normal rate
  assert.equal(t.edges.rising - start, 10);
});

test('a long host stall is caught up for at most one second of ticks', () => {
  const t = setup();
  t.bus.out(0x43, 1, 0x34); t.bus.out(0x40, 1, 0x9c); t.bus.out(0x40, 1, 0x2e);
  t.clock.advance(10.5e6);
  const start = t.edges.rising;
  t.clock.advance(10e9);
  for (let i = 0; i < 400; i++) t.clock.advance(0.25e6); // 100 ms
  const delivered = t.edges.rising - start;
  // One edge at the stall's end, 100 re-delivered (the one-second cap), about 10 regular ones.
  assert.ok(delivered >= 1 + 100 && delivered <= 1 + 100 + 11, `delivered ${delivered}`);
});

test('counter latch and LSB/MSB reads in mode 2', () => {
  const t = setup();
  t.bus.out(0x43, 1, 0x34); t.bus.out(0x40, 1, 0x00); t.bus.out(0x40, 1, 0x10); // N = 4096
  t.clock.advance(ticksToNs(1000));
  t.bus.out(0x43, 1, 0x00);
  t.clock.advance(ticksToNs(500)); // the latch holds the value of the latch time
  const v = t.bus.in(0x40, 1) | t.bus.in(0x40, 1) << 8;
  assert.equal(v, 4096 - 1000);
  const live = t.bus.in(0x40, 1) | t.bus.in(0x40, 1) << 8;
  assert.equal(live, 4096 - 1500);
  t.clock.advance(ticksToNs(4096));
  assert.equal(t.bus.in(0x40, 1) | t.bus.in(0x40, 1) << 8, 4096 - 1500, 'mode 2 reloads each period');
});

test('TSC calibration loop: channel 2 mode 0, OUT2 via port 0x61 bit 5', () => {
  const t = setup();
  t.bus.out(0x61, 1, (t.bus.in(0x61, 1) & ~0x02) | 0x01); // gate on, speaker off
  t.bus.out(0x43, 1, 0xb0); // channel 2, LSB/MSB, mode 0, binary
  const latch = Math.floor(PIT_HZ / 100);
  t.bus.out(0x42, 1, latch & 0xff); t.bus.out(0x42, 1, latch >> 8);
  let polls = 0;
  while (!(t.bus.in(0x61, 1) & 0x20)) { t.clock.advance(1000); polls++; }
  assert.ok(Math.abs(polls - 10000) <= 1, `OUT2 rose after ${polls} us`);
  // quick_pit_calibrate reads the MSB as it counts down past zero
  t.bus.out(0x43, 1, 0xb0); t.bus.out(0x42, 1, 0xff); t.bus.out(0x42, 1, 0xff);
  t.clock.advance(ticksToNs(256 * 3));
  t.bus.in(0x42, 1);
  assert.equal(t.bus.in(0x42, 1), 0xfc);
});

test('read-back command: status byte then count', () => {
  const t = setup();
  t.bus.out(0x43, 1, 0x36); // ch0 LSB/MSB mode 3
  t.bus.out(0x43, 1, 0xe2); // read-back status of ch0
  assert.equal(t.bus.in(0x40, 1), 0x80 | 0x40 | 0x36, 'OUT high, null count, control word');
  t.bus.out(0x40, 1, 0x00); t.bus.out(0x40, 1, 0x01); // N = 256
  t.clock.advance(ticksToNs(10));
  t.bus.out(0x43, 1, 0xc2); // latch count and status
  assert.equal(t.bus.in(0x40, 1), 0x80 | 0x36, 'status first, count loaded');
  assert.equal(t.bus.in(0x40, 1), 256 - 20);
  assert.equal(t.bus.in(0x40, 1), 0);
});

test('BCD counting and LSB-only / MSB-only access', () => {
  const t = setup();
  t.bus.out(0x43, 1, 0x71); // ch1, LSB/MSB, mode 0, BCD
  t.bus.out(0x41, 1, 0x00); t.bus.out(0x41, 1, 0x10); // 1000 decimal
  t.clock.advance(ticksToNs(123));
  t.bus.out(0x43, 1, 0x40);
  assert.equal(t.bus.in(0x41, 1), 0x77); assert.equal(t.bus.in(0x41, 1), 0x08);
  t.bus.out(0x43, 1, 0x60); // ch1, MSB only, mode 0
  t.bus.out(0x41, 1, 0x02); // count 0x200
  t.clock.advance(ticksToNs(0x100));
  assert.equal(t.bus.in(0x41, 1), 0x01);
  t.bus.out(0x43, 1, 0x50); // LSB only
  t.bus.out(0x41, 1, 0x80);
  t.clock.advance(ticksToNs(0x10));
  assert.equal(t.bus.in(0x41, 1), 0x70);
});

test('mode 0 one-shot IRQ0 and mode 4 strobe fire once', () => {
  const t = setup();
  t.bus.out(0x43, 1, 0x30); t.bus.out(0x40, 1, 0xe8); t.bus.out(0x40, 1, 0x03); // 1000 ticks
  assert.equal(t.edges.level, false);
  t.clock.advance(ticksToNs(999));
  assert.equal(t.edges.level, false);
  t.clock.advance(ticksToNs(2));
  assert.equal(t.edges.level, true);
  const n = t.edges.rising;
  t.clock.advance(1e9);
  assert.equal(t.edges.rising, n);
  t.bus.out(0x43, 1, 0x38); t.bus.out(0x40, 1, 100); t.bus.out(0x40, 1, 0);
  const m = t.edges.rising;
  t.clock.advance(1e9);
  assert.equal(t.edges.rising - m, 1);
});

test('gate: mode 1 triggered by port 0x61 bit 0; mode 3 speaker tone', () => {
  const t = setup();
  const tones: number[] = [];
  t.pit.onSpeaker = (hz) => tones.push(hz);
  t.bus.out(0x61, 1, 0x00);
  t.bus.out(0x43, 1, 0xb2); t.bus.out(0x42, 1, 100); t.bus.out(0x42, 1, 0); // ch2 mode 1
  t.clock.advance(ticksToNs(500));
  assert.equal(t.bus.in(0x61, 1) & 0x20, 0x20, 'OUT high until triggered');
  t.bus.out(0x61, 1, 0x01);
  assert.equal(t.bus.in(0x61, 1) & 0x20, 0, 'trigger drives OUT low');
  t.clock.advance(ticksToNs(100));
  assert.equal(t.bus.in(0x61, 1) & 0x20, 0x20);
  t.bus.out(0x43, 1, 0xb6); t.bus.out(0x42, 1, 0xa9); t.bus.out(0x42, 1, 0x04); // 1193 -> ~1 kHz
  t.bus.out(0x61, 1, 0x03);
  assert.ok(Math.abs(tones.at(-1)! - 1000.15) < 0.1);
  t.bus.out(0x61, 1, 0x01);
  assert.equal(tones.at(-1), 0);
});

test('port 0x61 refresh bit toggles', () => {
  const t = setup();
  const a = t.bus.in(0x61, 1) & 0x10;
  t.clock.advance(15085);
  assert.notEqual(t.bus.in(0x61, 1) & 0x10, a);
});

test('mode 2: a count written while counting takes effect at the end of the period; snapshot restore', async () => {
  const { saveState, restoreState } = await import('../src/devices/state.ts');
  const t = setup();
  t.bus.out(0x43, 1, 0x34); t.bus.out(0x40, 1, 0xe8); t.bus.out(0x40, 1, 0x03); // N = 1000
  t.clock.advance(ticksToNs(300));
  t.bus.out(0x40, 1, 0xf4); t.bus.out(0x40, 1, 0x01); // N = 500
  const rd = () => { t.bus.out(0x43, 1, 0x00); return t.bus.in(0x40, 1) | t.bus.in(0x40, 1) << 8; };
  assert.equal(rd(), 700);
  const e = t.edges.rising;
  t.clock.advance(ticksToNs(700));
  assert.equal(t.edges.rising, e + 1);
  assert.equal(rd(), 500);
  t.clock.advance(ticksToNs(100));
  assert.equal(rd(), 400);
  const snap = saveState(t.pit);
  t.clock.advance(ticksToNs(50));
  restoreState(t.pit, snap);
  assert.equal(rd(), 350, 'the restored counter runs on the same clock');
  t.clock.advance(ticksToNs(400));
  assert.equal(t.edges.rising, e + 2);
});
