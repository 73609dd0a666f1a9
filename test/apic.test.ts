// Local APIC and I/O APIC, programmed through their MMIO registers as Linux does.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Clock } from '../src/machine/clock.ts';
import { GuestMemory } from '../src/memory/guest-memory.ts';
import { ApicBus, LAPIC_BASE } from '../src/devices/apic/apic-bus.ts';
import { Lapic } from '../src/devices/apic/lapic.ts';
import { Ioapic, IOAPIC_BASE } from '../src/devices/apic/ioapic.ts';
import { restoreState, saveState } from '../src/devices/state.ts';

function setup(cpus = 1) {
  const clock = new Clock({ manual: true });
  const mem = new GuestMemory(1 << 20);
  const bus = new ApicBus();
  const cpu = Array.from({ length: cpus }, () => ({ intr: false, nmi: 0, init: 0, sipi: -1 }));
  const picVectors: number[] = [];
  const pic = { acknowledge: () => picVectors.shift() ?? 0x27 };
  const lapics = cpu.map((c, i) => new Lapic({
    id: i, bus, clock, bsp: i === 0, extInt: pic,
    onIntrChange: (l) => { c.intr = l; }, onNmi: () => c.nmi++, onInit: () => c.init++, onSipi: (v) => { c.sipi = v; },
  }));
  bus.mapMmio(mem);
  const ioapic = new Ioapic(bus);
  mem.mapMmio(IOAPIC_BASE, 0x1000, ioapic, 'ioapic');
  const lr = (reg: number): number => mem.read32(LAPIC_BASE + reg) >>> 0;
  const lw = (reg: number, v: number): void => mem.write32(LAPIC_BASE + reg, v);
  const ior = (i: number): number => { mem.write32(IOAPIC_BASE, i); return mem.read32(IOAPIC_BASE + 0x10) >>> 0; };
  const iow = (i: number, v: number): void => { mem.write32(IOAPIC_BASE, i); mem.write32(IOAPIC_BASE + 0x10, v); };
  return { clock, mem, bus, cpu, lapics, ioapic, lr, lw, ior, iow, picVectors };
}

test('registers after reset and virtual-wire ExtINT through LINT0', () => {
  const m = setup();
  assert.equal(m.lr(0x30), 0x00050014);
  assert.equal(m.lr(0x20), 0);
  assert.equal(m.lr(0xf0), 0xff);
  assert.equal(m.lr(0xe0), 0xffffffff);
  assert.equal(m.lr(0x350), 0x700, 'BSP LINT0 ExtINT as firmware leaves it');
  // The 8259 raises INTR → LINT0 → the vCPU; the INTA cycle is answered by the PIC.
  m.picVectors.push(0x20);
  m.lapics[0].setLint(0, true);
  assert.equal(m.cpu[0].intr, true);
  assert.equal(m.lapics[0].acknowledge(), 0x20);
  m.lapics[0].setLint(0, false);
  assert.equal(m.cpu[0].intr, false);
  // Masking LINT0 cuts the PIC off.
  m.lw(0xf0, 0x1ff);
  m.lw(0x350, 0x10700);
  m.lapics[0].setLint(0, true);
  assert.equal(m.cpu[0].intr, false);
});

test('fixed interrupts: IRR/ISR, TPR/PPR priority classes, EOI', () => {
  const m = setup();
  m.lw(0xf0, 0x1ff);
  m.lw(0x300 + 0x10, 0);
  m.lw(0x300, 0x40000 | 0x41); // self IPI, vector 0x41
  assert.equal(m.lr(0x200 + 0x20) & 2, 2, 'IRR bit 0x41');
  assert.equal(m.cpu[0].intr, true);
  m.lw(0x80, 0x50); // TPR class 5 blocks class 4
  assert.equal(m.cpu[0].intr, false);
  m.lw(0x80, 0);
  assert.equal(m.lapics[0].acknowledge(), 0x41);
  assert.equal(m.lr(0x100 + 0x20) & 2, 2, 'ISR bit 0x41');
  assert.equal(m.lr(0xa0), 0x40, 'PPR = in-service class');
  m.lw(0x300, 0x40000 | 0x32); // lower class waits while 0x41 is in service
  assert.equal(m.cpu[0].intr, false);
  m.lw(0x300, 0x40000 | 0x92);
  assert.equal(m.lapics[0].acknowledge(), 0x92);
  m.lw(0xb0, 0);
  m.lw(0xb0, 0);
  assert.equal(m.lapics[0].acknowledge(), 0x32);
  m.lw(0xb0, 0);
  assert.equal(m.cpu[0].intr, false);
  assert.equal(m.lapics[0].acknowledge(), 0xff, 'spurious vector');
  // Illegal vector: send error in the ESR after a write latches it.
  m.lw(0x300, 0x40000 | 0x05);
  m.lw(0x280, 0);
  assert.equal(m.lr(0x280), 0x20);
});

test('timer one-shot, periodic, divide config and masking with a manual clock', () => {
  const m = setup();
  m.lw(0xf0, 0x1ff);
  m.lw(0x3e0, 0x3); // divide by 16
  m.lw(0x320, 0x30); // one-shot, vector 0x30
  m.lw(0x380, 1000);
  assert.equal(m.lr(0x390), 1000);
  m.clock.advance(16 * 400);
  assert.equal(m.lr(0x390), 600);
  assert.equal(m.cpu[0].intr, false);
  m.clock.advance(16 * 600);
  assert.equal(m.lr(0x390), 0);
  assert.equal(m.lapics[0].acknowledge(), 0x30);
  m.lw(0xb0, 0);
  m.clock.advance(1e6);
  assert.equal(m.cpu[0].intr, false, 'one-shot fires once');
  // Periodic, divide by 1.
  m.lw(0x3e0, 0xb);
  m.lw(0x320, 0x20031);
  m.lw(0x380, 500);
  let fired = 0;
  for (let i = 0; i < 10; i++) {
    m.clock.advance(100);
    if (m.cpu[0].intr) { assert.equal(m.lapics[0].acknowledge(), 0x31); m.lw(0xb0, 0); fired++; }
  }
  assert.equal(fired, 2);
  assert.equal(m.lr(0x390), 500);
  m.clock.advance(250);
  assert.equal(m.lr(0x390), 250);
  m.lapics[0].acknowledge(); m.lw(0xb0, 0);
  // Masked: the count keeps running, no interrupt.
  m.lw(0x320, 0x30031);
  m.clock.advance(5000);
  assert.equal(m.cpu[0].intr, false);
  // Snapshot keeps the timer running where it was.
  m.lw(0x320, 0x20031);
  const s = saveState(m.lapics[0]);
  restoreState(m.lapics[0], s);
  m.clock.advance(500);
  assert.equal(m.cpu[0].intr, true);
  // Writing 0 stops it.
  m.lw(0x380, 0);
  assert.equal(m.lr(0x390), 0);
});

test('INIT/SIPI and fixed IPIs between two CPUs, logical flat destinations', () => {
  const m = setup(2);
  m.bus.current = 0;
  m.lw(0xf0, 0x1ff);
  m.lw(0x310, 1 << 24);
  m.lw(0x300, 0x4500); // INIT assert to APIC 1
  assert.equal(m.cpu[1].init, 1);
  m.lw(0x300, 0x0608); // SIPI vector 8
  assert.equal(m.cpu[1].sipi, 8);
  // CPU 1 enables its APIC and sets logical ID bit 1.
  m.bus.current = 1;
  m.lw(0xf0, 0x1ff);
  m.lw(0xd0, 0x02000000);
  assert.equal(m.lr(0x20), 0x01000000);
  m.bus.current = 0;
  m.lw(0x310, 0x02 << 24);
  m.lw(0x300, 0x800 | 0x55); // logical, fixed
  assert.equal(m.cpu[1].intr, true);
  assert.equal(m.cpu[0].intr, false);
  assert.equal(m.lapics[1].acknowledge(), 0x55);
  m.lw(0x300, 0xc0000 | 0x400); // NMI to all excluding self
  assert.equal(m.cpu[1].nmi, 1);
  assert.equal(m.cpu[0].nmi, 0);
});

test('I/O APIC: registers, edge and level delivery, masking, remote IRR and EOI broadcast', () => {
  const m = setup();
  m.lw(0xf0, 0x1ff);
  assert.equal(m.ior(1), 0x00170011);
  assert.equal(m.ior(0x10) & 0x10000, 0x10000, 'masked at reset');
  m.iow(0, 0x02000000);
  assert.equal(m.ior(0), 0x02000000);
  // Edge, pin 2 (the PIT) → vector 0x30 on APIC 0.
  m.iow(0x10 + 4, 0x30);
  m.iow(0x11 + 4, 0);
  m.ioapic.setIrq(2, true);
  m.ioapic.setIrq(2, false);
  assert.equal(m.lapics[0].acknowledge(), 0x30);
  m.lw(0xb0, 0);
  // Masked edges are lost.
  m.iow(0x10 + 4, 0x10030);
  m.ioapic.setIrq(2, true); m.ioapic.setIrq(2, false);
  m.iow(0x10 + 4, 0x30);
  assert.equal(m.cpu[0].intr, false);
  // Level, pin 16, active low as a PCI _PRT entry: remote IRR until EOI, then re-fire while asserted.
  m.iow(0x10 + 32, 0xa041);
  m.ioapic.setIrq(16, true);
  assert.equal(m.ior(0x10 + 32) & 0x4000, 0x4000);
  assert.equal(m.lapics[0].acknowledge(), 0x41);
  assert.equal(m.lr(0x180 + 0x20) & 2, 2, 'TMR set for a level interrupt');
  m.lw(0xb0, 0);
  assert.equal(m.ior(0x10 + 32) & 0x4000, 0x4000, 're-delivered while still asserted');
  assert.equal(m.lapics[0].acknowledge(), 0x41);
  m.ioapic.setIrq(16, false);
  m.lw(0xb0, 0);
  assert.equal(m.ior(0x10 + 32) & 0x4000, 0);
  assert.equal(m.cpu[0].intr, false);
  // Level asserted while masked fires on unmask.
  m.iow(0x10 + 32, 0x1a041);
  m.ioapic.setIrq(16, true);
  assert.equal(m.cpu[0].intr, false);
  m.iow(0x10 + 32, 0xa041);
  assert.equal(m.cpu[0].intr, true);
  // Snapshot round trip.
  const s = saveState(m.ioapic);
  restoreState(m.ioapic, s);
  assert.equal(m.ior(0x10 + 32) & 0xff, 0x41);
});
