// PS/2 System Control Port A at 0x92 ("fast A20" and "fast reset").
// Reference: IBM PS/2 Hardware Interface Technical Reference, "System Control Port A (Hex 0092)";
// Intel 82371AB PIIX4 datasheet §4.1.11 (PORT92): bit 0 = fast init (a 0->1 write resets the CPU),
// bit 1 = A20 enable; the other bits are read/write latches without effect here.

import type { IoBus, PortDevice } from '../../machine/io-bus.ts';
import type { Stateful } from '../state.ts';
import { widenByte } from './byte-port.ts';

export type Port92State = { value: number };

export class Port92 implements PortDevice, Stateful<Port92State> {
  readonly name = 'port92';
  state: Port92State = { value: 0 };
  onA20: ((enabled: boolean) => void) | null = null;
  onReset: (() => void) | null = null;

  register(bus: IoBus): void { bus.register(0x92, 1, this, this.name); }

  get a20(): boolean { return (this.state.value & 2) !== 0; }

  ioRead(_port: number, size: 1 | 2 | 4): number { return widenByte(this.state.value, size); }

  ioWrite(_port: number, _size: 1 | 2 | 4, v: number): void {
    const old = this.state.value;
    this.state.value = v & 0xff;
    if ((old ^ v) & 2) this.onA20?.((v & 2) !== 0);
    // The reset is a pulse generated on the bit's rising edge; the bit itself reads back as written.
    if (v & 1 && !(old & 1)) this.onReset?.();
  }
}
