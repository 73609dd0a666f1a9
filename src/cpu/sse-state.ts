// SSE/SSE2 register state (SDM vol. 1 §10.2): eight 128-bit XMM registers and MXCSR.

export const MXCSR_DEFAULT = 0x1f80;
/** MXCSR bits this CPU implements; writing others raises #GP (SDM vol. 1 §10.2.3, MXCSR_MASK). DAZ included. */
export const MXCSR_MASK = 0xffff;

export class SseState {
  /** XMM0..XMM7, four dwords each, little-endian lane order. */
  readonly xmm = new Int32Array(32);
  readonly bytes = new Uint8Array(this.xmm.buffer);
  readonly f32 = new Float32Array(this.xmm.buffer);
  readonly f64 = new Float64Array(this.xmm.buffer);
  mxcsr = MXCSR_DEFAULT;

  reset(): void { this.xmm.fill(0); this.mxcsr = MXCSR_DEFAULT; }
}
