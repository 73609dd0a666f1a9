// The PIIX3 PCI-to-ISA bridge, function 0 of the south bridge at 00:01.0 (Intel 82371SB PIIX3 datasheet,
// order no. 290550): its PIRQ route control registers (§2.2.13, 0x60-0x63) steer the four PCI interrupt
// links PIRQA#-D# onto ISA IRQs of the internal 8259s, and its reset control register at I/O 0xCF9
// (§2.3.4) resets the system.
//
// Board wiring (ours, like many 440FX boards with an 82093AA): PIRQA#-D# also go straight to I/O APIC
// inputs 16-19, so an OS in APIC mode uses those and the ISA routing only matters in PIC mode.

import { PciFunction, type IntxRouter, type PciConfigState } from '../../machine/pci.ts';
import type { PortDevice } from '../../machine/io-bus.ts';
import type { IrqSink } from '../../machine/irq.ts';

const PIRQRC = 0x60;
/** PIRQRC bit 7: routing disabled (the reset value, §2.2.13). */
const IRQROUTEN_DISABLE = 0x80;
/** ISA IRQs a PIRQ may be steered to (§2.2.13, bits 3:0; the others are reserved). */
const VALID_IRQS = new Set([3, 4, 5, 6, 7, 9, 10, 11, 12, 14, 15]);

/** The routing a PC BIOS typically leaves (and our ACPI _PRT describes in PIC mode). */
export const DEFAULT_PIRQ_IRQS = [10, 10, 11, 11];
/** I/O APIC input of PIRQA#; B-D follow. */
export const PIRQ_GSI_BASE = 16;

type State = PciConfigState & { pirqLevel: boolean[]; resetControl: number };

export interface Piix3Options {
  /** The ISA interrupt inputs (the 8259 pair). */
  pic: IrqSink;
  /** The I/O APIC, wired to PIRQA#-D# on inputs 16-19. */
  ioapic?: IrqSink;
  /** Reset control asked for a reset; `hard` is SRST (full system) rather than a CPU-only reset. */
  onReset?: (hard: boolean) => void;
}

export class Piix3IsaBridge extends PciFunction<State> implements IntxRouter, PortDevice {
  private readonly pic: IrqSink;
  private readonly ioapic: IrqSink | undefined;
  private readonly onReset: (hard: boolean) => void;

  constructor(opts: Piix3Options) {
    // 8086:7000, class 06/01/00 "ISA bridge", multi-function (IDE, USB and power management follow).
    super('piix3-isa', { vendor: 0x8086, device: 0x7000, classCode: 0x060100, multiFunction: true },
      { pirqLevel: [false, false, false, false], resetControl: 0 });
    this.pic = opts.pic;
    this.ioapic = opts.ioapic;
    this.onReset = opts.onReset ?? (() => {});
    // Bus master and I/O/memory are hardwired on for the ISA bridge (§2.2.3: "PCICMD ... bits 0-2 = 1").
    this.put(0x04, 2, 0x0007);
    this.setWmask(0x04, 2, 0);
    this.put(0x06, 2, 0x0200); // DEVSEL# medium timing
    for (let r = 0x4c; r <= 0xb3; r++) this.wmask[r] = 0xff; // IORT, XBCS, PIRQRC, TOM, MSTAT, MBIRQ...
    for (let i = 0; i < 4; i++) this.state.config[PIRQRC + i] = IRQROUTEN_DISABLE;
    this.put(0x4e, 2, 0x0003); // XBCS reset value
    this.state.config[0x69] = 0x02; // TOM
    this.state.config[0x70] = 0x80; this.state.config[0x71] = 0x80; // MBIRQ0/1 disabled
  }

  /** What firmware does at boot: route each PIRQ link to an ISA IRQ (`irqs[0]` for PIRQA#...). */
  routePirqs(irqs: number[] = DEFAULT_PIRQ_IRQS): void {
    irqs.forEach((irq, i) => this.writeConfig(PIRQRC + i, 1, irq));
  }

  pirqIrq(pirq: number): number {
    const r = this.state.config[PIRQRC + pirq];
    return r & IRQROUTEN_DISABLE || !VALID_IRQS.has(r & 0xf) ? -1 : r & 0xf;
  }

  setPirq(pirq: number, level: boolean): void {
    const oldIsa = this.isaLevels();
    this.state.pirqLevel[pirq] = level;
    this.ioapic?.setIrq(PIRQ_GSI_BASE + pirq, level);
    this.driveIsa(oldIsa);
  }

  override writeConfig(off: number, size: 1 | 2 | 4, value: number): void {
    const oldIsa = this.isaLevels();
    super.writeConfig(off, size, value);
    if (off < PIRQRC + 4 && off + size > PIRQRC) this.driveIsa(oldIsa);
  }

  /** Each ISA IRQ is the wired-OR of the asserted links routed to it. */
  private isaLevels(): Map<number, boolean> {
    const m = new Map<number, boolean>();
    for (let p = 0; p < 4; p++) {
      const irq = this.pirqIrq(p);
      if (irq >= 0) m.set(irq, (m.get(irq) ?? false) || this.state.pirqLevel[p]);
    }
    return m;
  }

  private driveIsa(old: Map<number, boolean>): void {
    const now = this.isaLevels();
    for (const [irq, lv] of old) if (lv && !now.get(irq)) this.pic.setIrq(irq, false);
    for (const [irq, lv] of now) if (lv && !old.get(irq)) this.pic.setIrq(irq, true);
  }

  // --- Reset control register, I/O 0xCF9 (§2.3.4), reached through the PCI bus's pass-through. ---

  ioRead(port: number, size: 1 | 2 | 4): number {
    if (port === 0xcf9 && size === 1) return this.state.resetControl;
    return size === 1 ? 0xff : 0xffff;
  }

  ioWrite(port: number, size: 1 | 2 | 4, value: number): void {
    if (port !== 0xcf9 || size !== 1) return;
    // Bit 1 SRST chooses a hard (system) reset; the 0→1 transition of bit 2 RCPU starts it.
    const start = (value & 4) && !(this.state.resetControl & 4);
    this.state.resetControl = value & 0x02;
    if (start) this.onReset((value & 2) !== 0);
  }

  override afterRestore(): void {
    super.afterRestore();
    for (let p = 0; p < 4; p++) this.ioapic?.setIrq(PIRQ_GSI_BASE + p, this.state.pirqLevel[p]);
    const now = this.isaLevels();
    for (const [irq, lv] of now) this.pic.setIrq(irq, lv);
  }
}
