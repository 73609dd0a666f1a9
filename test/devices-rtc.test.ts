// The MC146818 RTC/CMOS through ports 0x70/0x71: time in BCD/binary and 12/24 h, UIP timing, setting the
// time like Linux's mc146818_set_time, periodic/update/alarm interrupts with register C, memory bytes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { IoBus } from '../src/machine/io-bus.ts';
import { IrqLine } from '../src/machine/irq.ts';
import { Clock } from '../src/machine/clock.ts';
import { Rtc146818 } from '../src/devices/isa/rtc146818.ts';

const EPOCH = Date.UTC(2024, 1, 29, 23, 59, 58); // a Thursday, leap day
function setup(memoryBytes = 128 << 20) {
  const clock = new Clock({ manual: true });
  const bus = new IoBus();
  const irq = { rising: 0, level: false };
  const line = new IrqLine([{ sink: { setIrq: (_l, v) => { if (v && !irq.level) irq.rising++; irq.level = v; } }, line: 8 }]);
  const rtc = new Rtc146818(clock, line, { memoryBytes, epochMs: EPOCH });
  rtc.register(bus);
  const rd = (r: number) => { bus.out(0x70, 1, r); return bus.in(0x71, 1); };
  const wr = (r: number, v: number) => { bus.out(0x70, 1, r); bus.out(0x71, 1, v); };
  return { clock, bus, rtc, irq, rd, wr };
}
const time = (t: ReturnType<typeof setup>) => [0, 2, 4, 6, 7, 8, 9, 0x32].map((r) => t.rd(r));

test('BCD 24-hour time from the host clock, rolling over a leap day', () => {
  const t = setup();
  assert.deepEqual(time(t), [0x58, 0x59, 0x23, 5, 0x29, 0x02, 0x24, 0x20]);
  t.clock.advance(2e9);
  assert.deepEqual(time(t), [0x00, 0x00, 0x00, 6, 0x01, 0x03, 0x24, 0x20]);
  assert.equal(t.rd(0x0d), 0x80, 'VRT');
  assert.equal(t.rd(0x0a), 0x26);
});

test('binary and 12-hour modes per register B', () => {
  const t = setup();
  t.wr(0x0b, 0x06); // binary, 24 h
  assert.deepEqual(time(t), [58, 59, 23, 5, 29, 2, 24, 20]);
  t.wr(0x0b, 0x00); // BCD, 12 h
  assert.equal(t.rd(4), 0x91, '11 PM');
  t.wr(0x0b, 0x04); // binary, 12 h
  assert.equal(t.rd(4), 0x80 | 11);
  t.clock.advance(2e9);
  assert.equal(t.rd(4), 12, 'midnight is 12 AM');
});

test('UIP is set only in the 2.228 ms before each update', () => {
  const t = setup();
  assert.equal(t.rd(0x0a) & 0x80, 0);
  t.clock.advance(1e9 - 2.3e6);
  assert.equal(t.rd(0x0a) & 0x80, 0);
  t.clock.advance(0.2e6);
  assert.equal(t.rd(0x0a) & 0x80, 0x80);
  const s = t.rd(0);
  t.clock.advance(2.2e6);
  assert.equal(t.rd(0x0a) & 0x80, 0);
  assert.equal(t.rd(0), s + 1);
  t.wr(0x0b, 0x82);
  t.clock.advance(1e9 - 1e6);
  assert.equal(t.rd(0x0a) & 0x80, 0, 'no UIP while SET');
});

test('setting the time like mc146818_set_time; divider reset delays the first update by 500 ms', () => {
  const t = setup();
  t.wr(0x0b, 0x82); // SET
  t.wr(0x0a, 0x76); // divider reset
  t.clock.advance(3e9);
  assert.equal(t.rd(0), 0x58, 'time registers hold still while SET');
  // 2000-01-01 12:30:45 (a Saturday)
  t.wr(0, 0x45); t.wr(2, 0x30); t.wr(4, 0x12); t.wr(7, 0x01); t.wr(8, 0x01); t.wr(9, 0x00); t.wr(0x32, 0x20);
  t.wr(0x0a, 0x26); t.wr(0x0b, 0x02);
  assert.deepEqual(time(t), [0x45, 0x30, 0x12, 7, 0x01, 0x01, 0x00, 0x20]);
  t.clock.advance(499e6);
  assert.equal(t.rd(0), 0x45);
  t.clock.advance(2e6);
  assert.equal(t.rd(0), 0x46);
  t.clock.advance(3600e9);
  assert.equal(t.rd(4), 0x13);
});

test('periodic interrupt at 1024 Hz, cleared by reading C; coalesced when C is not read', () => {
  const t = setup();
  t.wr(0x0b, 0x42); // PIE
  let n = 0;
  for (let i = 0; i < 10000; i++) {
    t.clock.advance(100e3);
    if (t.irq.level) { assert.equal(t.rd(0x0c) & 0xc0, 0xc0); n++; }
  }
  assert.equal(n, 1024);
  const before = t.irq.rising;
  t.clock.advance(1e9);
  assert.equal(t.irq.rising - before, 1);
  assert.equal(t.rd(0x0c) & 0xd0, 0xc0 | 0x10, 'update flag set even with UIE off');
  assert.equal(t.rd(0x0c), 0);
  t.wr(0x0a, 0x2f); // RS = 15: 2 Hz
  t.rd(0x0c);
  const r = t.irq.rising;
  for (let i = 0; i < 10; i++) { t.clock.advance(100e6); if (t.irq.level) t.rd(0x0c); }
  assert.equal(t.irq.rising - r, 2);
});

test('update-ended and alarm interrupts', () => {
  const t = setup();
  t.wr(0x0b, 0x12); // UIE
  const r = t.irq.rising;
  for (let i = 0; i < 50; i++) { t.clock.advance(100e6); if (t.irq.level) assert.equal(t.rd(0x0c) & 0x90, 0x90); }
  assert.equal(t.irq.rising - r, 5);
  // alarm at 00:00:10 (time is now 00:00:03); "don't care" hours
  t.wr(1, 0x10); t.wr(3, 0x00); t.wr(5, 0xc0);
  t.wr(0x0b, 0x22);
  t.rd(0x0c);
  t.clock.advance(6.9e9);
  assert.equal(t.irq.level, false);
  t.clock.advance(0.2e9);
  assert.equal(t.irq.level, true);
  assert.equal(t.rd(0x0c) & 0xa0, 0xa0);
  t.clock.advance(3600e9 - 1e9); // next match is one hour later
  assert.equal(t.irq.level, false);
  t.clock.advance(1.1e9);
  assert.equal(t.irq.level, true);
});

test('CMOS RAM, memory size bytes, NMI mask', () => {
  const t = setup(128 << 20);
  assert.equal(t.rd(0x15) | t.rd(0x16) << 8, 640);
  assert.equal(t.rd(0x17) | t.rd(0x18) << 8, 0xffff);
  assert.equal(t.rd(0x30) | t.rd(0x31) << 8, 0xffff);
  assert.equal(t.rd(0x34) | t.rd(0x35) << 8, (112 << 20) / 65536);
  const s = setup(32 << 20);
  assert.equal(s.rd(0x17) | s.rd(0x18) << 8, 31 * 1024);
  s.wr(0x50, 0xa5);
  assert.equal(s.rd(0x50), 0xa5);
  assert.equal(s.rtc.nmiEnabled, true);
  s.bus.out(0x70, 1, 0x80 | 0x50);
  assert.equal(s.rtc.nmiEnabled, false);
  assert.equal(s.bus.in(0x71, 1), 0xa5);
});
