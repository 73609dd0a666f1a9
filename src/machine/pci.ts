// The PCI bus: configuration mechanism #1 on ports 0xCF8/0xCFC (PCI Local Bus spec 3.0 §3.2.2.3.2), and
// the part of every function's 256-byte configuration space header that the spec defines (§6.1, §6.2):
// IDs, command/status, BARs with sizing, interrupt line/pin and the capability list (§6.7). Devices
// subclass PciFunction, declare their BARs with register handlers, and the bus maps them on the I/O bus
// or in guest memory whenever the command register enables decoding.

import type { IoBus, PortDevice } from './io-bus.ts';
import type { GuestMemory, MmioHandler } from '../memory/guest-memory.ts';
import type { DeviceState, Stateful } from '../devices/state.ts';
import { DeviceCounter } from './device-counters.ts';

// Configuration header offsets (§6.1, Figure 6-1).
export const PCI_VENDOR_ID = 0x00;
export const PCI_COMMAND = 0x04;
export const PCI_STATUS = 0x06;
export const PCI_REVISION = 0x08;
export const PCI_HEADER_TYPE = 0x0e;
export const PCI_BAR0 = 0x10;
export const PCI_SUBSYSTEM_VENDOR = 0x2c;
export const PCI_CAP_PTR = 0x34;
export const PCI_INTERRUPT_LINE = 0x3c;
export const PCI_INTERRUPT_PIN = 0x3d;

export const CMD_IO = 1 << 0;
export const CMD_MEM = 1 << 1;
export const CMD_BUS_MASTER = 1 << 2;
export const CMD_INTX_DISABLE = 1 << 10;
const STATUS_INTX = 1 << 3;
const STATUS_CAP_LIST = 1 << 4;

/** One base address register and the device registers it decodes; handlers see offsets inside the BAR. */
export interface PciBarDef {
  kind: 'io' | 'mem';
  /** Power of two (§6.2.5.1: the size is found by writing all ones and reading back the hardwired zeros). */
  size: number;
  /** A 64-bit memory BAR takes this slot and the next one. */
  is64?: boolean;
  prefetchable?: boolean;
  read(offset: number, size: 1 | 2 | 4): number;
  write(offset: number, size: 1 | 2 | 4, value: number): void;
}

export interface PciIds {
  vendor: number;
  device: number;
  /** Base class << 16 | sub-class << 8 | programming interface (§6.2.1). */
  classCode: number;
  revision?: number;
  /** Bit 7 marks a multi-function device; only function 0's bit counts (§6.2.1). */
  multiFunction?: boolean;
  subsystemVendor?: number;
  subsystem?: number;
  /** 1..4 for INTA#..INTD#, 0 when the function uses no INTx pin. */
  interruptPin?: number;
}

/** Guest-visible state every function has: its configuration bytes and its INTx output level. */
export type PciConfigState = { config: Uint8Array; intx: boolean };

/**
 * A PCI function. Subclasses add their own state fields (passed as `extra`), BARs (`setBar`),
 * capabilities (`addCapability`), and override `readConfig`/`writeConfig` for device-specific registers.
 */
export class PciFunction<S extends PciConfigState & DeviceState = PciConfigState & DeviceState> implements Stateful<S> {
  state: S;
  /** Bits of each configuration byte the guest may change. */
  protected readonly wmask = new Uint8Array(256);
  /** Bits that are cleared by writing one (status bits, §6.2.3). */
  protected readonly w1cmask = new Uint8Array(256);
  readonly bars: (PciBarDef | undefined)[] = new Array(6).fill(undefined);
  bus: PciBus | null = null;
  /** Device number << 3 | function number, set by `PciBus.add`. */
  devfn = 0;
  /**
   * Register accesses to every BAR and INTx# assertions of this function (`--stats`): the machine's counter
   * for `name` once `PciBus.add` has run (the I/O bus's registry), a detached one before.
   */
  counter: DeviceCounter;
  /** Where each BAR is currently decoded (-1: not decoding); derived from config, rebuilt on restore. */
  private readonly mappedAt: number[] = new Array(6).fill(-1);
  private readonly mappings: (PortDevice | MmioHandler | undefined)[] = new Array(6).fill(undefined);
  private lastCap = 0;
  private nextFree = 0x40;

  constructor(readonly name: string, ids: PciIds, extra: Omit<S, keyof PciConfigState>) {
    this.state = { config: new Uint8Array(256), intx: false, ...extra } as unknown as S;
    this.counter = new DeviceCounter(name);
    const c = this.state.config;
    this.put(PCI_VENDOR_ID, 2, ids.vendor);
    this.put(0x02, 2, ids.device);
    this.put(PCI_REVISION, 1, ids.revision ?? 0);
    this.put(0x09, 1, ids.classCode & 0xff);
    this.put(0x0a, 2, ids.classCode >>> 8);
    c[PCI_HEADER_TYPE] = ids.multiFunction ? 0x80 : 0x00;
    this.put(PCI_SUBSYSTEM_VENDOR, 2, ids.subsystemVendor ?? 0);
    this.put(0x2e, 2, ids.subsystem ?? 0);
    c[PCI_INTERRUPT_PIN] = ids.interruptPin ?? 0;
    // Command: I/O, memory, bus master, parity, SERR#, INTx disable are the bits a simple device implements.
    this.setWmask(PCI_COMMAND, 2, CMD_IO | CMD_MEM | CMD_BUS_MASTER | (1 << 6) | (1 << 8) | CMD_INTX_DISABLE);
    // Status: the error bits are write-one-to-clear (§6.2.3).
    this.w1cmask[PCI_STATUS + 1] = 0xf9;
    // Interrupt line is a scratch register for software (§6.2.4).
    this.wmask[PCI_INTERRUPT_LINE] = 0xff;
    // Cache line size and latency timer are read/write on most devices; drivers write them.
    this.wmask[0x0c] = 0xff; this.wmask[0x0d] = 0xff;
  }

  // --- Helpers for subclasses -------------------------------------------------------------------------------

  protected put(off: number, size: number, v: number): void {
    for (let i = 0; i < size; i++) this.state.config[off + i] = (v >>> (8 * i)) & 0xff;
  }

  protected get(off: number, size: number): number {
    let v = 0;
    for (let i = 0; i < size; i++) v |= this.state.config[off + i] << (8 * i);
    return v >>> 0;
  }

  protected setWmask(off: number, size: number, mask: number): void {
    for (let i = 0; i < size; i++) this.wmask[off + i] = (mask >>> (8 * i)) & 0xff;
  }

  /** Declares BAR `i`. Read-only type bits go in config, the writable address bits in wmask (§6.2.5.1). */
  protected setBar(i: number, def: PciBarDef): void {
    if (def.size & (def.size - 1)) throw new Error(`${this.name}: BAR size must be a power of two`);
    this.bars[i] = def;
    const off = PCI_BAR0 + 4 * i;
    if (def.kind === 'io') {
      // I/O BARs decode 16 bits on PC compatibles; the upper half is hardwired to zero.
      this.put(off, 4, 1);
      this.setWmask(off, 4, ~(Math.max(def.size, 4) - 1) & 0xfffc);
    } else {
      this.put(off, 4, (def.is64 ? 0b100 : 0) | (def.prefetchable ? 0b1000 : 0));
      this.setWmask(off, 4, ~(Math.max(def.size, 16) - 1) & 0xfffffff0);
      if (def.is64) this.setWmask(off + 4, 4, 0xffffffff);
    }
  }

  /** Links a capability of `len` bytes (ID and next pointer included) into the list; returns its offset. */
  protected addCapability(id: number, len: number): number {
    const off = this.nextFree;
    if (off + len > 256) throw new Error(`${this.name}: configuration space full`);
    this.nextFree = (off + len + 3) & ~3;
    this.state.config[off] = id;
    this.state.config[off + 1] = 0;
    if (this.lastCap) this.state.config[this.lastCap + 1] = off;
    else this.state.config[PCI_CAP_PTR] = off;
    this.lastCap = off;
    this.state.config[PCI_STATUS] |= STATUS_CAP_LIST;
    return off;
  }

  /** Drives the function's INTx# pin (asserted = true); the bus routes it to an interrupt controller. */
  setIntx(level: boolean): void {
    if (level && !this.state.intx) this.counter.irqs++;
    this.state.intx = level;
    if (level) this.state.config[PCI_STATUS] |= STATUS_INTX;
    else this.state.config[PCI_STATUS] &= ~STATUS_INTX;
    this.bus?.updateIntx();
  }

  /** The level the pin shows on the board: the command register can disable INTx (§6.2.2 bit 10). */
  get intxOut(): boolean { return this.state.intx && !(this.get(PCI_COMMAND, 2) & CMD_INTX_DISABLE); }

  get command(): number { return this.get(PCI_COMMAND, 2); }

  /** The address BAR `i` is programmed with (not whether it decodes). */
  barAddress(i: number): number {
    const def = this.bars[i];
    if (!def) return -1;
    const lo = this.get(PCI_BAR0 + 4 * i, 4);
    if (def.kind === 'io') return lo & 0xfffc;
    const base = (lo & 0xfffffff0) >>> 0;
    return def.is64 ? base + this.get(PCI_BAR0 + 4 * i + 4, 4) * 2 ** 32 : base;
  }

  // --- Configuration accesses ----------------------------------------------------------------------------------

  readConfig(off: number, size: 1 | 2 | 4): number {
    return this.get(off, size);
  }

  writeConfig(off: number, size: 1 | 2 | 4, value: number): void {
    const c = this.state.config;
    for (let i = 0; i < size; i++) {
      const a = off + i, v = (value >>> (8 * i)) & 0xff;
      c[a] = ((c[a] & ~this.wmask[a]) | (v & this.wmask[a])) & ~(v & this.w1cmask[a]);
    }
    if (off < PCI_BAR0 + 24 && off + size > PCI_COMMAND) this.updateBars();
    if (off <= PCI_COMMAND + 1 && off + size > PCI_COMMAND + 1) this.bus?.updateIntx();
  }

  /** Maps or unmaps every BAR to match the command register and BAR values. */
  updateBars(): void {
    const cmd = this.command;
    for (let i = 0; i < 6; i++) {
      const def = this.bars[i];
      if (!def) continue;
      const enabled = def.kind === 'io' ? cmd & CMD_IO : cmd & CMD_MEM;
      let at = enabled ? this.barAddress(i) : -1;
      // Address 0 is "unassigned"; a BAR beyond the 32-bit space cannot be reached by this machine.
      if (at === 0 || at + def.size > (def.kind === 'io' ? 0x10000 : 2 ** 32)) at = -1;
      if (at === this.mappedAt[i]) continue;
      this.unmapBar(i);
      if (at >= 0) this.mapBar(i, def, at);
    }
  }

  private mapBar(i: number, def: PciBarDef, at: number): void {
    const bus = this.bus;
    if (!bus) return;
    const label = `${this.name} BAR${i}`;
    try {
      if (def.kind === 'io') {
        const h: PortDevice = { ioRead: (p, s) => def.read(p - at, s), ioWrite: (p, s, v) => def.write(p - at, s, v) };
        this.mappings[i] = h;
        bus.io.register(at, def.size, h, label, this.counter);
      } else {
        const h: MmioHandler = { read: (a, s) => def.read(a - at, s), write: (a, s, v) => def.write(a - at, s, v) };
        this.mappings[i] = h;
        bus.mem.mapMmio(at, def.size, h, label, this.counter);
      }
      this.mappedAt[i] = at;
    } catch {
      // An address conflict is a programming error of the guest; like real hardware we leave the
      // decoder in an undefined (here: not decoding) state instead of taking down the machine.
      this.unmapBar(i);
    }
  }

  private unmapBar(i: number): void {
    const h = this.mappings[i];
    if (h && this.bus) {
      if (this.bars[i]!.kind === 'io') this.bus.io.unregister(h as PortDevice);
      else this.bus.mem.unmapMmio(h as MmioHandler);
    }
    this.mappings[i] = undefined;
    this.mappedAt[i] = -1;
  }

  /** Where BAR `i` is decoded right now, or -1. */
  mappedAddress(i: number): number { return this.mappedAt[i]; }

  afterRestore(): void {
    this.updateBars();
    this.bus?.updateIntx();
  }
}

/** Where a PCI slot's INTx pins end up (the PIIX PIRQ links, an I/O APIC...). */
export interface IntxRouter {
  /** Level of PIRQ link `pirq` (0..3 = PIRQA#..PIRQD#). */
  setPirq(pirq: number, level: boolean): void;
  /** The ISA IRQ a link is routed to, or -1 (firmware writes it to the interrupt line register). */
  pirqIrq(pirq: number): number;
}

/**
 * The board's INTx wiring: slot s pin p (1 = INTA#) drives PIRQ ((s - 1) + (p - 1)) mod 4, the rotation
 * that keeps single-function cards in adjacent slots on different links (PCI spec §2.2.6). The ACPI _PRT
 * is generated from this same function.
 */
export function pciSlotPirq(slot: number, pin: number): number {
  return (slot + pin - 2) & 3;
}

interface BusOptions { io: IoBus; mem: GuestMemory }

/** Bus 0 and the host bridge's configuration mechanism #1. */
export class PciBus implements PortDevice, Stateful<{ configAddress: number }> {
  readonly name = 'pci';
  state = { configAddress: 0 };
  readonly io: IoBus;
  readonly mem: GuestMemory;
  readonly functions: (PciFunction | undefined)[] = new Array(256).fill(undefined);
  router: IntxRouter | null = null;
  /**
   * Byte/word accesses to 0xCF8-0xCFB are not CONFIG_ADDRESS and pass through as normal I/O (§3.2.2.3.2);
   * on PIIX chipsets port 0xCF9 is the reset control register.
   */
  passThrough: PortDevice | null = null;
  private pirqLevels = [false, false, false, false];

  constructor(opts: BusOptions) {
    this.io = opts.io;
    this.mem = opts.mem;
  }

  /** Claims 0xCF8-0xCFF on the I/O bus. */
  registerPorts(): void { this.io.register(0xcf8, 8, this, 'pci-config'); }

  add(fn: PciFunction, slot: number, func = 0): void {
    const devfn = (slot << 3) | func;
    if (this.functions[devfn]) throw new Error(`PCI 00:${slot.toString(16)}.${func} taken`);
    this.functions[devfn] = fn;
    fn.counter = this.io.counters.counter(fn.name);
    fn.bus = this;
    fn.devfn = devfn;
    fn.updateBars();
  }

  /** Configuration read of bus 0; an absent function reads as all ones (master abort, §6.1). */
  configRead(devfn: number, off: number, size: 1 | 2 | 4): number {
    const fn = this.functions[devfn];
    // Functions 1-7 exist for software only when function 0 says multi-function (§6.2.1, Header Type).
    if (!fn || ((devfn & 7) && !(this.functions[devfn & ~7]?.state.config[PCI_HEADER_TYPE]! & 0x80))) {
      return size === 1 ? 0xff : size === 2 ? 0xffff : 0xffffffff;
    }
    return fn.readConfig(off, size) >>> 0;
  }

  configWrite(devfn: number, off: number, size: 1 | 2 | 4, value: number): void {
    this.functions[devfn]?.writeConfig(off, size, value);
  }

  ioRead(port: number, size: 1 | 2 | 4): number {
    if (port < 0xcfc) {
      if (port === 0xcf8 && size === 4) return this.state.configAddress >>> 0;
      return this.passThrough ? this.passThrough.ioRead(port, size) : size === 1 ? 0xff : 0xffff;
    }
    const a = this.state.configAddress;
    // Enable bit clear, or a bus behind no bridge: nobody claims the cycle.
    if (!(a & 0x80000000) || ((a >>> 16) & 0xff) !== 0) return size === 1 ? 0xff : size === 2 ? 0xffff : 0xffffffff;
    return this.configRead((a >>> 8) & 0xff, (a & 0xfc) | (port & 3), size);
  }

  ioWrite(port: number, size: 1 | 2 | 4, value: number): void {
    if (port < 0xcfc) {
      // Bits 30:24 are reserved and bits 1:0 are hardwired to 0 for type 0 translation (§3.2.2.3.2).
      if (port === 0xcf8 && size === 4) this.state.configAddress = (value & 0x80fffffc) >>> 0;
      else this.passThrough?.ioWrite(port, size, value);
      return;
    }
    const a = this.state.configAddress;
    if (!(a & 0x80000000) || ((a >>> 16) & 0xff) !== 0) return;
    this.configWrite((a >>> 8) & 0xff, (a & 0xfc) | (port & 3), size, value);
  }

  /** Recomputes the wired-OR level of each PIRQ link from every function's INTx output. */
  updateIntx(): void {
    const lv = [false, false, false, false];
    for (const fn of this.functions) {
      if (!fn) continue;
      const pin = fn.state.config[PCI_INTERRUPT_PIN];
      if (pin >= 1 && pin <= 4 && fn.intxOut) lv[pciSlotPirq(fn.devfn >> 3, pin)] = true;
    }
    for (let p = 0; p < 4; p++) {
      if (lv[p] !== this.pirqLevels[p]) { this.pirqLevels[p] = lv[p]; this.router?.setPirq(p, lv[p]); }
    }
  }

  /**
   * What firmware does before it boots an OS (we boot Linux without one): gives every BAR an address,
   * largest first so each is naturally aligned, enables decoding, and fills the interrupt line register.
   */
  assignResources(opts: { ioBase: number; ioEnd: number; memBase: number; memEnd: number }): void {
    let io = opts.ioBase, mem = opts.memBase;
    const bars: { fn: PciFunction; i: number; def: PciBarDef }[] = [];
    for (const fn of this.functions) fn?.bars.forEach((def, i) => { if (def) bars.push({ fn, i, def }); });
    bars.sort((a, b) => b.def.size - a.def.size);
    for (const { fn, i, def } of bars) {
      const off = PCI_BAR0 + 4 * i;
      if (def.kind === 'io') {
        const size = Math.max(def.size, 4);
        io = Math.ceil(io / size) * size;
        if (io + size > opts.ioEnd) continue;
        fn.writeConfig(off, 4, io); io += size;
        fn.writeConfig(PCI_COMMAND, 2, fn.command | CMD_IO);
      } else {
        const size = Math.max(def.size, 16);
        mem = Math.ceil(mem / size) * size;
        if (mem + size > opts.memEnd) continue;
        fn.writeConfig(off, 4, mem);
        if (def.is64) fn.writeConfig(off + 4, 4, 0);
        mem += size;
        fn.writeConfig(PCI_COMMAND, 2, fn.command | CMD_MEM);
      }
    }
    for (const fn of this.functions) {
      const pin = fn?.state.config[PCI_INTERRUPT_PIN] ?? 0;
      if (fn && pin >= 1 && pin <= 4 && this.router) {
        const irq = this.router.pirqIrq(pciSlotPirq(fn.devfn >> 3, pin));
        fn.writeConfig(PCI_INTERRUPT_LINE, 1, irq < 0 ? 0xff : irq);
      }
    }
  }

  afterRestore(): void {
    for (const fn of this.functions) fn?.afterRestore();
  }
}
