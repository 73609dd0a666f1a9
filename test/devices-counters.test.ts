// Per-device counters (`trapeze run --stats`, the SIGUSR2 dump, the disk rows of `npm run bench`): guest
// register accesses through the I/O bus and MMIO, counted for the device that owns the region, and the
// interrupts a device raises on IRQ lines, PCI INTx# and MSI.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { IoBus, type PortDevice } from '../src/machine/io-bus.ts';
import { IrqLine, type IrqSink } from '../src/machine/irq.ts';
import { GuestMemory, type MmioHandler } from '../src/memory/guest-memory.ts';
import { DeviceCounters, countsDelta, formatCountsTable, parseCountsTable, type DeviceCounts } from '../src/machine/device-counters.ts';
import { PciBus, PciFunction, PCI_COMMAND, PCI_BAR0, CMD_IO, CMD_MEM } from '../src/machine/pci.ts';
import { ApicBus, type ApicMessage, type ApicTarget } from '../src/devices/apic/apic-bus.ts';
import { PiixIde } from '../src/devices/storage/piix-ide.ts';
import { CPU } from '../src/cpu/cpu.ts';
import { statsReport } from '../src/vmm/stats.ts';
import type { Vm } from '../src/vmm/vm.ts';

const port: PortDevice = { ioRead: () => 0x5a, ioWrite: () => {} };
const regs: MmioHandler = { read: () => 0x12345678, write: () => {} };

function row(c: DeviceCounters, device: string): DeviceCounts | undefined {
  return c.snapshot().find((r) => r.device === device);
}

test('port I/O: reads and writes count for the claiming device; ranges of one device share a row', () => {
  const io = new IoBus();
  io.register(0x1f0, 8, port, 'disk-cmd', 'disk');
  io.register(0x3f6, 1, port, 'disk-ctl', 'disk');
  io.register(0x60, 1, port, 'kbd');
  io.in(0x1f7, 1); io.in(0x1f0, 2); io.out(0x1f6, 1, 0xe0); io.out(0x3f6, 1, 2); io.in(0x3f6, 1);
  io.out(0x60, 1, 0xf4);
  // Nobody's ports: no device row changes, and no row appears for them.
  io.in(0x1234, 1); io.out(0x1234, 1, 0);
  assert.deepEqual(row(io.counters, 'disk'), { device: 'disk', reads: 3, writes: 2, irqs: 0 });
  assert.deepEqual(row(io.counters, 'kbd'), { device: 'kbd', reads: 0, writes: 1, irqs: 0 });
  assert.equal(io.counters.snapshot().length, 2);
  // Unregistering and claiming again (a BAR moving) keeps the device's counts.
  io.unregister(port);
  io.register(0x170, 8, port, 'disk-cmd', 'disk');
  io.in(0x170, 1);
  assert.equal(row(io.counters, 'disk')!.reads, 4);
});

test('MMIO: loads and stores count for the region owner, RAM accesses do not', () => {
  const counters = new DeviceCounters();
  const mem = new GuestMemory(1 << 20, { counters });
  mem.mapMmio(0xfee00000, 0x1000, regs, 'lapic');
  mem.mapMmio(0xfec00000, 0x20, regs, 'ioapic-window', 'ioapic');
  mem.read32(0xfee00020); mem.read8(0xfee000f0); mem.write32(0xfee000b0, 0);
  mem.write32(0xfec00000, 1); mem.read32(0xfec00010);
  mem.write32(0x1000, 7); mem.read32(0x1000); // RAM
  mem.read32(0xd0000000); // nothing there: all ones, no device
  assert.deepEqual(row(counters, 'lapic'), { device: 'lapic', reads: 2, writes: 1, irqs: 0 });
  assert.deepEqual(row(counters, 'ioapic'), { device: 'ioapic', reads: 1, writes: 1, irqs: 0 });
  assert.equal(counters.snapshot().length, 2);
  // Memory without a registry still works (user mode, tests): it just reports nothing.
  const bare = new GuestMemory(1 << 16);
  bare.mapMmio(0x8000, 0x1000, regs, 'guard');
  assert.equal(bare.read32(0x8000), 0x12345678);
});

test('the vCPU reaches the counters: IN/OUT and a load and store to MMIO', () => {
  const counters = new DeviceCounters();
  const mem = new GuestMemory(1 << 20, { counters });
  const io = new IoBus(counters);
  io.register(0x3f8, 8, port, 'uart@3f8');
  mem.mapMmio(0xe0000000, 0x1000, regs, 'dev');
  // Real mode at 0:1000 with DS based at 0xE0000000 (as after unreal-mode setup):
  // mov dx,0x3f8; in al,dx; out dx,al; out dx,al; mov eax,[0]; mov [4],eax; hlt
  mem.writeBytes(0x1000, Uint8Array.from([0xba, 0xf8, 0x03, 0xec, 0xee, 0xee, 0x66, 0xa1, 0, 0, 0x66, 0xa3, 4, 0, 0xf4]));
  const cpu = new CPU(mem, io);
  cpu.sreg[1] = 0; cpu.segBase[1] = 0; cpu.eip = 0x1000;
  cpu.sreg[3] = 0; cpu.segBase[3] = 0xe0000000 | 0;
  cpu.run(100);
  assert.ok(cpu.halted, 'ran to HLT');
  assert.deepEqual(row(counters, 'uart@3f8'), { device: 'uart@3f8', reads: 1, writes: 2, irqs: 0 });
  assert.deepEqual(row(counters, 'dev'), { device: 'dev', reads: 1, writes: 1, irqs: 0 });
});

class Sink implements IrqSink {
  rises = 0;
  private level = false;
  setIrq(_line: number, level: boolean): void { if (level && !this.level) this.rises++; this.level = level; }
}

test('IRQ lines count assertions (rising edges), not levels held or lowered', () => {
  const counters = new DeviceCounters();
  const sink = new Sink();
  const line = new IrqLine([{ sink, line: 4 }], counters.counter('uart@3f8'));
  line.raise(); line.raise(); line.set(true); // held high: one assertion
  line.lower(); line.lower();
  line.pulse(); line.pulse();
  assert.equal(row(counters, 'uart@3f8')!.irqs, 3);
  assert.equal(sink.rises, 3, 'the controller saw the same edges');
  // Two lines of one device (the i8042's IRQ1 and IRQ12) add up in one row.
  const aux = new IrqLine([{ sink, line: 12 }], counters.counter('uart@3f8'));
  aux.pulse();
  assert.equal(row(counters, 'uart@3f8')!.irqs, 4);
  // Without a counter a line still works and counts privately.
  const bare = new IrqLine([{ sink, line: 5 }]);
  bare.pulse();
  assert.equal(bare.counter.irqs, 1);
});

/** A PCI function with one I/O BAR and one memory BAR. */
class TestFn extends PciFunction {
  constructor(name: string) {
    super(name, { vendor: 0x1234, device: 0x5678, classCode: 0xff0000, interruptPin: 1 }, {});
    this.setBar(0, { kind: 'io', size: 32, read: () => 0, write: () => {} });
    this.setBar(1, { kind: 'mem', size: 0x1000, read: () => 0, write: () => {} });
  }
}

test('PCI: every BAR of a function counts under its name, across relocation; INTx# assertions too', () => {
  const io = new IoBus(), mem = new GuestMemory(1 << 20, { counters: new DeviceCounters() });
  const pci = new PciBus({ io, mem });
  pci.registerPorts();
  const fn = new TestFn('nic0');
  pci.add(fn, 2);
  pci.assignResources({ ioBase: 0xc000, ioEnd: 0x10000, memBase: 0xe0000000, memEnd: 0xfec00000 });
  const ioAt = fn.mappedAddress(0), memAt = fn.mappedAddress(1);
  assert.ok(ioAt > 0 && memAt > 0);
  io.in(ioAt, 4); io.out(ioAt + 4, 2, 1); mem.read32(memAt); mem.write32(memAt + 8, 1); mem.write32(memAt + 12, 1);
  // The counter is the I/O bus registry's, even though memory has a registry of its own.
  assert.equal(fn.counter, io.counters.counter('nic0'));
  assert.deepEqual(row(io.counters, 'nic0'), { device: 'nic0', reads: 2, writes: 3, irqs: 0 });
  // The guest moves BAR0: the new ports count for the same device, the old ones for nobody.
  fn.writeConfig(PCI_BAR0, 4, 0xd000);
  assert.equal(fn.mappedAddress(0), 0xd000);
  io.in(0xd000, 1); io.in(ioAt, 1);
  assert.equal(row(io.counters, 'nic0')!.reads, 3);
  // Decoding off: no accesses reach the device.
  fn.writeConfig(PCI_COMMAND, 2, fn.command & ~(CMD_IO | CMD_MEM));
  io.in(0xd000, 1); mem.read32(memAt);
  assert.equal(row(io.counters, 'nic0')!.reads, 3);
  // INTx#: assertions, not repeated sets of the same level.
  fn.setIntx(true); fn.setIntx(true); fn.setIntx(false); fn.setIntx(false); fn.setIntx(true);
  assert.equal(row(io.counters, 'nic0')!.irqs, 2);
});

test('IDE: legacy task-file ports, control port and bus master BAR are one device', () => {
  const io = new IoBus(), mem = new GuestMemory(1 << 20);
  const pci = new PciBus({ io, mem });
  const sink = new Sink();
  const irq = (n: number) => new IrqLine([{ sink, line: n }], io.counters.counter('piix3-ide'));
  const ide = new PiixIde({ io, mem, irqs: [irq(14), irq(15)], drives: [] });
  pci.add(ide, 1, 1);
  pci.assignResources({ ioBase: 0xc000, ioEnd: 0x10000, memBase: 0xe0000000, memEnd: 0xfec00000 });
  io.in(0x1f7, 1); io.out(0x3f6, 1, 0); io.in(0x177, 1); io.in(ide.mappedAddress(4) + 2, 1);
  const r = row(io.counters, 'piix3-ide')!;
  assert.equal(r.reads, 3);
  assert.equal(r.writes, 1);
  assert.deepEqual(io.counters.snapshot().map((x) => x.device), ['piix3-ide']);
});

class FakeLapic implements ApicTarget {
  got: ApicMessage[] = [];
  constructor(readonly apicId: number) {}
  matchesLogical(): boolean { return false; }
  readonly priority = 0;
  accept(msg: ApicMessage): void { this.got.push(msg); }
  readonly mmio = regs;
}

test('MSI: delivered messages count for the sending device and in the bus total; stray writes do not', () => {
  const counters = new DeviceCounters();
  const bus = new ApicBus();
  const cpu0 = new FakeLapic(0);
  bus.lapics.push(cpu0);
  const blk = counters.counter('virtio-blk0');
  bus.deliverMsi(0xfee00000, 0x41, blk);
  bus.deliverMsi(0xfee00000, 0x42, blk);
  bus.deliverMsi(0xfee00000, 0x43); // unattributed
  bus.deliverMsi(0xd0000000, 0x44, blk); // not the APIC window: no interrupt
  assert.equal(cpu0.got.length, 3);
  assert.equal(blk.irqs, 2);
  assert.equal(bus.msis, 3);
});

test('the table: busiest first, totals, read back by the parser; deltas between two snapshots', () => {
  const c = new DeviceCounters();
  c.counter('idle');
  Object.assign(c.counter('virtio-blk0'), { reads: 10, writes: 300, irqs: 40 });
  Object.assign(c.counter('uart@3f8'), { reads: 5, writes: 7, irqs: 1 });
  Object.assign(c.counter('piix3-ide BAR4'), { reads: 1, writes: 0, irqs: 0 });
  const before = c.snapshot();
  const text = formatCountsTable(before, 'trapeze: ');
  const lines = text.trimEnd().split('\n');
  assert.match(lines[0], /^trapeze: device register accesses/);
  assert.match(lines[2], /virtio-blk0\s+10\s+300\s+40$/);
  assert.match(lines[3], /uart@3f8\s+5\s+7\s+1$/);
  assert.match(lines.at(-1)!, /total\s+16\s+307\s+41$/);
  assert.ok(!text.includes('idle'), 'devices that did nothing are left out');
  const parsed = parseCountsTable(`noise\n${text}more noise\n`)!;
  assert.deepEqual(parsed.sort((a, b) => a.device.localeCompare(b.device)), before.filter((r) => r.device !== 'idle').sort((a, b) => a.device.localeCompare(b.device)));
  // The last of several tables wins; a table cut off before its totals line is not read.
  c.counter('virtio-blk0').writes += 100;
  const later = formatCountsTable(c.snapshot(), 'trapeze: ');
  assert.equal(parseCountsTable(text + later)!.find((r) => r.device === 'virtio-blk0')!.writes, 400);
  assert.equal(parseCountsTable(later.split('\n').slice(0, 3).join('\n')), null);
  const d = countsDelta(c.snapshot(), before);
  assert.deepEqual(d.find((r) => r.device === 'virtio-blk0'), { device: 'virtio-blk0', reads: 0, writes: 100, irqs: 0 });
  assert.deepEqual(countsDelta([{ device: 'new', reads: 2, writes: 1, irqs: 0 }], []), [{ device: 'new', reads: 2, writes: 1, irqs: 0 }]);
});

test('the --stats / SIGUSR2 report carries the machine\'s table in a form the bench reads back', () => {
  const counters = new DeviceCounters();
  Object.assign(counters.counter('virtio-blk0'), { writes: 128, irqs: 128 });
  Object.assign(counters.counter('piix3-ide'), { reads: 13, writes: 18, irqs: 1 });
  const apicBus = new ApicBus();
  apicBus.msis = 128;
  // The parts of a Vm the report reads.
  const vm = { instructions: 5e6, startedAt: 0, machine: { counters, apicBus, jit: null } } as unknown as Vm;
  const text = statsReport(vm, 2000);
  assert.match(text, /^trapeze: 5000000 instructions in 2\.0 s \(2\.5 MIPS\)$/m);
  assert.match(text, /^trapeze: MSI messages delivered to the APIC bus: 128$/m);
  assert.deepEqual(parseCountsTable(text), [
    { device: 'virtio-blk0', reads: 0, writes: 128, irqs: 128 },
    { device: 'piix3-ide', reads: 13, writes: 18, irqs: 1 },
  ]);
});
