// National Semiconductor PC16550D (16550A-compatible) UART: one serial port, 8 registers at `base`.
// The line is infinitely fast: a byte written to THR goes to the host at once, so THR/TSR are always
// empty again immediately; received bytes arrive from the host through `receive`.
// References: NS PC16550D datasheet (June 1995): §8.1 register table (Table II), §8.4 LCR, §8.5 LSR,
// §8.6 FCR, §8.7 IIR (Table IV priorities), §8.8 IER, §8.9 MCR (loopback), §8.10 MSR, §8.3 baud divisor.
// IBM PC wiring: OUT2 gates the INTR pin onto the ISA IRQ line.

import type { Clock, Timer } from '../../machine/clock.ts';
import type { IoBus, PortDevice } from '../../machine/io-bus.ts';
import type { IrqLine } from '../../machine/irq.ts';
import type { Stateful } from '../state.ts';
import { widenByte } from './byte-port.ts';

/** The PC's four legacy serial ports (COM1-COM4) and their ISA IRQs. */
export const COM_PORTS = [
  { base: 0x3f8, irq: 4 }, { base: 0x2f8, irq: 3 }, { base: 0x3e8, irq: 4 }, { base: 0x2e8, irq: 3 },
] as const;

export type UartState = {
  rx: number[];
  lastRx: number;
  ier: number; fcr: number; lcr: number; mcr: number; scr: number; dll: number; dlm: number;
  /** LSR error bits 4-1 (OE, PE, FE, BI), sticky until LSR is read. */
  lsrErrors: number;
  /** The THRE interrupt source (§8.7: cleared by reading IIR when it is the source, or writing THR). */
  threPending: boolean;
  /** The character-timeout interrupt source (FIFO mode). */
  timeoutPending: boolean;
  /** Modem input lines seen by the chip (MSR bits 7-4) and the delta bits (3-0). */
  msrLines: number;
  msrDelta: number;
  /** The host side's modem lines (MSR bit layout) used outside loopback. */
  hostLines: number;
  /** Guest time (ns) the receiver was last opened: RDA interrupt enabled or RX FIFO reset; -1 while RDA is off. */
  rxOpenedAt: number;
};

const IER_RDA = 1, IER_THRE = 2, IER_RLS = 4, IER_MS = 8;
const LCR_DLAB = 0x80, MCR_OUT2 = 8, MCR_LOOP = 0x10;
const TRIGGER = [1, 4, 8, 14];
/**
 * How long the receiver must stay open before the host offers typed-ahead input. Linux's 8250 startup
 * enables the RDA interrupt and then reads RBR once more "for luck", and its set_termios that follows
 * re-enables the FIFOs (which clears them, §8.6): a byte offered inside that sequence is lost, as it
 * would be on a real line. The sequence takes microseconds of guest time.
 */
const RX_SETTLE_NS = 1_000_000;
/** The PC's UART crystal (1.8432 MHz); the baud rate is this / (16 * divisor). */
const XTAL_HZ = 1_843_200;

export class Uart16550 implements PortDevice, Stateful<UartState> {
  readonly name: string;
  state: UartState = {
    rx: [], lastRx: 0, ier: 0, fcr: 0, lcr: 0, mcr: 0, scr: 0, dll: 12, dlm: 0, lsrErrors: 0,
    // A terminal is attached: CTS, DSR and DCD asserted.
    threPending: false, timeoutPending: false, msrLines: 0xb0, msrDelta: 0, hostLines: 0xb0, rxOpenedAt: -1,
  };
  /** Guest output: each byte the guest transmits (not in loopback). */
  onTransmit: ((byte: number) => void) | null = null;
  private readonly timer: Timer;

  constructor(private readonly clock: Clock, private readonly irq: IrqLine, readonly base: number) {
    this.name = `uart@${base.toString(16)}`;
    this.timer = clock.createTimer(() => this.charTimeout());
  }

  register(bus: IoBus): void { bus.register(this.base, 8, this, this.name); }

  private get fifo(): boolean { return (this.state.fcr & 1) !== 0; }
  private get capacity(): number { return this.fifo ? 16 : 1; }
  private get loop(): boolean { return (this.state.mcr & MCR_LOOP) !== 0; }

  /**
   * Whether the host should offer held input now: the guest has had the received-data interrupt enabled,
   * with no RX FIFO reset, for RX_SETTLE_NS (until then the driver may still discard what arrives).
   */
  readyForInput(): boolean {
    const t = this.state.rxOpenedAt;
    return t >= 0 && this.clock.now() - t >= RX_SETTLE_NS;
  }

  /** Whether `receive` would take a byte now (room in the RX FIFO, not in loopback). */
  canReceive(): boolean { return !this.loop && this.state.rx.length < this.capacity; }

  /** Offers one byte from the line; false (byte not taken) when the FIFO is full or the port is looped. */
  receive(byte: number): boolean {
    if (!this.canReceive()) return false;
    this.state.rx.push(byte & 0xff);
    this.rxActivity();
    this.update();
    return true;
  }

  /** The host's modem status lines (a real port's cable); changes set the MSR delta bits. */
  setModemLines(l: { cts: boolean; dsr: boolean; ri: boolean; dcd: boolean }): void {
    this.state.hostLines = (l.cts ? 0x10 : 0) | (l.dsr ? 0x20 : 0) | (l.ri ? 0x40 : 0) | (l.dcd ? 0x80 : 0);
    this.modemLinesChanged();
  }

  /** §8.10: in loopback DTR->DSR, RTS->CTS, OUT1->RI, OUT2->DCD; deltas note changes (TERI: RI falling). */
  private modemLinesChanged(): void {
    const s = this.state, m = s.mcr;
    const lines = this.loop
      ? ((m & 2) << 3) | ((m & 1) << 5) | ((m & 4) << 4) | ((m & 8) << 4)
      : s.hostLines;
    const changed = lines ^ s.msrLines;
    if (changed & 0x10) s.msrDelta |= 1;
    if (changed & 0x20) s.msrDelta |= 2;
    if (changed & 0x40 && !(lines & 0x40)) s.msrDelta |= 4;
    if (changed & 0x80) s.msrDelta |= 8;
    s.msrLines = lines;
    this.update();
  }

  /** The pending interrupt per §8.7 Table IV priority order, IIR bits 3-0 (1 = none). */
  private interruptId(): number {
    const s = this.state;
    if (s.ier & IER_RLS && s.lsrErrors) return 0x06;
    if (s.ier & IER_RDA) {
      if (s.rx.length >= (this.fifo ? TRIGGER[s.fcr >> 6] : 1)) return 0x04;
      if (s.timeoutPending) return 0x0c;
    }
    if (s.ier & IER_THRE && s.threPending) return 0x02;
    if (s.ier & IER_MS && s.msrDelta) return 0x00;
    return 0x01;
  }

  private update(): void {
    // The INTR pin reaches the bus through OUT2; in loopback the OUT pins are forced inactive (§8.9).
    const s = this.state;
    this.irq.set(this.interruptId() !== 1 && (s.mcr & MCR_OUT2) !== 0 && !this.loop);
  }

  /** One character time (start + data + parity + stop bits) at the programmed baud rate. */
  private charNs(): number {
    const l = this.state.lcr, div = (this.state.dlm << 8 | this.state.dll) || 0x10000;
    const bits = 1 + 5 + (l & 3) + (l & 8 ? 1 : 0) + (l & 4 ? ((l & 3) === 0 ? 1.5 : 2) : 1);
    return (bits * 16 * div * 1e9) / XTAL_HZ;
  }

  /** §8.7: the timeout fires after 4 character times with data in the FIFO and no reads or receptions. */
  private rxActivity(): void {
    this.state.timeoutPending = false;
    this.timer.deadline = this.fifo && this.state.rx.length ? Math.ceil(this.clock.now() + 4 * this.charNs()) : -1;
  }

  private charTimeout(): void {
    if (this.fifo && this.state.rx.length) { this.state.timeoutPending = true; this.update(); }
  }

  ioRead(port: number, size: 1 | 2 | 4): number {
    const s = this.state;
    let v: number;
    switch (port - this.base) {
      case 0:
        if (s.lcr & LCR_DLAB) { v = s.dll; break; }
        if (s.rx.length) s.lastRx = s.rx.shift()!;
        v = s.lastRx;
        this.rxActivity();
        break;
      case 1: v = s.lcr & LCR_DLAB ? s.dlm : s.ier; break;
      case 2: {
        const id = this.interruptId();
        if (id === 0x02) s.threPending = false; // reading IIR with THRE as the source clears it
        v = id | (this.fifo ? 0xc0 : 0);
        break;
      }
      case 3: v = s.lcr; break;
      case 4: v = s.mcr; break;
      case 5: // LSR: DR, errors (cleared by this read), THRE and TEMT (the transmitter is never busy)
        v = (s.rx.length ? 1 : 0) | s.lsrErrors | 0x20 | 0x40;
        s.lsrErrors = 0;
        break;
      case 6: v = s.msrLines | s.msrDelta; s.msrDelta = 0; break;
      default: v = s.scr;
    }
    this.update();
    return widenByte(v, size);
  }

  ioWrite(port: number, _size: 1 | 2 | 4, value: number): void {
    const s = this.state;
    value &= 0xff;
    switch (port - this.base) {
      case 0:
        if (s.lcr & LCR_DLAB) { s.dll = value; break; }
        this.transmit(value);
        break;
      case 1:
        if (s.lcr & LCR_DLAB) { s.dlm = value; break; }
        // Enabling ETBEI while THR is empty raises a THRE interrupt at once.
        if (value & IER_THRE && !(s.ier & IER_THRE)) s.threPending = true;
        if (!(value & IER_RDA)) s.rxOpenedAt = -1;
        else if (!(s.ier & IER_RDA)) s.rxOpenedAt = this.clock.now();
        s.ier = value & 0x0f;
        break;
      case 2: this.writeFcr(value); break;
      case 3: s.lcr = value; break;
      case 4: s.mcr = value & 0x1f; this.modemLinesChanged(); break;
      case 7: s.scr = value; break;
      default: break; // LSR and MSR are read-only here (factory test writes)
    }
    this.update();
  }

  private transmit(byte: number): void {
    const s = this.state;
    if (this.loop) {
      // §8.9: the transmitter output is looped to the receiver input.
      if (s.rx.length < this.capacity) s.rx.push(byte);
      else {
        s.lsrErrors |= 0x02; // OE: in FIFO mode the FIFO keeps its data; a 16450 overwrites RBR
        if (!this.fifo) s.rx[0] = byte;
      }
      this.rxActivity();
    } else this.onTransmit?.(byte);
    // The THR empties at once into the idle shift register, so THRE is pending again.
    s.threPending = true;
  }

  /** §8.6: bit 0 enables the FIFOs (changing it clears both); bits 1/2 reset RX/TX; 7-6 RX trigger. */
  private writeFcr(v: number): void {
    const s = this.state;
    if ((v & 1) !== (s.fcr & 1)) this.rxReset();
    if (!(v & 1)) { s.fcr = 0; this.rxActivity(); return; }
    if (v & 2) this.rxReset();
    s.fcr = v & 0xc9;
    this.rxActivity();
  }

  private rxReset(): void {
    const s = this.state;
    s.rx = [];
    s.timeoutPending = false;
    if (s.rxOpenedAt >= 0) s.rxOpenedAt = this.clock.now();
  }

  afterRestore(): void {
    const s = this.state;
    this.timer.deadline = this.fifo && s.rx.length && !s.timeoutPending ? Math.ceil(this.clock.now() + 4 * this.charNs()) : -1;
    this.update();
  }
}
