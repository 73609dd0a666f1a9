// x87 FPU register state (SDM vol. 1 §8.1): eight 80-bit physical registers R0..R7 addressed as a stack
// ST(i) = R((TOP+i) & 7), the control, status and tag words, and the last-instruction pointers.
// MMX registers alias the significands of R0..R7 (SDM vol. 1 §9.5).

export class X87 {
  /** Significand bits 0..31 of R0..R7. */
  readonly lo = new Int32Array(8);
  /** Significand bits 32..63 (bit 63 is the explicit integer bit). */
  readonly hi = new Int32Array(8);
  /** Sign (bit 15) and biased exponent (bits 0..14). */
  readonly se = new Uint16Array(8);
  fcw = 0x037f;
  /** Status word without TOP (bits 11..13 live in `top`). */
  fsw = 0;
  top = 0;
  /** Full tag word, two bits per physical register: 00 valid, 01 zero, 10 special, 11 empty. */
  ftw = 0xffff;
  fip = 0; fcs = 0; fdp = 0; fds = 0; fop = 0;

  /** FNINIT values (SDM vol. 1 §8.1.10 Table 8-2 ... FINIT). */
  reset(): void {
    this.fcw = 0x037f; this.fsw = 0; this.top = 0; this.ftw = 0xffff;
    this.fip = 0; this.fcs = 0; this.fdp = 0; this.fds = 0; this.fop = 0;
  }

  /** Full register contents for power-on (FINIT does not clear them). */
  clearRegisters(): void { this.lo.fill(0); this.hi.fill(0); this.se.fill(0); }

  /** The status word as FSTSW stores it (TOP merged in). */
  get statusWord(): number { return (this.fsw & ~0x3800) | ((this.top & 7) << 11); }
  set statusWord(v: number) { this.fsw = v & ~0x3800 & 0xffff; this.top = (v >> 11) & 7; }

  /** MMX register i as [low, high] dwords. */
  mmxLo(i: number): number { return this.lo[i]; }
  mmxHi(i: number): number { return this.hi[i]; }

  /** Writes MMX register i: exponent and sign become all ones, TOP 0, all tags valid (SDM vol. 1 §9.5.1). */
  setMmx(i: number, lo: number, hi: number): void {
    this.lo[i] = lo; this.hi[i] = hi; this.se[i] = 0xffff;
    this.top = 0; this.ftw = 0;
  }

  /** Any MMX instruction except EMMS sets TOP to 0 and all tags valid. */
  enterMmx(): void { this.top = 0; this.ftw = 0; }

  /** EMMS: all tags empty. */
  emms(): void { this.ftw = 0xffff; }
}
