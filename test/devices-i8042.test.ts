// The 8042 as Linux's i8042 and atkbd drivers probe it, A20 and reset through it and port 0x92, port 0x80.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { IoBus } from '../src/machine/io-bus.ts';
import { IrqLine } from '../src/machine/irq.ts';
import { I8042 } from '../src/devices/isa/i8042.ts';
import { Port92 } from '../src/devices/isa/port92.ts';
import { Port80 } from '../src/devices/isa/port80.ts';

function setup() {
  const bus = new IoBus();
  const irqs = { 1: 0, 12: 0 } as Record<number, number>;
  const levels = { 1: false, 12: false } as Record<number, boolean>;
  const sink = { setIrq: (l: number, v: boolean) => { if (v && !levels[l]) irqs[l]++; levels[l] = v; } };
  const kbc = new I8042(new IrqLine([{ sink, line: 1 }]), new IrqLine([{ sink, line: 12 }]));
  kbc.register(bus);
  const ev: string[] = [];
  kbc.onA20 = (e) => ev.push(`a20:${e}`);
  kbc.onReset = () => ev.push('reset');
  const cmd = (c: number, ...data: number[]) => { bus.out(0x64, 1, c); for (const d of data) bus.out(0x60, 1, d); };
  const read = (): number => { assert.equal(bus.in(0x64, 1) & 1, 1, 'OBF'); return bus.in(0x60, 1); };
  return { bus, kbc, irqs, levels, ev, cmd, read, status: () => bus.in(0x64, 1) };
}

test('i8042 probe: flush, self-test, CTR, interface tests, aux loop with IRQ12', () => {
  const t = setup();
  assert.equal(t.status() & 1, 0, 'nothing to flush');
  assert.equal(t.status() & 0x02, 0, 'input buffer always ready');
  t.cmd(0xaa); assert.equal(t.read(), 0x55);
  assert.equal(t.status() & 0x08, 0x08, 'A2: last write was a command');
  t.cmd(0x20); const ctr = t.read();
  assert.equal(ctr, 0x45);
  t.cmd(0x20); assert.equal(t.read(), ctr, 'stable CTR');
  t.cmd(0x60, (ctr | 0x30) & ~0x03); // disable both ports and their interrupts
  t.cmd(0x20); assert.equal(t.read(), 0x74);
  assert.equal(t.status() & 0x04, 0x04, 'SYS flag');
  t.cmd(0xd3, 0x5a);
  assert.equal(t.status() & 0x21, 0x21, 'aux data in the output buffer');
  assert.equal(t.read(), 0x5a);
  t.cmd(0xa9); assert.equal(t.read(), 0x00);
  t.cmd(0xa7); t.cmd(0x20); assert.equal(t.read() & 0x20, 0x20);
  t.cmd(0xa8); t.cmd(0x20); assert.equal(t.read() & 0x20, 0x00);
  t.cmd(0x60, 0x47 & ~0x10 | 0x02); // aux interrupt on
  const n12 = t.irqs[12];
  t.cmd(0xd3, 0xa5);
  assert.equal(t.irqs[12], n12 + 1);
  assert.equal(t.levels[1], false);
  assert.equal(t.read(), 0xa5);
  assert.equal(t.levels[12], false);
  t.cmd(0xab); assert.equal(t.read(), 0x00);
});

test('keyboard: reset, identify, LEDs, disable holds data, IRQ1 per byte', () => {
  const t = setup();
  const n = t.irqs[1];
  t.bus.out(0x60, 1, 0xff);
  assert.equal(t.read(), 0xfa);
  assert.equal(t.read(), 0xaa);
  assert.equal(t.irqs[1], n + 2);
  assert.equal(t.status() & 1, 0);
  t.bus.out(0x60, 1, 0xf2);
  assert.deepEqual([t.read(), t.read(), t.read()], [0xfa, 0xab, 0x41], 'translated MF-II id');
  t.cmd(0x60, 0x05); // translation off
  t.bus.out(0x60, 1, 0xf2);
  assert.deepEqual([t.read(), t.read(), t.read()], [0xfa, 0xab, 0x83]);
  t.bus.out(0x60, 1, 0xed); assert.equal(t.read(), 0xfa);
  t.bus.out(0x60, 1, 0x07); assert.equal(t.read(), 0xfa);
  assert.equal(t.kbc.state.kbdLeds, 7);
  t.bus.out(0x60, 1, 0xf0); t.read(); t.bus.out(0x60, 1, 0x00);
  assert.deepEqual([t.read(), t.read()], [0xfa, 0x02]);
  t.bus.out(0x60, 1, 0xee); assert.equal(t.read(), 0xee);
  t.bus.out(0x60, 1, 0x42); assert.equal(t.read(), 0xfe, 'unknown command');
  t.cmd(0xad);
  t.bus.out(0x60, 1, 0xf4);
  assert.equal(t.status() & 1, 0, 'keyboard interface disabled');
  t.cmd(0xae);
  assert.equal(t.read(), 0xfa);
  t.cmd(0x60, 0x04); // keyboard interrupt off
  const m = t.irqs[1];
  t.bus.out(0x60, 1, 0xf4);
  assert.equal(t.irqs[1], m);
  assert.equal(t.read(), 0xfa);
});

test('no aux device: 0xD4 times out with 0xFE', () => {
  const t = setup();
  t.cmd(0xd4, 0xf2);
  assert.equal(t.status() & 0x61, 0x61, 'OBF, AUXB, timeout');
  assert.equal(t.read(), 0xfe);
  assert.equal(t.status() & 0x40, 0);
});

test('A20 and reset through the output port and pulse commands', () => {
  const t = setup();
  assert.equal(t.kbc.a20, true);
  t.cmd(0xd1, 0xc1);
  assert.equal(t.kbc.a20, false);
  t.cmd(0xd0); assert.equal(t.read() & 0x03, 0x01);
  t.cmd(0xdf); assert.equal(t.kbc.a20, true);
  t.cmd(0xdd); assert.equal(t.kbc.a20, false);
  t.cmd(0xd1, 0xc3);
  assert.deepEqual(t.ev, ['a20:false', 'a20:true', 'a20:false', 'a20:true']);
  t.cmd(0xff);
  assert.equal(t.ev.length, 4);
  t.cmd(0xfe);
  assert.equal(t.ev.at(-1), 'reset');
  t.cmd(0xd1, 0xc2);
  assert.equal(t.ev.at(-1), 'reset');
  assert.equal(t.ev.length, 6);
});

test('port 0x92 fast A20 and fast reset; port 0x80 latch', () => {
  const bus = new IoBus();
  const p92 = new Port92(), p80 = new Port80();
  p92.register(bus); p80.register(bus);
  const ev: string[] = [];
  p92.onA20 = (e) => ev.push(`a20:${e}`);
  p92.onReset = () => ev.push('reset');
  bus.out(0x92, 1, bus.in(0x92, 1) | 0x02);
  assert.equal(p92.a20, true);
  assert.equal(bus.in(0x92, 1), 0x02);
  bus.out(0x92, 1, 0x03);
  bus.out(0x92, 1, 0x03);
  assert.deepEqual(ev, ['a20:true', 'reset'], 'reset only on the rising edge of bit 0');
  bus.out(0x92, 1, 0x00);
  assert.deepEqual(ev.at(-1), 'a20:false');
  bus.out(0x80, 1, 0x3c);
  assert.equal(bus.in(0x80, 1), 0x3c);
});
