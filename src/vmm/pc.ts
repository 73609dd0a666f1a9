// One virtual PC: guest memory, a vCPU, and the i440FX/PIIX-class board around it — 8259 PICs, 8254 PIT,
// MC146818 RTC, four 16550A UARTs, i8042, ports 0x92/0x80, PCI with the PIIX3 ISA bridge and PIIX4 ACPI
// power management, local APIC and I/O APIC — plus the firmware tables a directly booted Linux reads.
// Wiring follows a PC: ISA IRQs go to both the PIC and the I/O APIC pins; the PIC's INTR output enters
// the local APIC's LINT0 (virtual-wire / ExtINT), and the local APIC drives the vCPU's INTR pin.

import { CPU, CpuStop } from '../cpu/cpu.ts';
import { attachJit, type Jit } from '../jit/jit.ts';
import { GuestMemory } from '../memory/guest-memory.ts';
import { IoBus } from '../machine/io-bus.ts';
import { IrqLine, type IrqSink } from '../machine/irq.ts';
import { DeviceCounters } from '../machine/device-counters.ts';
import { Clock } from '../machine/clock.ts';
import { PciBus } from '../machine/pci.ts';
import { buildE820 } from '../machine/e820.ts';
import { buildAcpiTables } from '../machine/acpi-tables.ts';
import { loadLinux } from '../machine/linux-boot.ts';
import { Pic8259 } from '../devices/isa/pic8259.ts';
import { Pit8254 } from '../devices/isa/pit8254.ts';
import { Rtc146818 } from '../devices/isa/rtc146818.ts';
import { COM_PORTS, Uart16550 } from '../devices/isa/uart16550.ts';
import { I8042 } from '../devices/isa/i8042.ts';
import { Port92 } from '../devices/isa/port92.ts';
import { Port80 } from '../devices/isa/port80.ts';
import { I440fxHostBridge } from '../devices/pci/i440fx.ts';
import { Piix3IsaBridge } from '../devices/pci/piix3-isa.ts';
import { Piix4Pm } from '../devices/acpi/piix4-pm.ts';
import { ApicBus } from '../devices/apic/apic-bus.ts';
import { Lapic } from '../devices/apic/lapic.ts';
import { IOAPIC_BASE, Ioapic } from '../devices/apic/ioapic.ts';

export interface PcConfig {
  memoryMiB: number;
  kernel: Uint8Array;
  initrd?: Uint8Array;
  cmdline: string;
  /**
   * Add-on devices (disks, NICs): each is called once the chipset exists and before PCI resources are
   * assigned and firmware tables are built, typically to `pci.add(fn, allocatePciSlot())`.
   */
  devices?: ((m: PcMachine) => void)[];
  /** vCPU engine: the binary translator (src/jit/, default) or the interpreter. */
  cpu?: 'interp' | 'jit';
}

/** Why the machine stopped running guest code. */
export type StopReason =
  | { kind: 'poweroff' }
  | { kind: 'reset' }
  | { kind: 'triple-fault'; message: string }
  | { kind: 'hung'; message: string };

const ACPI_BASE = 0xe0000;
const PCI_MMIO = { base: 0xe0000000, end: 0xfebfffff };

export class PcMachine {
  readonly mem: GuestMemory;
  readonly cpu: CPU;
  /** The binary translator running this vCPU (null when config.cpu is 'interp'). */
  readonly jit: Jit | null;
  /** Register accesses and interrupts per device (`--stats`), shared by the I/O bus, MMIO, IRQ lines and MSI. */
  readonly counters = new DeviceCounters();
  readonly io = new IoBus(this.counters);
  readonly clock = new Clock();
  readonly pic: Pic8259;
  readonly lapic: Lapic;
  readonly ioapic: Ioapic;
  readonly pit: Pit8254;
  readonly rtc: Rtc146818;
  readonly serial: Uart16550[];
  readonly kbc: I8042;
  readonly pm: Piix4Pm;
  readonly pci: PciBus;
  readonly apicBus: ApicBus;
  /** PCI slots 0 (host bridge) and 1 (PIIX3/PIIX4 functions) are the chipset's; devices get the next free one. */
  private nextSlot = 2;
  /** Set when the guest asked for power-off or reset, or the vCPU stopped for good. */
  stopped: StopReason | null = null;

  constructor(readonly config: PcConfig) {
    const bytes = config.memoryMiB * 1024 * 1024;
    this.mem = new GuestMemory(bytes, { counters: this.counters });
    this.cpu = new CPU(this.mem, this.io);
    this.cpu.features.apic = true;
    this.cpu.clockNs = () => this.clock.now();
    this.jit = config.cpu === 'interp' ? null : attachJit(this.cpu);

    const apicBus = new ApicBus();
    this.apicBus = apicBus;
    apicBus.mapMmio(this.mem);
    this.ioapic = new Ioapic(apicBus);
    this.mem.mapMmio(IOAPIC_BASE, 0x1000, this.ioapic, 'ioapic');

    // INTR chain: PIC → LAPIC LINT0 → vCPU.
    let lapicRef: Lapic | null = null;
    this.pic = new Pic8259((level) => lapicRef?.setLint(0, level));
    this.lapic = new Lapic({
      id: 0, bus: apicBus, clock: this.clock, bsp: true, extInt: this.pic,
      onIntrChange: (level) => { this.cpu.intr = level; },
      onNmi: () => { this.cpu.nmiPending = true; },
    });
    lapicRef = this.lapic;
    this.cpu.intSource = this.lapic;
    this.cpu.hooks.apicBase = (v) => this.lapic.setHardwareEnabled((v & 0x800n) !== 0n);

    const pic = this.pic, ioapic = this.ioapic;
    // `device` is the name the device's ports are registered under, so its interrupts land in the same row.
    const isa = (irq: number, device: string) => {
      // ISA IRQ0 reaches I/O APIC pin 2 (the MADT's interrupt source override); the others pin = IRQ.
      const targets: { sink: IrqSink; line: number }[] = [{ sink: pic, line: irq }, { sink: ioapic, line: irq === 0 ? 2 : irq }];
      return new IrqLine(targets, this.counters.counter(device));
    };

    this.pit = new Pit8254(this.clock, isa(0, 'pit'));
    this.pit.register(this.io);
    this.pic.register(this.io);
    this.rtc = new Rtc146818(this.clock, isa(8, 'rtc'), { memoryBytes: bytes });
    this.rtc.register(this.io);
    this.serial = COM_PORTS.map((p) => {
      const u = new Uart16550(this.clock, isa(p.irq, `uart@${p.base.toString(16)}`), p.base);
      u.register(this.io);
      return u;
    });
    // The i8042 raises IRQ1/IRQ12 when its output buffer (the data port) fills.
    this.kbc = new I8042(isa(1, 'i8042-data'), isa(12, 'i8042-data'));
    this.kbc.register(this.io);
    this.kbc.onReset = () => this.stop({ kind: 'reset' });
    const p92 = new Port92();
    p92.register(this.io);
    p92.onReset = () => this.stop({ kind: 'reset' });
    new Port80().register(this.io);

    this.pci = new PciBus({ io: this.io, mem: this.mem });
    this.pci.registerPorts();
    this.pci.add(new I440fxHostBridge(), 0);
    const bridge = new Piix3IsaBridge({ pic, ioapic, onReset: () => this.stop({ kind: 'reset' }) });
    this.pci.add(bridge, 1);
    this.pci.router = bridge;
    this.pci.passThrough = bridge;
    bridge.routePirqs();
    this.pm = new Piix4Pm({ io: this.io, clock: this.clock, sci: isa(9, 'piix4-pm'), onPowerOff: () => this.stop({ kind: 'poweroff' }) });
    this.pci.add(this.pm, 1, 3);
    for (const attach of config.devices ?? []) attach(this);
    this.pci.assignResources({ ioBase: 0xc000, ioEnd: 0x10000, memBase: PCI_MMIO.base, memEnd: 0xfec00000 });

    const acpi = buildAcpiTables(this.mem, {
      base: ACPI_BASE, limit: 0x100000, cpus: 1, pciMmio: PCI_MMIO,
      serialPorts: COM_PORTS.map((p) => ({ base: p.base, irq: p.irq })), rtc: true, i8042: true,
    });
    const e820 = buildE820({ ramSize: bytes, biosAreaStart: ACPI_BASE, pciHoleStart: PCI_MMIO.base });
    loadLinux(this.cpu, this.mem, { kernel: config.kernel, initrd: config.initrd, cmdline: config.cmdline, e820, rsdp: acpi.rsdp });
  }

  /**
   * Where a device sends its MSI messages: the APIC bus, counting each one for `device` (`--stats`).
   * Attach hooks pass it to MSI-capable devices (virtio-pci's `msi` option).
   */
  msiSink(device: string): (address: number, data: number) => void {
    const counter = this.counters.counter(device);
    return (address, data) => this.apicBus.deliverMsi(address, data, counter);
  }

  /** The next free PCI slot for an add-on device (virtio, NICs). */
  allocatePciSlot(): number {
    if (this.nextSlot > 31) throw new Error('no free PCI slot left (32 per bus)');
    return this.nextSlot++;
  }

  stop(reason: StopReason): void {
    if (!this.stopped) this.stopped = reason;
    this.cpu.stopSlice = true;
  }

  /**
   * Runs guest code for up to `budget` instructions and fires due timers. Returns the number of
   * nanoseconds until the next timer when the vCPU is halted (the caller may sleep), else 0.
   * With `stealAfterMs`, host time the guest code took beyond that is withheld from the guest's clocks
   * (Clock.steal) before the timers read the clock again: only time not yet read can be withheld, so
   * this must come before runDue, or a stall would always be observed by the timers first.
   */
  runSlice(budget: number, stealAfterMs?: number): number {
    let next = this.clock.runDue();
    if (this.stopped) return 0;
    const t0 = performance.now();
    try {
      this.cpu.run(budget);
    } catch (e) {
      if (e instanceof CpuStop) { this.stop({ kind: 'triple-fault', message: e.message }); return 0; }
      throw e;
    }
    if (stealAfterMs !== undefined) {
      const ms = performance.now() - t0;
      if (ms > stealAfterMs) this.clock.steal((ms - stealAfterMs) * 1e6);
    }
    next = this.clock.runDue();
    if (this.cpu.halted && !this.stopped) {
      if (!(this.cpu.flags & 0x200) && !this.cpu.nmiPending) {
        this.stop({ kind: 'hung', message: `vCPU halted with interrupts disabled at ${this.cpu.sreg[1].toString(16)}:${(this.cpu.eip >>> 0).toString(16)}; nothing can wake it` });
        return 0;
      }
      if (this.cpu.intr || this.cpu.nmiPending) return 0;
      return next < 0 ? 10_000_000 : Math.max(0, next - this.clock.now());
    }
    return 0;
  }
}
