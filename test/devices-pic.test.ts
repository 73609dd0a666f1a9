// The i8259A pair driven through its ports as Linux's init_8259A / mask_and_ack_8259A do.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { IoBus } from '../src/machine/io-bus.ts';
import { IrqLine } from '../src/machine/irq.ts';
import { Pic8259 } from '../src/devices/isa/pic8259.ts';
import { saveState, restoreState } from '../src/devices/state.ts';

function setup(icw4 = 0x01) {
  const bus = new IoBus();
  const intr: boolean[] = [];
  const pic = new Pic8259((l) => intr.push(l));
  pic.register(bus);
  const line = (n: number) => new IrqLine([{ sink: pic, line: n }]);
  // init_8259A
  bus.out(0x21, 1, 0xff); bus.out(0xa1, 1, 0xff);
  bus.out(0x20, 1, 0x11); bus.out(0x21, 1, 0x30); bus.out(0x21, 1, 0x04); bus.out(0x21, 1, icw4);
  bus.out(0xa0, 1, 0x11); bus.out(0xa1, 1, 0x38); bus.out(0xa1, 1, 0x02); bus.out(0xa1, 1, 0x01);
  bus.out(0x21, 1, 0x00); bus.out(0xa1, 1, 0x00);
  return { bus, pic, intr, line, get level() { return pic.state.intr; } };
}

test('vectors after init_8259A, ISR, specific EOI', () => {
  const t = setup();
  const irq0 = t.line(0), irq1 = t.line(1);
  irq1.pulse();
  assert.equal(t.level, true);
  irq0.pulse();
  assert.equal(t.pic.acknowledge(), 0x30, 'IRQ0 has the highest priority');
  assert.equal(t.level, false, 'IRQ1 blocked while IRQ0 is in service');
  t.bus.out(0x20, 1, 0x0b); // OCW3: read ISR
  assert.equal(t.bus.in(0x20, 1), 0x01);
  t.bus.out(0x20, 1, 0x60); // specific EOI IRQ0
  assert.equal(t.level, true);
  assert.equal(t.pic.acknowledge(), 0x31);
  t.bus.out(0x20, 1, 0x0a); // OCW3: read IRR
  assert.equal(t.bus.in(0x20, 1), 0x00, 'edge request cleared by INTA');
  t.bus.out(0x20, 1, 0x20); // non-specific EOI
  t.bus.out(0x20, 1, 0x0b);
  assert.equal(t.bus.in(0x20, 1), 0x00);
});

test('masking holds a request in IRR until unmasked', () => {
  const t = setup();
  t.bus.out(0x21, 1, 0x02);
  t.line(1).pulse();
  assert.equal(t.level, false);
  assert.equal(t.bus.in(0x21, 1), 0x02);
  t.bus.out(0x20, 1, 0x0a);
  assert.equal(t.bus.in(0x20, 1), 0x02);
  t.bus.out(0x21, 1, 0x00);
  assert.equal(t.level, true);
  assert.equal(t.pic.acknowledge(), 0x31);
});

test('slave cascade on IRQ2, EOI to both chips', () => {
  const t = setup();
  t.line(12).pulse();
  assert.equal(t.level, true);
  assert.equal(t.pic.acknowledge(), 0x3c);
  t.bus.out(0xa0, 1, 0x0b); assert.equal(t.bus.in(0xa0, 1), 0x10);
  t.bus.out(0x20, 1, 0x0b); assert.equal(t.bus.in(0x20, 1), 0x04);
  t.line(8).pulse(); // higher priority on the slave, but IR2 is in service on the master
  assert.equal(t.level, false);
  t.bus.out(0xa0, 1, 0x64); t.bus.out(0x20, 1, 0x62);
  assert.equal(t.level, true);
  assert.equal(t.pic.acknowledge(), 0x38);
});

test('spurious IRQ7 and IRQ15 when the request goes away before INTA', () => {
  const t = setup();
  t.bus.out(0x4d0, 1, 0x80); // IRQ7 level-triggered
  const irq7 = t.line(7);
  irq7.raise(); assert.equal(t.level, true);
  irq7.lower(); assert.equal(t.level, false);
  assert.equal(t.pic.acknowledge(), 0x37);
  t.bus.out(0x20, 1, 0x0b); assert.equal(t.bus.in(0x20, 1), 0x00, 'no ISR bit for a spurious IRQ');
  t.bus.out(0x4d1, 1, 0x80); // IRQ15 level
  const irq15 = t.line(15);
  irq15.raise();
  // The slave withdraws its request (here: the line is masked) while the master's edge-latched IR2 stays.
  t.bus.out(0xa1, 1, 0x80);
  assert.equal(t.level, true);
  assert.equal(t.pic.acknowledge(), 0x3f);
  t.bus.out(0xa0, 1, 0x0b); assert.equal(t.bus.in(0xa0, 1), 0x00, 'spurious IRQ15: slave ISR stays clear');
  t.bus.out(0x20, 1, 0x0b); assert.equal(t.bus.in(0x20, 1), 0x04, 'but the master must still get its EOI');
  t.bus.out(0xa1, 1, 0x00);
  assert.equal(t.level, false, 'IR2 in service');
  t.bus.out(0x20, 1, 0x62);
  assert.equal(t.pic.acknowledge(), 0x3f);
  t.bus.out(0xa0, 1, 0x0b); assert.equal(t.bus.in(0xa0, 1), 0x80, 'real IRQ15 goes into the ISR');
});

test('edge vs level per ELCR', () => {
  const t = setup();
  assert.equal(t.bus.in(0x4d0, 2), 0x0000);
  t.bus.out(0x4d0, 2, 0xffff);
  assert.equal(t.bus.in(0x4d0, 2), 0xdef8, 'IRQ0-2, 8 and 13 cannot be level-triggered');
  const irq10 = t.line(10), irq3 = t.line(3);
  irq10.raise();
  assert.equal(t.pic.acknowledge(), 0x3a);
  t.bus.out(0xa0, 1, 0x20); t.bus.out(0x20, 1, 0x20);
  assert.equal(t.level, true, 'a level input still high requests again after EOI');
  assert.equal(t.pic.acknowledge(), 0x3a);
  irq10.lower();
  t.bus.out(0xa0, 1, 0x20); t.bus.out(0x20, 1, 0x20);
  assert.equal(t.level, false);
  t.bus.out(0x4d0, 1, 0x00);
  irq3.raise();
  assert.equal(t.pic.acknowledge(), 0x33);
  t.bus.out(0x20, 1, 0x20);
  assert.equal(t.level, false, 'an edge input held high requests once');
});

test('auto-EOI and rotation', () => {
  const t = setup(0x03);
  t.line(4).pulse();
  assert.equal(t.pic.acknowledge(), 0x34);
  t.bus.out(0x20, 1, 0x0b); assert.equal(t.bus.in(0x20, 1), 0x00, 'AEOI leaves ISR clear');
  // Rotate on non-specific EOI: after serving IR1, IR1 becomes the lowest priority.
  const t2 = setup();
  t2.line(1).pulse();
  assert.equal(t2.pic.acknowledge(), 0x31);
  t2.bus.out(0x20, 1, 0xa0); // rotate on non-specific EOI
  t2.line(0).pulse(); t2.line(1).pulse(); t2.line(2 + 3).pulse();
  assert.equal(t2.pic.acknowledge(), 0x35, 'IR2..IR7 now outrank IR0 and IR1');
  t2.bus.out(0x20, 1, 0xc4); // set priority: IR4 lowest, IR5 highest
  t2.bus.out(0x20, 1, 0x65);
  assert.equal(t2.pic.acknowledge(), 0x30);
});

test('special mask mode lets lower priorities through', () => {
  const t = setup();
  t.line(3).pulse();
  assert.equal(t.pic.acknowledge(), 0x33);
  t.line(5).pulse();
  assert.equal(t.level, false);
  t.bus.out(0x21, 1, 0x08); t.bus.out(0x20, 1, 0x68); // mask IR3, set special mask mode
  assert.equal(t.level, true);
  assert.equal(t.pic.acknowledge(), 0x35);
  t.bus.out(0x20, 1, 0x48); // reset SMM
});

test('poll mode', () => {
  const t = setup();
  t.bus.out(0x20, 1, 0x0c);
  assert.equal(t.bus.in(0x20, 1), 0x00);
  t.line(6).pulse();
  t.bus.out(0x20, 1, 0x0c);
  assert.equal(t.bus.in(0x20, 1), 0x86);
  t.bus.out(0x20, 1, 0x0b); assert.equal(t.bus.in(0x20, 1), 0x40, 'poll acts as INTA');
});

test('re-initialisation clears masks and in-service state; snapshot round trip', () => {
  const t = setup();
  t.line(1).pulse(); t.pic.acknowledge();
  const snap = saveState(t.pic);
  t.bus.out(0x20, 1, 0x11); t.bus.out(0x21, 1, 0x08); t.bus.out(0x21, 1, 0x04); t.bus.out(0x21, 1, 0x01);
  t.bus.out(0x20, 1, 0x0b); assert.equal(t.bus.in(0x20, 1), 0);
  t.line(1).pulse();
  assert.equal(t.pic.acknowledge(), 0x09);
  restoreState(t.pic, snap);
  t.bus.out(0x20, 1, 0x0b); assert.equal(t.bus.in(0x20, 1), 0x02);
  assert.equal(t.intr.at(-1), false);
});
