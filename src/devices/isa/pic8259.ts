// The cascaded pair of Intel 8259A programmable interrupt controllers of the PC (master at 0x20, slave at
// 0xA0 on the master's IR2), plus the PIIX edge/level control registers (ELCR) at 0x4D0/0x4D1.
// References: Intel 8259A datasheet (order 231468), "Programming the 8259A" (ICW1-4, OCW1-3) and
// "Interrupt sequence"; Intel 82371AB PIIX4 datasheet §4.3.3 / §8.2 (ELCR replaces ICW1.LTIM).

import type { InterruptSource } from '../../cpu/bus.ts';
import type { IoBus, PortDevice } from '../../machine/io-bus.ts';
import type { IrqSink } from '../../machine/irq.ts';
import type { Stateful } from '../state.ts';
import { widenByte } from './byte-port.ts';

/** One 8259A. Bit n of each mask stands for input IRn. */
type Chip = {
  irr: number; isr: number; imr: number;
  /** Current levels of the IR inputs (the edge detector compares against these). */
  lines: number;
  /** ELCR: 1 = level-triggered input. */
  elcr: number;
  /** 0 = operational; 2, 3, 4 = waiting for that ICW. */
  initStep: number;
  icw4Needed: boolean; single: boolean;
  vectorBase: number; icw3: number;
  autoEoi: boolean; rotateOnAutoEoi: boolean; specialFullyNested: boolean;
  specialMask: boolean;
  /** OCW3 RR/RIS: read ISR (true) or IRR (false) at the even port. */
  readIsr: boolean;
  /** OCW3 P: the next even-port read is a poll. */
  poll: boolean;
  /** The IR that currently has the lowest priority is (lowestPriority) ; IR(lowest+1) is the highest. */
  lowestPriority: number;
};

export type PicState = { master: Chip; slave: Chip; intr: boolean };

/** PIIX4 §4.3.3: IRQ0, 1, 2, 8 and 13 are always edge-triggered, so their ELCR bits are reserved (0). */
const ELCR_MASK = [0xf8, 0xde];

function newChip(): Chip {
  return {
    irr: 0, isr: 0, imr: 0, lines: 0, elcr: 0, initStep: 0, icw4Needed: false, single: false,
    vectorBase: 0, icw3: 0, autoEoi: false, rotateOnAutoEoi: false, specialFullyNested: false,
    specialMask: false, readIsr: false, poll: false, lowestPriority: 7,
  };
}

/** Priority rank of the highest-priority bit set in `mask` (0 = highest), or 8 when none. */
function bestRank(c: Chip, mask: number): number {
  for (let r = 0; r < 8; r++) if (mask & (1 << ((c.lowestPriority + 1 + r) & 7))) return r;
  return 8;
}
const irOfRank = (c: Chip, r: number): number => (c.lowestPriority + 1 + r) & 7;

export class Pic8259 implements PortDevice, InterruptSource, IrqSink, Stateful<PicState> {
  readonly name = 'pic';
  state: PicState = { master: newChip(), slave: newChip(), intr: false };

  /** `onIntrChange` drives the CPU's INTR pin from the master's INT output. */
  constructor(private readonly onIntrChange: (level: boolean) => void) {}

  register(bus: IoBus): void {
    bus.register(0x20, 2, this, 'pic-master');
    bus.register(0xa0, 2, this, 'pic-slave');
    bus.register(0x4d0, 2, this, 'elcr');
  }

  /** IRQ 0-7 go to the master, 8-15 to the slave. */
  setIrq(line: number, level: boolean): void {
    if (line < 8) this.input(this.state.master, line, level);
    else this.input(this.state.slave, line - 8, level);
    this.update();
  }

  private input(c: Chip, ir: number, level: boolean): void {
    const bit = 1 << ir;
    if (c.elcr & bit) {
      // Level mode: the request follows the input (8259A "Level triggered mode": IR must stay high until INTA).
      if (level) c.irr |= bit; else c.irr &= ~bit;
    } else if (level && !(c.lines & bit)) {
      c.irr |= bit; // Edge mode latches a low-to-high transition; the request stays latched until INTA.
    }
    if (level) c.lines |= bit; else c.lines &= ~bit;
  }

  /** The IR this chip would present on INT, or -1 ("Fully nested mode" / "Special mask mode"). */
  private pending(c: Chip): number {
    const rank = bestRank(c, c.irr & ~c.imr);
    if (rank === 8) return -1;
    let inService = c.isr;
    // Special mask mode: masked in-service levels no longer inhibit lower priorities.
    if (c.specialMask) inService &= ~c.imr;
    // Special fully nested mode (master only): further requests from the slave are let through.
    if (c.specialFullyNested && c === this.state.master) inService &= ~(1 << 2);
    return rank < bestRank(c, inService) ? irOfRank(c, rank) : -1;
  }

  private update(): void {
    const { master, slave } = this.state;
    // The slave's INT pin is wired to the master's IR2.
    this.input(master, 2, this.pending(slave) >= 0);
    const intr = this.pending(master) >= 0;
    if (intr !== this.state.intr) { this.state.intr = intr; this.onIntrChange(intr); }
  }

  /** First INTA pulse: freeze the request into the ISR ("Interrupt sequence" steps 4-5). */
  private intack(c: Chip, ir: number): void {
    const bit = 1 << ir;
    if (c.autoEoi) { if (c.rotateOnAutoEoi) c.lowestPriority = ir; } else c.isr |= bit;
    if (!(c.elcr & bit)) c.irr &= ~bit;
  }

  acknowledge(): number {
    const { master, slave } = this.state;
    let vector: number;
    const ir = this.pending(master);
    if (ir < 0) {
      // Request withdrawn before INTA: the 8259A answers with IR7's vector and sets no ISR bit (spurious).
      vector = master.vectorBase | 7;
    } else {
      this.intack(master, ir);
      if (ir === 2 && !master.single) {
        const sir = this.pending(slave);
        // A vanished slave request likewise gives the slave's IR7 vector (spurious IRQ15).
        if (sir >= 0) this.intack(slave, sir);
        vector = slave.vectorBase | (sir >= 0 ? sir : 7);
      } else vector = master.vectorBase | ir;
    }
    this.update();
    return vector;
  }

  ioRead(port: number, size: 1 | 2 | 4): number {
    if (port === 0x4d0 || port === 0x4d1) {
      const v = this.state.master.elcr | (this.state.slave.elcr << 8);
      return port === 0x4d0 ? (size === 1 ? v & 0xff : v) : v >> 8;
    }
    const c = port < 0xa0 ? this.state.master : this.state.slave;
    let v: number;
    if (port & 1) v = c.imr;
    else if (c.poll) v = this.pollRead(c);
    else v = c.readIsr ? c.isr : c.irr;
    return widenByte(v, size);
  }

  /** "Poll command": the read acts as an INTA; bit 7 = interrupt present, bits 2-0 = highest level. */
  private pollRead(c: Chip): number {
    c.poll = false;
    const ir = this.pending(c);
    if (ir < 0) return 0;
    this.intack(c, ir);
    this.update();
    return 0x80 | ir;
  }

  ioWrite(port: number, size: 1 | 2 | 4, value: number): void {
    if (port === 0x4d0 || port === 0x4d1) {
      if (port === 0x4d0) this.writeElcr(0, value & 0xff);
      if (port === 0x4d1 || size > 1) this.writeElcr(1, port === 0x4d1 ? value & 0xff : (value >> 8) & 0xff);
      this.update();
      return;
    }
    const c = port < 0xa0 ? this.state.master : this.state.slave;
    value &= 0xff;
    if (port & 1) this.writeOdd(c, value);
    else if (value & 0x10) this.icw1(c, value);
    else if (value & 0x08) this.ocw3(c, value);
    else this.ocw2(c, value);
    this.update();
  }

  private writeElcr(i: number, v: number): void {
    const c = i ? this.state.slave : this.state.master;
    c.elcr = v & ELCR_MASK[i];
    c.irr = (c.irr & ~c.elcr) | (c.lines & c.elcr);
  }

  /** ICW1 "Initialization Command Words": resets the chip's mode; LTIM is ignored on PIIX (ELCR rules). */
  private icw1(c: Chip, v: number): void {
    // Edge sense reset: only inputs that rise after this see a request; level inputs re-sample their line.
    c.irr = c.lines & c.elcr;
    c.isr = 0; c.imr = 0;
    c.lowestPriority = 7; c.specialMask = false; c.readIsr = false; c.poll = false;
    c.autoEoi = false; c.rotateOnAutoEoi = false; c.specialFullyNested = false;
    c.icw4Needed = (v & 1) !== 0;
    c.single = (v & 2) !== 0;
    c.initStep = 2;
  }

  private writeOdd(c: Chip, v: number): void {
    switch (c.initStep) {
      case 0: c.imr = v; break; // OCW1
      case 2: // ICW2: T7-T3 of the vector (x86 mode ignores A10-A8)
        c.vectorBase = v & 0xf8;
        c.initStep = !c.single ? 3 : c.icw4Needed ? 4 : 0;
        break;
      case 3: // ICW3: cascade wiring (master: slave bitmap; slave: its ID) - fixed by the PC's board
        c.icw3 = v;
        c.initStep = c.icw4Needed ? 4 : 0;
        break;
      case 4: // ICW4: SFNM (bit 4), AEOI (bit 1); uPM, BUF and M/S do not change behaviour here
        c.specialFullyNested = (v & 0x10) !== 0;
        c.autoEoi = (v & 0x02) !== 0;
        c.initStep = 0;
        break;
    }
  }

  /** OCW2: EOI and rotation commands (R, SL, EOI bits 7-5; L2-L0 level). */
  private ocw2(c: Chip, v: number): void {
    const level = v & 7;
    switch (v >> 5) {
      case 0: c.rotateOnAutoEoi = false; break;
      case 4: c.rotateOnAutoEoi = true; break;
      case 1: case 5: { // non-specific EOI (optionally rotating): clears the highest-priority ISR bit
        const r = bestRank(c, c.isr);
        if (r === 8) break;
        const ir = irOfRank(c, r);
        c.isr &= ~(1 << ir);
        if (v >> 5 === 5) c.lowestPriority = ir;
        break;
      }
      case 3: c.isr &= ~(1 << level); break; // specific EOI
      case 7: c.isr &= ~(1 << level); c.lowestPriority = level; break; // rotate on specific EOI
      case 6: c.lowestPriority = level; break; // set priority
      case 2: break; // no operation
    }
  }

  /** OCW3: ESMM/SMM (bits 6-5), P (bit 2), RR/RIS (bits 1-0). */
  private ocw3(c: Chip, v: number): void {
    if (v & 0x40) c.specialMask = (v & 0x20) !== 0;
    if (v & 0x04) c.poll = true;
    if (v & 0x02) c.readIsr = (v & 1) !== 0;
  }

  afterRestore(): void { this.onIntrChange(this.state.intr); }
}
