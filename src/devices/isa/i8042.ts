// The PC/AT 8042 keyboard controller at 0x60 (data) / 0x64 (status, command), with an MF-II keyboard
// on its first port and an empty PS/2 auxiliary (mouse) port. The output port carries the A20 gate and
// the CPU reset line.
// References: IBM PC/AT Technical Reference, "Keyboard Controller" (status register, commands
// 0x20-0xFF, input/output ports) and "Keyboard" (commands 0xED-0xFF, responses); IBM PS/2 Hardware
// Interface Technical Reference, "Keyboard/Auxiliary Device Controller" (aux commands 0xA7-0xA9, 0xD3, 0xD4).

import type { IoBus, PortDevice } from '../../machine/io-bus.ts';
import type { IrqLine } from '../../machine/irq.ts';
import type { Stateful } from '../state.ts';
import { widenByte } from './byte-port.ts';

/** Queue entries carry the byte in bits 7-0 and its origin flags above. */
const FROM_AUX = 0x100, TIMEOUT = 0x200;

export type I8042State = {
  /** Controller RAM; byte 0 is the command byte (CTR). */
  ram: Uint8Array;
  /** Output port: bit 0 = not reset (active low), bit 1 = A20 gate, bits 7-6 = keyboard clock/data. */
  outPort: number;
  /** Output buffer: full flag, byte and origin flags (FROM_AUX, TIMEOUT). */
  obf: boolean;
  out: number;
  /** Bytes from the controller itself (command responses, 0xD2/0xD3 writes), never inhibited. */
  ctrlQueue: number[];
  /** Bytes the keyboard has to send; held while the keyboard interface is disabled (CTR bit 4). */
  kbdQueue: number[];
  /** The command written to 0x64 that still waits for its data byte at 0x60, or 0. */
  pendingCmd: number;
  /** Status bit 3: the last write went to 0x64. */
  lastWasCmd: boolean;
  /** The keyboard's own state: a command awaiting its argument, scanning on, LEDs, scan code set. */
  kbdArgCmd: number;
  kbdScanning: boolean;
  kbdLeds: number;
  kbdSet: number;
  kbdLast: number;
};

const CTR_KBDINT = 0x01, CTR_AUXINT = 0x02, CTR_SYS = 0x04, CTR_KBDDIS = 0x10, CTR_AUXDIS = 0x20, CTR_XLATE = 0x40;
/** The 8042's set-2 -> set-1 translation of the scan code set numbers the keyboard reports (1, 2, 3). */
const XLATE_SET: Record<number, number> = { 1: 0x43, 2: 0x41, 3: 0x3f };

export class I8042 implements PortDevice, Stateful<I8042State> {
  readonly name = 'i8042';
  state: I8042State;
  onA20: ((enabled: boolean) => void) | null = null;
  onReset: (() => void) | null = null;

  constructor(private readonly irq1: IrqLine, private readonly irq12: IrqLine) {
    const ram = new Uint8Array(32);
    // As the BIOS leaves it: keyboard interrupt on, POST passed, scan code translation on.
    ram[0] = CTR_KBDINT | CTR_SYS | CTR_XLATE;
    this.state = {
      ram, outPort: 0xc3, obf: false, out: 0, ctrlQueue: [], kbdQueue: [], pendingCmd: 0, lastWasCmd: false,
      kbdArgCmd: 0, kbdScanning: true, kbdLeds: 0, kbdSet: 2, kbdLast: 0,
    };
  }

  register(bus: IoBus): void {
    bus.register(0x60, 1, this, 'i8042-data');
    bus.register(0x64, 1, this, 'i8042-cmd');
  }

  get a20(): boolean { return (this.state.outPort & 2) !== 0; }

  private get ctr(): number { return this.state.ram[0]; }

  /** Status register: OBF, IBF (always 0: commands complete at once), SYS, A2, keylock off, AUXB, timeout. */
  private status(): number {
    const s = this.state;
    return (s.obf ? 1 : 0) | (this.ctr & CTR_SYS) | (s.lastWasCmd ? 8 : 0) | 0x10 |
      (s.obf && s.out & FROM_AUX ? 0x20 : 0) | (s.obf && s.out & TIMEOUT ? 0x40 : 0);
  }

  /** Moves the next deliverable byte into an empty output buffer and drives IRQ1/IRQ12 from OBF. */
  private refill(): void {
    const s = this.state;
    if (!s.obf) {
      if (s.ctrlQueue.length) { s.out = s.ctrlQueue.shift()!; s.obf = true; }
      else if (s.kbdQueue.length && !(this.ctr & CTR_KBDDIS)) { s.out = s.kbdQueue.shift()!; s.obf = true; }
    }
    const aux = (s.out & FROM_AUX) !== 0;
    this.irq1.set(s.obf && !aux && (this.ctr & CTR_KBDINT) !== 0);
    this.irq12.set(s.obf && aux && (this.ctr & CTR_AUXINT) !== 0);
  }

  ioRead(port: number, size: 1 | 2 | 4): number {
    if (port === 0x64) return widenByte(this.status(), size);
    const s = this.state;
    const v = s.out & 0xff;
    s.obf = false;
    s.out &= ~TIMEOUT;
    // Lower the line before a following byte raises it again, so edge-triggered inputs see each byte.
    this.irq1.set(false); this.irq12.set(false);
    this.refill();
    return widenByte(v, size);
  }

  ioWrite(port: number, _size: 1 | 2 | 4, value: number): void {
    value &= 0xff;
    const s = this.state;
    if (port === 0x64) { s.lastWasCmd = true; s.pendingCmd = 0; this.command(value); }
    else {
      s.lastWasCmd = false;
      const cmd = s.pendingCmd;
      s.pendingCmd = 0;
      if (cmd) this.commandData(cmd, value); else this.keyboardWrite(value);
    }
    this.refill();
  }

  private reply(b: number): void { this.state.ctrlQueue.push(b); }

  private command(c: number): void {
    const s = this.state;
    if (c >= 0x20 && c <= 0x3f) return this.reply(s.ram[c & 0x1f]); // read controller RAM (0x20: CTR)
    if ((c >= 0x60 && c <= 0x7f) || c === 0xd1 || c === 0xd2 || c === 0xd3 || c === 0xd4) { s.pendingCmd = c; return; }
    if (c >= 0xf0) { // pulse output port bits 3-0 low where the command's bit is 0; bit 0 is CPU reset
      if (!(c & 1)) this.onReset?.();
      return;
    }
    switch (c) {
      case 0xa7: s.ram[0] |= CTR_AUXDIS; break;
      case 0xa8: s.ram[0] &= ~CTR_AUXDIS; break;
      case 0xa9: this.reply(0x00); break; // aux interface test: clock and data lines OK
      case 0xaa: s.ram[0] |= CTR_SYS; this.reply(0x55); break; // self-test passed
      case 0xab: this.reply(0x00); break; // keyboard interface test: OK
      case 0xad: s.ram[0] |= CTR_KBDDIS; break;
      case 0xae: s.ram[0] &= ~CTR_KBDDIS; break;
      case 0xc0: this.reply(0xa0); break; // input port: keyboard not inhibited, no manufacturing jumper
      case 0xd0: { // output port, with bits 4/5 showing the OBF interrupt outputs
        const aux = (s.out & FROM_AUX) !== 0;
        this.reply((s.outPort & 0xcf) | (s.obf && !aux ? 0x10 : 0) | (s.obf && aux ? 0x20 : 0));
        break;
      }
      case 0xdd: this.setOutPort(s.outPort & ~2); break; // A20 off
      case 0xdf: this.setOutPort(s.outPort | 2); break; // A20 on
      case 0xe0: this.reply(0x00); break; // test inputs
      default: break; // other vendor commands do nothing
    }
  }

  private commandData(cmd: number, v: number): void {
    const s = this.state;
    if (cmd >= 0x60 && cmd <= 0x7f) { s.ram[cmd & 0x1f] = v; return; }
    switch (cmd) {
      case 0xd1: this.setOutPort(v); break;
      case 0xd2: this.reply(v); break; // as if from the keyboard
      case 0xd3: this.reply(v | FROM_AUX); break; // as if from the aux device
      case 0xd4: // to the aux device: none is attached, so the transmission times out (0xFE, timeout bit)
        this.reply(0xfe | FROM_AUX | TIMEOUT);
        break;
    }
  }

  private setOutPort(v: number): void {
    const s = this.state, old = s.outPort;
    s.outPort = v | 0xc0;
    if ((old ^ v) & 2) this.onA20?.((v & 2) !== 0);
    if (!(v & 1)) this.onReset?.(); // bit 0 is the active-low CPU reset line
  }

  /** Queues the keyboard's reply bytes (0xFA, 0xAA, 0xEE, 0xFE pass the 8042's set-1 translation unchanged). */
  private kbdSend(...bytes: number[]): void { this.state.kbdQueue.push(...bytes); }

  /** A byte sent to the keyboard (IBM AT Technical Reference, "Keyboard Commands"). */
  private keyboardWrite(v: number): void {
    const s = this.state, xlate = (this.ctr & CTR_XLATE) !== 0;
    s.kbdQueue = []; // a command from the system aborts what the keyboard was sending
    const arg = s.kbdArgCmd;
    s.kbdArgCmd = 0;
    if (arg && v < 0xed) { // the argument of 0xED / 0xF3 / 0xF0
      if (arg === 0xed) s.kbdLeds = v & 7;
      if (arg === 0xf0) {
        if (v === 0) { this.kbdSend(0xfa, xlate ? XLATE_SET[s.kbdSet] : s.kbdSet); return; }
        if (v >= 1 && v <= 3) s.kbdSet = v; else { this.kbdSend(0xfe); return; }
      }
      this.kbdSend(0xfa);
      return;
    }
    switch (v) {
      case 0xed: case 0xf3: case 0xf0: s.kbdArgCmd = v; this.kbdSend(0xfa); break;
      case 0xee: this.kbdSend(0xee); break; // echo
      case 0xf2: this.kbdSend(0xfa, 0xab, xlate ? 0x41 : 0x83); break; // identify: MF-II keyboard
      case 0xf4: s.kbdScanning = true; this.kbdSend(0xfa); break;
      case 0xf5: s.kbdScanning = false; s.kbdLeds = 0; s.kbdSet = 2; this.kbdSend(0xfa); break;
      case 0xf6: s.kbdLeds = 0; s.kbdSet = 2; this.kbdSend(0xfa); break;
      case 0xf7: case 0xf8: case 0xf9: case 0xfa: case 0xfb: case 0xfc: case 0xfd: this.kbdSend(0xfa); break;
      case 0xfe: this.kbdSend(s.kbdLast); return; // resend
      case 0xff: // reset: acknowledge, then the basic assurance test passes
        s.kbdScanning = true; s.kbdLeds = 0; s.kbdSet = 2;
        this.kbdSend(0xfa, 0xaa);
        break;
      default: this.kbdSend(0xfe); return; // unknown command: ask for a resend
    }
    s.kbdLast = s.kbdQueue[s.kbdQueue.length - 1] ?? 0xfa;
  }

  afterRestore(): void { this.refill(); }
}
