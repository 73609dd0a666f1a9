// Instruction decoder of the binary translator: prefixes, opcode, ModRM/SIB, displacement and immediate,
// enough to know every instruction's length (so a unit can continue after calling the interpreter's
// handler) and, for the forms the code generator inlines, their operands. It never executes anything:
// the interpreter's handlers stay the definition of each instruction (SDM vol. 2 §2.1, Appendix A maps).

/** One decoded instruction. Offsets are CS-relative (EIP values), as the code generator needs them. */
export interface Insn {
  eip: number;
  len: number;
  /** One-byte opcode, or 0x100 | second byte for 0F xx. */
  op: number;
  os32: boolean;
  as32: boolean;
  /** Segment override or -1. */
  seg: number;
  /** 0, 0xF2 or 0xF3. */
  rep: number;
  lock: boolean;
  /** ModRM byte or -1. */
  modrm: number;
  /** Memory operand (modrm < 0xC0, 32-bit addressing): base/index register or -1, scale shift, displacement. */
  base: number;
  index: number;
  scale: number;
  disp: number;
  /** Immediate (sign-extended to int32 where the instruction sign-extends it), or a branch displacement. */
  imm: number;
  imm2: number;
}

const PREFIX_SEG: Record<number, number> = { 0x26: 0, 0x2e: 1, 0x36: 2, 0x3e: 3, 0x64: 4, 0x65: 5 };

// One-byte opcodes with a ModRM byte (Appendix A, Table A-2).
const MODRM1 = new Uint8Array(256);
for (const o of [0x62, 0x63, 0x69, 0x6b, 0xc0, 0xc1, 0xc4, 0xc5, 0xc6, 0xc7, 0xd0, 0xd1, 0xd2, 0xd3, 0xf6, 0xf7, 0xfe, 0xff]) MODRM1[o] = 1;
for (let o = 0; o < 0x40; o++) if ((o & 7) < 4) MODRM1[o] = 1;
for (let o = 0x80; o <= 0x8f; o++) MODRM1[o] = 1;
for (let o = 0xd8; o <= 0xdf; o++) MODRM1[o] = 1;

// Immediate kinds: 1 = imm8, 2 = imm16, 3 = imm of operand size, 4 = moffs (address size),
// 5 = imm16 + imm8 (ENTER), 6 = far pointer (operand size + 16 bits).
const IMM1 = new Uint8Array(256);
for (let o = 0; o < 0x40; o += 8) { IMM1[o + 4] = 1; IMM1[o + 5] = 3; }
for (const o of [0x6a, 0x6b, 0x80, 0x82, 0x83, 0xa8, 0xc0, 0xc1, 0xc6, 0xcd, 0xd4, 0xd5, 0xeb]) IMM1[o] = 1;
for (let o = 0x70; o <= 0x7f; o++) IMM1[o] = 1;
for (let o = 0xb0; o <= 0xb7; o++) IMM1[o] = 1;
for (let o = 0xe0; o <= 0xe7; o++) IMM1[o] = 1;
for (const o of [0x68, 0x69, 0x81, 0xa9, 0xc7, 0xe8, 0xe9]) IMM1[o] = 3;
for (let o = 0xb8; o <= 0xbf; o++) IMM1[o] = 3;
for (let o = 0xa0; o <= 0xa3; o++) IMM1[o] = 4;
IMM1[0xc2] = 2; IMM1[0xca] = 2; IMM1[0xc8] = 5; IMM1[0x9a] = 6; IMM1[0xea] = 6;

// Two-byte opcodes (0F xx) without a ModRM byte; 0F 38 / 0F 3A (three-byte maps) are left undecoded.
const NOMODRM2 = new Uint8Array(256);
for (const o of [0x05, 0x06, 0x07, 0x08, 0x09, 0x0b, 0x0e, 0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x37, 0x77, 0xa0, 0xa1, 0xa2, 0xa8, 0xa9, 0xaa]) NOMODRM2[o] = 1;
for (let o = 0x80; o <= 0x8f; o++) NOMODRM2[o] = 1;
for (let o = 0xc8; o <= 0xcf; o++) NOMODRM2[o] = 1;
const IMM2 = new Uint8Array(256);
for (const o of [0x70, 0x71, 0x72, 0x73, 0xa4, 0xac, 0xba, 0xc2, 0xc4, 0xc5, 0xc6]) IMM2[o] = 1;
for (let o = 0x80; o <= 0x8f; o++) IMM2[o] = 3;

/**
 * Decodes the instruction at page offset `at` of `page` (the host bytes of one 4 KiB code page), whose
 * EIP is `eip`. Returns null when it does not end inside the page (or is longer than 15 bytes, or uses
 * an opcode map we do not size): the caller then ends the unit before it.
 */
export function decode(pool: Uint8Array, pageHost: number, at: number, eip: number, cs32: boolean): Insn | null {
  let p = at;
  const byte = (): number => { if (p >= 0x1000 || p - at >= 15) throw DECODE_END; return pool[pageHost + p++]; };
  try {
    let os32 = cs32, as32 = cs32, seg = -1, rep = 0, lock = false;
    let b = byte();
    for (;;) {
      if (b === 0x66) os32 = !cs32;
      else if (b === 0x67) as32 = !cs32;
      else if (b === 0xf0) lock = true;
      else if (b === 0xf2 || b === 0xf3) rep = b;
      else if (PREFIX_SEG[b] !== undefined) seg = PREFIX_SEG[b];
      else break;
      b = byte();
    }
    let op = b, hasModrm: boolean, immKind: number;
    if (b === 0x0f) {
      const b2 = byte();
      if (b2 === 0x38 || b2 === 0x3a) return null;
      op = 0x100 | b2;
      hasModrm = !NOMODRM2[b2];
      immKind = IMM2[b2];
    } else {
      hasModrm = MODRM1[b] === 1;
      immKind = IMM1[b];
      // TEST Eb,Ib / Ev,Iv are the only /reg-dependent immediates of F6/F7.
    }
    const insn: Insn = { eip, len: 0, op, os32, as32, seg, rep, lock, modrm: -1, base: -1, index: -1, scale: 0, disp: 0, imm: 0, imm2: 0 };
    if (hasModrm) {
      const m = byte();
      insn.modrm = m;
      const mod = m >> 6, rm = m & 7;
      if ((op === 0xf6 || op === 0xf7) && ((m >> 3) & 7) < 2) immKind = op === 0xf6 ? 1 : 3;
      if (mod !== 3) {
        if (as32) {
          if (rm === 4) {
            const sib = byte();
            const base = sib & 7, idx = (sib >> 3) & 7;
            insn.scale = sib >> 6;
            insn.index = idx === 4 ? -1 : idx;
            if (base === 5 && mod === 0) { insn.disp = read32(); insn.base = -1; } else insn.base = base;
          } else if (rm === 5 && mod === 0) { insn.disp = read32(); insn.base = -1; } else insn.base = rm;
          if (mod === 1) insn.disp = (byte() << 24) >> 24;
          else if (mod === 2) insn.disp = read32();
        } else {
          // 16-bit addressing: only the length matters (such forms are always left to the interpreter).
          if (mod === 0 && rm === 6) { byte(); byte(); } else if (mod === 1) byte(); else if (mod === 2) { byte(); byte(); }
        }
      }
    }
    switch (immKind) {
      case 1: insn.imm = (byte() << 24) >> 24; break;
      case 2: insn.imm = byte() | (byte() << 8); break;
      case 3: insn.imm = os32 ? read32() : (((byte() | (byte() << 8)) << 16) >> 16); break;
      case 4: insn.imm = as32 ? read32() : byte() | (byte() << 8); break;
      case 5: insn.imm = byte() | (byte() << 8); insn.imm2 = byte(); break;
      case 6: insn.imm = os32 ? read32() : byte() | (byte() << 8); insn.imm2 = byte() | (byte() << 8); break;
    }
    insn.len = p - at;
    return insn;
  } catch (e) {
    if (e === DECODE_END) return null;
    throw e;
  }
  function read32(): number { return byte() | (byte() << 8) | (byte() << 16) | (byte() << 24); }
}

const DECODE_END = { end: true };
