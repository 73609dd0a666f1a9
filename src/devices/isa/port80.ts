// The POST diagnostic port 0x80: firmware writes progress codes there, and Linux writes to it as a short
// I/O delay (outb_p). On the PC it is a latch on the ISA bus (a POST card displays it); reading returns the
// last code written, as the PIIX forwards it to a latch (PIIX4 datasheet §4.1, "Port 80h").

import type { IoBus, PortDevice } from '../../machine/io-bus.ts';
import type { Stateful } from '../state.ts';
import { widenByte } from './byte-port.ts';

export type Port80State = { code: number };

export class Port80 implements PortDevice, Stateful<Port80State> {
  readonly name = 'port80';
  state: Port80State = { code: 0 };
  /** Optional observer of POST codes (for a debug log). */
  onCode: ((code: number) => void) | null = null;

  register(bus: IoBus): void { bus.register(0x80, 1, this, this.name); }

  ioRead(_port: number, size: 1 | 2 | 4): number { return widenByte(this.state.code, size); }

  ioWrite(_port: number, _size: 1 | 2 | 4, v: number): void {
    this.state.code = v & 0xff;
    this.onCode?.(this.state.code);
  }
}
