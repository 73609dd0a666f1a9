// General-purpose integer instructions (SDM vol. 2): ALU, moves, stack, control flow, multiply/divide,
// bit operations, BCD, flag control. Prefixes are handlers too: they set decode state and dispatch again.

import type { CPU } from './cpu.ts';
import { def1, def2, ops1, ops2 } from './optable.ts';
import {
  ALU_CMP, alu, dec, div, idiv, imul1, imulTrunc, inc, linRead, linWrite, mul, neg, osz, regGet,
  regSet, rmLin, rmRead, rmWrite, rmwRead, rmwWrite, sext, shift, shiftDouble, trunc,
} from './operands.ts';
import {
  AF, CF, CS, DF, DS, ES, EXC_BR, EXC_OF, FS, GS, OF, PF, SF, SS, ZF, EXC_UD,
} from './constants.ts';
import { farCall, farJump, farReturn, iret, loadSegment } from './system.ts';

const ALU_NAMES = ['add', 'or', 'adc', 'sbb', 'and', 'sub', 'xor', 'cmp'];
// 8-bit register index (AL CL DL BL AH CH DH BH) → byte offset in r8.
const R8 = new Uint8Array([0, 4, 8, 12, 1, 5, 9, 13]);

// --- Prefixes (SDM vol. 2 §2.1.1) ---

// An instruction longer than 15 bytes raises #GP(0) (SDM vol. 2 §2.3.11). Checking before each byte
// after a prefix also bounds the recursion of the prefix handlers on a long run of prefixes.
function afterPrefix(c: CPU): void {
  if (((c.eip - c.prevEip) | 0) >= 15) c.gp(0);
  ops1[c.fetch8()](c);
}
const SEG_PREFIX: [number, number][] = [[0x26, ES], [0x2e, CS], [0x36, SS], [0x3e, DS], [0x64, FS], [0x65, GS]];
for (const [op, seg] of SEG_PREFIX) def1(op, 'seg', (c) => { c.segOverride = seg; afterPrefix(c); });
def1(0x66, 'opsize', (c) => { c.os32 = !c.cs32; afterPrefix(c); });
def1(0x67, 'addrsize', (c) => { c.as32 = !c.cs32; afterPrefix(c); });
def1(0xf0, 'lock', (c) => { c.lock = true; checkLockable(c); afterPrefix(c); });
def1(0xf2, 'repne', (c) => { c.rep = 0xf2; afterPrefix(c); });
def1(0xf3, 'rep', (c) => { c.rep = 0xf3; afterPrefix(c); });
def1(0x0f, '0f', (c) => ops2[c.fetch8()](c));

// LOCK is only valid on read-modify-write instructions with a memory destination (SDM vol. 2 "LOCK"):
// anything else raises #UD. The check peeks past any further prefixes at the opcode and ModRM.
const LOCK_RM1 = new Set([0x00, 0x01, 0x08, 0x09, 0x10, 0x11, 0x18, 0x19, 0x20, 0x21, 0x28, 0x29, 0x30, 0x31, 0x86, 0x87]);
const LOCK_RM2 = new Set([0xab, 0xb3, 0xbb, 0xb0, 0xb1, 0xc0, 0xc1]);
const PREFIXES = new Set([0x26, 0x2e, 0x36, 0x3e, 0x64, 0x65, 0x66, 0x67, 0xf0, 0xf2, 0xf3]);
function checkLockable(c: CPU): void {
  let i = 0;
  const peek = () => c.readLin8((c.segBase[CS] + c.eip + i++) | 0);
  let op = peek();
  while (PREFIXES.has(op) && i < 15) op = peek();
  let ok = false;
  if (op === 0x0f) {
    const op2 = peek();
    const m = peek();
    const reg = (m >> 3) & 7;
    ok = m < 0xc0 && (LOCK_RM2.has(op2) || (op2 === 0xba && reg >= 5) || (op2 === 0xc7 && reg === 1));
  } else {
    const m = peek();
    const reg = (m >> 3) & 7;
    if (m < 0xc0) {
      if (LOCK_RM1.has(op)) ok = true;
      else if (op >= 0x80 && op <= 0x83) ok = reg !== 7;
      else if (op === 0xf6 || op === 0xf7) ok = reg === 2 || reg === 3;
      else if (op === 0xfe || op === 0xff) ok = reg <= 1;
    }
  }
  if (!ok) c.ud();
}

// --- ALU: 00-3F (op Eb,Gb / Ev,Gv / Gb,Eb / Gv,Ev / AL,Ib / eAX,Iv) ---
// Each handler reads its operands straight from the register views or memory with the operand size
// decided once (no per-call closures, no size switches): these are the most executed instructions.

for (let op = 0; op < 8; op++) {
  const base = op << 3;
  const name = ALU_NAMES[op];
  const noWrite = op === ALU_CMP;
  def1(base, name, (c) => {
    const m = c.fetchModrm();
    const b = c.r8[R8[(m >> 3) & 7]];
    if (m >= 0xc0) { const i = R8[m & 7]; const v = alu(c, op, c.r8[i], b, 1); if (!noWrite) c.r8[i] = v; return; }
    if (noWrite) { alu(c, op, c.readLin8(c.eaRead(m, 1)), b, 1); return; }
    const l = c.eaRmw(m, 1);
    c.writeLin8(l, alu(c, op, c.readLin8(l), b, 1));
  });
  def1(base + 1, name, (c) => {
    const m = c.fetchModrm();
    if (c.os32) {
      const b = c.r32[(m >> 3) & 7] >>> 0;
      if (m >= 0xc0) { const v = alu(c, op, c.r32[m & 7] >>> 0, b, 4); if (!noWrite) c.r32[m & 7] = v; return; }
      if (noWrite) { alu(c, op, c.readLin32(c.eaRead(m, 4)) >>> 0, b, 4); return; }
      const l = c.eaRmw(m, 4);
      c.writeLin32(l, alu(c, op, c.readLin32(l) >>> 0, b, 4));
    } else {
      const b = c.r16[((m >> 3) & 7) << 1];
      if (m >= 0xc0) { const v = alu(c, op, c.r16[(m & 7) << 1], b, 2); if (!noWrite) c.r16[(m & 7) << 1] = v; return; }
      if (noWrite) { alu(c, op, c.readLin16(c.eaRead(m, 2)), b, 2); return; }
      const l = c.eaRmw(m, 2);
      c.writeLin16(l, alu(c, op, c.readLin16(l), b, 2));
    }
  });
  def1(base + 2, name, (c) => {
    const m = c.fetchModrm();
    const i = R8[(m >> 3) & 7];
    const src = m >= 0xc0 ? c.r8[R8[m & 7]] : c.readLin8(c.eaRead(m, 1));
    const v = alu(c, op, c.r8[i], src, 1);
    if (!noWrite) c.r8[i] = v;
  });
  def1(base + 3, name, (c) => {
    const m = c.fetchModrm();
    const r = (m >> 3) & 7;
    if (c.os32) {
      const src = m >= 0xc0 ? c.r32[m & 7] >>> 0 : c.readLin32(c.eaRead(m, 4)) >>> 0;
      const v = alu(c, op, c.r32[r] >>> 0, src, 4);
      if (!noWrite) c.r32[r] = v;
    } else {
      const src = m >= 0xc0 ? c.r16[(m & 7) << 1] : c.readLin16(c.eaRead(m, 2));
      const v = alu(c, op, c.r16[r << 1], src, 2);
      if (!noWrite) c.r16[r << 1] = v;
    }
  });
  def1(base + 4, name, (c) => { const v = alu(c, op, c.r8[0], c.fetch8(), 1); if (!noWrite) c.r8[0] = v; });
  def1(base + 5, name, (c) => {
    if (c.os32) { const v = alu(c, op, c.r32[0] >>> 0, c.fetch32() >>> 0, 4); if (!noWrite) c.r32[0] = v; }
    else { const v = alu(c, op, c.r16[0], c.fetch16(), 2); if (!noWrite) c.r16[0] = v; }
  });
}

// Group 1: 80 Eb,Ib / 81 Ev,Iv / 82 Eb,Ib (alias of 80 in 32-bit mode) / 83 Ev,Ib sign-extended.
// The immediate follows the ModRM displacement, so the address is computed before it is fetched.
const group1b = (c: CPU) => {
  const m = c.fetchModrm();
  const op = (m >> 3) & 7;
  if (m >= 0xc0) {
    const i = R8[m & 7];
    const v = alu(c, op, c.r8[i], c.fetch8(), 1);
    if (op !== ALU_CMP) c.r8[i] = v;
    return;
  }
  if (op === ALU_CMP) { const a = c.readLin8(c.eaRead(m, 1)); alu(c, op, a, c.fetch8(), 1); return; }
  const l = c.eaRmw(m, 1);
  c.writeLin8(l, alu(c, op, c.readLin8(l), c.fetch8(), 1));
};
/** 81/83 with `imm8` telling whether the immediate is a sign-extended byte. */
const group1v = (c: CPU, imm8: boolean) => {
  const m = c.fetchModrm();
  const op = (m >> 3) & 7;
  if (c.os32) {
    if (m >= 0xc0) {
      const b = (imm8 ? (c.fetch8() << 24) >> 24 : c.fetch32()) >>> 0;
      const v = alu(c, op, c.r32[m & 7] >>> 0, b, 4);
      if (op !== ALU_CMP) c.r32[m & 7] = v;
      return;
    }
    if (op === ALU_CMP) {
      const a = c.readLin32(c.eaRead(m, 4)) >>> 0;
      alu(c, op, a, (imm8 ? (c.fetch8() << 24) >> 24 : c.fetch32()) >>> 0, 4);
      return;
    }
    const l = c.eaRmw(m, 4);
    const b = (imm8 ? (c.fetch8() << 24) >> 24 : c.fetch32()) >>> 0;
    c.writeLin32(l, alu(c, op, c.readLin32(l) >>> 0, b, 4));
    return;
  }
  if (m >= 0xc0) {
    const b = imm8 ? ((c.fetch8() << 24) >> 24) & 0xffff : c.fetch16();
    const v = alu(c, op, c.r16[(m & 7) << 1], b, 2);
    if (op !== ALU_CMP) c.r16[(m & 7) << 1] = v;
    return;
  }
  if (op === ALU_CMP) {
    const a = c.readLin16(c.eaRead(m, 2));
    alu(c, op, a, imm8 ? ((c.fetch8() << 24) >> 24) & 0xffff : c.fetch16(), 2);
    return;
  }
  const l = c.eaRmw(m, 2);
  const b = imm8 ? ((c.fetch8() << 24) >> 24) & 0xffff : c.fetch16();
  c.writeLin16(l, alu(c, op, c.readLin16(l), b, 2));
};
def1(0x80, 'grp1', group1b);
def1(0x81, 'grp1', (c) => group1v(c, false));
def1(0x82, 'grp1', group1b);
def1(0x83, 'grp1', (c) => group1v(c, true));

// TEST 84/85, A8/A9
def1(0x84, 'test', (c) => { const m = c.fetchModrm(); alu(c, 4, rmRead(c, m, 1), c.r8[R8[(m >> 3) & 7]], 1); });
def1(0x85, 'test', (c) => {
  const m = c.fetchModrm();
  if (c.os32) {
    const a = m >= 0xc0 ? c.r32[m & 7] : c.readLin32(c.eaRead(m, 4));
    c.setResultFlags((a & c.r32[(m >> 3) & 7]) >>> 0, 32, 0);
  } else alu(c, 4, rmRead(c, m, 2), c.r16[((m >> 3) & 7) << 1], 2);
});
def1(0xa8, 'test', (c) => { alu(c, 4, c.r8[0], c.fetch8(), 1); });
def1(0xa9, 'test', (c) => { const sz = osz(c); alu(c, 4, regGet(c, 0, sz), trunc(c.fetchImm(), sz), sz); });

// INC/DEC r16/32: 40-4F
for (let r = 0; r < 8; r++) {
  def1(0x40 + r, 'inc', (c) => { if (c.os32) c.r32[r] = inc(c, c.r32[r] >>> 0, 4); else c.r16[r << 1] = inc(c, c.r16[r << 1], 2); });
  def1(0x48 + r, 'dec', (c) => { if (c.os32) c.r32[r] = dec(c, c.r32[r] >>> 0, 4); else c.r16[r << 1] = dec(c, c.r16[r << 1], 2); });
}

// PUSH/POP r: 50-5F
for (let r = 0; r < 8; r++) {
  def1(0x50 + r, 'push', (c) => { if (c.os32) c.push32(c.r32[r]); else c.push16(c.r16[r << 1]); });
  def1(0x58 + r, 'pop', (c) => { if (c.os32) { const v = c.pop32(); c.r32[r] = v; } else { const v = c.pop16(); c.r16[r << 1] = v; } });
}

// PUSH/POP segment registers
const pushSeg = (seg: number) => (c: CPU) => {
  // A 32-bit push of a segment register writes 2 or 4 bytes; we write the zero-extended selector.
  if (c.os32) c.push32(c.sreg[seg]); else c.push16(c.sreg[seg]);
};
const popSeg = (seg: number) => (c: CPU) => {
  const sel = c.os32 ? c.peek32(0) & 0xffff : c.peek16(0);
  loadSegment(c, seg, sel);
  c.addSp(c.os32 ? 4 : 2);
  if (seg === SS) c.inhibitIrq = true; // SDM vol. 2 "POP": interrupts are inhibited after POP SS
};
def1(0x06, 'push es', pushSeg(ES)); def1(0x07, 'pop es', popSeg(ES));
def1(0x0e, 'push cs', pushSeg(CS));
def1(0x16, 'push ss', pushSeg(SS)); def1(0x17, 'pop ss', popSeg(SS));
def1(0x1e, 'push ds', pushSeg(DS)); def1(0x1f, 'pop ds', popSeg(DS));
def2(0xa0, 'push fs', pushSeg(FS)); def2(0xa1, 'pop fs', popSeg(FS));
def2(0xa8, 'push gs', pushSeg(GS)); def2(0xa9, 'pop gs', popSeg(GS));

// PUSHA/POPA (60/61)
def1(0x60, 'pusha', (c) => {
  const sz = osz(c);
  const sp = c.ss32 ? c.r32[4] : c.r16[8];
  const base = (sp - 8 * sz) | 0;
  const l = c.lin(SS, c.ss32 ? base : base & 0xffff, 8 * sz, true);
  c.probeWrite(l, 8 * sz);
  for (let i = 0; i < 8; i++) {
    const v = regGet(c, i, sz === 4 ? 4 : 2);
    const a = c.ss32 ? (sp - (i + 1) * sz) | 0 : (sp - (i + 1) * sz) & 0xffff;
    if (sz === 4) c.wr32(SS, a, v); else c.wr16(SS, a, v);
  }
  c.addSp(-8 * sz);
});
def1(0x61, 'popa', (c) => {
  const sz = osz(c);
  const vals: number[] = [];
  for (let i = 0; i < 8; i++) vals.push(sz === 4 ? c.peek32(i * 4) : c.peek16(i * 2));
  for (let i = 0; i < 8; i++) if (i !== 3) regSet(c, 7 - i, sz, vals[i]); // ESP's slot is skipped
  c.addSp(8 * sz);
});

// BOUND (62): #BR when the index is outside [lower, upper]
def1(0x62, 'bound', (c) => {
  const m = c.fetchModrm();
  if (m >= 0xc0) c.ud();
  const sz = osz(c);
  const off = c.ea(m);
  const seg = c.eaSeg;
  const idx = sext(regGet(c, (m >> 3) & 7, sz), sz);
  const lo = sz === 4 ? c.rd32(seg, off) : sext(c.rd16(seg, off), 2);
  const hi = sz === 4 ? c.rd32(seg, (off + 4) | 0) : sext(c.rd16(seg, (off + 2) & (c.as32 ? -1 : 0xffff)), 2);
  if (idx < lo || idx > hi) c.fault(EXC_BR);
});

// PUSH imm (68, 6A)
def1(0x68, 'push', (c) => c.push(c.fetchImm()));
def1(0x6a, 'push', (c) => c.push(sext(c.fetch8(), 1)));

// IMUL Gv,Ev,Iv (69) / Gv,Ev,Ib (6B) / Gv,Ev (0F AF)
def1(0x69, 'imul', (c) => {
  const sz = osz(c); const m = c.fetchModrm();
  const a = rmRead(c, m, sz);
  regSet(c, (m >> 3) & 7, sz, imulTrunc(c, a, trunc(c.fetchImm(), sz), sz));
});
def1(0x6b, 'imul', (c) => {
  const sz = osz(c); const m = c.fetchModrm();
  const a = rmRead(c, m, sz);
  regSet(c, (m >> 3) & 7, sz, imulTrunc(c, a, trunc(sext(c.fetch8(), 1), sz), sz));
});
def2(0xaf, 'imul', (c) => {
  const m = c.fetchModrm();
  const r = (m >> 3) & 7;
  if (c.os32) {
    const b = m >= 0xc0 ? c.r32[m & 7] : c.readLin32(c.eaRead(m, 4));
    const a = c.r32[r];
    // Math.imul gives the low half; the product is exact in a double only when it fits in 2^53, so the
    // overflow test uses the double product only to decide whether the low half sign-extends to it.
    const lo = Math.imul(a, b);
    const p = a * b;
    const exact = p >= -0x8000000000000 && p <= 0x8000000000000 ? p === lo : false;
    c.r32[r] = lo;
    c.setResultFlags(lo >>> 0, 32, exact ? 0 : CF | OF);
  } else regSet(c, r, 2, imulTrunc(c, c.r16[r << 1], rmRead(c, m, 2), 2));
});

// Jcc rel8 (70-7F), rel16/32 (0F 80-8F)
for (let cc = 0; cc < 16; cc++) {
  def1(0x70 + cc, 'jcc', (c) => {
    const d = (c.fetch8() << 24) >> 24;
    if (c.cond(cc)) c.jumpNear((c.eip + d) | 0);
  });
  def2(0x80 + cc, 'jcc', (c) => {
    const d = c.os32 ? c.fetch32() : sext(c.fetch16(), 2);
    if (c.cond(cc)) c.jumpNear((c.eip + d) | 0);
  });
  // SETcc (0F 90-9F) and CMOVcc (0F 40-4F)
  def2(0x90 + cc, 'setcc', (c) => { const m = c.fetchModrm(); rmWrite(c, m, 1, c.cond(cc) ? 1 : 0); });
  def2(0x40 + cc, 'cmovcc', (c) => {
    const sz = osz(c); const m = c.fetchModrm();
    const v = rmRead(c, m, sz); // the source is read (and may fault) whatever the condition
    if (c.cond(cc)) regSet(c, (m >> 3) & 7, sz, v);
  });
}

// XCHG/MOV/LEA/POP r/m
def1(0x86, 'xchg', (c) => {
  const m = c.fetchModrm(); const r = (m >> 3) & 7;
  const old = rmwRead(c, m, 1); const v = regGet(c, r, 1); regSet(c, r, 1, old); rmwWrite(c, m, 1, v);
});
def1(0x87, 'xchg', (c) => {
  const sz = osz(c); const m = c.fetchModrm(); const r = (m >> 3) & 7;
  const old = rmwRead(c, m, sz); const v = regGet(c, r, sz); regSet(c, r, sz, old); rmwWrite(c, m, sz, v);
});
def1(0x88, 'mov', (c) => {
  const m = c.fetchModrm();
  const v = c.r8[R8[(m >> 3) & 7]];
  if (m >= 0xc0) c.r8[R8[m & 7]] = v; else c.writeLin8(c.eaWrite(m, 1), v);
});
def1(0x89, 'mov', (c) => {
  const m = c.fetchModrm();
  if (c.os32) {
    const v = c.r32[(m >> 3) & 7];
    if (m >= 0xc0) c.r32[m & 7] = v; else c.writeLin32(c.eaWrite(m, 4), v);
  } else {
    const v = c.r16[((m >> 3) & 7) << 1];
    if (m >= 0xc0) c.r16[(m & 7) << 1] = v; else c.writeLin16(c.eaWrite(m, 2), v);
  }
});
def1(0x8a, 'mov', (c) => {
  const m = c.fetchModrm();
  c.r8[R8[(m >> 3) & 7]] = m >= 0xc0 ? c.r8[R8[m & 7]] : c.readLin8(c.eaRead(m, 1));
});
def1(0x8b, 'mov', (c) => {
  const m = c.fetchModrm();
  if (c.os32) c.r32[(m >> 3) & 7] = m >= 0xc0 ? c.r32[m & 7] : c.readLin32(c.eaRead(m, 4));
  else c.r16[((m >> 3) & 7) << 1] = m >= 0xc0 ? c.r16[(m & 7) << 1] : c.readLin16(c.eaRead(m, 2));
});
def1(0x8c, 'mov', (c) => {
  const m = c.fetchModrm();
  const s = (m >> 3) & 7;
  if (s > 5) c.ud();
  // To a register with 32-bit operand size the selector is zero-extended; to memory it is always 16 bits.
  if (m >= 0xc0) regSet(c, m & 7, osz(c), c.sreg[s]); else rmWrite(c, m, 2, c.sreg[s]);
});
def1(0x8d, 'lea', (c) => {
  const m = c.fetchModrm();
  if (m >= 0xc0) c.ud();
  const off = c.ea(m);
  if (c.os32) c.r32[(m >> 3) & 7] = off; else c.r16[((m >> 3) & 7) << 1] = off;
});
def1(0x8e, 'mov', (c) => {
  const m = c.fetchModrm();
  const s = (m >> 3) & 7;
  if (s === CS || s > 5) c.ud();
  loadSegment(c, s, rmRead(c, m, 2));
  if (s === SS) c.inhibitIrq = true;
});
def1(0x8f, 'pop', (c) => {
  const m = c.fetchModrm();
  if ((m >> 3) & 7) c.ud();
  const sz = osz(c);
  // SDM vol. 2 "POP": an ESP-based destination address is computed after ESP is incremented.
  const v = sz === 4 ? c.peek32(0) >>> 0 : c.peek16(0);
  if (m >= 0xc0) { c.addSp(sz); regSet(c, m & 7, sz, v); return; }
  const saved = c.r32[4];
  c.addSp(sz);
  try {
    const l = rmLin(c, m, sz, true);
    linWrite(c, l, sz, v);
  } catch (e) { c.r32[4] = saved; throw e; }
});

// NOP / PAUSE / XCHG eAX,r (90-97)
def1(0x90, 'nop', () => {});
for (let r = 1; r < 8; r++) {
  def1(0x90 + r, 'xchg', (c) => {
    const sz = osz(c);
    const t = regGet(c, 0, sz); regSet(c, 0, sz, regGet(c, r, sz)); regSet(c, r, sz, t);
  });
}

def1(0x98, 'cbw', (c) => { if (c.os32) c.r32[0] = (c.r16[0] << 16) >> 16; else c.r16[0] = (c.r8[0] << 24) >> 24; });
def1(0x99, 'cwd', (c) => { if (c.os32) c.r32[2] = c.r32[0] >> 31; else c.r16[4] = ((c.r16[0] << 16) >> 31); });
def1(0x9a, 'callf', (c) => {
  const off = c.fetchImm();
  const sel = c.fetch16();
  farCall(c, sel, off >>> 0, c.os32);
});
def1(0x9b, 'fwait', (c) => c.fpuWait());

// SAHF/LAHF (SDM: SF ZF AF PF CF from AH)
def1(0x9e, 'sahf', (c) => c.setFlagBits(SF | ZF | AF | PF | CF, c.r8[1]));
def1(0x9f, 'lahf', (c) => { c.r8[1] = (c.getEflags() & (SF | ZF | AF | PF | CF)) | 2; });

// MOV AL/eAX <-> moffs (A0-A3)
const moffs = (c: CPU) => (c.as32 ? c.fetch32() : c.fetch16());
def1(0xa0, 'mov', (c) => { c.r8[0] = c.rd8(c.dataSeg(), moffs(c)); });
def1(0xa1, 'mov', (c) => { const o = moffs(c); if (c.os32) c.r32[0] = c.rd32(c.dataSeg(), o); else c.r16[0] = c.rd16(c.dataSeg(), o); });
def1(0xa2, 'mov', (c) => { c.wr8(c.dataSeg(), moffs(c), c.r8[0]); });
def1(0xa3, 'mov', (c) => { const o = moffs(c); if (c.os32) c.wr32(c.dataSeg(), o, c.r32[0]); else c.wr16(c.dataSeg(), o, c.r16[0]); });

// MOV r, imm (B0-BF)
for (let r = 0; r < 8; r++) {
  def1(0xb0 + r, 'mov', (c) => { c.r8[R8[r]] = c.fetch8(); });
  def1(0xb8 + r, 'mov', (c) => { if (c.os32) c.r32[r] = c.fetch32(); else c.r16[r << 1] = c.fetch16(); });
}

// Group 2 shifts: C0/C1 by imm8, D0/D1 by 1, D2/D3 by CL
const group2 = (c: CPU, sz: number, countKind: number) => group2m(c, c.fetchModrm(), sz, countKind);
const group2m = (c: CPU, m: number, sz: number, countKind: number) => {
  const op = (m >> 3) & 7;
  if (m >= 0xc0) {
    const count = countKind === 0 ? c.fetch8() : countKind === 1 ? 1 : c.r8[4];
    const r = shift(c, op, regGet(c, m & 7, sz), count, sz);
    if (r >= 0) regSet(c, m & 7, sz, r);
    return;
  }
  const l = rmLin(c, m, sz, true);
  const count = countKind === 0 ? c.fetch8() : countKind === 1 ? 1 : c.r8[4];
  const r = shift(c, op, linRead(c, l, sz), count, sz);
  if (r >= 0) linWrite(c, l, sz, r);
};
def1(0xc0, 'grp2', (c) => group2(c, 1, 0));
def1(0xc1, 'grp2', (c) => {
  if (!c.os32) { group2(c, 2, 0); return; }
  // 32-bit shift of a register by an immediate, the common case, without the generic shift's size logic.
  const m = c.fetchModrm();
  const op = (m >> 3) & 7;
  if (m < 0xc0 || (op !== 4 && op !== 5 && op !== 7)) { group2m(c, m, 4, 0); return; }
  const count = c.fetch8() & 31;
  if (count === 0) return;
  const a = c.r32[m & 7];
  let r: number, cf: number, of: number;
  if (op === 4) { r = a << count; cf = (a >>> (32 - count)) & 1; of = ((r >>> 31) ^ cf) ? OF : 0; }
  else if (op === 5) { r = a >>> count; cf = (a >>> (count - 1)) & 1; of = a < 0 ? OF : 0; }
  else { r = a >> count; cf = (a >> (count - 1)) & 1; of = 0; }
  c.r32[m & 7] = r;
  c.setResultFlags(r >>> 0, 32, cf | of | AF);
});
def1(0xd0, 'grp2', (c) => group2(c, 1, 1));
def1(0xd1, 'grp2', (c) => group2(c, c.os32 ? 4 : 2, 1));
def1(0xd2, 'grp2', (c) => group2(c, 1, 2));
def1(0xd3, 'grp2', (c) => group2(c, c.os32 ? 4 : 2, 2));

// RET near (C2 imm16, C3)
def1(0xc2, 'ret', (c) => {
  const n = c.fetch16();
  const t = c.os32 ? c.peek32(0) : c.peek16(0);
  c.jumpNear(t);
  c.addSp((c.os32 ? 4 : 2) + n);
});
def1(0xc3, 'ret', (c) => {
  const t = c.os32 ? c.peek32(0) : c.peek16(0);
  c.jumpNear(t);
  c.addSp(c.os32 ? 4 : 2);
});

// LES/LDS (C4/C5), LSS/LFS/LGS (0F B2/B4/B5): load a far pointer
const loadFarPtr = (seg: number) => (c: CPU) => {
  const m = c.fetchModrm();
  if (m >= 0xc0) c.ud();
  const sz = osz(c);
  const off = c.ea(m);
  const s = c.eaSeg;
  const v = sz === 4 ? c.rd32(s, off) >>> 0 : c.rd16(s, off);
  const sel = c.rd16(s, (off + sz) & (c.as32 ? -1 : 0xffff));
  loadSegment(c, seg, sel);
  regSet(c, (m >> 3) & 7, sz, v);
};
def1(0xc4, 'les', loadFarPtr(ES));
def1(0xc5, 'lds', loadFarPtr(DS));
def2(0xb2, 'lss', loadFarPtr(SS));
def2(0xb4, 'lfs', loadFarPtr(FS));
def2(0xb5, 'lgs', loadFarPtr(GS));

// MOV r/m, imm (C6/C7)
def1(0xc6, 'mov', (c) => {
  const m = c.fetchModrm();
  if ((m >> 3) & 7) c.ud();
  if (m >= 0xc0) { regSet(c, m & 7, 1, c.fetch8()); return; }
  const l = rmLin(c, m, 1, true);
  c.writeLin8(l, c.fetch8());
});
def1(0xc7, 'mov', (c) => {
  const m = c.fetchModrm();
  if ((m >> 3) & 7) c.ud();
  const sz = osz(c);
  if (m >= 0xc0) { regSet(c, m & 7, sz, c.fetchImm()); return; }
  const l = rmLin(c, m, sz, true);
  linWrite(c, l, sz, c.fetchImm());
});

// ENTER (C8) / LEAVE (C9), SDM vol. 2 "ENTER" with nesting levels
def1(0xc8, 'enter', (c) => {
  const size = c.fetch16();
  const level = c.fetch8() & 31;
  const sz = osz(c);
  const sp0 = c.r32[4];
  const bp0 = c.r32[5];
  try {
    c.push(sz === 4 ? bp0 : bp0 & 0xffff);
    const frame = c.ss32 ? c.r32[4] : c.r16[8];
    if (level > 0) {
      let bp = c.ss32 ? bp0 : bp0 & 0xffff;
      for (let i = 1; i < level; i++) {
        bp = c.ss32 ? (bp - sz) | 0 : (bp - sz) & 0xffff;
        c.push(sz === 4 ? c.rd32(SS, bp) : c.rd16(SS, bp));
      }
      c.push(frame);
    }
    // The final stack pointer must be writable (SDM: #SS if it is outside the stack segment).
    const newSp = c.ss32 ? (c.r32[4] - size) | 0 : (c.r16[8] - size) & 0xffff;
    if (size) c.lin(SS, newSp, 1, true);
    regSet(c, 5, c.ss32 ? 4 : 2, frame);
    if (c.ss32) c.r32[4] = newSp; else c.r16[8] = newSp;
  } catch (e) {
    c.r32[4] = sp0; c.r32[5] = bp0;
    throw e;
  }
});
def1(0xc9, 'leave', (c) => {
  const sz = osz(c);
  const bp = c.ss32 ? c.r32[5] : c.r16[10];
  const v = sz === 4 ? c.rd32(SS, bp) : c.rd16(SS, bp);
  if (c.ss32) c.r32[4] = (bp + sz) | 0; else c.r16[8] = bp + sz;
  regSet(c, 5, sz, sz === 4 ? v >>> 0 : v);
});

def1(0xca, 'retf', (c) => { const n = c.fetch16(); farReturn(c, c.os32, n); });
def1(0xcb, 'retf', (c) => farReturn(c, c.os32, 0));
def1(0xcc, 'int3', (c) => c.softwareInterrupt(3));
def1(0xcd, 'int', (c) => {
  const v = c.fetch8();
  // SDM vol. 3A §20.3.3: INT n in virtual-8086 mode with IOPL < 3 is #GP(0) (no VME).
  if (c.isV86() && ((c.flags >> 12) & 3) < 3) c.gp(0);
  c.softwareInterrupt(v);
});
def1(0xce, 'into', (c) => { if (c.getOF()) c.softwareInterrupt(EXC_OF); });
def1(0xcf, 'iret', (c) => iret(c, c.os32));

// BCD adjust (SDM vol. 2 "AAM", "AAD", "DAA", "DAS", "AAA", "AAS")
def1(0xd4, 'aam', (c) => {
  const base = c.fetch8();
  if (base === 0) c.fault(0);
  const al = c.r8[0];
  c.r8[1] = Math.floor(al / base);
  c.r8[0] = al % base;
  c.setResultFlags(c.r8[0], 8, 0);
});
def1(0xd5, 'aad', (c) => {
  const base = c.fetch8();
  const al = (c.r8[0] + c.r8[1] * base) & 0xff;
  c.r16[0] = al;
  c.setResultFlags(al, 8, 0);
});
def1(0xd6, 'salc', (c) => { c.r8[0] = c.getCF() ? 0xff : 0; });
def1(0x27, 'daa', (c) => {
  const oldAl = c.r8[0], oldCf = c.getCF();
  let al = oldAl, cf = 0, af = 0;
  if ((al & 0xf) > 9 || c.getAF()) { al = (al + 6) & 0xff; cf = oldCf | (oldAl + 6 > 0xff ? 1 : 0); af = AF; }
  if (oldAl > 0x99 || oldCf) { al = (al + 0x60) & 0xff; cf = 1; }
  c.r8[0] = al;
  c.setResultFlags(al, 8, cf | af);
});
def1(0x2f, 'das', (c) => {
  const oldAl = c.r8[0], oldCf = c.getCF();
  let al = oldAl, cf = 0, af = 0;
  if ((al & 0xf) > 9 || c.getAF()) { al = (al - 6) & 0xff; cf = oldCf | (oldAl < 6 ? 1 : 0); af = AF; }
  if (oldAl > 0x99 || oldCf) { al = (al - 0x60) & 0xff; cf = 1; }
  c.r8[0] = al;
  c.setResultFlags(al, 8, cf | af);
});
def1(0x37, 'aaa', (c) => {
  if ((c.r8[0] & 0xf) > 9 || c.getAF()) {
    c.r16[0] = c.r16[0] + 0x106;
    c.r8[0] &= 0xf;
    c.setResultFlags(c.r8[0], 8, AF | CF);
  } else {
    c.r8[0] &= 0xf;
    c.setResultFlags(c.r8[0], 8, 0);
  }
});
def1(0x3f, 'aas', (c) => {
  if ((c.r8[0] & 0xf) > 9 || c.getAF()) {
    c.r16[0] = c.r16[0] - 6;
    c.r8[1] = c.r8[1] - 1;
    c.r8[0] &= 0xf;
    c.setResultFlags(c.r8[0], 8, AF | CF);
  } else {
    c.r8[0] &= 0xf;
    c.setResultFlags(c.r8[0], 8, 0);
  }
});

// XLAT (D7)
def1(0xd7, 'xlat', (c) => {
  const off = c.as32 ? (c.r32[3] + c.r8[0]) | 0 : (c.r16[6] + c.r8[0]) & 0xffff;
  c.r8[0] = c.rd8(c.dataSeg(), off);
});

// LOOPNE/LOOPE/LOOP/JCXZ (E0-E3): the counter is CX or ECX by address size
const loopOp = (kind: number) => (c: CPU) => {
  const d = (c.fetch8() << 24) >> 24;
  let cnt: number;
  if (kind === 3) cnt = c.as32 ? c.r32[1] : c.r16[2];
  else if (c.as32) { cnt = c.r32[1] = (c.r32[1] - 1) | 0; }
  else { cnt = c.r16[2] = (c.r16[2] - 1) & 0xffff; }
  let take: boolean;
  switch (kind) {
    case 0: take = cnt !== 0 && !c.getZF(); break;
    case 1: take = cnt !== 0 && c.getZF() !== 0; break;
    case 2: take = cnt !== 0; break;
    default: take = cnt === 0; break;
  }
  if (take) c.jumpNear((c.eip + d) | 0);
};
def1(0xe0, 'loopne', loopOp(0));
def1(0xe1, 'loope', loopOp(1));
def1(0xe2, 'loop', loopOp(2));
def1(0xe3, 'jcxz', loopOp(3));

// CALL/JMP rel, JMP far, JMP rel8 (E8-EB)
def1(0xe8, 'call', (c) => {
  const d = c.os32 ? c.fetch32() : sext(c.fetch16(), 2);
  const ret = c.eip;
  const target = (ret + d) | 0;
  if (((c.os32 ? target : target & 0xffff) >>> 0) > c.segLimit[CS]) c.gp(0);
  c.push(ret);
  c.jumpNear(target);
});
def1(0xe9, 'jmp', (c) => { const d = c.os32 ? c.fetch32() : sext(c.fetch16(), 2); c.jumpNear((c.eip + d) | 0); });
def1(0xea, 'jmpf', (c) => { const off = c.fetchImm(); const sel = c.fetch16(); farJump(c, sel, off >>> 0, c.os32); });
def1(0xeb, 'jmp', (c) => { const d = (c.fetch8() << 24) >> 24; c.jumpNear((c.eip + d) | 0); });

// CMC/CLC/STC/CLD/STD (F5, F8, F9, FC, FD)
def1(0xf5, 'cmc', (c) => c.setFlagBits(CF, c.getCF() ^ 1));
def1(0xf8, 'clc', (c) => c.setFlagBits(CF, 0));
def1(0xf9, 'stc', (c) => c.setFlagBits(CF, CF));
def1(0xfc, 'cld', (c) => { c.flags &= ~DF; });
def1(0xfd, 'std', (c) => { c.flags |= DF; });

// Group 3 (F6/F7): TEST NOT NEG MUL IMUL DIV IDIV
const group3 = (c: CPU, sz: number) => {
  const m = c.fetchModrm();
  const op = (m >> 3) & 7;
  switch (op) {
    case 0: case 1: { // TEST r/m, imm
      const a = m >= 0xc0 ? regGet(c, m & 7, sz) : linRead(c, rmLin(c, m, sz, false), sz);
      const b = sz === 1 ? c.fetch8() : trunc(c.fetchImm(), sz);
      alu(c, 4, a, b, sz);
      return;
    }
    case 2: rmwWrite(c, m, sz, trunc(~rmwRead(c, m, sz), sz)); return;
    case 3: rmwWrite(c, m, sz, neg(c, rmwRead(c, m, sz), sz)); return;
    case 4: mul(c, rmRead(c, m, sz), sz); return;
    case 5: imul1(c, rmRead(c, m, sz), sz); return;
    case 6: div(c, rmRead(c, m, sz), sz); return;
    default: idiv(c, rmRead(c, m, sz), sz); return;
  }
};
def1(0xf6, 'grp3', (c) => group3(c, 1));
def1(0xf7, 'grp3', (c) => group3(c, osz(c)));

// Group 4 (FE): INC/DEC r/m8; group 5 (FF): INC DEC CALL CALLF JMP JMPF PUSH
def1(0xfe, 'grp4', (c) => {
  const m = c.fetchModrm();
  const op = (m >> 3) & 7;
  if (op === 0) rmwWrite(c, m, 1, inc(c, rmwRead(c, m, 1), 1));
  else if (op === 1) rmwWrite(c, m, 1, dec(c, rmwRead(c, m, 1), 1));
  else c.ud();
});
def1(0xff, 'grp5', (c) => {
  const m = c.fetchModrm();
  const op = (m >> 3) & 7;
  const sz = osz(c);
  switch (op) {
    case 0: rmwWrite(c, m, sz, inc(c, rmwRead(c, m, sz), sz)); return;
    case 1: rmwWrite(c, m, sz, dec(c, rmwRead(c, m, sz), sz)); return;
    case 2: {
      const t = rmRead(c, m, sz);
      if ((t >>> 0) > c.segLimit[CS]) c.gp(0);
      c.push(c.eip);
      c.jumpNear(t);
      return;
    }
    case 4: c.jumpNear(rmRead(c, m, sz)); return;
    case 3: case 5: {
      if (m >= 0xc0) c.ud();
      const off = c.ea(m);
      const s = c.eaSeg;
      const o = sz === 4 ? c.rd32(s, off) >>> 0 : c.rd16(s, off);
      const sel = c.rd16(s, (off + sz) & (c.as32 ? -1 : 0xffff));
      if (op === 3) farCall(c, sel, o, c.os32); else farJump(c, sel, o, c.os32);
      return;
    }
    case 6: {
      const v = rmRead(c, m, sz);
      c.push(v);
      return;
    }
    default: c.ud();
  }
});

// --- 0F two-byte integer instructions ---

// BT/BTS/BTR/BTC (0F A3/AB/B3/BB with a register offset; 0F BA /4-7 with imm8). With a register bit
// offset and a memory operand, the offset addresses a bit string (signed, SDM vol. 2 "BT").
const bitOp = (c: CPU, kind: number, m: number, bitOffset: number, sz: number, fromReg: boolean) => {
  const bits = sz << 3;
  if (m >= 0xc0) {
    const bit = bitOffset & (bits - 1);
    const v = regGet(c, m & 7, sz);
    const cf = (v >>> bit) & 1;
    if (kind !== 0) regSet(c, m & 7, sz, trunc(kind === 1 ? v | (1 << bit) : kind === 2 ? v & ~(1 << bit) : v ^ (1 << bit), sz));
    c.setFlagBits(CF, cf);
    return;
  }
  let off = c.ea(m);
  const seg = c.eaSeg;
  let bit: number;
  if (fromReg) {
    const signed = sext(bitOffset, sz);
    off = (off + Math.floor(signed / bits) * sz) | 0;
    if (!c.as32) off &= 0xffff;
    bit = signed & (bits - 1);
  } else bit = bitOffset & (bits - 1);
  const l = c.lin(seg, off, sz, kind !== 0);
  if (kind !== 0) c.probeWrite(l, sz);
  const v = linRead(c, l, sz);
  const cf = (v >>> bit) & 1;
  if (kind !== 0) linWrite(c, l, sz, trunc(kind === 1 ? v | (1 << bit) : kind === 2 ? v & ~(1 << bit) : v ^ (1 << bit), sz));
  c.setFlagBits(CF, cf);
};
const BT_OPS: [number, number][] = [[0xa3, 0], [0xab, 1], [0xb3, 2], [0xbb, 3]];
for (const [op, kind] of BT_OPS) {
  def2(op, 'bt', (c) => { const sz = osz(c); const m = c.fetchModrm(); bitOp(c, kind, m, regGet(c, (m >> 3) & 7, sz), sz, true); });
}
def2(0xba, 'grp8', (c) => {
  const sz = osz(c);
  const m = c.fetchModrm();
  const kind = ((m >> 3) & 7) - 4;
  if (kind < 0) c.ud();
  if (m >= 0xc0) { bitOp(c, kind, m, c.fetch8(), sz, false); return; }
  // The imm8 follows the displacement: decode the address first, then re-enter with it.
  const off = c.ea(m);
  const seg = c.eaSeg;
  const bit = c.fetch8() & ((sz << 3) - 1);
  const l = c.lin(seg, off, sz, kind !== 0);
  if (kind !== 0) c.probeWrite(l, sz);
  const v = linRead(c, l, sz);
  if (kind !== 0) linWrite(c, l, sz, trunc(kind === 1 ? v | (1 << bit) : kind === 2 ? v & ~(1 << bit) : v ^ (1 << bit), sz));
  c.setFlagBits(CF, (v >>> bit) & 1);
});

// SHLD/SHRD (0F A4/A5/AC/AD)
const dblShift = (left: boolean, byCl: boolean) => (c: CPU) => {
  const sz = osz(c);
  const m = c.fetchModrm();
  const src = regGet(c, (m >> 3) & 7, sz);
  if (m >= 0xc0) {
    const count = byCl ? c.r8[4] : c.fetch8();
    const r = shiftDouble(c, left, regGet(c, m & 7, sz), src, count, sz);
    if (r >= 0) regSet(c, m & 7, sz, r);
    return;
  }
  const l = rmLin(c, m, sz, true);
  const count = byCl ? c.r8[4] : c.fetch8();
  const r = shiftDouble(c, left, linRead(c, l, sz), src, count, sz);
  if (r >= 0) linWrite(c, l, sz, r);
};
def2(0xa4, 'shld', dblShift(true, false));
def2(0xa5, 'shld', dblShift(true, true));
def2(0xac, 'shrd', dblShift(false, false));
def2(0xad, 'shrd', dblShift(false, true));

// CMPXCHG (0F B0/B1), SDM vol. 2: the destination is written back even when the comparison fails.
const cmpxchg = (sz: number) => (c: CPU) => {
  const m = c.fetchModrm();
  const r = (m >> 3) & 7;
  const dst = rmwRead(c, m, sz);
  const acc = regGet(c, 0, sz);
  alu(c, ALU_CMP, acc, dst, sz);
  if (acc === dst) { rmwWrite(c, m, sz, regGet(c, r, sz)); return; }
  regSet(c, 0, sz, dst);
  rmwWrite(c, m, sz, dst);
};
const cmpxchg1 = cmpxchg(1), cmpxchg2 = cmpxchg(2), cmpxchg4 = cmpxchg(4);
def2(0xb0, 'cmpxchg', cmpxchg1);
def2(0xb1, 'cmpxchg', (c) => (c.os32 ? cmpxchg4(c) : cmpxchg2(c)));

// XADD (0F C0/C1)
const xadd = (sz: number) => (c: CPU) => {
  const m = c.fetchModrm();
  const r = (m >> 3) & 7;
  const dst = rmwRead(c, m, sz);
  const src = regGet(c, r, sz);
  const sum = alu(c, 0, dst, src, sz);
  regSet(c, r, sz, dst);
  rmwWrite(c, m, sz, sum);
};
const xadd1 = xadd(1), xadd2 = xadd(2), xadd4 = xadd(4);
def2(0xc0, 'xadd', xadd1);
def2(0xc1, 'xadd', (c) => (c.os32 ? xadd4(c) : xadd2(c)));

// MOVZX/MOVSX (0F B6/B7/BE/BF)
def2(0xb6, 'movzx', (c) => {
  const m = c.fetchModrm();
  const v = m >= 0xc0 ? c.r8[R8[m & 7]] : c.readLin8(c.eaRead(m, 1));
  if (c.os32) c.r32[(m >> 3) & 7] = v; else c.r16[((m >> 3) & 7) << 1] = v;
});
def2(0xb7, 'movzx', (c) => {
  const m = c.fetchModrm();
  const v = m >= 0xc0 ? c.r16[(m & 7) << 1] : c.readLin16(c.eaRead(m, 2));
  if (c.os32) c.r32[(m >> 3) & 7] = v; else c.r16[((m >> 3) & 7) << 1] = v;
});
def2(0xbe, 'movsx', (c) => { const m = c.fetchModrm(); const sz = osz(c); regSet(c, (m >> 3) & 7, sz, trunc(sext(rmRead(c, m, 1), 1), sz)); });
def2(0xbf, 'movsx', (c) => { const m = c.fetchModrm(); const sz = osz(c); regSet(c, (m >> 3) & 7, sz, trunc(sext(rmRead(c, m, 2), 2), sz)); });

// BSF/BSR (0F BC/BD): ZF=1 and the destination unchanged when the source is 0 (as Intel cores do).
def2(0xbc, 'bsf', (c) => {
  const sz = osz(c); const m = c.fetchModrm();
  const v = rmRead(c, m, sz);
  if (v === 0) { c.setResultFlags(0, 32, 0); return; }
  const idx = 31 - Math.clz32(v & -v);
  regSet(c, (m >> 3) & 7, sz, idx);
  c.setResultFlags(1, 32, 0);
});
def2(0xbd, 'bsr', (c) => {
  const sz = osz(c); const m = c.fetchModrm();
  const v = rmRead(c, m, sz);
  if (v === 0) { c.setResultFlags(0, 32, 0); return; }
  const idx = 31 - Math.clz32(v);
  regSet(c, (m >> 3) & 7, sz, idx);
  c.setResultFlags(1, 32, 0);
});

// BSWAP (0F C8-CF); with a 16-bit operand the result is undefined (real CPUs give 0).
for (let r = 0; r < 8; r++) {
  def2(0xc8 + r, 'bswap', (c) => {
    if (!c.os32) { c.r16[r << 1] = 0; return; }
    const v = c.r32[r];
    c.r32[r] = ((v & 0xff) << 24) | ((v & 0xff00) << 8) | ((v >>> 8) & 0xff00) | (v >>> 24);
  });
}

// CMPXCHG8B (0F C7 /1)
def2(0xc7, 'grp9', (c) => {
  const m = c.fetchModrm();
  if (((m >> 3) & 7) !== 1 || m >= 0xc0) c.ud();
  const l = rmLin(c, m, 8, true);
  const lo = c.readLin32(l), hi = c.readLin32((l + 4) | 0);
  if (lo === c.r32[0] && hi === c.r32[2]) {
    c.writeLin32(l, c.r32[3]); c.writeLin32((l + 4) | 0, c.r32[1]);
    c.setFlagBits(ZF, ZF);
  } else {
    // The destination is written back with its own value on failure (locked RMW), then EDX:EAX loaded.
    c.writeLin32(l, lo); c.writeLin32((l + 4) | 0, hi);
    c.r32[0] = lo; c.r32[2] = hi;
    c.setFlagBits(ZF, 0);
  }
});

// UD2 (0F 0B) and the reserved-NOP space 0F 1F (multi-byte NOP, P6+).
def2(0x0b, 'ud2', (c) => c.fault(EXC_UD));
def2(0x1f, 'nop', (c) => { const m = c.fetchModrm(); if (m < 0xc0) c.ea(m); });
for (const op of [0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e]) {
  // 0F 18 /0-3 are PREFETCH hints (SSE); 0F 19-1E are reserved hint NOPs on P6 and later.
  def2(op, 'hint-nop', (c) => { const m = c.fetchModrm(); if (op === 0x18 && m >= 0xc0) c.ud(); if (m < 0xc0) c.ea(m); });
}
