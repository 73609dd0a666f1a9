// The I/O APIC (Intel 82093AA datasheet, order no. 290566): 24 interrupt inputs, each with a 64-bit
// redirection entry that turns an input into an APIC message (§3.2.4), reached through the indirect
// IOREGSEL/IOWIN pair at 0xFEC00000 (§3.1). Level-triggered inputs hold Remote IRR from delivery until the
// local APIC's EOI comes back with the same vector, and re-fire if still asserted.
//
// Input levels are logical (asserted/not); the polarity bit is stored for software but the board is
// modelled as having already inverted active-low PCI wires, so it does not flip levels here.

import type { MmioHandler } from '../../memory/guest-memory.ts';
import type { IrqSink } from '../../machine/irq.ts';
import type { Stateful } from '../state.ts';
import type { ApicBus, EoiListener } from './apic-bus.ts';

export const IOAPIC_BASE = 0xfec00000;
export const IOAPIC_PINS = 24;
/** Version 0x11 with 24 entries (maximum redirection entry 23 in bits 23:16, §3.2.2). */
const IOAPIC_VERSION = 0x11 | ((IOAPIC_PINS - 1) << 16);

// Redirection entry low-dword bits (§3.2.4).
const DELIVERY_STATUS = 1 << 12, REMOTE_IRR = 1 << 14, LEVEL = 1 << 15, MASKED = 1 << 16;
/** Software may write everything but delivery status and Remote IRR. */
const RTE_WMASK_LO = 0x1afff;

type State = { ioregsel: number; id: number; rte: Uint32Array; levels: boolean[] };

export class Ioapic implements IrqSink, EoiListener, MmioHandler, Stateful<State> {
  readonly name = 'ioapic';
  state: State;

  constructor(private readonly bus: ApicBus, id = 0) {
    const rte = new Uint32Array(IOAPIC_PINS * 2);
    for (let i = 0; i < IOAPIC_PINS; i++) rte[2 * i] = MASKED; // every input masked at reset (§3.2.4)
    this.state = { ioregsel: 0, id, rte, levels: new Array(IOAPIC_PINS).fill(false) };
    bus.eoiListeners.push(this);
  }

  // --- MMIO: IOREGSEL at +0x00, IOWIN at +0x10 (§3.1); addresses relative to the base or absolute. ---

  read(addr: number, size: 1 | 2 | 4): number {
    const off = addr & 0xff;
    if (off === 0x00) return this.state.ioregsel;
    if (off >= 0x10 && off < 0x14) {
      const v = this.readRegister(this.state.ioregsel);
      return size === 4 ? v | 0 : (v >>> ((off & 3) * 8)) & (size === 1 ? 0xff : 0xffff);
    }
    return 0;
  }

  write(addr: number, size: 1 | 2 | 4, value: number): void {
    const off = addr & 0xff;
    if (off === 0x00) this.state.ioregsel = value & 0xff;
    else if (off === 0x10 && size === 4) this.writeRegister(this.state.ioregsel, value >>> 0);
  }

  readRegister(index: number): number {
    const s = this.state;
    if (index === 0x00) return (s.id & 0xf) << 24;
    if (index === 0x01) return IOAPIC_VERSION;
    if (index === 0x02) return (s.id & 0xf) << 24; // arbitration ID follows the APIC ID
    if (index >= 0x10 && index < 0x10 + 2 * IOAPIC_PINS) return s.rte[index - 0x10];
    return 0;
  }

  writeRegister(index: number, v: number): void {
    const s = this.state;
    if (index === 0x00) { s.id = (v >>> 24) & 0xf; return; }
    if (index < 0x10 || index >= 0x10 + 2 * IOAPIC_PINS) return;
    const i = index - 0x10, pin = i >>> 1;
    if (i & 1) { s.rte[i] = v & 0xff000000; return; }
    s.rte[i] = (s.rte[i] & (DELIVERY_STATUS | REMOTE_IRR)) | (v & RTE_WMASK_LO);
    // An edge entry has no Remote IRR; an asserted level input fires once it is unmasked.
    if (!(s.rte[i] & LEVEL)) s.rte[i] &= ~REMOTE_IRR;
    this.service(pin);
  }

  // --- Inputs ---

  setIrq(pin: number, level: boolean): void {
    if (pin < 0 || pin >= IOAPIC_PINS) return;
    const s = this.state;
    const rising = level && !s.levels[pin];
    s.levels[pin] = level;
    const lo = s.rte[2 * pin];
    if (lo & LEVEL) this.service(pin);
    else if (rising && !(lo & MASKED)) this.send(pin); // an edge that arrives masked is lost
  }

  /** EOI broadcast from a local APIC (SDM vol. 3A §10.8.5): frees level entries with that vector. */
  eoi(vector: number): void {
    for (let pin = 0; pin < IOAPIC_PINS; pin++) {
      const lo = this.state.rte[2 * pin];
      if ((lo & LEVEL) && (lo & REMOTE_IRR) && (lo & 0xff) === vector) {
        this.state.rte[2 * pin] = lo & ~REMOTE_IRR;
        this.service(pin);
      }
    }
  }

  /** Delivers an asserted, unmasked level input whose previous interrupt has been EOI'd. */
  private service(pin: number): void {
    const lo = this.state.rte[2 * pin];
    if ((lo & LEVEL) && this.state.levels[pin] && !(lo & MASKED) && !(lo & REMOTE_IRR)) {
      this.state.rte[2 * pin] = lo | REMOTE_IRR;
      this.send(pin);
    }
  }

  private send(pin: number): void {
    const lo = this.state.rte[2 * pin], hi = this.state.rte[2 * pin + 1];
    this.bus.deliver({
      vector: lo & 0xff, deliveryMode: (lo >>> 8) & 7, logical: (lo & (1 << 11)) !== 0,
      dest: hi >>> 24, levelTriggered: (lo & LEVEL) !== 0,
    });
  }

  afterRestore(): void {
    for (let pin = 0; pin < IOAPIC_PINS; pin++) this.service(pin);
  }
}
