// PCI configuration mechanism #1, BAR sizing/decoding, capabilities, PIIX3 PIRQ routing and reset control,
// and the PIIX4 PM function — programmed through ports 0xCF8/0xCFC like a driver.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { IoBus } from '../src/machine/io-bus.ts';
import { IrqLine, type IrqSink } from '../src/machine/irq.ts';
import { Clock } from '../src/machine/clock.ts';
import { GuestMemory } from '../src/memory/guest-memory.ts';
import { PciBus, PciFunction, type PciConfigState } from '../src/machine/pci.ts';
import { I440fxHostBridge } from '../src/devices/pci/i440fx.ts';
import { Piix3IsaBridge } from '../src/devices/pci/piix3-isa.ts';
import { Piix4Pm, PM_TIMER_HZ } from '../src/devices/acpi/piix4-pm.ts';
import { restoreState, saveState } from '../src/devices/state.ts';

class Sink implements IrqSink { levels = new Map<number, boolean>(); setIrq(l: number, v: boolean): void { this.levels.set(l, v); } }

/** A test device: an I/O BAR and a memory BAR that record accesses, INTA#, one vendor capability. */
class TestDev extends PciFunction<PciConfigState> {
  log: string[] = [];
  capOff: number;
  constructor() {
    super('testdev', { vendor: 0x1234, device: 0x5678, classCode: 0xff0000, interruptPin: 1 }, {});
    this.setBar(0, { kind: 'io', size: 32, read: (o) => 0x40 + o, write: (o, _s, v) => this.log.push(`io ${o} ${v}`) });
    this.setBar(1, { kind: 'mem', size: 0x1000, read: (o) => 0x1000 + o, write: (o, _s, v) => this.log.push(`mem ${o} ${v}`) });
    this.capOff = this.addCapability(0x09, 8);
  }
}

function machine() {
  const io = new IoBus();
  const mem = new GuestMemory(16 << 20);
  const clock = new Clock({ manual: true });
  const pic = new Sink(), ioapic = new Sink();
  const bus = new PciBus({ io, mem });
  bus.registerPorts();
  let resets: boolean[] = [], powerOff = 0;
  const isa = new Piix3IsaBridge({ pic, ioapic, onReset: (h) => resets.push(h) });
  bus.router = isa;
  bus.passThrough = isa;
  bus.add(new I440fxHostBridge(), 0);
  bus.add(isa, 1, 0);
  const sci = new Sink();
  const pm = new Piix4Pm({ io, clock, sci: new IrqLine([{ sink: sci, line: 9 }]), onPowerOff: () => powerOff++ });
  bus.add(pm, 1, 3);
  const cfg = (dev: number, fn: number, off: number): number => 0x80000000 | (dev << 11) | (fn << 8) | (off & 0xfc);
  const rd = (dev: number, fn: number, off: number, size: 1 | 2 | 4 = 4): number => { io.out(0xcf8, 4, cfg(dev, fn, off)); return io.in(0xcfc + (off & 3), size); };
  const wr = (dev: number, fn: number, off: number, v: number, size: 1 | 2 | 4 = 4): void => { io.out(0xcf8, 4, cfg(dev, fn, off)); io.out(0xcfc + (off & 3), size, v); };
  return { io, mem, clock, pic, ioapic, bus, isa, pm, sci, rd, wr, resets, get powerOff() { return powerOff; } };
}

test('config mechanism #1 finds the 440FX, PIIX3 and PIIX4 PM and nothing else', () => {
  const m = machine();
  assert.equal(m.rd(0, 0, 0), 0x12378086);
  assert.equal(m.rd(0, 0, 8) >>> 8, 0x060000);
  assert.equal(m.rd(1, 0, 0), 0x70008086);
  assert.equal(m.rd(1, 0, 0x0e, 1) & 0x80, 0x80, 'ISA bridge is multi-function');
  assert.equal(m.rd(1, 3, 0), 0x71138086);
  assert.equal(m.rd(2, 0, 0), 0xffffffff);
  assert.equal(m.rd(1, 2, 0), 0xffffffff);
  // CONFIG_ADDRESS reads back with reserved bits clear; disabled accesses go nowhere.
  m.io.out(0xcf8, 4, 0xff00_0a07 | 0);
  assert.equal(m.io.in(0xcf8, 4), 0x80000a04);
  m.io.out(0xcf8, 4, 0);
  assert.equal(m.io.in(0xcfc, 4), 0xffffffff);
  // Byte/word reads through 0xCFE.
  assert.equal(m.rd(0, 0, 2, 2), 0x1237);
  assert.equal(m.rd(0, 0, 3, 1), 0x12);
});

test('BAR sizing, command-register decoding and remapping', () => {
  const m = machine();
  const d = new TestDev();
  m.bus.add(d, 3);
  // Sizing: write all ones, read back the size mask with the type bits.
  m.wr(3, 0, 0x10, 0xffffffff);
  assert.equal(m.rd(3, 0, 0x10), 0x0000ffe1);
  m.wr(3, 0, 0x14, 0xffffffff);
  assert.equal(m.rd(3, 0, 0x14), 0xfffff000);
  m.wr(3, 0, 0x10, 0xc000);
  m.wr(3, 0, 0x14, 0xe0001000);
  assert.equal(m.io.in(0xc004, 1), 0xff, 'not decoding while command disables I/O');
  m.wr(3, 0, 0x04, 0x0003, 2);
  assert.equal(m.io.in(0xc004, 1), 0x44);
  m.io.out(0xc01f, 2, 7);
  assert.equal(m.mem.read32(0xe0001010), 0x1010);
  m.mem.write32(0xe0001ffc, 5);
  assert.deepEqual(d.log, ['io 31 7', 'mem 4092 5']);
  // Moving the BAR unmaps the old address.
  m.wr(3, 0, 0x10, 0xd000);
  assert.equal(m.io.in(0xc004, 1), 0xff);
  assert.equal(m.io.in(0xd000, 1), 0x40);
  // Clearing memory enable drops the MMIO mapping.
  m.wr(3, 0, 0x04, 0x0001, 2);
  assert.equal(m.mem.read32(0xe0001010), -1);
  // Status: capability list present, pointer at 0x34 leads to our capability.
  assert.equal(m.rd(3, 0, 0x06, 2) & 0x10, 0x10);
  assert.equal(m.rd(3, 0, 0x34, 1), d.capOff);
  assert.equal(m.rd(3, 0, d.capOff, 2), 0x0009);
  // Vendor/device IDs are read-only.
  m.wr(3, 0, 0, 0);
  assert.equal(m.rd(3, 0, 0), 0x56781234);
  // Snapshot/restore keeps the mapping derived from config.
  const s = saveState(d);
  m.wr(3, 0, 0x10, 0xe000);
  restoreState(d, s);
  assert.equal(m.io.in(0xd000, 1), 0x40);
  assert.equal(m.io.in(0xe000, 1), 0xff);
});

test('firmware resource assignment and INTx through the PIIX3 PIRQ router', () => {
  const m = machine();
  const d = new TestDev();
  m.bus.add(d, 3); // slot 3 INTA# → PIRQC#
  m.isa.routePirqs();
  m.bus.assignResources({ ioBase: 0xc000, ioEnd: 0x10000, memBase: 0xe0000000, memEnd: 0xfec00000 });
  assert.equal(d.mappedAddress(0), 0xc000);
  assert.equal(d.mappedAddress(1), 0xe0000000);
  assert.equal(m.rd(3, 0, 0x3c, 2), 0x010b, 'interrupt pin INTA#, line 11');
  d.setIntx(true);
  assert.equal(m.pic.levels.get(11), true);
  assert.equal(m.ioapic.levels.get(18), true);
  assert.equal(m.rd(3, 0, 0x06, 2) & 0x08, 0x08, 'interrupt status');
  // INTx disable in the command register hides the pin from the board.
  m.wr(3, 0, 0x04, d.command | 0x400, 2);
  assert.equal(m.pic.levels.get(11), false);
  m.wr(3, 0, 0x04, d.command & ~0x400, 2);
  assert.equal(m.pic.levels.get(11), true);
  // Re-routing PIRQC# moves the ISA IRQ.
  m.wr(1, 0, 0x62, 5, 1);
  assert.equal(m.pic.levels.get(11), false);
  assert.equal(m.pic.levels.get(5), true);
  m.wr(1, 0, 0x62, 0x80, 1);
  assert.equal(m.pic.levels.get(5), false);
  d.setIntx(false);
  assert.equal(m.ioapic.levels.get(18), false);
});

test('reset control register at 0xCF9', () => {
  const m = machine();
  m.io.out(0xcf9, 1, 0x02);
  assert.deepEqual(m.resets, []);
  m.io.out(0xcf9, 1, 0x06);
  assert.deepEqual(m.resets, [true]);
  // A dword write to 0xCF8 is still CONFIG_ADDRESS.
  assert.equal(m.rd(0, 0, 0), 0x12378086);
});

test('PM timer counts at 3.579545 MHz, wraps at 24 bits and sets TMR_STS', () => {
  const m = machine();
  const t0 = m.io.in(0x608, 4);
  m.clock.advance(1e9);
  assert.equal((m.io.in(0x608, 4) - t0) & 0xffffff, PM_TIMER_HZ);
  m.clock.advance(1000);
  assert.equal(m.io.in(0x608, 4), (PM_TIMER_HZ + Math.floor(1000 * PM_TIMER_HZ / 1e9)) & 0xffffff);
  assert.equal(m.io.in(0x600, 2) & 1, 0);
  m.io.out(0x602, 2, 1); // TMR_EN
  m.clock.advance(Math.ceil(2 ** 23 / PM_TIMER_HZ * 1e9));
  assert.equal(m.io.in(0x600, 2) & 1, 1);
  assert.equal(m.sci.levels.get(9), true);
  m.io.out(0x600, 2, 1); // write one to clear
  assert.equal(m.sci.levels.get(9), false);
  assert.ok(m.io.in(0x608, 4) <= 0xffffff);
});

test('PM1_CNT SLP_TYP/SLP_EN powers off; power button raises SCI; PMBA moves the block', () => {
  const m = machine();
  assert.equal(m.io.in(0x604, 2) & 1, 1, 'SCI_EN: always in ACPI mode');
  m.io.out(0x602, 2, 0x100);
  m.pm.pressPowerButton();
  assert.equal(m.sci.levels.get(9), true);
  assert.equal(m.io.in(0x600, 2) & 0x100, 0x100);
  m.io.out(0x600, 2, 0x100);
  assert.equal(m.sci.levels.get(9), false);
  m.io.out(0x604, 2, (5 << 10) | 1); // SLP_TYP without SLP_EN does nothing
  assert.equal(m.powerOff, 0);
  m.io.out(0x604, 2, (0 << 10) | (1 << 13) | 1);
  assert.equal(m.powerOff, 1);
  m.wr(1, 3, 0x40, 0xb001);
  assert.equal(m.io.in(0x608, 4), 0xffffffff);
  assert.equal(m.io.in(0xb004, 2) & 1, 1);
  assert.equal(m.rd(1, 3, 0x40), 0xb001);
});
