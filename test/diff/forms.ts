// The instruction-form table: one row per user-mode instruction form.
//
// Rows are built by small helpers so that the many size/operand variants of
// one instruction stay in one place.  To add a form, push a row (see `Form`
// in generate.ts for the template language); its mnemonic selects the
// undefined-flags entry in undefined.ts.

import { AREA, STACK_AT } from './format.ts';
import { Retry, type Form, type Gen, type Category } from './generate.ts';
import { edge, f32Bytes, f64Bytes, f80Bytes, type Rng } from './rng.ts';

export const FORMS: Form[] = [];

function add(f: Form): void {
  FORMS.push(f);
}

const hx = (n: number) => n.toString(16).toUpperCase().padStart(2, '0');
const pre = (os: number) => (os === 16 ? '66 ' : '');
const immTok = (os: number) => (os === 8 ? 'ib' : os === 16 ? 'iw' : 'id');
const INT_SIZES = [8, 16, 32];

/** Sometimes make the two operands of a /r form equal (CMP/SUB give ZF=1, XOR gives 0...). */
function sometimesEqual(g: Gen): void {
  if (g.modrm && g.r.chance(0.15)) g.setRm(g.regf()) || g.setReg(g.modrm.reg, g.form.os, g.rm());
}

// ---- integer ALU ---------------------------------------------------------------

const ALU = ['add', 'or', 'adc', 'sbb', 'and', 'sub', 'xor', 'cmp'];
ALU.forEach((op, n) => {
  for (const os of INT_SIZES) {
    const w = os === 8 ? 0 : 1;
    const cat: Category = 'integer-alu';
    add({ name: `${op} r/m${os}, r${os}`, mnem: op, cat, os, t: `${pre(os)}${hx(n * 8 + w)} /r`, fix: sometimesEqual });
    add({ name: `${op} r${os}, r/m${os}`, mnem: op, cat, os, t: `${pre(os)}${hx(n * 8 + 2 + w)} /r`, fix: sometimesEqual });
    add({ name: `${op} ${os === 8 ? 'al' : os === 16 ? 'ax' : 'eax'}, imm${os}`, mnem: op, cat, os, t: `${pre(os)}${hx(n * 8 + 4 + w)} ${immTok(os)}` });
    add({ name: `${op} r/m${os}, imm${os}`, mnem: op, cat, os, t: `${pre(os)}${os === 8 ? '80' : '81'} /${n} ${immTok(os)}` });
    if (os !== 8) add({ name: `${op} r/m${os}, imm8`, mnem: op, cat, os, t: `${pre(os)}83 /${n} ib` });
    else add({ name: `${op} r/m8, imm8 (82 alias)`, mnem: op, cat, os, t: `82 /${n} ib`, weight: 0.3 });
    if (op !== 'cmp') add({ name: `lock ${op} m${os}, r${os}`, mnem: op, cat, os, t: `F0 ${pre(os)}${hx(n * 8 + w)} /r:m`, weight: 0.3 });
  }
});
for (const os of INT_SIZES) {
  const cat: Category = 'integer-alu';
  const w = os === 8 ? 0 : 1;
  add({ name: `test r/m${os}, r${os}`, mnem: 'test', cat, os, t: `${pre(os)}${hx(0x84 + w)} /r`, fix: sometimesEqual });
  add({ name: `test acc, imm${os}`, mnem: 'test', cat, os, t: `${pre(os)}${hx(0xa8 + w)} ${immTok(os)}` });
  add({ name: `test r/m${os}, imm${os}`, mnem: 'test', cat, os, t: `${pre(os)}${hx(0xf6 + w)} /0 ${immTok(os)}` });
  add({ name: `not r/m${os}`, mnem: 'not', cat, os, t: `${pre(os)}${hx(0xf6 + w)} /2` });
  add({ name: `neg r/m${os}`, mnem: 'neg', cat, os, t: `${pre(os)}${hx(0xf6 + w)} /3` });
  add({ name: `inc r/m${os}`, mnem: 'inc', cat, os, t: `${pre(os)}${hx(0xfe + w)} /0` });
  add({ name: `dec r/m${os}`, mnem: 'dec', cat, os, t: `${pre(os)}${hx(0xfe + w)} /1` });
  if (os !== 8) {
    add({ name: `inc r${os}`, mnem: 'inc', cat, os, t: `${pre(os)}40+r` });
    add({ name: `dec r${os}`, mnem: 'dec', cat, os, t: `${pre(os)}48+r` });
  }
}

// ---- multiply / divide -----------------------------------------------------------

/** Most random dividends overflow the quotient; steer about half the cases to a valid division. */
function saneDividend(signed: boolean) {
  return (g: Gen) => {
    if (!g.r.chance(0.6)) return;
    const os = g.form.os;
    const div = g.rm(os);
    const lo = g.reg(0, os);
    if (os === 8) {
      // AX / r/m8: AH is the high half.
      const hi = signed ? (lo & 0x80 ? 0xff : 0) : div ? g.r.int(div) : g.r.int(256);
      const ok = g.setReg(4, 8, hi);
      if (ok && g.rm(os) !== div) g.setReg(4, 8, 0); // the divisor was AH itself
      return;
    }
    const mask = os === 16 ? 0xffff : 0xffffffff;
    const hi = signed ? (lo & (os === 16 ? 0x8000 : 0x80000000) ? mask : 0) : div ? Math.floor(g.r.u32() / 0x100000000 * div) : 0;
    g.setReg(2, os, hi);
    if (g.rm(os) !== div) g.setReg(2, os, 0); // the divisor was (E)DX itself
  };
}
for (const os of INT_SIZES) {
  const cat: Category = 'integer-muldiv';
  const w = os === 8 ? 0 : 1;
  add({ name: `mul r/m${os}`, mnem: 'mul', cat, os, t: `${pre(os)}${hx(0xf6 + w)} /4` });
  add({ name: `imul r/m${os}`, mnem: 'imul', cat, os, t: `${pre(os)}${hx(0xf6 + w)} /5` });
  add({ name: `div r/m${os}`, mnem: 'div', cat, os, t: `${pre(os)}${hx(0xf6 + w)} /6`, fix: saneDividend(false), weight: 1.5 });
  add({ name: `idiv r/m${os}`, mnem: 'idiv', cat, os, t: `${pre(os)}${hx(0xf6 + w)} /7`, fix: saneDividend(true), weight: 1.5 });
  if (os !== 8) {
    add({ name: `imul r${os}, r/m${os}`, mnem: 'imul', cat, os, t: `${pre(os)}0F AF /r` });
    add({ name: `imul r${os}, r/m${os}, imm8`, mnem: 'imul', cat, os, t: `${pre(os)}6B /r ib` });
    add({ name: `imul r${os}, r/m${os}, imm${os}`, mnem: 'imul', cat, os, t: `${pre(os)}69 /r ${immTok(os)}` });
  }
}

// ---- shifts and rotates ----------------------------------------------------------

const SHIFT_COUNTS = [0, 1, 1, 2, 3, 4, 7, 8, 9, 15, 16, 17, 24, 31, 32, 33, 63, 255];
const shiftCount = (g: Gen) => (g.r.chance(0.8) ? g.r.pick(SHIFT_COUNTS) : g.r.int(256));
const SHIFTS: [string, number][] = [['rol', 0], ['ror', 1], ['rcl', 2], ['rcr', 3], ['shl', 4], ['shr', 5], ['sar', 7]];
for (const [op, n] of SHIFTS) {
  for (const os of INT_SIZES) {
    const cat: Category = 'integer-shift';
    const w = os === 8 ? 0 : 1;
    add({ name: `${op} r/m${os}, 1`, mnem: op, cat, os, t: `${pre(os)}${hx(0xd0 + w)} /${n}`, setup: (g) => (g.count = 1) });
    add({
      name: `${op} r/m${os}, cl`, mnem: op, cat, os, t: `${pre(os)}${hx(0xd2 + w)} /${n}`,
      setup: (g) => void g.setReg(1, 8, shiftCount(g)),
      fix: (g) => (g.count = g.reg(1, 8)), // CL may also be the operand or an address register
    });
    add({
      name: `${op} r/m${os}, imm8`, mnem: op, cat, os, t: `${pre(os)}${hx(0xc0 + w)} /${n} ib`,
      setup: (g) => { g.setImm(0, shiftCount(g)); g.count = g.imm(0); },
    });
  }
}
/** SHLD/SHRD of 16-bit operands by more than 16 have an undefined result; keep counts <= 16 there. */
function doubleCount(g: Gen): number {
  let c = shiftCount(g);
  if (g.form.os === 16 && (c & 31) > 16) c -= 16;
  return c;
}
for (const [op, base] of [['shld', 0xa4], ['shrd', 0xac]] as const) {
  for (const os of [16, 32]) {
    const cat: Category = 'integer-shift';
    add({
      name: `${op} r/m${os}, r${os}, imm8`, mnem: op, cat, os, t: `${pre(os)}0F ${hx(base)} /r ib`,
      setup: (g) => { g.setImm(0, doubleCount(g)); g.count = g.imm(0); },
    });
    add({
      name: `${op} r/m${os}, r${os}, cl`, mnem: op, cat, os, t: `${pre(os)}0F ${hx(base + 1)} /r`,
      setup: (g) => void g.setReg(1, 8, doubleCount(g)),
      fix: (g) => {
        g.count = g.reg(1, 8);
        if (os === 16 && (g.count & 31) > 16) throw new Retry(); // addressing rewrote CL past the defined range
      },
    });
  }
}

// ---- bit operations ---------------------------------------------------------------

/** BT* with a register bit offset address a bit string around the memory
 *  operand: pick a large signed offset and make room for it. */
function bitStringOffset(g: Gen): void {
  if (!g.isMem()) return;
  const os = g.form.os;
  const reach = os === 16 ? 0x7fff : (AREA / 2 - 0x800) * 8;
  let off = g.r.chance(0.5) ? g.r.range(-reach, reach) : g.r.range(-64, 64);
  if (os === 16) off = (off & 0xffff) | (g.r.u32() & 0xffff0000); // only the low word counts
  g.pin(g.modrm!.reg, off >>> 0);
  const signed = os === 16 ? (off << 16) >> 16 : off | 0;
  const delta = Math.floor(signed / os) * (os / 8);
  g.span = [delta, delta + os / 8];
}
for (const os of [16, 32]) {
  const cat: Category = 'integer-bit';
  const ops: [string, number, number][] = [['bt', 0xa3, 4], ['bts', 0xab, 5], ['btr', 0xb3, 6], ['btc', 0xbb, 7]];
  for (const [op, opc, ext] of ops) {
    add({ name: `${op} r/m${os}, r${os}`, mnem: op, cat, os, t: `${pre(os)}0F ${hx(opc)} /r`, setup: bitStringOffset, weight: 1.5 });
    add({ name: `${op} r/m${os}, imm8`, mnem: op, cat, os, t: `${pre(os)}0F BA /${ext} ib` });
  }
  add({ name: `bsf r${os}, r/m${os}`, mnem: 'bsf', cat, os, t: `${pre(os)}0F BC /r` });
  add({ name: `bsr r${os}, r/m${os}`, mnem: 'bsr', cat, os, t: `${pre(os)}0F BD /r` });
}
add({ name: 'bswap r32', mnem: 'bswap', cat: 'integer-bit', os: 32, t: '0F C8+r' });

// ---- moves, exchanges, conditional moves -------------------------------------------

for (const os of INT_SIZES) {
  const cat: Category = 'integer-move';
  const w = os === 8 ? 0 : 1;
  add({ name: `mov r/m${os}, r${os}`, mnem: 'mov', cat, os, t: `${pre(os)}${hx(0x88 + w)} /r` });
  add({ name: `mov r${os}, r/m${os}`, mnem: 'mov', cat, os, t: `${pre(os)}${hx(0x8a + w)} /r` });
  add({ name: `mov r/m${os}, imm${os}`, mnem: 'mov', cat, os, t: `${pre(os)}${hx(0xc6 + w)} /0 ${immTok(os)}` });
  add({ name: `mov r${os}, imm${os}`, mnem: 'mov', cat, os, t: `${pre(os)}${hx(os === 8 ? 0xb0 : 0xb8)}+r ${immTok(os)}` });
  add({ name: `mov acc${os}, moffs`, mnem: 'mov', cat, os, t: `${pre(os)}${hx(0xa0 + w)} md` });
  add({ name: `mov moffs, acc${os}`, mnem: 'mov', cat, os, t: `${pre(os)}${hx(0xa2 + w)} md` });
  add({ name: `xchg r/m${os}, r${os}`, mnem: 'xchg', cat, os, t: `${pre(os)}${hx(0x86 + w)} /r` });
  add({ name: `xadd r/m${os}, r${os}`, mnem: 'add', cat, os, t: `${pre(os)}0F ${hx(0xc0 + w)} /r`, fix: sometimesEqual });
  add({
    name: `cmpxchg r/m${os}, r${os}`, mnem: 'cmp', cat, os, t: `${pre(os)}0F ${hx(0xb0 + w)} /r`, weight: 1.5,
    fix: (g) => {
      // Half the time the accumulator matches, so the exchange happens.
      if (g.r.chance(0.5) && !g.setReg(0, os, g.rm())) g.setRm(g.reg(0, os));
    },
  });
  if (os !== 8) {
    add({ name: `xchg acc, r${os}`, mnem: 'xchg', cat, os, t: `${pre(os)}90+r` });
    add({ name: `cmov${os} cc`, mnem: 'cmov', cat, os, t: `${pre(os)}0F 40+cc /r` });
    add({ name: `movzx r${os}, r/m8`, mnem: 'movzx', cat, os: 8, mem: 1, t: `${pre(os)}0F B6 /r` });
    add({ name: `movsx r${os}, r/m8`, mnem: 'movsx', cat, os: 8, mem: 1, t: `${pre(os)}0F BE /r` });
    add({ name: `lea r${os}, m (32-bit addressing)`, mnem: 'lea', cat, os, noAccess: true, t: `${pre(os)}8D /r:m` });
    add({ name: `lea r${os}, m (16-bit addressing)`, mnem: 'lea', cat, os, noAccess: true, t: `${pre(os)}67 8D /r:m` });
  }
}
add({ name: 'movzx r32, r/m16', mnem: 'movzx', cat: 'integer-move', os: 16, mem: 2, t: '0F B7 /r' });
add({ name: 'movsx r32, r/m16', mnem: 'movsx', cat: 'integer-move', os: 16, mem: 2, t: '0F BF /r' });
add({ name: 'movzx r16, r/m16', mnem: 'movzx', cat: 'integer-move', os: 16, mem: 2, t: '66 0F B7 /r', weight: 0.3 });
add({ name: 'setcc r/m8', mnem: 'setcc', cat: 'integer-move', os: 8, t: '0F 90+cc /r' });
add({
  name: 'cmpxchg8b m64', mnem: 'cmpxchg8b', cat: 'integer-move', os: 32, mem: 8, t: '0F C7 /1:m', weight: 2,
  fix: (g) => {
    if (!g.r.chance(0.5)) return;
    const lo = g.readU(g.ea, 4), hi = g.readU(g.ea + 4, 4);
    if (!(g.setReg(0, 32, lo) && g.setReg(2, 32, hi))) g.patch(g.ea, Uint8Array.from([...u32le(g.reg(0, 32)), ...u32le(g.reg(2, 32))]));
  },
});
// LOCK-prefixed read-modify-write forms (memory operands only; a register operand is #UD, see 'fault').
for (const os of [8, 32]) {
  const w = os === 8 ? 0 : 1;
  const cat: Category = 'integer-move';
  add({ name: `lock xadd m${os}, r${os}`, mnem: 'add', cat, os, t: `F0 0F ${hx(0xc0 + w)} /r:m`, weight: 0.3 });
  add({
    name: `lock cmpxchg m${os}, r${os}`, mnem: 'cmp', cat, os, t: `F0 0F ${hx(0xb0 + w)} /r:m`, weight: 0.3,
    fix: (g) => void (g.r.chance(0.5) && !g.setReg(0, os, g.rm()) && g.setRm(g.reg(0, os))),
  });
  add({ name: `lock inc m${os}`, mnem: 'inc', cat, os, t: `F0 ${hx(0xfe + w)} /0:m`, weight: 0.3 });
  add({ name: `lock neg m${os}`, mnem: 'neg', cat, os, t: `F0 ${hx(0xf6 + w)} /3:m`, weight: 0.3 });
  add({ name: `lock xchg m${os}, r${os}`, mnem: 'xchg', cat, os, t: `F0 ${hx(0x86 + w)} /r:m`, weight: 0.3 });
}
add({ name: 'lock bts m32, r32', mnem: 'bts', cat: 'integer-bit', os: 32, t: 'F0 0F AB /r:m', setup: bitStringOffset, weight: 0.3 });
add({ name: 'lock btc m16, imm8', mnem: 'btc', cat: 'integer-bit', os: 16, t: 'F0 66 0F BA /7:m ib', weight: 0.3 });
add({ name: 'lock cmpxchg8b m64', mnem: 'cmpxchg8b', cat: 'integer-move', os: 32, mem: 8, t: 'F0 0F C7 /1:m', weight: 0.5 });
add({ name: 'pause', mnem: 'nop', cat: 'integer-misc', os: 32, t: 'F3 90', weight: 0.3 });

function u32le(v: number): number[] {
  return [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff];
}

// ---- stack ----------------------------------------------------------------------

const onStack = (room = 64) => (g: Gen) => void g.pinStack(4, room);
for (const os of [16, 32]) {
  const cat: Category = 'integer-stack';
  add({ name: `push r${os}`, mnem: 'push', cat, os, t: `${pre(os)}50+r`, setup: onStack() });
  add({ name: `pop r${os}`, mnem: 'pop', cat, os, t: `${pre(os)}58+r`, setup: onStack() });
  add({ name: `push imm8 (o${os})`, mnem: 'push', cat, os, t: `${pre(os)}6A ib`, setup: onStack() });
  add({ name: `push imm${os}`, mnem: 'push', cat, os, t: `${pre(os)}68 ${immTok(os)}`, setup: onStack() });
  add({ name: `push r/m${os}`, mnem: 'push', cat, os, t: `${pre(os)}FF /6`, setup: onStack() });
  add({ name: `pop r/m${os}`, mnem: 'pop', cat, os, t: `${pre(os)}8F /0`, setup: onStack() });
  add({ name: `pusha (o${os})`, mnem: 'pusha', cat, os, t: `${pre(os)}60`, setup: onStack() });
  add({ name: `popa (o${os})`, mnem: 'popa', cat, os, t: `${pre(os)}61`, setup: onStack() });
  add({ name: `pushf (o${os})`, mnem: 'pushf', cat, os, t: `${pre(os)}9C`, setup: onStack() });
  add({
    name: `popf (o${os})`, mnem: 'popf', cat, os, t: `${pre(os)}9D`, setup: onStack(), weight: 2,
    // Any flags image except TF (which would single-step the harness): user
    // mode must ignore the IOPL/IF/VM/VIF/VIP bits and may change AC, ID, NT.
    fix: (g) => g.patchU(g.gpr[4], os / 8, (g.r.u32() & ~0x100) >>> 0),
  });
  add({
    name: `enter imm16, imm8 (o${os})`, mnem: 'enter', cat, os, t: `${pre(os)}C8 iw ib`,
    setup: (g) => {
      // The frame (nesting pointers plus the allocation) must stay inside the
      // stack area: the CPU probes the final stack top, so a frame reaching
      // past it faults natively.
      const size = g.r.chance(0.8) ? g.r.pick([0, 1, 4, 8, 0x10, 0x100, 0x1000]) : g.r.int(0x2000);
      g.setImm(0, size);
      g.setImm(1, g.r.chance(0.8) ? g.r.pick([0, 1, 2, 3, 4, 31, 32, 33]) : g.r.int(256));
      let esp = STACK_AT + g.r.range(size + 200, AREA - 200);
      if (g.r.chance(0.85)) esp &= ~3;
      g.pin(4, esp);
      g.pinStack(5, 160);
    },
  });
  add({ name: `leave (o${os})`, mnem: 'leave', cat, os, t: `${pre(os)}C9`, setup: (g) => void g.pinStack(5, 64) });
}

// ---- string instructions ------------------------------------------------------------

type StrOp = 'movs' | 'stos' | 'lods' | 'scas' | 'cmps';
const STR_OPC: Record<StrOp, number> = { movs: 0xa4, cmps: 0xa6, stos: 0xaa, lods: 0xac, scas: 0xae };
function stringSetup(op: StrOp, rep: boolean, os: number) {
  const size = os / 8;
  return (g: Gen) => {
    if (g.r.chance(0.5)) g.eflags ^= 0x400; // both directions
    const count = rep ? (g.r.chance(0.9) ? g.r.range(0, 9) : g.r.range(10, 24)) : g.r.range(0, 3);
    if (rep) g.pin(1, count);
    const room = (rep ? count + 1 : 2) * size + 16;
    const usesSrc = op === 'movs' || op === 'lods' || op === 'cmps';
    const usesDst = op === 'movs' || op === 'stos' || op === 'scas' || op === 'cmps';
    const src = usesSrc ? g.pinData(6, room) : 0;
    if (usesDst) {
      if (usesSrc && g.r.chance(0.25)) {
        g.pin(7, src + g.r.range(-2 * size, 2 * size)); // overlapping copies expose the element order
      } else g.pinData(7, room);
    }
    if (usesSrc) g.window(src - room, 2 * room);
    if (usesDst) g.window(g.gpr[7] - room, 2 * room);
  };
}
function stringFix(op: StrOp, rep: boolean, os: number) {
  const size = os / 8;
  return (g: Gen) => {
    if (op !== 'cmps' && op !== 'scas') return;
    if (!g.r.chance(0.6)) return;
    // Make the first k elements compare equal so REPE runs on (and REPNE stops).
    const n = rep ? g.gpr[1] : 1;
    const k = g.r.range(0, n);
    const step = g.eflags & 0x400 ? -size : size;
    for (let i = 0; i < k; i++) {
      const dst = g.gpr[7] + i * step;
      const v = op === 'cmps' ? g.readMem(g.gpr[6] + i * step, size) : Uint8Array.from(u32le(g.reg(0, os)).slice(0, size));
      g.patch(dst, v);
    }
  };
}
for (const op of ['movs', 'stos', 'lods', 'scas', 'cmps'] as StrOp[]) {
  for (const os of INT_SIZES) {
    const opc = hx(STR_OPC[op] + (os === 8 ? 0 : 1));
    const cat: Category = 'integer-string';
    const reps: [string, string][] = op === 'scas' || op === 'cmps' ? [['', ''], ['repe ', 'F3 '], ['repne ', 'F2 ']] : [['', ''], ['rep ', 'F3 ']];
    for (const [rn, rp] of reps) {
      const rep = rp !== '';
      add({
        name: `${rn}${op}${os === 8 ? 'b' : os === 16 ? 'w' : 'd'}`, mnem: op, cat, os, t: `${rp}${pre(os)}${opc}`,
        setup: stringSetup(op, rep, os), fix: stringFix(op, rep, os), weight: rep ? 1.5 : 1,
      });
    }
  }
}

// ---- BCD, conversions, flag and misc -----------------------------------------------------

for (const [op, opc] of [['daa', '27'], ['das', '2F'], ['aaa', '37'], ['aas', '3F']]) {
  add({ name: op, mnem: op, cat: 'integer-bcd', os: 8, t: opc, weight: 2 });
}
const bcdBase = (g: Gen) => g.setImm(0, g.r.chance(0.6) ? 10 : g.r.chance(0.2) ? 0 : edge(g.r, 8));
add({ name: 'aam imm8', mnem: 'aam', cat: 'integer-bcd', os: 8, t: 'D4 ib', setup: bcdBase, weight: 2 });
add({ name: 'aad imm8', mnem: 'aad', cat: 'integer-bcd', os: 8, t: 'D5 ib', setup: bcdBase, weight: 2 });

const MISC: [string, string, number][] = [
  ['cbw', '66 98', 16], ['cwde', '98', 16], ['cwd', '66 99', 16], ['cdq', '99', 32], ['sahf', '9E', 8], ['lahf', '9F', 8],
  ['clc', 'F8', 32], ['stc', 'F9', 32], ['cmc', 'F5', 32], ['cld', 'FC', 32], ['std', 'FD', 32], ['nop', '90', 32],
];
for (const [op, t, os] of MISC) add({ name: op, mnem: op, cat: 'integer-misc', os, t, weight: 0.5 });
add({ name: 'nop r/m32 (0F 1F)', mnem: 'nop', cat: 'integer-misc', os: 32, noAccess: true, t: '0F 1F /0', weight: 0.5 });
add({
  name: 'xlat', mnem: 'xlat', cat: 'integer-misc', os: 8, t: 'D7',
  setup: (g) => {
    const b = g.pinData(3, 300);
    g.window(b, 256);
  },
});
add({
  name: 'bound r32, m32&32', mnem: 'bound', cat: 'integer-misc', os: 32, mem: 8, t: '62 /r:m',
  fix: (g) => {
    // Bounds around the index so both outcomes (pass, #BR) occur.
    const v = g.regf() | 0;
    const lo = v - g.r.range(-3, 8), hi = v + g.r.range(-3, 8);
    g.patch(g.ea, Uint8Array.from([...u32le(lo), ...u32le(hi)]));
  },
});

// ---- control flow ---------------------------------------------------------------------

const cat = 'control' as const;
add({ name: 'jcc rel8', mnem: 'jcc', cat, os: 32, t: '70+cc cb', weight: 3 });
add({ name: 'jcc rel32', mnem: 'jcc', cat, os: 32, t: '0F 80+cc cd', weight: 3 });
add({ name: 'jmp rel8', mnem: 'jmp', cat, os: 32, t: 'EB cb' });
add({ name: 'jmp rel32', mnem: 'jmp', cat, os: 32, t: 'E9 cd' });
add({ name: 'call rel32', mnem: 'call', cat, os: 32, t: 'E8 cd', setup: onStack() });
const aimRm = (g: Gen) => {
  const t = g.anyLandingPad();
  if (!g.setRm(t, 32)) throw new Retry(); // the target register also forms the address or is ESP
};
add({ name: 'jmp r/m32', mnem: 'jmp', cat, os: 32, t: 'FF /4', fix: aimRm });
add({ name: 'call r/m32', mnem: 'call', cat, os: 32, t: 'FF /2', setup: onStack(), fix: aimRm });
add({ name: 'ret', mnem: 'ret', cat, os: 32, t: 'C3', setup: onStack(), fix: (g) => g.patchU(g.gpr[4], 4, g.anyLandingPad()) });
add({
  name: 'ret imm16', mnem: 'ret', cat, os: 32, t: 'C2 iw', setup: onStack(),
  fix: (g) => g.patchU(g.gpr[4], 4, g.anyLandingPad()),
});
// Counts where ECX and CX (the 0x67 forms) disagree about being zero or one.
const loopCount = (g: Gen) => {
  const v = g.r.chance(0.7) ? g.r.pick([0, 1, 2, 3, 0x10000, 0x10001, 0xffffffff, 0xffff0000, 0xffff0001]) : g.r.u32();
  g.setReg(1, 32, v);
};
for (const [op, opc] of [['loopne', 'E0'], ['loope', 'E1'], ['loop', 'E2'], ['jecxz', 'E3']]) {
  add({ name: `${op} rel8`, mnem: op, cat, os: 32, t: `${opc} cb`, setup: loopCount, weight: 1.5 });
  add({ name: `${op} rel8 (a16: cx)`, mnem: op, cat, os: 32, t: `67 ${opc} cb`, setup: loopCount });
}

// ---- exceptions -----------------------------------------------------------------------

const fcat = 'fault' as const;
add({ name: 'ud2', mnem: 'ud2', cat: fcat, os: 32, t: '0F 0B', weight: 0.3 });
add({ name: 'hlt (#GP)', mnem: 'hlt', cat: fcat, os: 32, t: 'F4', weight: 0.3 });
add({ name: 'cli (#GP)', mnem: 'cli', cat: fcat, os: 32, t: 'FA', weight: 0.3 });
add({ name: 'sti (#GP)', mnem: 'sti', cat: fcat, os: 32, t: 'FB', weight: 0.3 });
add({ name: 'in al, imm8 (#GP)', mnem: 'in', cat: fcat, os: 32, t: 'E4 ib', weight: 0.3 });
add({ name: 'out dx, eax (#GP)', mnem: 'out', cat: fcat, os: 32, t: 'EF', weight: 0.3 });
add({ name: 'mov r32, cr0 (#GP)', mnem: 'movcr', cat: fcat, os: 32, t: '0F 20 /0:r', weight: 0.3 });
// INT n for other vectors is left out: whether it raises #GP depends on the
// DPL the operating system gave the IDT gate, not on the CPU.
add({ name: 'int3', mnem: 'int3', cat: fcat, os: 32, t: 'CC', weight: 0.3 });
add({ name: 'int 3 (CD 03)', mnem: 'int3', cat: fcat, os: 32, t: 'CD 03', weight: 0.3 });
add({ name: 'into', mnem: 'into', cat: fcat, os: 32, t: 'CE', weight: 0.5 });
add({ name: 'lock on a register operand (#UD)', mnem: 'add', cat: fcat, os: 32, t: 'F0 01 /r:r', weight: 0.3 });
add({ name: 'lea with a register operand (#UD)', mnem: 'lea', cat: fcat, os: 32, t: '8D /r:r', weight: 0.3 });
add({ name: 'cmpxchg8b with a register operand (#UD)', mnem: 'cmpxchg8b', cat: fcat, os: 32, t: '0F C7 /1:r', weight: 0.3 });
add({
  name: 'mov r32, [unmapped] (#PF)', mnem: 'mov', cat: fcat, os: 32, t: '8B /r:m', weight: 0.5,
  setup: (g) => (g.region = 0x00500000),
});
add({
  name: 'mov [unmapped], r32 (#PF)', mnem: 'mov', cat: fcat, os: 32, t: '89 /r:m', weight: 0.5,
  setup: (g) => (g.region = 0x00500000),
});
add({
  name: 'push r32 with ESP unmapped (#PF)', mnem: 'push', cat: fcat, os: 32, t: '50+r', weight: 0.3,
  setup: (g) => g.pin(4, 0x00500000 + g.r.range(0, 0xff00)),
});

// ---- x87 ------------------------------------------------------------------------------------
//
// Every user-mode x87 form (SDM vol. 2, opcode map Tables ), including the undocumented
// register aliases, with edge-biased operands: the special encodings only the extended format has,
// all rounding and precision controls, unmasked exceptions, and empty or full stacks.

/** 80-bit value from its sign, biased exponent and 64-bit significand. */
function f80Of(sign: number, exp: number, sig: bigint): Uint8Array {
  const b = new Uint8Array(10);
  const dv = new DataView(b.buffer);
  dv.setBigUint64(0, BigInt.asUintN(64, sig), true);
  dv.setUint16(8, ((sign & 1) << 15) | (exp & 0x7fff), true);
  return b;
}
const rnd64 = (r: Rng) => (BigInt(r.u32()) << 32n) | BigInt(r.u32());
const J = 1n << 63n;

/** An 80-bit operand: `f80Bytes` plus the encodings and magnitudes the x87 treats specially. */
function f80Edge(r: Rng): Uint8Array {
  const s = r.int(2);
  switch (r.int(16)) {
    case 0: { // NaNs with payloads: quiet, signalling (quiet bit 62 clear), the real indefinite
      const k = r.int(3);
      if (k === 0) return f80Of(1, 0x7fff, 0xc000000000000000n);
      // k = 1 quiet, k = 2 signalling (its payload must stay nonzero, or it would be an infinity)
      const payload = (rnd64(r) & (r.chance(0.5) ? (1n << 62n) - 1n : 0xffn)) | (k === 2 ? 1n : 0n);
      return f80Of(s, 0x7fff, J | (k === 1 ? 1n << 62n : 0n) | payload);
    }
    case 1: return f80Of(s, 0, J | (r.chance(0.5) ? rnd64(r) : 0n)); // pseudo-denormal
    case 2: return f80Of(s, r.pick([0x7ffe, 0x7ffd, 0x7fc0, 0x43fe, 0x47fe]), J | rnd64(r)); // huge
    case 3: return f80Of(s, r.pick([1, 2, 0x3c01, 0x3f80, 0x3bcd, 0x3f6a, 0x3f81]), J | rnd64(r)); // tiny (double/single limits)
    case 4: { // integers and halves near the integer-conversion limits (16/32/64 bits, BCD's 10^18)
      const e = r.pick([14, 15, 16, 30, 31, 32, 59, 62, 63, 64, 0, 1, 2, 52]);
      const m = r.chance(0.5) ? J : r.chance(0.5) ? (1n << 64n) - 1n : J | (rnd64(r) & r.pick([0n, 1n << 62n, (1n << 62n) - 1n, 3n]));
      return f80Of(s, 0x3fff + e, m);
    }
    case 5: { // small integers and simple fractions
      const v = r.range(1, 200) / r.pick([1, 1, 2, 4, 3, 10]);
      const b = new DataView(new ArrayBuffer(8));
      b.setFloat64(0, s ? -v : v, true);
      const hi = b.getUint32(4, true), lo = b.getUint32(0, true);
      const e = ((hi >>> 20) & 0x7ff) - 1023 + 0x3fff;
      return f80Of(s, e, J | ((BigInt(hi & 0xfffff) << 32n) | BigInt(lo)) << 11n);
    }
    default: return f80Bytes(r);
  }
}

/** Sign, exponent and significand of an 80-bit byte image. */
function f80Parts(b: Uint8Array): { sign: number; exp: number; sig: bigint } {
  const dv = new DataView(b.buffer, b.byteOffset, 10);
  const se = dv.getUint16(8, true);
  return { sign: se >> 15, exp: se & 0x7fff, sig: dv.getBigUint64(0, true) };
}

/** A finite normal value with its exponent offset from another's (for FPREM, FSCALE, compares). */
function near(r: Rng, b: Uint8Array, maxShift: number): Uint8Array {
  const p = f80Parts(b);
  if (p.exp === 0x7fff || p.exp === 0) return f80Edge(r);
  const e = Math.min(0x7ffe, Math.max(1, p.exp + r.range(-maxShift, maxShift)));
  const sig = r.chance(0.3) ? p.sig : J | rnd64(r);
  return f80Of(r.chance(0.8) ? p.sign : r.int(2), e, sig | J);
}

interface X87Opts {
  /** ST0's value (default f80Edge) */
  st0?: (g: Gen) => Uint8Array;
  /** ST1's value, given ST0's */
  st1?: (g: Gen, st0: Uint8Array) => Uint8Array;
  /** probability that an unmasked exception is already pending (FSW.ES) */
  pending?: number;
  /** force a random rounding control (constants, FRNDINT, stores) */
  anyRc?: boolean;
}

/** A random but self-consistent x87 state (plus SSE state left at its default). */
function x87With(o: X87Opts = {}) {
  return (g: Gen): void => {
    const fx = g.fx ?? g.fxDefault.slice();
    const dv = new DataView(fx.buffer, fx.byteOffset);
    const r = g.r;
    let fcw = 0x037f;
    if (o.anyRc || r.chance(0.5)) fcw = (fcw & ~0x0c00) | (r.int(4) << 10); // rounding control
    if (r.chance(0.4)) fcw = (fcw & ~0x0300) | (r.pick([0, 2, 3]) << 8); // precision control
    if (r.chance(0.15)) fcw &= ~(r.u32() & 0x3f); // some exceptions unmasked
    const top = r.int(8);
    // Empty and full stacks (underflow, overflow), occasionally holes in the tags.
    const depth = r.chance(0.12) ? 8 : r.chance(0.08) ? 0 : r.int(9);
    let ftw = 0;
    for (let i = 0; i < depth; i++) ftw |= 1 << ((top + i) & 7);
    if (r.chance(0.1)) ftw ^= 1 << r.int(8);
    let fsw = top << 11;
    if (r.chance(0.2)) fsw |= r.u32() & 0x473f & ~0x40; // sticky flags and condition codes
    if (o.pending !== undefined && r.chance(o.pending)) {
      const e = 1 << r.int(6);
      fcw &= ~e;
      fsw |= e;
    } else if (o.pending !== undefined) fsw &= ~(~fcw & 0x3f);
    if (fsw & ~fcw & 0x3f) fsw |= 0x8080; // an unmasked exception is pending: ES and B
    dv.setUint16(0, fcw, true);
    dv.setUint16(2, fsw, true);
    fx[4] = ftw;
    const st0 = o.st0 ? o.st0(g) : f80Edge(r);
    fx.set(st0, 32);
    fx.set(o.st1 ? o.st1(g, st0) : r.chance(0.2) ? near(r, st0, 3) : f80Edge(r), 48);
    for (let i = 2; i < 8; i++) fx.set(f80Edge(r), 32 + 16 * i);
    // ST(i) forms: the other operand is sometimes equal to ST0 (compares, FSUB to zero...).
    if (g.opreg > 0 && r.chance(0.15)) fx.set(r.chance(0.6) ? st0 : near(r, st0, 2), 32 + 16 * g.opreg);
    g.fx = fx;
  };
}

/** The default x87 state (MMX rows build theirs on it). */
export const x87State = x87With();

// ---- memory operand values

const f32mem = (g: Gen) => f32Bytes(g.r);
const f64mem = (g: Gen) => f64Bytes(g.r);
const f80mem = (g: Gen) => f80Edge(g.r);
const I64_EDGE = [0n, 1n, -1n, 2n, 0x7fffffffffffffffn, -0x8000000000000000n, -0x7fffffffffffffffn, 0x8000000n, 10n ** 18n - 1n,
  -(10n ** 18n), 0x20000000000001n, 0x1fffffffffffffn, 0xfffffffffn];
function i64mem(g: Gen): Uint8Array {
  const b = new Uint8Array(8);
  const v = g.r.chance(0.4) ? g.r.pick(I64_EDGE) : g.r.chance(0.5) ? BigInt.asIntN(64, rnd64(g.r)) >> BigInt(g.r.int(63)) : BigInt(edge(g.r, 32) | 0);
  new DataView(b.buffer).setBigInt64(0, v, true);
  return b;
}
/** Packed BCD: 18 digits (mostly valid), a sign byte whose bits 0-6 are ignored (SDM vol. 1 §4.7). */
function bcdmem(g: Gen): Uint8Array {
  const r = g.r;
  const b = new Uint8Array(10);
  const n = r.pick([0, 1, 2, 5, 9, 18, 18]);
  for (let d = 0; d < n; d++) {
    const digit = r.chance(0.3) ? 9 : r.int(10);
    b[d >> 1] |= digit << (4 * (d & 1));
  }
  b[9] = (r.chance(0.5) ? 0x80 : 0) | (r.chance(0.1) ? r.u32() & 0x7f : 0);
  return b;
}

// ---- ST0/ST1 operand shapes for particular instructions

/** A double's bytes as an 80-bit value (FSIN etc. arguments in ordinary ranges). */
function f80FromNumber(v: number): Uint8Array {
  if (v === 0 || !Number.isFinite(v)) return f80Of(v < 0 || Object.is(v, -0) ? 1 : 0, v === 0 ? 0 : 0x7fff, v === 0 ? 0n : J);
  const b = new DataView(new ArrayBuffer(8));
  b.setFloat64(0, v, true);
  const hi = b.getUint32(4, true), lo = b.getUint32(0, true);
  let e = (hi >>> 20) & 0x7ff;
  let m = (BigInt(hi & 0xfffff) << 32n) | BigInt(lo);
  if (e === 0) { e = 1; while (!(m & (1n << 52n))) { m <<= 1n; e--; } } else m |= 1n << 52n;
  return f80Of(hi >>> 31, e - 1023 + 0x3fff, m << 11n);
}
/** Perturbs the significand's low bits (extended-precision operands, not just doubles). */
function jitter(r: Rng, b: Uint8Array): Uint8Array {
  const p = f80Parts(b);
  if (p.exp === 0 || p.exp === 0x7fff || !r.chance(0.7)) return b;
  return f80Of(p.sign, p.exp, p.sig ^ (rnd64(r) & 0x7ffn));
}
const trigArg = (g: Gen) => {
  const r = g.r;
  const k = r.int(10);
  if (k < 3) return f80Edge(r);
  if (k < 6) return jitter(r, f80FromNumber((r.u32() / 0x100000000 - 0.5) * r.pick([2, 8, 20, 1000, 1e6])));
  if (k < 8) return jitter(r, f80FromNumber(r.range(-64, 64) * Math.PI / 4 + (r.chance(0.5) ? 0 : (r.u32() / 0x100000000 - 0.5) * 1e-9)));
  // Large arguments up to and past the 2^63 limit.
  return f80Of(r.int(2), 0x3fff + r.pick([20, 40, 62, 63, 64]), J | rnd64(r));
};
const unitArg = (g: Gen) => {
  const r = g.r;
  if (r.chance(0.25)) return f80Edge(r);
  const v = (r.u32() / 0x100000000 * 2 - 1) * r.pick([1, 1, 1e-3, 1e-10, 1e-20]);
  return jitter(r, f80FromNumber(v));
};
const l2xArg = (g: Gen) => {
  const r = g.r;
  if (r.chance(0.3)) return f80Edge(r);
  return jitter(r, f80FromNumber(r.pick([1, 2, 0.5, 10, 1e-300, 1e300, 1.0000001, 0.9999999]) * (r.chance(0.5) ? 1 : r.u32() / 0x80000000)));
};
const l2xp1Arg = (g: Gen) => {
  const r = g.r;
  if (r.chance(0.3)) return f80Edge(r);
  return jitter(r, f80FromNumber((r.u32() / 0x100000000 * 2 - 1) * 0.2928932 * r.pick([1, 1, 1e-5, 1e-15, 1e-300])));
};
const anyY = (g: Gen) => (g.r.chance(0.5) ? f80Edge(g.r) : jitter(g.r, f80FromNumber((g.r.u32() / 0x100000000 - 0.5) * g.r.pick([2, 100, 1e10]))));
const scaleArg = (g: Gen) => {
  const r = g.r;
  if (r.chance(0.3)) return f80Edge(r);
  const v = r.chance(0.5) ? r.range(-70, 70) : r.range(-40000, 40000) + (r.chance(0.3) ? r.u32() / 0x100000000 : 0);
  return f80FromNumber(v);
};
/** Dividend/divisor pairs for FPREM/FPREM1: mostly finishing (exponent difference < 64), sometimes partial. */
const premDivisor = (g: Gen, st0: Uint8Array) => (g.r.chance(0.7) ? near(g.r, st0, g.r.chance(0.8) ? 70 : 400) : f80Edge(g.r));

type Row = [name: string, mnem: string, t: string, mem: number, memval?: (g: Gen) => Uint8Array, extra?: Partial<Form>];

const X87_ROWS: Row[] = [];
const xr = (...row: Row) => X87_ROWS.push(row);

// Arithmetic with a memory operand: D8 m32real, DC m64real, DA m32int, DE m16int (SDM vol. 2 Table A-7..A-19).
const ARITH_OPS = ['add', 'mul', 'com', 'comp', 'sub', 'subr', 'div', 'divr'];
/** Undefined-flags key: FCOM/FCOMP share 'fcom'; the reversed forms share their base operation's. */
const mnemOf = (op: string) => (op === 'com' || op === 'comp' ? 'fcom' : `f${op.replace(/r$/, '')}`);
for (const [opc, kind, size, val] of [
  ['D8', 'm32', 4, f32mem], ['DC', 'm64', 8, f64mem], ['DA', 'm32int', 4, (g: Gen) => g.edgeBytes(4)], ['DE', 'm16int', 2, (g: Gen) => g.edgeBytes(2)],
] as const) {
  const int = kind.endsWith('int');
  ARITH_OPS.forEach((op, n) => xr(`f${int ? 'i' : ''}${op} ${kind}`, mnemOf(op), `${opc} /${n}:m`, size, val));
}
// Register forms: D8 (ST0 = ST0 op ST(i)), DC (ST(i) = ST(i) op ST0; SUB/SUBR and DIV/DIVR swapped), DE (same, popping).
ARITH_OPS.forEach((op, n) => xr(`f${op} st, st(i)`, mnemOf(op), `D8 ${hx(0xc0 + 8 * n)}+r`, 0));
const REV = ['add', 'mul', 'com', 'comp', 'subr', 'sub', 'divr', 'div'];
REV.forEach((op, n) => {
  // DC D0+i / DC D8+i are undocumented aliases of FCOM/FCOMP ST(i).
  if (n === 2 || n === 3) xr(`f${op} st(i) (DC alias)`, 'fcom', `DC ${hx(0xc0 + 8 * n)}+r`, 0, undefined, { weight: 0.2 });
  else xr(`f${op} st(i), st`, mnemOf(op), `DC ${hx(0xc0 + 8 * n)}+r`, 0);
});
REV.forEach((op, n) => {
  if (n === 2) xr('fcomp st(i) (DE D0 alias)', 'fcom', 'DE D0+r', 0, undefined, { weight: 0.2 });
  else if (n === 3) {
    xr('fcompp', 'fcom', 'DE D9', 0);
    xr('de d8+i (reserved but for D9 = FCOMPP)', 'fcom', 'DE D8+r', 0, undefined, { weight: 0.2 });
  }
  else xr(`f${op}p st(i), st`, mnemOf(op), `DE ${hx(0xc0 + 8 * n)}+r`, 0);
});

// Loads and stores.
xr('fld m32', 'fld', 'D9 /0:m', 4, f32mem);
xr('fld m64', 'fld', 'DD /0:m', 8, f64mem);
xr('fld m80', 'fld', 'DB /5:m', 10, f80mem);
xr('fld st(i)', 'fld', 'D9 C0+r', 0);
xr('fst m32', 'fst', 'D9 /2:m', 4);
xr('fstp m32', 'fst', 'D9 /3:m', 4);
xr('fst m64', 'fst', 'DD /2:m', 8);
xr('fstp m64', 'fst', 'DD /3:m', 8);
xr('fstp m80', 'fst', 'DB /7:m', 10);
xr('fst st(i)', 'fst', 'DD D0+r', 0);
xr('fstp st(i)', 'fst', 'DD D8+r', 0);
xr('fstp1 st(i) (D9 D8 alias)', 'fst', 'D9 D8+r', 0, undefined, { weight: 0.2 });
xr('fstp8 st(i) (DF D0 alias)', 'fst', 'DF D0+r', 0, undefined, { weight: 0.2 });
xr('fstp9 st(i) (DF D8 alias)', 'fst', 'DF D8+r', 0, undefined, { weight: 0.2 });
xr('fild m16', 'fild', 'DF /0:m', 2);
xr('fild m32', 'fild', 'DB /0:m', 4);
xr('fild m64', 'fild', 'DF /5:m', 8, i64mem);
xr('fist m16', 'fist', 'DF /2:m', 2);
xr('fistp m16', 'fist', 'DF /3:m', 2);
xr('fist m32', 'fist', 'DB /2:m', 4);
xr('fistp m32', 'fist', 'DB /3:m', 4);
xr('fistp m64', 'fist', 'DF /7:m', 8);
xr('fbld m80', 'fbld', 'DF /4:m', 10, bcdmem);
xr('fbstp m80', 'fbstp', 'DF /6:m', 10, undefined, { fpu: x87With({ anyRc: true }) });
xr('fxch st(i)', 'fxch', 'D9 C8+r', 0);
xr('fxch4 st(i) (DD C8 alias)', 'fxch', 'DD C8+r', 0, undefined, { weight: 0.2 });
xr('fxch7 st(i) (DF C8 alias)', 'fxch', 'DF C8+r', 0, undefined, { weight: 0.2 });
for (const [cc, opc, base] of [
  ['b', 'DA', 0xc0], ['e', 'DA', 0xc8], ['be', 'DA', 0xd0], ['u', 'DA', 0xd8],
  ['nb', 'DB', 0xc0], ['ne', 'DB', 0xc8], ['nbe', 'DB', 0xd0], ['nu', 'DB', 0xd8],
] as const) xr(`fcmov${cc} st, st(i)`, 'fcmov', `${opc} ${hx(base)}+r`, 0, undefined, { weight: 0.5 });

// Unary operations, constants, stack control.
xr('fchs', 'fchs', 'D9 E0', 0);
xr('fabs', 'fabs', 'D9 E1', 0);
xr('ftst', 'fcom', 'D9 E4', 0);
xr('fxam', 'fxam', 'D9 E5', 0);
for (const [c, b] of [['fld1', 'E8'], ['fldl2t', 'E9'], ['fldl2e', 'EA'], ['fldpi', 'EB'], ['fldlg2', 'EC'], ['fldln2', 'ED'], ['fldz', 'EE']]) {
  xr(c, 'fldconst', `D9 ${b}`, 0, undefined, { fpu: x87With({ anyRc: true }), weight: 0.5 });
}
xr('fsqrt', 'fsqrt', 'D9 FA', 0);
xr('frndint', 'frndint', 'D9 FC', 0, undefined, { fpu: x87With({ anyRc: true }) });
xr('fscale', 'fscale', 'D9 FD', 0, undefined, { fpu: x87With({ st1: (g) => scaleArg(g) }) });
xr('fxtract', 'fxtract', 'D9 F4', 0);
xr('fprem', 'fprem', 'D9 F8', 0, undefined, { fpu: x87With({ st1: premDivisor }), weight: 1.5 });
xr('fprem1', 'fprem', 'D9 F5', 0, undefined, { fpu: x87With({ st1: premDivisor }), weight: 1.5 });
xr('fdecstp', 'fstack', 'D9 F6', 0, undefined, { weight: 0.3 });
xr('fincstp', 'fstack', 'D9 F7', 0, undefined, { weight: 0.3 });
xr('ffree st(i)', 'fstack', 'DD C0+r', 0, undefined, { weight: 0.3 });
xr('ffreep st(i) (DF C0)', 'fstack', 'DF C0+r', 0, undefined, { weight: 0.2 });
xr('fnop', 'fnop', 'D9 D0', 0, undefined, { weight: 0.3 });

// Comparisons.
xr('fcom st(i)', 'fcom', 'D8 D0+r', 0);
xr('fucom st(i)', 'fcom', 'DD E0+r', 0);
xr('fucomp st(i)', 'fcom', 'DD E8+r', 0);
xr('fucompp', 'fcom', 'DA E9', 0);
xr('fcomi st, st(i)', 'fcomi', 'DB F0+r', 0);
xr('fucomi st, st(i)', 'fcomi', 'DB E8+r', 0);
xr('fcomip st, st(i)', 'fcomi', 'DF F0+r', 0);
xr('fucomip st, st(i)', 'fcomi', 'DF E8+r', 0);

// Control and environment (the FN forms do not wait for pending exceptions).
const pending = { fpu: x87With({ pending: 0.5 }) };
const fcwmem = (g: Gen) => {
  const r = g.r;
  let v = (0x0040 | (r.int(4) << 10) | (r.pick([0, 2, 3, 3]) << 8) | (r.chance(0.7) ? 0x3f : r.u32() & 0x3f)) >>> 0;
  if (r.chance(0.15)) v = r.u32() & 0xffff; // reserved bits and the infinity-control bit
  return Uint8Array.of(v & 0xff, v >> 8);
};
xr('fldcw m16', 'fldcw', 'D9 /5:m', 2, fcwmem, pending);
xr('fnstcw m16', 'fnstcw', 'D9 /7:m', 2, undefined, pending);
xr('fnstsw m16', 'fnstsw', 'DD /7:m', 2, undefined, pending);
xr('fnstsw ax', 'fnstsw', 'DF E0', 0, undefined, pending);
xr('fnclex', 'fnclex', 'DB E2', 0, undefined, pending);
xr('fninit', 'fninit', 'DB E3', 0, undefined, pending);
xr('fneni (DB E0, no-op)', 'fnop', 'DB E0', 0, undefined, { weight: 0.2 });
xr('fndisi (DB E1, no-op)', 'fnop', 'DB E1', 0, undefined, { weight: 0.2 });
xr('fnsetpm (DB E4, no-op)', 'fnop', 'DB E4', 0, undefined, { weight: 0.2 });
xr('fwait', 'fwait', '9B', 0, undefined, pending);

/** The 28-byte protected-mode environment (SDM vol. 1 Figure 8-9) with plausible fields. */
function envBytes(g: Gen): Uint8Array {
  const r = g.r;
  const b = new Uint8Array(28);
  const dv = new DataView(b.buffer);
  const fcw = r.chance(0.8) ? 0x0040 | (r.int(4) << 10) | (r.pick([0, 2, 3]) << 8) | (r.chance(0.7) ? 0x3f : r.u32() & 0x3f) : r.u32() & 0xffff;
  let fsw = r.int(8) << 11;
  if (r.chance(0.5)) fsw |= r.u32() & 0x47ff;
  if (r.chance(0.1)) fsw = r.u32() & 0xffff;
  let ftw = 0;
  for (let p = 0; p < 8; p++) ftw |= (r.chance(0.4) ? 3 : r.int(4)) << (2 * p);
  dv.setUint32(0, (r.chance(0.8) ? 0xffff0000 : r.u32() & 0xffff0000) | fcw, true);
  dv.setUint32(4, (r.chance(0.8) ? 0xffff0000 : r.u32() & 0xffff0000) | fsw, true);
  dv.setUint32(8, (r.chance(0.8) ? 0xffff0000 : r.u32() & 0xffff0000) | ftw, true);
  for (let k = 12; k < 28; k += 4) dv.setUint32(k, r.u32(), true);
  return b;
}
/** FNSTENV/FNSAVE store FIP, FCS, FOP, FDP and FDS (bytes 12-25), which on the host are not reliably
 *  the input image's: AMD's FXRSTOR loads them only while an exception is pending, and a context switch
 *  between the harness's FXRSTOR and the instruction can reset them (seen once in 100,000 cases). */
const ENV_POINTERS: [number, number][] = [[12, 26]];
xr('fnstenv m28', 'fnstenv', 'D9 /6:m', 28, undefined, { ...pending, memSkip: ENV_POINTERS });
xr('fldenv m28', 'fldenv', 'D9 /4:m', 28, envBytes, pending);
xr('fnsave m108', 'fnsave', 'DD /6:m', 108, undefined, { ...pending, memSkip: ENV_POINTERS });
xr('frstor m108', 'frstor', 'DD /4:m', 108, (g) => {
  const b = new Uint8Array(108);
  b.set(envBytes(g));
  for (let i = 0; i < 8; i++) b.set(f80Edge(g.r), 28 + 10 * i);
  return b;
}, pending);

/** A 512-byte FXSAVE image: random x87 and SSE state, MXCSR mostly valid (reserved bits give #GP). */
function fxImage(g: Gen): Uint8Array {
  const r = g.r;
  const b = new Uint8Array(512);
  const dv = new DataView(b.buffer);
  const env = new DataView(envBytes(g).buffer);
  dv.setUint16(0, env.getUint16(0, true), true);
  dv.setUint16(2, env.getUint16(4, true), true);
  b[4] = r.u32() & 0xff;
  for (let k = 6; k < 24; k++) b[k] = r.u32() & 0xff;
  dv.setUint32(24, r.chance(0.9) ? (0x1f80 & ~(r.u32() & (r.chance(0.2) ? 0x1f80 : 0))) | (r.u32() & 0x3f) | (r.int(4) << 13) | (r.chance(0.2) ? 0x8040 : 0) : r.u32(), true);
  dv.setUint32(28, r.u32(), true);
  for (let i = 0; i < 8; i++) b.set(f80Edge(r), 32 + 16 * i);
  for (let k = 160; k < 288; k += 4) dv.setUint32(k, edge(r, 32), true);
  return b;
}
// FXSAVE, bytes not compared: FOP/FIP/FDP (6-23), which AMD stores only while an exception is
// pending; and MXCSR_MASK (28-31), a property of each processor (this host's has bit 17, MM, set).
// Bytes 288-511 are compared: both leave them untouched in the 32-bit layout.
xr('fxsave m512', 'fxsave', '0F AE /0:m', 512, undefined, { memSkip: [[6, 24], [28, 32]], align: 0.9 });
xr('fxrstor m512', 'fxrstor', '0F AE /1:m', 512, fxImage, { align: 0.9 });

// Transcendentals: SDM vol. 1 §8.3.10 bounds their error (1 ulp), so the ST registers they write are
// compared to within 1 ulp, and C1 (round-up) and PE are not compared.
const APPROX = (st: number[]) => ({ st, ulp: 1, fsw: 0x0200 | 0x0020 });
xr('fsin', 'ftrig', 'D9 FE', 0, undefined, { fpu: x87With({ st0: trigArg }), approx: APPROX([0]) });
xr('fcos', 'ftrig', 'D9 FF', 0, undefined, { fpu: x87With({ st0: trigArg }), approx: APPROX([0]) });
xr('fsincos', 'ftrig', 'D9 FB', 0, undefined, { fpu: x87With({ st0: trigArg }), approx: APPROX([0, 1]) });
xr('fptan', 'ftrig', 'D9 F2', 0, undefined, { fpu: x87With({ st0: trigArg }), approx: APPROX([0, 1]) });
xr('fpatan', 'ftransc', 'D9 F3', 0, undefined, { fpu: x87With({ st0: anyY, st1: anyY }), approx: APPROX([0]) });
xr('f2xm1', 'ftransc', 'D9 F0', 0, undefined, { fpu: x87With({ st0: unitArg }), approx: APPROX([0]) });
xr('fyl2x', 'ftransc', 'D9 F1', 0, undefined, { fpu: x87With({ st0: l2xArg, st1: anyY }), approx: APPROX([0]) });
xr('fyl2xp1', 'ftransc', 'D9 F9', 0, undefined, { fpu: x87With({ st0: l2xp1Arg, st1: anyY }), approx: APPROX([0]) });

// The x87 rows together get about a tenth of the default run; a row's own weight scales its part.
for (const [name, mnem, t, mem, memval, extra] of X87_ROWS) {
  add({ name, mnem, cat: 'x87', os: 32, mem: mem || 4, t, memval, fpu: x87State, ...extra, weight: 0.5 * (extra?.weight ?? 1) });
}

// ---- MMX ------------------------------------------------------------------------------------

/** x87 state whose registers hold random 64-bit MMX values. */
function mmxState(g: Gen): void {
  x87State(g);
  const fx = g.fx!;
  // Mostly no pending x87 exception (an MMX instruction would raise #MF).
  if (g.r.chance(0.9)) new DataView(fx.buffer, fx.byteOffset).setUint16(2, (fx[2] | (fx[3] << 8)) & ~0x80bf, true);
  for (let i = 0; i < 8; i++) fx.set(g.edgeBytes(8), 32 + 16 * i);
}
const MMX: [string, string][] = [
  ['movq mm, mm/m64', '0F 6F /r'], ['movq mm/m64, mm', '0F 7F /r'], ['paddb', '0F FC /r'], ['paddw', '0F FD /r'],
  ['paddd', '0F FE /r'], ['paddsb', '0F EC /r'], ['paddusw', '0F DD /r'], ['psubb', '0F F8 /r'], ['psubsw', '0F E9 /r'],
  ['pmullw', '0F D5 /r'], ['pmulhw', '0F E5 /r'], ['pmaddwd', '0F F5 /r'], ['pcmpeqb', '0F 74 /r'], ['pcmpgtd', '0F 66 /r'],
  ['packsswb', '0F 63 /r'], ['packuswb', '0F 67 /r'], ['punpcklbw', '0F 60 /r'], ['punpckhdq', '0F 6A /r'], ['pand', '0F DB /r'],
  ['pandn', '0F DF /r'], ['pxor', '0F EF /r'], ['psrlw mm, imm8', '0F 71 /2:r ib'], ['psraw mm, imm8', '0F 71 /4:r ib'],
  ['psllq mm, imm8', '0F 73 /6:r ib'], ['psrlq mm, mm/m64', '0F D3 /r'], ['emms', '0F 77'],
];
for (const [name, t] of MMX) add({ name, mnem: name.split(' ')[0], cat: 'mmx', os: 64, mem: 8, t, fpu: mmxState });
add({ name: 'movd mm, r/m32', mnem: 'movd', cat: 'mmx', os: 32, mem: 4, t: '0F 6E /r', fpu: mmxState });
add({ name: 'movd r/m32, mm', mnem: 'movd', cat: 'mmx', os: 32, mem: 4, t: '0F 7E /r', fpu: mmxState });

// ---- SSE / SSE2 ---------------------------------------------------------------------------------

type Lanes = 'f32' | 'f64' | 'int';
function laneBytes(g: Gen, lanes: Lanes, n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let k = 0; k < n; ) {
    const v = lanes === 'f32' ? f32Bytes(g.r) : lanes === 'f64' ? f64Bytes(g.r) : g.edgeBytes(4);
    b.set(v.subarray(0, Math.min(v.length, n - k)), k);
    k += v.length;
  }
  return b;
}
/** Random XMM registers and MXCSR (rounding, FTZ/DAZ, occasionally unmasked exceptions). */
function sseState(lanes: Lanes) {
  return (g: Gen) => {
    const fx = g.fx ?? g.fxDefault.slice();
    const r = g.r;
    let mxcsr = 0x1f80;
    if (r.chance(0.4)) mxcsr |= r.int(4) << 13;
    if (r.chance(0.2)) mxcsr |= 0x8000; // FTZ
    if (r.chance(0.2)) mxcsr |= 0x0040; // DAZ
    if (r.chance(0.1)) mxcsr &= ~((r.u32() & 0x3f) << 7);
    if (r.chance(0.2)) mxcsr |= r.u32() & 0x3f; // sticky flags already set
    new DataView(fx.buffer, fx.byteOffset).setUint32(24, mxcsr, true);
    for (let i = 0; i < 8; i++) fx.set(laneBytes(g, r.chance(0.8) ? lanes : 'int', 16), 160 + 16 * i);
    g.fx = fx;
  };
}
const SSE: [string, string, Lanes, number][] = [
  // name, template, lane type, memory bytes
  ['movaps', '0F 28 /r', 'f32', 16], ['movups', '0F 10 /r', 'f32', 16], ['movups m128, xmm', '0F 11 /r', 'f32', 16],
  ['movss', 'F3 0F 10 /r', 'f32', 4], ['addps', '0F 58 /r', 'f32', 16], ['addss', 'F3 0F 58 /r', 'f32', 4],
  ['subps', '0F 5C /r', 'f32', 16], ['mulps', '0F 59 /r', 'f32', 16], ['mulss', 'F3 0F 59 /r', 'f32', 4],
  ['divps', '0F 5E /r', 'f32', 16], ['divss', 'F3 0F 5E /r', 'f32', 4], ['sqrtps', '0F 51 /r', 'f32', 16],
  ['sqrtss', 'F3 0F 51 /r', 'f32', 4], ['maxps', '0F 5F /r', 'f32', 16], ['minss', 'F3 0F 5D /r', 'f32', 4],
  ['cmpps', '0F C2 /r ib', 'f32', 16], ['cmpss', 'F3 0F C2 /r ib', 'f32', 4], ['ucomiss', '0F 2E /r', 'f32', 4],
  ['comiss', '0F 2F /r', 'f32', 4], ['andps', '0F 54 /r', 'f32', 16], ['andnps', '0F 55 /r', 'f32', 16],
  ['orps', '0F 56 /r', 'f32', 16], ['xorps', '0F 57 /r', 'f32', 16], ['shufps', '0F C6 /r ib', 'f32', 16],
  ['unpcklps', '0F 14 /r', 'f32', 16], ['cvtsi2ss', 'F3 0F 2A /r', 'int', 4], ['cvttss2si', 'F3 0F 2C /r', 'f32', 4],
  ['cvtss2si', 'F3 0F 2D /r', 'f32', 4], ['movmskps', '0F 50 /r:r', 'f32', 16], ['stmxcsr', '0F AE /3:m', 'int', 4],
];
const SSE2: [string, string, Lanes, number][] = [
  ['movdqa', '66 0F 6F /r', 'int', 16], ['movdqu', 'F3 0F 6F /r', 'int', 16], ['movapd', '66 0F 28 /r', 'f64', 16],
  ['movsd', 'F2 0F 10 /r', 'f64', 8], ['addpd', '66 0F 58 /r', 'f64', 16], ['addsd', 'F2 0F 58 /r', 'f64', 8],
  ['mulpd', '66 0F 59 /r', 'f64', 16], ['divsd', 'F2 0F 5E /r', 'f64', 8], ['sqrtpd', '66 0F 51 /r', 'f64', 16],
  ['maxsd', 'F2 0F 5F /r', 'f64', 8], ['minpd', '66 0F 5D /r', 'f64', 16], ['cmppd', '66 0F C2 /r ib', 'f64', 16],
  ['ucomisd', '66 0F 2E /r', 'f64', 8], ['comisd', '66 0F 2F /r', 'f64', 8], ['cvtsd2ss', 'F2 0F 5A /r', 'f64', 8],
  ['cvtss2sd', 'F3 0F 5A /r', 'f32', 4], ['cvtdq2ps', '0F 5B /r', 'int', 16], ['cvtps2dq', '66 0F 5B /r', 'f32', 16],
  ['cvttps2dq', 'F3 0F 5B /r', 'f32', 16], ['cvtpd2dq', 'F2 0F E6 /r', 'f64', 16], ['cvttsd2si', 'F2 0F 2C /r', 'f64', 8],
  ['cvtsi2sd', 'F2 0F 2A /r', 'int', 4], ['paddq', '66 0F D4 /r', 'int', 16], ['paddb xmm', '66 0F FC /r', 'int', 16],
  ['psubusb xmm', '66 0F D8 /r', 'int', 16], ['pmuludq xmm', '66 0F F4 /r', 'int', 16], ['pmaddwd xmm', '66 0F F5 /r', 'int', 16],
  ['pcmpeqd xmm', '66 0F 76 /r', 'int', 16], ['packuswb xmm', '66 0F 67 /r', 'int', 16], ['punpckhqdq', '66 0F 6D /r', 'int', 16],
  ['pshufd', '66 0F 70 /r ib', 'int', 16], ['pshuflw', 'F2 0F 70 /r ib', 'int', 16], ['psrldq', '66 0F 73 /3:r ib', 'int', 16],
  ['pslldq', '66 0F 73 /7:r ib', 'int', 16], ['psraw xmm, imm8', '66 0F 71 /4:r ib', 'int', 16], ['psrlq xmm, xmm/m128', '66 0F D3 /r', 'int', 16],
  ['pmovmskb', '66 0F D7 /r:r', 'int', 16], ['movd xmm, r/m32', '66 0F 6E /r', 'int', 4], ['movd r/m32, xmm', '66 0F 7E /r', 'int', 4],
  ['movq xmm, xmm/m64', 'F3 0F 7E /r', 'int', 8], ['pand xmm', '66 0F DB /r', 'int', 16], ['pxor xmm', '66 0F EF /r', 'int', 16],
  ['psadbw', '66 0F F6 /r', 'int', 16], ['pmulhuw xmm', '66 0F E4 /r', 'int', 16], ['pminsw xmm', '66 0F EA /r', 'int', 16],
  ['pavgw xmm', '66 0F E3 /r', 'int', 16], ['movmskpd', '66 0F 50 /r:r', 'f64', 16],
];
for (const [rows, c] of [[SSE, 'sse'], [SSE2, 'sse2']] as const) {
  for (const [name, t, lanes, mem] of rows) {
    add({
      name, mnem: name.split(' ')[0], cat: c, os: 32, mem, t, fpu: sseState(lanes), align: 0.85,
      memval: (g) => laneBytes(g, lanes, mem),
    });
  }
}
add({
  name: 'ldmxcsr m32', mnem: 'ldmxcsr', cat: 'sse', os: 32, mem: 4, t: '0F AE /2:m', fpu: sseState('f32'),
  // Valid values mostly; a reserved bit set must raise #GP.
  memval: (g) => Uint8Array.from(u32le(g.r.chance(0.9) ? g.r.u32() & 0xffff : g.r.u32())),
});

