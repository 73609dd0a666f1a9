// THE table of architecturally undefined flags, per instruction, taken from
// the "Flags Affected" (and "FPU Flags Affected") sections of the Intel SDM
// vol. 2.  Only these bits are excluded from the comparison, and only when
// the instruction completes: a faulting instruction must leave every flag as
// it was.  Instructions not listed leave nothing undefined.
//
// Some entries depend on the operands (the shift count decides whether OF is
// defined, a zero count affects no flags at all), so an entry may be a
// function of the case's context.

export const CF = 0x001, PF = 0x004, AF = 0x010, ZF = 0x040, SF = 0x080, OF = 0x800;
// x87 condition codes in the FPU status word.
export const C0 = 0x0100, C1 = 0x0200, C2 = 0x0400, C3 = 0x4000;

export interface FlagContext {
  os: number; // operand size in bits
  count?: number; // raw shift/rotate count (before masking), when the instruction has one
}

type Mask = number | ((c: FlagContext) => number);

export interface Undefined {
  eflags?: Mask;
  fsw?: Mask; // bits of the x87 status word
}

const shiftMask = (cfWhenWide: boolean) => (c: FlagContext) => {
  const n = (c.count ?? 1) & 0x1f; // the CPU masks the count to 5 bits first
  if (n === 0) return 0; // a zero count affects no flags
  // "The CF flag ... is undefined for SHL and SHR instructions where the
  // count is greater than or equal to the size of the destination operand."
  return AF | (n !== 1 ? OF : 0) | (cfWhenWide && n >= c.os ? CF : 0);
};
const rotateMask = (c: FlagContext) => {
  const n = (c.count ?? 1) & 0x1f;
  // OF is defined only for 1-bit rotates; a zero count affects no flags.
  return n === 0 || n === 1 ? 0 : OF;
};
const doubleShiftMask = (c: FlagContext) => {
  const n = (c.count ?? 1) & 0x1f;
  if (n === 0) return 0;
  return AF | (n !== 1 ? OF : 0);
};

// x87 arithmetic: "C1 set to 0 if stack underflow ... or indicates rounding
// direction; C0, C2, C3 undefined."
const X87_ARITH: Undefined = { fsw: C0 | C2 | C3 };

export const UNDEFINED: Record<string, Undefined> = {
  and: { eflags: AF },
  or: { eflags: AF },
  xor: { eflags: AF },
  test: { eflags: AF },
  mul: { eflags: SF | ZF | AF | PF },
  imul: { eflags: SF | ZF | AF | PF },
  div: { eflags: CF | PF | AF | ZF | SF | OF },
  idiv: { eflags: CF | PF | AF | ZF | SF | OF },
  shl: { eflags: shiftMask(true) },
  shr: { eflags: shiftMask(true) },
  sar: { eflags: shiftMask(false) },
  rol: { eflags: rotateMask },
  ror: { eflags: rotateMask },
  rcl: { eflags: rotateMask },
  rcr: { eflags: rotateMask },
  shld: { eflags: doubleShiftMask },
  shrd: { eflags: doubleShiftMask },
  bt: { eflags: OF | SF | AF | PF },
  bts: { eflags: OF | SF | AF | PF },
  btr: { eflags: OF | SF | AF | PF },
  btc: { eflags: OF | SF | AF | PF },
  bsf: { eflags: CF | OF | SF | AF | PF },
  bsr: { eflags: CF | OF | SF | AF | PF },
  aaa: { eflags: OF | SF | ZF | PF },
  aas: { eflags: OF | SF | ZF | PF },
  aam: { eflags: OF | AF | CF },
  aad: { eflags: OF | AF | CF },
  daa: { eflags: OF },
  das: { eflags: OF },

  // x87
  fld: X87_ARITH,
  fild: X87_ARITH,
  fst: X87_ARITH,
  fist: X87_ARITH,
  fadd: X87_ARITH,
  fsub: X87_ARITH,
  fmul: X87_ARITH,
  fdiv: X87_ARITH,
  fsqrt: X87_ARITH,
  fchs: X87_ARITH,
  fabs: X87_ARITH,
  fxch: X87_ARITH,
  fldconst: X87_ARITH,
  frndint: X87_ARITH,
  fbld: X87_ARITH,
  fbstp: X87_ARITH,
  fscale: X87_ARITH,
  fxtract: X87_ARITH,
  fcmov: X87_ARITH,
  fstack: X87_ARITH, // FINCSTP/FDECSTP ("C1 set to 0"), FFREE(P) (all four undefined: see below)
  // FSIN/FCOS/FSINCOS/FPTAN: "C2 set to 1 if outside range; C0, C3 undefined."
  ftrig: { fsw: C0 | C3 },
  // FPATAN, F2XM1, FYL2X, FYL2XP1: "C0, C2, C3 undefined."
  ftransc: X87_ARITH,
  // FCOM/FUCOM/FICOM/FTST and FXAM define all four; FPREM/FPREM1 too (quotient bits, C2 incomplete).
  // FCOMI/FUCOMI: "C1 set to 0; C0, C2, C3 not affected" -> nothing undefined.
};

export function undefinedEflags(mnem: string, ctx: FlagContext): number {
  const m = UNDEFINED[mnem]?.eflags;
  return m === undefined ? 0 : typeof m === 'number' ? m : m(ctx);
}

export function undefinedFsw(mnem: string, ctx: FlagContext): number {
  const m = UNDEFINED[mnem]?.fsw;
  return m === undefined ? 0 : typeof m === 'number' ? m : m(ctx);
}
