// The legacy ISA chips are 8-bit peripherals: a wider access from the CPU reaches only their data lines
// D7-D0, and the undriven upper lines of the bus float high.

export function widenByte(v: number, size: 1 | 2 | 4): number {
  v &= 0xff;
  return size === 1 ? v : size === 2 ? v | 0xff00 : (v | 0xffffff00) >>> 0;
}
