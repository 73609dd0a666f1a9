// Code generator: turns a run of decoded guest instructions (one translation unit) into the source of a
// JavaScript function, which the JIT compiles once with `new Function` and V8 then optimises like any hot
// function.
//
// Conventions of the generated function `unit(c, J, budget)`:
// - Guest registers live in JS locals r0..r7 for the whole unit: loaded from c.r32 on entry, written
//   back (WB) at every exit, before every call into the interpreter, and in the fault handler when an
//   inline access faults. Inline code commits registers only after the last point where the instruction
//   can fault, so at a fault the locals hold exactly the state before the faulting instruction.
// - Arithmetic flags stay in locals while the unit runs: fa/fb/fr (operands and result of the last
//   flag-setting operation, whose kind the generator knows), fc (its carry in) and fx (flags given
//   explicitly: CF/OF of a rotate, CF kept by INC/DEC, CF/OF/AF of a shift). The generator knows at every
//   point which flags are where (FlagState). A Jcc/SETcc/CMOVcc evaluates its condition from the locals;
//   nothing is written to the CPU's lazy-flag fields until the unit leaves, calls the interpreter, loops
//   or faults (syncCode), so flags overwritten before they are read cost a few register moves.
// - Every call that can raise a guest exception (the slow path of a memory access, a limit check, a
//   monitor call) sits in a try/catch of its own (Gen.trap) whose handler is specialised for that point:
//   it writes back the flags (c.lzSet) and, through one call to J.fault, the registers, c.prevEip (the
//   instruction's EIP) and J.faultDone (instructions completed; `n` counts those of earlier iterations of
//   a self-loop), and rethrows; the
//   dispatcher restores EIP and delivers the exception as the interpreter's run() does. Nothing on the
//   fast path records where the unit is (a try around the whole body cost 16% on SHA-256: every local
//   read by its handler had to be kept exact at every instruction).
// - Anything not inlined runs through `c.step()`, the interpreter's own decode-and-dispatch, with EIP set to
//   the instruction: the handlers see exactly the decode state (prefixes, prevEip, eip) they expect.
//   The exception: x87 memory forms that touch only the FPU and their operand call the x87 code (`F`,
//   x87MemDirect) with the operand's segment and offset, prevEip set to the instruction; register forms
//   call it too (`FR`, x87RegDirect), and MOV to a data segment register calls the descriptor load (`S`).

import type { Insn } from './decode.ts';
import { LZ_ADD, LZ_ADC, LZ_SUB, LZ_SBB, LZ_LOGIC } from '../cpu/cpu.ts';
import { ARITH, CF, CR0_EM, CR0_TS, DF, EXC_NM, IF, OF, PF, RF, SF, TF, VIF, VIP, VM, ZF, AF } from '../cpu/constants.ts';
import { x87DirectForm } from '../cpu/ops-x87.ts';

/** Exit/call-out reasons counted in the statistics (indices into J.exits; opcodes use 0..0x1ff). */
export const EXIT_BRANCH = 0x200, EXIT_SMC = 0x201, EXIT_END = 0x202, EXIT_LOOP_BUDGET = 0x203, EXIT_CALLOUT_MOVED = 0x204,
  EXIT_RET = 0x205, EXIT_INDIRECT = 0x206, EXIT_SEGMENT = 0x207, EXIT_GROUP = 0x208;
export const EXIT_NAMES: Record<number, string> = {
  [EXIT_BRANCH]: 'direct branch', [EXIT_SMC]: 'self-modifying write', [EXIT_END]: 'unit end (page/size/undecodable)',
  [EXIT_LOOP_BUDGET]: 'loop left for interrupt/budget', [EXIT_CALLOUT_MOVED]: 'call-out changed EIP',
  [EXIT_RET]: 'ret', [EXIT_INDIRECT]: 'indirect jmp/call', [EXIT_SEGMENT]: 'segment no longer flat',
  [EXIT_GROUP]: 'went on to another member of its group (no exit)',
};

// One-byte opcodes whose interpreter handler cannot change anything a unit assumes constant (mode, CS,
// CPL, TF, IF, control flow other than re-executing itself): after calling one, the unit goes on if EIP is
// the next instruction. LES/LDS, POP DS/ES/FS/GS and MOV to DS/ES/FS/GS may change a flat data segment:
// the unit re-checks after them (Gen.callout). CLI only clears IF (or VIF): nothing a unit assumes, and
// no interrupt can become deliverable. Everything else (far transfers, segment loads of SS/CS, POPF, STI,
// HLT, I/O, INT, system instructions) ends the unit after the call.
const SAFE1 = new Uint8Array(256);
const SAFE2 = new Uint8Array(256);
{
  const r = (t: Uint8Array, a: number, b: number) => { for (let o = a; o <= b; o++) t[o] = 1; };
  for (let o = 0; o < 0x40; o++) if ((o & 7) < 6) SAFE1[o] = 1;
  for (const o of [0x06, 0x07, 0x0e, 0x16, 0x1e, 0x1f, 0x27, 0x2f, 0x37, 0x3f, 0x62, 0x63, 0x8c, 0x8d, 0x8f, 0x9b, 0x9c, 0x9e, 0x9f,
    0xc4, 0xc5, 0xc6, 0xc7, 0xc8, 0xc9, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9, 0xfa, 0xfc, 0xfd, 0xfe]) SAFE1[o] = 1;
  r(SAFE1, 0x40, 0x61); r(SAFE1, 0x68, 0x6b); r(SAFE1, 0x80, 0x8b); r(SAFE1, 0x90, 0x99); r(SAFE1, 0xa0, 0xaf);
  r(SAFE1, 0xb0, 0xc1); r(SAFE1, 0xd0, 0xdf);
  for (const o of [0x0d, 0x31, 0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa8, 0xa9, 0xab, 0xac, 0xad, 0xae, 0xaf, 0xb0, 0xb1, 0xb3, 0xba, 0xbb, 0xbc, 0xbd]) SAFE2[o] = 1;
  r(SAFE2, 0x10, 0x1f); r(SAFE2, 0x28, 0x2f); r(SAFE2, 0x40, 0x7f); r(SAFE2, 0x90, 0x9f); r(SAFE2, 0xb6, 0xbf);
  r(SAFE2, 0xc0, 0xff);
}

/** Whether the interpreter handler of `d` may be called in the middle of a unit (see SAFE1). */
export function safeCallout(d: Insn): boolean {
  if (d.op === 0x9d || d.op === 0xfb) return true; // POPF, STI: see Gen.callout
  if (d.op === 0xff) { const r = (d.modrm >> 3) & 7; return r === 0 || r === 1 || r === 6; }
  // MOV to ES, DS, FS or GS (not CS, #UD, nor SS, which starts an interrupt shadow): a data segment load,
  // re-checked like LDS (Gen.callout). The i386 kernel reloads DS, ES and FS on every entry and exit.
  if (d.op === 0x8e) { const r = (d.modrm >> 3) & 7; return r === 0 || r === 3 || r === 4 || r === 5; }
  return d.op < 0x100 ? SAFE1[d.op] === 1 : SAFE2[d.op & 0xff] === 1;
}

/** What the code generator needs to know about the unit's context (all part of the cache key). */
export interface UnitContext {
  entry: number;
  ss32: boolean;
  csLimit: number;
  /** CPU.flatSegs when the unit was translated: accesses through those segments skip base and limit. */
  flat: number;
  /** The CPL the unit runs at (part of its mode). */
  cpl: number;
  /**
   * The unit is a member of a group (Jit.group): its exits store their slot, numbered from `slotBase`, in
   * the local `sl` instead of J.ex, and lead to the group's transfer code instead of the function's end.
   */
  group?: boolean;
  slotBase?: number;
}

/**
 * Where the arithmetic flags are at a point of a unit. Flags in `lazy` follow from the locals fa/fb/fr/fc
 * as the interpreter's lazy state of operation `op` (LZ_*) on `bits`-bit operands; flags in `expl` are the
 * same bits of the local fx; the others are in the CPU (c.flags or its own pending lazy state), untouched
 * since the unit started or last synchronised. lazy and expl never overlap; lazy is nonzero only after an
 * operation that set every arithmetic flag but those in expl, or INC/DEC, which keep CF where it was: with
 * CF in the CPU then, lazy | expl is ARITH without CF (syncCode then materialises the CPU's flags first).
 * `rot`: CF and OF (in expl) are not in fx but follow from fy, the result of the last ROL (1) or ROR (2)
 * by a constant (SDM vol. 2 "RCL/RCR/ROL/ROR": CF is the bit rotated in, OF the XOR of the result's top
 * bit and CF (ROL) or of its two top bits (ROR)). SHA-256 rotates six times a round and reads no flag of
 * them: computing CF and OF at each cost about a tenth of its unit code.
 */
interface FlagState { op: number; bits: number; lazy: number; expl: number; rot?: number }
const FLAGS_IN_CPU: FlagState = { op: 0, bits: 32, lazy: 0, expl: 0 };
/** CF (0/1) and OF (at its place) of a rotate whose result is in fy (see FlagState.rot). */
const ROT_CF = (rot: number) => (rot === 1 ? '(fy & 1)' : '(fy >>> 31)');
const ROT_OF = (rot: number) => (rot === 1 ? `((((fy >>> 31) ^ fy) & 1) << 11)` : `((((fy >>> 31) ^ (fy >>> 30)) & 1) << 11)`);

/** MOVS, STOS, LODS, SCAS (not CMPS): inline without REP. */
const STRING_INLINE = new Set([0xa4, 0xa5, 0xaa, 0xab, 0xac, 0xad, 0xae, 0xaf]);
const MASKX = (bits: number) => (bits === 32 ? '>>> 0' : bits === 16 ? '& 0xffff' : '& 0xff');
const MAXV = (bits: number) => (bits === 32 ? 0xffffffff : bits === 16 ? 0xffff : 0xff);

/**
 * Generates one unit. `insns` is the instruction sequence in execution order (direct jumps already
 * followed); `ends[i]` says how instruction i ends the unit: undefined (falls through to i+1), or the
 * terminal kinds set by the builder. Returns the function body source.
 */
export class Gen {
  private out: string[] = [];
  private used = new Set<number>();
  private fl: FlagState = FLAGS_IN_CPU;
  private stores = false;
  /** Jcc index → index of its target, for the forward branches that stay inside the unit. */
  private readonly forward = new Map<number, number>();
  /** RET index → the return address the unit goes on at (see returnTo). */
  private readonly retTo = new Map<number, number>();
  /** The instruction being generated (index in the unit, EIP), for fault handlers. */
  private cur = 0;
  private curEip = 0;
  /** The CPU.flatSegs bits the unit's code assumes. */
  private guard = 0;
  /**
   * Chaining slots: every exit through the shared epilogue (a branch, a fall-through, a loop left for an
   * interrupt, a self-modifying store) stores its own slot number in J.ex; the dispatcher caches the unit
   * that ran next in the leaving unit's `succ[slot]` and, next time, enters it without a table lookup.
   * Exits after a monitor call that may change the mode leave J.ex at -1 (never chained).
   */
  slots: number;
  /**
   * Slot → offset from the entry of the Jcc whose taken side leaves through it (unset for the other
   * exits): the dispatcher uses it to find a loop split over two units (see Jit.review).
   */
  readonly jccAt: number[] = [];
  /** Jcc indexes whose taken side the unit follows; their fall-through side leaves (see invertJcc). */
  private readonly inverted = new Set<number>();
  /**
   * Forward branches per target instruction, with the flag state each left in (see joinFlags); their flag
   * write-back code replaces their placeholder comment (J and the id) once the target's block is closed.
   */
  private readonly joins = new Map<number, { id: number; fl: FlagState; code: string }[]>();
  private readonly joinCode: string[] = [];
  /** Inline instructions emitted (for statistics). */
  inlined = 0;
  callouts = 0;

  constructor(private readonly ctx: UnitContext) { this.slots = ctx.slotBase ?? 0; }
  /** Where an exit's slot goes (see UnitContext.group). */
  private get slotVar(): string { return this.ctx.group ? 'sl' : 'J.ex'; }

  // --- registers ---
  private r(i: number): string { this.used.add(i); return `r${i}`; }
  private get8(i: number): string { return i < 4 ? `(${this.r(i)} & 0xff)` : `((${this.r(i - 4)} >> 8) & 0xff)`; }
  private set8(i: number, v: string): string {
    return i < 4 ? `${this.r(i)} = (r${i} & -256) | ${v};` : `${this.r(i - 4)} = (r${i - 4} & -65281) | (${v} << 8);`;
  }
  private wb(): string { return '/*WB*/'; }
  /** Unsigned value of register i at operand size `bits`. */
  private regR(i: number, bits: number): string {
    return bits === 32 ? `(${this.r(i)} >>> 0)` : bits === 16 ? `(${this.r(i)} & 0xffff)` : this.get8(i);
  }
  /** The instruction's immediate as an unsigned constant of `bits` bits. */
  private immU(d: Insn, bits: number): string { return String(bits === 32 ? d.imm >>> 0 : d.imm & MAXV(bits)); }
  /** The value just loaded into `v` at operand size `bits`, unsigned. */
  private vU(bits: number): string { return bits === 32 ? 'v >>> 0' : 'v'; }
  /** Statement writing `v` (already masked to `bits`) to register i at operand size `bits`. */
  private regW(i: number, bits: number, v: string): string {
    return bits === 32 ? `${this.r(i)} = ${v} | 0;` : bits === 16 ? `${this.r(i)} = (r${i} & -65536) | ${v};` : this.set8(i, v);
  }

  /**
   * Whether the unit is position-independent: every guest address it uses is written relative to `E`, the
   * EIP it was entered at, so one translation serves the same bytes at any EIP (the JIT keys such units by
   * host offset alone; a program loaded at a random address in every process then reuses its units). Only
   * with a 4 GiB CS limit: limit checks against a constant target need the absolute EIP.
   */
  private get pi(): boolean { return this.ctx.csLimit === 0xffffffff; }
  /** Expression for the guest EIP `eip` (an address inside or next to this unit). */
  private abs(eip: number): string {
    return this.pi ? `((E + ${(eip - this.ctx.entry) | 0}) | 0)` : String(eip);
  }
  /**
   * `abs(eip)` without the int32 wrap, for values that are wrapped where they land (J.fault's EIP, an
   * exit's `e`): shorter source in the many fault handlers and exits.
   */
  private loose(expr: string): string {
    const m = /^\(\(E \+ (-?\d+)\) \| 0\)$/.exec(expr);
    return m === null ? expr : m[1] === '0' ? 'E' : `E + ${m[1]}`;
  }

  // --- memory ---
  private ea(d: Insn): string {
    const parts: string[] = [];
    if (d.base >= 0) parts.push(this.r(d.base));
    if (d.index >= 0) parts.push(d.scale ? `(${this.r(d.index)} << ${d.scale})` : this.r(d.index));
    if (d.disp !== 0 || parts.length === 0) parts.push(String(d.disp));
    return parts.length === 1 && d.base >= 0 ? parts[0] : `(${parts.join(' + ')}) | 0`;
  }
  private segOf(d: Insn): number {
    if (d.seg >= 0) return d.seg;
    return d.base === 4 || d.base === 5 ? 2 : 3;
  }
  /** Emits `l = linear address` of segment seg, offset expression off, with the interpreter's checks. */
  private lin(seg: number, off: string, size: number, write: boolean): void {
    const bit = 1 << (seg * 2 + (write ? 1 : 0));
    if (this.ctx.flat & bit) {
      // Checked once at entry (see finish): with a flat segment the linear address is the offset.
      this.guard |= bit;
      this.out.push(`o = ${off}; l = o;`);
      return;
    }
    this.out.push(`o = ${off}; if (sf[${seg}] & ${write ? 2 : 1}) l = (sb[${seg}] + o) | 0; else ${this.trap(`l = c.linChecked(${seg}, o, ${size}, ${write});`)}`);
  }
  /** Statement loading `size` bytes at linear `l` into `v` (unsigned for 8/16, int32 for 32). */
  private load(size: number): string {
    if (size === 1) return `y = te[l >>> 12]; if (y & rm) v = pool[(y & -4096) | (l & 0xfff)]; else ${this.trap('v = c.readLin8(l);')}`;
    if (size === 2) return `y = te[l >>> 12]; if ((y & rm) && (l & 0xfff) !== 0xfff) v = dv.getUint16((y & -4096) | (l & 0xfff), true); else ${this.trap('v = c.readLin16(l);')}`;
    return `y = te[l >>> 12]; if ((y & rm) && (l & 0xfff) <= 0xffc) v = dv.getInt32((y & -4096) | (l & 0xfff), true); else ${this.trap('v = c.readLin32(l);')}`;
  }
  private store(size: number, v: string): void {
    this.stores = true;
    if (size === 1) this.out.push(`y = te[l >>> 12]; if (y & wm) pool[(y & -4096) | (l & 0xfff)] = ${v}; else { ${this.trap(`c.writeLin8(l, ${v});`)} cc = J.codeChanged; }`);
    else if (size === 2) this.out.push(`y = te[l >>> 12]; if ((y & wm) && (l & 0xfff) !== 0xfff) dv.setUint16((y & -4096) | (l & 0xfff), ${v}, true); else { ${this.trap(`c.writeLin16(l, ${v});`)} cc = J.codeChanged; }`);
    else this.out.push(`y = te[l >>> 12]; if ((y & wm) && (l & 0xfff) <= 0xffc) dv.setInt32((y & -4096) | (l & 0xfff), ${v}, true); else { ${this.trap(`c.writeLin32(l, ${v});`)} cc = J.codeChanged; }`);
  }
  /** Read-modify-write start (as the interpreter's eaRmw): h = host offset or -1, v = old value. */
  private rmwLoad(size: number): void {
    const lim = 0x1000 - size;
    this.out.push(`y = te[l >>> 12]; if ((y & wm) && (l & 0xfff) <= ${lim}) h = (y & -4096) | (l & 0xfff); else { ${this.trap(`c.probeWrite(l, ${size});`)} h = -1; }`);
    this.out.push(size === 1 ? `if (h >= 0) v = pool[h]; else ${this.trap('v = c.readLin8(l);')}` : size === 2 ? `if (h >= 0) v = dv.getUint16(h, true); else ${this.trap('v = c.readLin16(l);')}` : `if (h >= 0) v = dv.getInt32(h, true); else ${this.trap('v = c.readLin32(l);')}`);
  }
  private rmwStore(size: number, v: string): void {
    this.stores = true;
    this.out.push(size === 1 ? `if (h >= 0) pool[h] = ${v}; else { ${this.trap(`c.writeLin8(l, ${v});`)} cc = J.codeChanged; }` : size === 2 ? `if (h >= 0) dv.setUint16(h, ${v}, true); else { ${this.trap(`c.writeLin16(l, ${v});`)} cc = J.codeChanged; }` : `if (h >= 0) dv.setInt32(h, ${v}, true); else { ${this.trap(`c.writeLin32(l, ${v});`)} cc = J.codeChanged; }`);
  }

  // --- flags ---
  /** Records the new flag state. */
  private setFlags(f: FlagState): void {
    this.fl = f;
  }
  /** Code that writes the flags held in locals into the CPU ('' when there are none); the state is unchanged. */
  private syncCode(compact = false): string {
    const { op, bits, lazy, expl } = this.fl;
    if (lazy === 0 && expl === 0) return '';
    let code = (lazy | expl) !== ARITH ? 'c.materialize(); ' : '';
    const rot = this.fl.rot ?? 0;
    if (expl !== 0) code += rot ? `c.flags = (c.flags & ${~expl}) | (fx & ${expl & ~(CF | OF)}) | ${ROT_CF(rot)} | ${ROT_OF(rot)}; ` : `c.flags = (c.flags & ${~expl}) | (fx & ${expl}); `;
    const cin = op === LZ_ADC || op === LZ_SBB ? 'c.lzCin = fc; ' : '';
    // Fault handlers and exits (compact) call the CPU's setter: they are many, and V8 inlines the call
    // once a unit is optimised.
    if (lazy !== 0 && compact) return code + `${cin}c.lzSet(${op}, fa, fb, fr, ${bits}, ${lazy}); `;
    if (lazy !== 0) code += `c.lzOp = ${op}; c.lzA = fa; c.lzB = fb; c.lzRes = fr; c.lzBits = ${bits}; ${cin}`;
    return code + `c.lzMask = ${lazy};${compact ? ' ' : ''}`;
  }
  /** Writes the flags held in locals into the CPU here; from now on they are the CPU's. */
  private syncNow(): void {
    const s = this.syncCode();
    if (s) this.out.push(s);
    this.fl = FLAGS_IN_CPU;
  }
  /** A partial write (rotate, BT): the flags in `mask` become the same bits of `t`, the others stay. */
  private setExplicit(mask: number): void {
    this.unrot();
    this.out.push(`fx = (fx & ${~mask}) | t;`);
    const fl = this.fl;
    this.setFlags({ op: fl.op, bits: fl.bits, lazy: fl.lazy & ~mask, expl: fl.expl | mask });
  }

  /** CF and OF of a pending rotate (FlagState.rot) go to fx, where the other explicit flags are. */
  private unrot(): void {
    const fl = this.fl, rot = fl.rot ?? 0;
    if (!rot) return;
    this.out.push(`fx = (fx & ${~(CF | OF)}) | ${ROT_CF(rot)} | ${ROT_OF(rot)};`);
    this.fl = { op: fl.op, bits: fl.bits, lazy: fl.lazy, expl: fl.expl };
  }

  /** ALU operation `op` (ADD OR ADC SBB AND SUB XOR CMP) of unsigned operand expressions a, b. */
  private alu(op: number, a: string, b: string, bits: number): void {
    const mx = MASKX(bits);
    const o = this.out;
    let lz: number;
    switch (op) {
      case 0: o.push(`fa = ${a}; fb = ${b}; fr = (fa + fb) ${mx};`); lz = LZ_ADD; break;
      case 2: o.push(`t = ${this.cf01()}; fa = ${a}; fb = ${b}; fr = (fa + fb + t) ${mx}; fc = t;`); lz = LZ_ADC; break;
      case 3: o.push(`t = ${this.cf01()}; fa = ${a}; fb = ${b}; fr = (fa - fb - t) ${mx}; fc = t;`); lz = LZ_SBB; break;
      case 5: case 7: o.push(`fa = ${a}; fb = ${b}; fr = (fa - fb) ${mx};`); lz = LZ_SUB; break;
      default: {
        const js = op === 1 ? '|' : op === 4 ? '&' : '^';
        // Logic results set no flag from their operands (CF = OF = AF = 0): fa/fb are not needed.
        o.push(`fr = (${a} ${js} ${b}) ${mx};`);
        lz = LZ_LOGIC;
      }
    }
    this.setFlags({ op: lz, bits, lazy: ARITH, expl: 0 });
  }

  /** Expression (0 or 1) for flag `f` (one bit) in the current state. */
  private flag01(f: number): string {
    const fl = this.fl;
    const bit = 31 - Math.clz32(f);
    if (fl.rot && (f === CF || f === OF)) return f === CF ? ROT_CF(fl.rot) : `(${ROT_OF(fl.rot)} >>> 11)`;
    if (fl.expl & f) return `((fx >>> ${bit}) & 1)`;
    if (!(fl.lazy & f)) {
      if (f === CF) return 'c.getCF()'; // the CPU's getters give the flag's own bit; getCF's is bit 0
      const get = f === PF ? 'getPF' : f === AF ? 'getAF' : f === ZF ? 'getZF' : f === SF ? 'getSF' : 'getOF';
      return `(c.${get}() !== 0 ? 1 : 0)`;
    }
    const sh = fl.bits - 1, M = MAXV(fl.bits);
    const add = fl.op === LZ_ADD || fl.op === LZ_ADC;
    switch (f) {
      case CF:
        if (fl.op === LZ_LOGIC) return '0';
        if (fl.op === LZ_ADD) return `(fa + fb > ${M} ? 1 : 0)`;
        if (fl.op === LZ_ADC) return `(fa + fb + fc > ${M} ? 1 : 0)`;
        if (fl.op === LZ_SUB) return '(fa < fb ? 1 : 0)';
        return '(fa < fb + fc ? 1 : 0)';
      case ZF: return '(fr === 0 ? 1 : 0)';
      case SF: return `((fr >>> ${sh}) & 1)`;
      case PF: return '(PAR[fr & 0xff] >>> 2)';
      case AF: return fl.op === LZ_LOGIC ? '0' : '(((fa ^ fb ^ fr) >>> 4) & 1)';
      default:
        if (fl.op === LZ_LOGIC) return '0';
        return add ? `((((fa ^ fr) & (fb ^ fr)) >>> ${sh}) & 1)` : `((((fa ^ fb) & (fa ^ fr)) >>> ${sh}) & 1)`;
    }
  }
  /**
   * INC/DEC keep CF: the code before and after the operation that carries it over, and where it then is.
   * If the unit holds CF (lazily or in fx) it goes to fx; if CF is still the CPU's it stays there, unread
   * (the state's lazy flags then lack CF: see FlagState). Reading it through the CPU at every INC/DEC at a
   * loop head or after a join was a call and a switch per iteration.
   */
  private keepCF(): [string, string, number] {
    if (((this.fl.lazy | this.fl.expl) & CF) === 0) return ['', '', 0];
    return [`t = ${this.cf01()}; `, 'fx = t; ', CF];
  }
  /** Expression (0 or 1) for CF in the current state. */
  private cf01(): string { return this.flag01(CF); }

  /** JS boolean expression for condition code cc (SDM vol. 1 Table B-1). */
  private cond(cc: number): string {
    const fl = this.fl;
    const neg = (cc & 1) === 1;
    if (fl.lazy === 0 && fl.expl === 0) return `(c.cond(${cc}))`;
    let e: string;
    if (fl.lazy === ARITH && fl.op === LZ_SUB && (cc >> 1) !== 0 && (cc >> 1) !== 4 && (cc >> 1) !== 5) {
      // After CMP/SUB every condition but O, S and P is a comparison of the (unsigned, masked) operands.
      const s = 32 - fl.bits;
      switch (cc >> 1) {
        case 1: e = 'fa < fb'; break;
        case 2: e = 'fa === fb'; break;
        case 3: e = 'fa <= fb'; break;
        case 6: e = s ? `(fa << ${s}) < (fb << ${s})` : '(fa | 0) < (fb | 0)'; break;
        default: e = s ? `(fa << ${s}) <= (fb << ${s})` : '(fa | 0) <= (fb | 0)'; break;
      }
    } else {
      const f = (x: number) => this.flag01(x);
      const z = fl.lazy & ZF ? 'fr === 0' : `${f(ZF)} !== 0`;
      switch (cc >> 1) {
        case 0: e = `${f(OF)} !== 0`; break;
        case 1: e = `${f(CF)} !== 0`; break;
        case 2: e = z; break;
        case 3: e = `(${f(CF)} !== 0 || ${z})`; break;
        case 4: e = `${f(SF)} !== 0`; break;
        case 5: e = fl.lazy & PF ? 'PAR[fr & 0xff] !== 0' : `${f(PF)} !== 0`; break;
        case 6: e = `${f(SF)} !== ${f(OF)}`; break;
        default: e = `(${z} || ${f(SF)} !== ${f(OF)})`; break;
      }
    }
    return neg ? `(!(${e}))` : `(${e})`;
  }

  // --- unit structure ---
  /** Starts instruction number `idx`. */
  begin(idx: number, eip: number): void { this.cur = idx; this.curEip = eip; this.stores = false; }

  /**
   * `stmt`, which may raise a guest exception (a slow-path memory access, a limit check, a monitor call),
   * with its own fault handler: the handler writes back the registers and flags as they are at this point
   * (known here, so no run-time bookkeeping on the fast path), sets prevEip to the instruction's EIP and the
   * number of instructions completed, and rethrows; the dispatcher delivers the exception. `live` false:
   * registers and flags are in the CPU already (a monitor call).
   */
  private trap(stmt: string, live = true): string {
    return `try { ${stmt} } catch (err) { ${live ? this.syncCode(true) : ''}throw J.fault(err, ${this.loose(this.abs(this.curEip))}, n + ${this.cur}${live ? '/*WA*/' : ''}); }`;
  }
  /** After an inline instruction that stored to memory: leave if the store hit translated code. */
  endInsn(idx: number, next: number): void {
    if (this.stores) this.out.push(`if (cc) ${this.exit(idx, this.abs(next), EXIT_SMC)}`);
  }

  /**
   * Leaves the unit after instruction idx with EIP = eip. All such exits share one epilogue (after the
   * labelled block `out`) that writes the registers back, which keeps the generated source small.
   */
  private exit(idx: number, eip: string, reason: number): string {
    return `{ ${this.syncCode(true)}e = ${this.loose(eip)}; q = ${idx + 1}; x = ${reason}; ${this.slotVar} = ${this.slots++}; break out; }`;
  }

  /** Transfer to `target` (a constant): loop back if it is the entry and the unit is a loop, else leave. */
  private jumpTo(idx: number, target: number, loop: boolean): string {
    if ((target >>> 0) > this.ctx.csLimit) return this.trap('c.gp(0);');
    if (loop && target === this.ctx.entry) {
      // The loop head expects every flag in the CPU.
      return `${this.syncCode()} n += ${idx + 1}; if (${mayGoOn('n')}) continue; e = E; q = 0; x = ${EXIT_LOOP_BUDGET}; ${this.slotVar} = ${this.slots++}; break out;`;
    }
    return this.exit(idx, this.abs(target), EXIT_BRANCH);
  }

  /** Calls the interpreter for d. `last`: the unit ends after it. */
  callout(d: Insn, idx: number, last: boolean): void {
    this.callouts++;
    this.syncNow();
    const next = (d.eip + d.len) | 0;
    this.out.push(`${this.wb()} c.eip = ${this.abs(d.eip)}; C[${d.op}]++; ${this.trap('c.step();', false)}`);
    if (last) { this.out.push(`X[${d.op}]++; return n + ${idx + 1};`); return; }
    // LES/LDS, MOV to DS/ES/FS/GS and POP DS/ES/FS/GS load a data segment and may go on in the unit: if
    // one of the segments the unit treats as flat (its guard, known at the end: /*G*/) is no longer flat,
    // the unit leaves here.
    const loadsSeg = d.op === 0xc4 || d.op === 0xc5 || d.op === 0x1a1 || d.op === 0x1a9 || d.op === 0x07 || d.op === 0x1f || d.op === 0x8e;
    const seg = loadsSeg ? ' || (c.flatSegs & /*G*/0) !== /*G*/0' : '';
    // POPF and STI (the kernel's local_irq_restore, its `sti; sysexit`) may set IF or TF: the unit goes on
    // unless that makes an interrupt deliverable or single-stepping start, which the dispatcher must see
    // before the next instruction (after STI, the next one runs first on the interpreter: the shadow).
    // Otherwise STI's shadow ends with the next instruction, which runs here (shadowEnd). Ending the unit
    // at every POPF and STI cost two unit entries and an interpreted instruction per system call.
    const irq = d.op === 0x9d || d.op === 0xfb ? ` || (c.flags & ${TF}) !== 0 || c.nmiPending || (c.intr && (c.flags & ${IF}) !== 0)` : '';
    this.out.push(`if (c.eip !== ${this.abs(next)} || J.codeChanged${seg}${irq}) { X[${irq ? d.op : EXIT_CALLOUT_MOVED}]++; return n + ${idx + 1}; }`);
    this.out.push('/*RL*/');
  }

  /**
   * The instruction after an STI that went on in the unit starts here: it is the one STI's interrupt shadow
   * covers, and the dispatcher checks interrupts only between units, so the shadow can end now. If the unit
   * leaves before running it (its page check fails), the shadow is still on and the dispatcher runs it.
   */
  shadowEnd(): void { this.out.push('c.inhibitIrq = false;'); }

  /** The unit ends after instruction idx by falling through to `next` (page end, size limit). */
  fallOut(idx: number, next: number, afterJcc: boolean): void { this.out.push(this.exit(idx, this.abs(next), afterJcc ? EXIT_BRANCH : EXIT_END)); }

  /**
   * Emits d inline if it is one of the inlined forms. Returns 'no' (caller calls out), 'cont' (continue
   * with the next instruction), 'jump' (unconditional direct transfer to `target`; caller may follow it
   * or end the unit with jumpOut), or 'end' (the unit ended here).
   */
  inline(d: Insn, idx: number, loop: boolean): 'no' | 'cont' | 'jump' | 'jcc' | 'end' {
    if (!d.as32) return 'no';
    const o = this.out;
    const m = d.modrm, op = d.op;
    const next = (d.eip + d.len) | 0;
    const mem = m >= 0 && m < 0xc0;
    const reg = (m >> 3) & 7, rmr = m & 7;
    // LOCK: with one vCPU every instruction is atomic, so a valid LOCK changes nothing; the invalid uses
    // (#UD, decided by the interpreter's checkLockable) are left to the interpreter.
    if (d.lock && !(mem && d.os32 && ((op < 0x40 && (op & 7) < 2 && (op >> 3) !== 7) || ((op >= 0x80 && op <= 0x83) && reg !== 7) ||
      (op === 0xff && reg <= 1) || (op === 0xf7 && (reg === 2 || reg === 3)) || (op === 0x1ba && reg >= 5)))) return 'no';
    if (op === 0x11f) return this.done(idx, next); // NOP r/m (0F 1F): computes nothing observable
    if (op === 0x90 && d.rep !== 0xf2) return this.done(idx, next);
    // LFENCE/MFENCE/SFENCE (NP 0F AE /5-/7, register form): no-ops for one in-order vCPU, as in ops-simd.ts.
    if (op === 0x1ae && m >= 0xc0 && reg >= 5 && d.os32 && d.rep === 0) return this.done(idx, next);
    if (op >= 0x1c8 && op <= 0x1cf && d.os32) {
      const r = op & 7;
      o.push(`${this.r(r)} = (r${r} << 24) | ((r${r} & 0xff00) << 8) | ((r${r} >>> 8) & 0xff00) | (r${r} >>> 24);`);
      return this.done(idx, next);
    }
    // MOV ES/DS/FS/GS, r/m16 (8E /r; the i386 kernel reloads DS, ES and FS on every entry and exit, the
    // last from the saved frame): the protected-mode descriptor load (system.ts loadSegment, `S`) is
    // called directly, without the interpreter's decode and the registers' write-back and reload; the
    // flags stay in locals (a segment load reads none). A fault (#GP, #NP, #PF on the operand or the
    // descriptor table) goes through the handler like any access. The unit leaves after it if a segment
    // it treats as flat no longer is, or the accessed-bit write hit translated code, as after LDS.
    if (op === 0x8e && (reg === 0 || reg === 3 || reg === 4 || reg === 5)) {
      if (mem) { this.lin(this.segOf(d), this.ea(d), 2, false); o.push(this.load(2)); }
      o.push(this.trap(`S(c, ${reg}, ${mem ? 'v' : `${this.r(rmr)} & 0xffff`});`));
      o.push(`if (J.codeChanged || (c.flatSegs & /*G*/0) !== /*G*/0) ${this.exit(idx, this.abs(next), EXIT_SEGMENT)}`);
      return this.done(idx, next);
    }
    if (!d.os32) {
      // 16-bit moves (66 89 / 66 8B / 66 C7 /0): the upper half of a register destination is kept.
      if (op === 0x89) {
        if (!mem) o.push(`${this.r(rmr)} = (r${rmr} & -65536) | (${this.r(reg)} & 0xffff);`);
        else { this.lin(this.segOf(d), this.ea(d), 2, true); this.store(2, `${this.r(reg)} & 0xffff`); }
        return this.done(idx, next);
      }
      if (op === 0x8b) {
        if (!mem) o.push(`${this.r(reg)} = (r${reg} & -65536) | (${this.r(rmr)} & 0xffff);`);
        else { this.lin(this.segOf(d), this.ea(d), 2, false); o.push(`${this.load(2)} ${this.r(reg)} = (r${reg} & -65536) | v;`); }
        return this.done(idx, next);
      }
      if ((op === 0xc1 || op === 0xd1) && !mem && (reg === 4 || reg === 5 || reg === 7)) {
        // 16-bit SHL/SHR/SAR of a register by a constant, with the generic shift's rules for counts
        // of 16 and more (operands.ts shift()), resolved at translation time.
        const cnt = op === 0xd1 ? 1 : d.imm & 31;
        if (cnt === 0) return this.done(idx, next);
        const r = this.r(rmr);
        o.push(`fa = ${r} & 0xffff;`);
        if (reg === 4) o.push(cnt < 16 ? `fr = (fa << ${cnt}) & 0xffff; t = (fa >>> ${16 - cnt}) & 1;` : `fr = 0; t = ${cnt === 16 ? 'fa & 1' : '0'};`, `t |= ((fr >>> 15) ^ t) ? ${OF} : 0;`);
        else if (reg === 5) o.push(cnt < 16 ? `fr = fa >>> ${cnt}; t = (fa >>> ${cnt - 1}) & 1;` : `fr = 0; t = ${cnt === 16 ? '(fa >>> 15) & 1' : '0'};`, `t |= (fa & 0x8000) ? ${OF} : 0;`);
        else o.push('fb = (fa << 16) >> 16;', cnt < 16 ? `fr = (fb >> ${cnt}) & 0xffff; t = (fb >> ${cnt - 1}) & 1;` : 'fr = (fb >> 31) & 0xffff; t = fb < 0 ? 1 : 0;');
        o.push(`fx = t | ${AF}; r${rmr} = (r${rmr} & -65536) | fr;`);
        this.setFlags({ op: LZ_LOGIC, bits: 16, lazy: SF | ZF | PF, expl: CF | OF | AF });
        return this.done(idx, next);
      }
      if (op === 0xc7 && reg === 0) {
        const imm = String(d.imm & 0xffff);
        if (!mem) o.push(`${this.r(rmr)} = (r${rmr} & -65536) | ${imm};`);
        else { this.lin(this.segOf(d), this.ea(d), 2, true); this.store(2, imm); }
        return this.done(idx, next);
      }
      // The ALU families below take 16-bit operands as well; everything else 16-bit is a monitor call.
      if (!((op < 0x40 && (op & 7) < 6) || (op >= 0x80 && op <= 0x85) || op === 0xa8 || op === 0xa9 || (op >= 0x40 && op <= 0x4f) ||
        (op === 0xf7 && reg <= 3) || (op === 0xff && reg <= 1) || op === 0x1ba || op === 0x1a3 || op === 0x1ab || op === 0x1b3 || op === 0x1bb)) return 'no';
    }
    const vbits = d.os32 ? 32 : 16; // the operand size of the 'v' (word/dword) forms
    // ALU 00-3D: op Eb,Gb / Ev,Gv / Gb,Eb / Gv,Ev / AL,Ib / eAX,Iv
    if (op < 0x40 && (op & 7) < 6) {
      const alu = op >> 3, form = op & 7, cmp = alu === 7;
      const bits = form & 1 ? vbits : 8, size = bits >> 3;
      const R = (i: number) => this.regR(i, bits);
      const W = (i: number) => this.regW(i, bits, 'fr');
      const V = this.vU(bits);
      if (form >= 4) {
        this.alu(alu, R(0), this.immU(d, bits), bits);
        if (!cmp) o.push(W(0));
      } else if (form < 2) {
        if (!mem) { this.alu(alu, R(rmr), R(reg), bits); if (!cmp) o.push(W(rmr)); }
        else if (cmp) { this.lin(this.segOf(d), this.ea(d), size, false); o.push(`${this.load(size)}`); this.alu(alu, V, R(reg), bits); }
        else { this.lin(this.segOf(d), this.ea(d), size, true); this.rmwLoad(size); this.alu(alu, V, R(reg), bits); this.rmwStore(size, 'fr'); }
      } else {
        if (!mem) this.alu(alu, R(reg), R(rmr), bits);
        else { this.lin(this.segOf(d), this.ea(d), size, false); o.push(`${this.load(size)}`); this.alu(alu, R(reg), V, bits); }
        if (!cmp) o.push(W(reg));
      }
      return this.done(idx, next);
    }
    if (op === 0x80 || op === 0x81 || op === 0x82 || op === 0x83) {
      const bits = op === 0x81 || op === 0x83 ? vbits : 8, size = bits >> 3;
      const imm = this.immU(d, bits), V = this.vU(bits);
      if (!mem) {
        this.alu(reg, this.regR(rmr, bits), imm, bits);
        if (reg !== 7) o.push(this.regW(rmr, bits, 'fr'));
      } else if (reg === 7) {
        this.lin(this.segOf(d), this.ea(d), size, false); o.push(`${this.load(size)}`);
        this.alu(7, V, imm, bits);
      } else {
        this.lin(this.segOf(d), this.ea(d), size, true); this.rmwLoad(size);
        this.alu(reg, V, imm, bits); this.rmwStore(size, 'fr');
      }
      return this.done(idx, next);
    }
    if (op === 0x84 || op === 0x85 || op === 0xa8 || op === 0xa9) {
      const bits = op & 1 ? vbits : 8, size = bits >> 3;
      const R = (i: number) => this.regR(i, bits);
      if (op >= 0xa8) this.alu(4, R(0), this.immU(d, bits), bits);
      else if (!mem) this.alu(4, R(rmr), R(reg), bits);
      else { this.lin(this.segOf(d), this.ea(d), size, false); o.push(`${this.load(size)}`); this.alu(4, this.vU(bits), R(reg), bits); }
      return this.done(idx, next);
    }
    if (op >= 0x40 && op <= 0x4f) {
      const r = op & 7, isDec = op >= 0x48;
      const keep = this.keepCF();
      o.push(`${keep[0]}fa = ${this.regR(r, vbits)}; fb = 1; fr = (fa ${isDec ? '-' : '+'} 1) ${MASKX(vbits)}; ${keep[1]}${this.regW(r, vbits, 'fr')}`);
      this.setFlags({ op: isDec ? LZ_SUB : LZ_ADD, bits: vbits, lazy: ARITH & ~CF, expl: keep[2] });
      return this.done(idx, next);
    }
    if (op >= 0x50 && op <= 0x57 || op === 0x68 || op === 0x6a) {
      if (!this.ctx.ss32) return 'no';
      const val = op <= 0x57 ? this.r(op & 7) : String(d.imm | 0);
      this.push(val);
      return this.done(idx, next);
    }
    // PUSH ES/CS/SS/DS/FS/GS with a 32-bit operand: the zero-extended selector, as the interpreter writes
    // it. The i386 kernel pushes ES, DS and FS on every entry.
    const pushSeg = op === 0x06 ? 0 : op === 0x0e ? 1 : op === 0x16 ? 2 : op === 0x1e ? 3 : op === 0x1a0 ? 4 : op === 0x1a8 ? 5 : -1;
    if (pushSeg >= 0 && d.os32) {
      if (!this.ctx.ss32) return 'no';
      this.push(`c.sreg[${pushSeg}]`);
      return this.done(idx, next);
    }
    // PUSHFD: EFLAGS without VM and RF (SDM vol. 2 "PUSHF"). Its #GP is for virtual-8086 mode only, whose
    // code is 16-bit and never translated. The flags go to the CPU first, which composes them.
    if (op === 0x9c && d.os32) {
      if (!this.ctx.ss32) return 'no';
      this.syncNow();
      this.push(`(c.getEflags() & ${~(VM | RF)})`);
      return this.done(idx, next);
    }
    // CLI at CPL 0, where IOPL always allows it (SDM vol. 2 "CLI"; 32-bit code is protected mode, never
    // virtual-8086): IF only, which nothing in a unit depends on.
    if (op === 0xfa && this.ctx.cpl === 0) {
      o.push(`c.flags &= ${~IF};`);
      return this.done(idx, next);
    }
    // STI at CPL 0: IF set; if it was clear, the next instruction runs in STI's shadow (shadowEnd), unless
    // an interrupt is waiting: then the unit leaves and the dispatcher runs the shadowed instruction and
    // delivers it, as after the monitor call (see callout).
    if (op === 0xfb && this.ctx.cpl === 0) {
      o.push(`if ((c.flags & ${IF}) === 0) { c.flags |= ${IF}; c.inhibitIrq = true; if (c.intr || c.nmiPending) ${this.exit(idx, this.abs(next), 0xfb)} }`);
      return this.done(idx, next);
    }
    // POPFD at CPL 0 (every flag but VM, VIF, VIP and RF may change: SDM vol. 2 "POPF"); the unit leaves if
    // that sets TF or makes an interrupt deliverable (see callout).
    if (op === 0x9d && this.ctx.cpl === 0 && d.os32) {
      if (!this.ctx.ss32) return 'no';
      this.syncNow();
      this.lin(2, this.r(4), 4, false);
      o.push(`${this.load(4)} c.setEflagsMasked(v, ${~(VM | VIF | VIP | RF)}); r4 = (r4 + 4) | 0;`);
      o.push(`if ((c.flags & ${TF}) !== 0 || c.nmiPending || (c.intr && (c.flags & ${IF}) !== 0)) ${this.exit(idx, this.abs(next), 0x9d)}`);
      return this.done(idx, next);
    }
    if (op >= 0x58 && op <= 0x5f) {
      if (!this.ctx.ss32) return 'no';
      this.lin(2, this.r(4), 4, false);
      o.push(`${this.load(4)} r4 = (r4 + 4) | 0; ${this.r(op & 7)} = v;`);
      return this.done(idx, next);
    }
    if (op === 0x88 || op === 0x89) {
      const size = op === 0x89 ? 4 : 1;
      if (!mem) o.push(size === 4 ? `${this.r(rmr)} = ${this.r(reg)};` : this.set8(rmr, this.get8(reg)));
      else { this.lin(this.segOf(d), this.ea(d), size, true); this.store(size, size === 4 ? this.r(reg) : this.get8(reg)); }
      return this.done(idx, next);
    }
    if (op === 0x8a || op === 0x8b) {
      const size = op === 0x8b ? 4 : 1;
      if (!mem) o.push(size === 4 ? `${this.r(reg)} = ${this.r(rmr)};` : this.set8(reg, this.get8(rmr)));
      else { this.lin(this.segOf(d), this.ea(d), size, false); o.push(`${this.load(size)}`); o.push(size === 4 ? `${this.r(reg)} = v;` : this.set8(reg, 'v')); }
      return this.done(idx, next);
    }
    if (op === 0x8d) {
      if (!mem) return 'no';
      o.push(`${this.r(reg)} = ${this.ea(d)};`);
      return this.done(idx, next);
    }
    if (op >= 0xa0 && op <= 0xa3) {
      // MOV AL/EAX <-> moffs32 (DS or the override segment).
      const seg = d.seg >= 0 ? d.seg : 3, size = op & 1 ? 4 : 1;
      this.lin(seg, String(d.imm | 0), size, op >= 0xa2);
      if (op === 0xa0) o.push(`${this.load(1)}`, this.set8(0, 'v'));
      else if (op === 0xa1) o.push(this.load(4), `${this.r(0)} = v;`);
      else this.store(size, size === 4 ? this.r(0) : this.get8(0));
      return this.done(idx, next);
    }
    if (op === 0xc9) {
      if (!this.ctx.ss32) return 'no';
      this.lin(2, this.r(5), 4, false);
      o.push(`${this.load(4)} ${this.r(4)} = (r5 + 4) | 0; r5 = v;`);
      return this.done(idx, next);
    }
    if (op === 0xf6 && reg <= 1) {
      const imm = String(d.imm & 0xff);
      if (!mem) this.alu(4, this.get8(rmr), imm, 8);
      else { this.lin(this.segOf(d), this.ea(d), 1, false); o.push(`${this.load(1)}`); this.alu(4, 'v', imm, 8); }
      return this.done(idx, next);
    }
    if (op >= 0xb0 && op <= 0xb7) { o.push(this.set8(op & 7, String(d.imm & 0xff))); return this.done(idx, next); }
    if (op >= 0xb8 && op <= 0xbf) { o.push(`${this.r(op & 7)} = ${d.imm | 0};`); return this.done(idx, next); }
    if ((op === 0xc6 || op === 0xc7) && reg === 0) {
      const size = op === 0xc7 ? 4 : 1;
      const imm = String(size === 4 ? d.imm | 0 : d.imm & 0xff);
      if (!mem) o.push(size === 4 ? `${this.r(rmr)} = ${imm};` : this.set8(rmr, imm));
      else { this.lin(this.segOf(d), this.ea(d), size, true); this.store(size, imm); }
      return this.done(idx, next);
    }
    if ((op === 0xc1 || op === 0xd1 || op === 0xd3) && (reg === 4 || reg === 5 || reg === 7)) {
      // SHL/SHR/SAR r/m32 by imm8, 1 or CL (the count masked to 5 bits; 0 changes nothing, not even flags).
      const cnt = op === 0xd1 ? '1' : op === 0xc1 ? String(d.imm & 31) : 'k';
      if (cnt === '0' && !mem) return this.done(idx, next);
      if (op === 0xd3) o.push(`k = ${this.r(1)} & 31;`);
      let dst: string;
      if (mem) { this.lin(this.segOf(d), this.ea(d), 4, true); this.rmwLoad(4); dst = 'v'; } else dst = this.r(rmr);
      const body: string[] = [];
      if (reg === 4) body.push(`fa = ${dst}; fr = (fa << ${cnt}) >>> 0; t = (fa >>> (32 - ${cnt})) & 1; t |= ((fr >>> 31) ^ t) ? ${OF} : 0;`);
      else if (reg === 5) body.push(`fa = ${dst}; fr = fa >>> ${cnt}; t = ((fa >>> (${cnt} - 1)) & 1) | (fa < 0 ? ${OF} : 0);`);
      else body.push(`fa = ${dst}; fr = (fa >> ${cnt}) >>> 0; t = (fa >> (${cnt} - 1)) & 1;`);
      if (op === 0xd3) {
        // A count of 0 (known only at run time) leaves every flag alone: the flags go to the CPU first, and
        // a nonzero count writes its own there as the interpreter does.
        this.syncNow();
        o.push('if (k !== 0) {', ...body);
        o.push(`c.lzOp = ${LZ_LOGIC}; c.lzRes = fr; c.lzBits = 32; c.flags = (c.flags & ${~ARITH}) | t | ${AF}; c.lzMask = ${SF | ZF | PF};`);
        if (mem) this.rmwStore(4, 'fr | 0'); else o.push(`${dst} = fr | 0;`);
        o.push('}');
      } else if (cnt !== '0') { // a memory operand shifted by 0 is still probed for writing (above), nothing else
        o.push(...body, `fx = t | ${AF};`);
        if (mem) this.rmwStore(4, 'fr | 0'); else o.push(`${dst} = fr | 0;`);
        this.setFlags({ op: LZ_LOGIC, bits: 32, lazy: SF | ZF | PF, expl: CF | OF | AF });
      }
      return this.done(idx, next);
    }
    if ((op === 0xc1 || op === 0xd1) && reg <= 1 && !mem) {
      // ROL/ROR r32 by a constant: only CF and OF change, so pending lazy flags are folded first.
      const cnt = op === 0xd1 ? 1 : d.imm & 31;
      if (cnt === 0) return this.done(idx, next);
      const r = this.r(rmr);
      if (reg === 0) o.push(`fy = (${r} << ${cnt}) | (${r} >>> ${32 - cnt}); ${r} = fy;`);
      else o.push(`fy = (${r} >>> ${cnt}) | (${r} << ${32 - cnt}); ${r} = fy;`);
      const fl = this.fl;
      this.setFlags({ op: fl.op, bits: fl.bits, lazy: fl.lazy & ~(CF | OF), expl: fl.expl | CF | OF, rot: reg === 0 ? 1 : 2 });
      return this.done(idx, next);
    }
    // SAHF: SF, ZF, AF, PF and CF from AH (SDM vol. 2B "SAHF"); OF stays where it is. Compilers test x87
    // comparisons with FNSTSW AX; SAHF; Jcc (busybox awk: two per loop iteration).
    if (op === 0x9e) {
      o.push(`t = ${this.get8(4)} & ${SF | ZF | AF | PF | CF};`);
      this.setExplicit(SF | ZF | AF | PF | CF);
      return this.done(idx, next);
    }
    // FNSTSW AX: the status word with TOP; a non-waiting control instruction, so only CR0.EM/TS fault (#NM),
    // as in ops-x87.ts.
    if (op === 0xdf && m === 0xe0 && !d.lock) {
      o.push(`if (c.cr0 & ${CR0_EM | CR0_TS}) ${this.trap(`c.fault(${EXC_NM});`)}`);
      o.push(`${this.r(0)} = (r0 & -65536) | c.fpu.statusWord;`);
      return this.done(idx, next);
    }
    // x87 register forms (FLD ST(i), FXCH, FSTP ST(i), arithmetic on ST(i)...) call the x87 code directly
    // (FR, x87RegDirect) like the memory forms below; those that read or write EFLAGS (FCMOVcc, FCOMI) find
    // the flags in the CPU. busybox awk made four each of D9 and DD register forms per loop iteration.
    if (op >= 0xd8 && op <= 0xdf && m >= 0xc0 && !d.lock) {
      if ((op === 0xda || op === 0xdb) && m < 0xe0 || (op === 0xdb || op === 0xdf) && m >= 0xe8 && m < 0xf8) this.syncNow();
      o.push(`c.prevEip = ${this.abs(d.eip)}; ${this.trap(`FR(c, ${op}, ${m});`)}`);
      return this.done(idx, next);
    }
    if (op >= 0xd8 && op <= 0xdf && x87DirectForm(op, m) && !d.lock) {
      // x87 loads, stores and arithmetic with a memory operand touch only the FPU and that operand: the
      // unit computes the offset and calls the x87 code directly (F), without writing back, re-decoding
      // and reloading as a monitor call does. A store into translated code leaves the unit after it.
      o.push(`o = ${this.ea(d)}; c.prevEip = ${this.abs(d.eip)}; ${this.trap(`F(c, ${op}, ${m}, ${this.segOf(d)}, o);`)}`);
      if ((op === 0xd9 || op === 0xdd) && reg >= 2) o.push(`if (J.codeChanged) ${this.exit(idx, this.abs(next), EXIT_SMC)}`);
      return this.done(idx, next);
    }
    if (op === 0x69 || op === 0x6b) {
      // IMUL r32, r/m32, imm32/imm8 (sign-extended by the decoder): as 0F AF below, with the immediate.
      let a: string;
      if (mem) { this.lin(this.segOf(d), this.ea(d), 4, false); o.push(`${this.load(4)}`); a = 'v'; } else a = this.r(rmr);
      o.push(`fa = ${a} | 0; fb = ${d.imm | 0}; fr = Math.imul(fa, fb); k = fa * fb;`);
      o.push(`t = (k >= -0x8000000000000 && k <= 0x8000000000000 ? k === fr : false) ? 0 : ${CF | OF}; ${this.r(reg)} = fr;`);
      o.push('fx = t;');
      this.setFlags({ op: LZ_LOGIC, bits: 32, lazy: SF | ZF | PF, expl: CF | OF | AF });
      return this.done(idx, next);
    }
    // CWDE, CDQ (the 16-bit CBW/CWD are monitor calls, see above).
    if (op === 0x98) { o.push(`${this.r(0)} = (r0 << 16) >> 16;`); return this.done(idx, next); }
    if (op === 0x99) { o.push(`${this.r(2)} = ${this.r(0)} >> 31;`); return this.done(idx, next); }
    // CLD/STD: DF is no arithmetic flag, so it lives in c.flags only, whatever the unit holds in locals.
    if (op === 0xfc || op === 0xfd) { o.push(op === 0xfc ? `c.flags &= ${~DF};` : `c.flags |= ${DF};`); return this.done(idx, next); }
    // REP STOSB / REP STOSD forwards within one page (a small memset: busybox awk makes ten per loop
    // iteration): one fill through the TLB. Otherwise (DF set, a page crossed, a page not writable in the
    // TLB or holding translated code) the interpreter does it as a monitor call, page by page. REPNE acts as
    // REP for STOS (SDM vol. 2B "REP/REPE/REPZ/REPNE/REPNZ"). Flat ES only: the address is EDI.
    if ((op === 0xaa || (op === 0xab && d.os32)) && d.rep !== 0 && d.as32 && !d.lock && (this.ctx.flat & 2)) {
      const size = op === 0xab ? 4 : 1;
      this.syncNow();
      this.guard |= 2;
      o.push(`k = ${this.r(1)} >>> 0; l = ${this.r(7)}; y = te[l >>> 12];`);
      o.push(`if ((c.flags & ${DF}) === 0 && k <= ${4096 / size} && (y & wm) && (l & 0xfff) + k * ${size} <= 0x1000) { h = (y & -4096) | (l & 0xfff);`);
      o.push(size === 1 ? `pool.fill(${this.r(0)} & 0xff, h, h + k);` : `for (t = 0; t < k; t++) dv.setInt32(h + 4 * t, ${this.r(0)}, true);`);
      o.push(`${this.r(7)} = (${this.r(7)} + k * ${size}) | 0; ${this.r(1)} = 0; } else {`);
      this.callout(d, idx, false);
      o.push('}');
      return this.done(idx, next);
    }
    // LODS, STOS, SCAS and MOVS without REP (32-bit addresses; the 16-bit-operand forms stay monitor calls):
    // one element, ESI/EDI moved by the element size, backwards when DF is set (it lives in c.flags).
    // The destination is always ES:EDI; the source DS:ESI or the override (SDM vol. 2B "LODS", "MOVS").
    if (STRING_INLINE.has(op) && d.rep === 0 && d.as32 && !d.lock && (!(op & 1) || d.os32)) {
      const form = op & 0xfe; // A4 MOVS, AA STOS, AC LODS, AE SCAS
      const bits = op & 1 ? 32 : 8, size = bits >> 3, seg = d.seg >= 0 ? d.seg : 3;
      const src = form === 0xa4 || form === 0xac, dst = form !== 0xac;
      if (src) { this.lin(seg, this.r(6), size, false); o.push(this.load(size)); }
      if (form === 0xac) o.push(this.regW(0, bits, 'v'));
      else if (form === 0xae) {
        this.lin(0, this.r(7), size, false);
        o.push(this.load(size));
        this.alu(7, this.regR(0, bits), this.vU(bits), bits);
      } else {
        o.push(`t = ${form === 0xa4 ? 'v' : bits === 32 ? this.r(0) : this.get8(0)};`);
        this.lin(0, this.r(7), size, true);
        this.store(size, 't');
      }
      o.push(`k = (c.flags & ${DF}) ? ${-size} : ${size};`);
      if (src) o.push('r6 = (r6 + k) | 0;');
      if (dst) o.push('r7 = (r7 + k) | 0;');
      return this.done(idx, next);
    }
    // RDTSC reads the clock and writes EAX/EDX only (its #GP under CR4.TSD is raised inside, before).
    if (op === 0x131 && !d.lock) {
      o.push(this.trap('c.rdtsc();'));
      o.push(`${this.r(0)} = R[0]; ${this.r(2)} = R[2];`);
      return this.done(idx, next);
    }
    if (op === 0x1af) {
      // IMUL r32, r/m32: the low half, CF=OF when it does not sign-extend to the full product (as the
      // interpreter decides it: the double product is exact up to 2^53).
      let b: string;
      if (mem) { this.lin(this.segOf(d), this.ea(d), 4, false); o.push(`${this.load(4)}`); b = 'v'; } else b = this.r(rmr);
      o.push(`fa = ${this.r(reg)}; fb = ${b}; fr = Math.imul(fa, fb); k = fa * fb;`);
      o.push(`t = (k >= -0x8000000000000 && k <= 0x8000000000000 ? k === fr : false) ? 0 : ${CF | OF}; r${reg} = fr;`);
      o.push('fx = t;');
      this.setFlags({ op: LZ_LOGIC, bits: 32, lazy: SF | ZF | PF, expl: CF | OF | AF });
      return this.done(idx, next);
    }
    if (op === 0xff && (reg <= 1 || reg === 6 || reg === 2 || reg === 4)) {
      if (reg <= 1) {
        const keep = this.keepCF();
        const ex = (a: string) => `${keep[0]}fa = ${a}; fb = 1; fr = (fa ${reg ? '-' : '+'} 1) ${MASKX(vbits)}; ${keep[1]}`;
        if (!mem) o.push(ex(this.regR(rmr, vbits)), this.regW(rmr, vbits, 'fr'));
        else { this.lin(this.segOf(d), this.ea(d), vbits >> 3, true); this.rmwLoad(vbits >> 3); o.push(ex(`(${this.vU(vbits)})`)); this.rmwStore(vbits >> 3, vbits === 32 ? 'fr | 0' : 'fr'); }
        this.setFlags({ op: reg ? LZ_SUB : LZ_ADD, bits: vbits, lazy: ARITH & ~CF, expl: keep[2] });
        return this.done(idx, next);
      }
      if (reg === 6 && !this.ctx.ss32) return 'no';
      if (reg === 2 && !this.ctx.ss32) return 'no';
      let src: string;
      if (mem) { this.lin(this.segOf(d), this.ea(d), 4, false); o.push(`${this.load(4)}`); src = 'v'; } else src = this.r(rmr);
      if (reg === 6) { this.push(src); return this.done(idx, next); }
      // CALL/JMP near indirect: the target is checked against the CS limit before anything is pushed.
      o.push(`k = ${src};`);
      if (this.ctx.csLimit !== 0xffffffff) o.push(`if ((k >>> 0) > ${this.ctx.csLimit}) ${this.trap('c.gp(0);')}`);
      if (reg === 2) {
        this.push(this.abs(next));
        if (this.stores) o.push(`if (cc) ${this.exit(idx, 'k', EXIT_SMC)}`);
      }
      o.push(this.exit(idx, 'k', EXIT_INDIRECT));
      this.inlined++;
      return 'end';
    }
    if (op === 0xf7 && reg <= 3) {
      const bits = vbits, size = bits >> 3, V = this.vU(bits);
      if (reg <= 1) {
        const imm = this.immU(d, bits);
        if (!mem) this.alu(4, this.regR(rmr, bits), imm, bits);
        else { this.lin(this.segOf(d), this.ea(d), size, false); o.push(`${this.load(size)}`); this.alu(4, V, imm, bits); }
        return this.done(idx, next);
      }
      // NOT (no flags) / NEG (flags of 0 - x).
      const not = bits === 32 ? '~' : '0xffff ^ ';
      if (!mem) {
        if (reg === 2) o.push(this.regW(rmr, bits, `(${not}${this.regR(rmr, bits)})`)); else { this.alu(5, '0', this.regR(rmr, bits), bits); o.push(this.regW(rmr, bits, 'fr')); }
      } else {
        this.lin(this.segOf(d), this.ea(d), size, true); this.rmwLoad(size);
        if (reg === 2) this.rmwStore(size, `${not}v`); else { this.alu(5, '0', V, bits); this.rmwStore(size, bits === 32 ? 'fr | 0' : 'fr'); }
      }
      return this.done(idx, next);
    }
    if ((op === 0x1ba && reg >= 4) || ((op === 0x1a3 || op === 0x1ab || op === 0x1b3 || op === 0x1bb) && !mem)) {
      // BT/BTS/BTR/BTC: CF = the selected bit, every other flag kept (a partial write, like a rotate). The
      // register-offset forms with a memory operand address a bit string and stay monitor calls.
      const bits = vbits, size = bits >> 3;
      const kind = op === 0x1ba ? reg - 4 : op === 0x1a3 ? 0 : op === 0x1ab ? 1 : op === 0x1b3 ? 2 : 3;
      const bit = op === 0x1ba ? String(d.imm & (bits - 1)) : `(${this.r(reg)} & ${bits - 1})`;
      const upd = (x: string) => (kind === 1 ? `(${x} | (1 << ${bit}))` : kind === 2 ? `(${x} & ~(1 << ${bit}))` : `(${x} ^ (1 << ${bit}))`) + (bits === 16 ? ' & 0xffff' : '');
      if (!mem) {
        o.push(`k = ${this.regR(rmr, bits)}; t = (k >>> ${bit}) & 1;`);
        if (kind !== 0) o.push(this.regW(rmr, bits, `(${upd('k')})`));
      } else {
        this.lin(this.segOf(d), this.ea(d), size, kind !== 0);
        if (kind !== 0) { this.rmwLoad(size); o.push(`t = (v >>> ${bit}) & 1;`); this.rmwStore(size, upd('v')); }
        else o.push(`${this.load(size)} t = (v >>> ${bit}) & 1;`);
      }
      this.setExplicit(CF);
      return this.done(idx, next);
    }
    if (op >= 0x1b6 && op <= 0x1bf && (op & 7) >= 6) {
      const size = op & 1 ? 2 : 1, sx = op >= 0x1be;
      let src: string;
      if (!mem) src = size === 1 ? this.get8(rmr) : `(${this.r(rmr)} & 0xffff)`;
      else { this.lin(this.segOf(d), this.ea(d), size, false); o.push(`${this.load(size)}`); src = 'v'; }
      o.push(`${this.r(reg)} = ${sx ? (size === 1 ? `(${src} << 24) >> 24` : `(${src} << 16) >> 16`) : src};`);
      return this.done(idx, next);
    }
    if (op >= 0x190 && op <= 0x19f) {
      const e = this.cond(op & 15);
      if (!mem) o.push(this.set8(rmr, `(${e} ? 1 : 0)`));
      else { o.push(`t = ${e} ? 1 : 0;`); this.lin(this.segOf(d), this.ea(d), 1, true); this.store(1, 't'); }
      return this.done(idx, next);
    }
    if (op >= 0x140 && op <= 0x14f) {
      if (!mem) o.push(`if ${this.cond(op & 15)} ${this.r(reg)} = ${this.r(rmr)};`);
      else { this.lin(this.segOf(d), this.ea(d), 4, false); o.push(`${this.load(4)} if ${this.cond(op & 15)} ${this.r(reg)} = v;`); }
      return this.done(idx, next);
    }
    // --- control transfers ---
    if ((op >= 0x70 && op <= 0x7f) || (op >= 0x180 && op <= 0x18f)) {
      const target = (next + d.imm) | 0;
      // Only the taken side is emitted: the builder either continues the unit with the fall-through
      // instruction (a superblock) or ends it with fallOut.
      const to = this.forward.get(idx);
      // A forward branch inside the unit skips the instructions up to its target: they are not counted.
      if (this.inverted.has(idx)) o.push(`if ${this.cond((op & 15) ^ 1)} { ${this.jumpTo(idx, next, loop)} }`);
      else if (to !== undefined) o.push(`if ${this.cond(op & 15)} { ${this.joinFlags(to)} n -= ${to - idx - 1}; break T${to}; }`);
      else {
        const slot = this.slots;
        o.push(`if ${this.cond(op & 15)} { ${this.jumpTo(idx, target, loop)} }`);
        if (this.slots > slot && (target !== this.ctx.entry || !loop)) this.jccAt[slot] = (d.eip - this.ctx.entry) | 0;
      }
      this.inlined++;
      return 'jcc';
    }
    if (op === 0xe9 || op === 0xeb) {
      this.inlined++;
      if (((next + d.imm) >>> 0) > this.ctx.csLimit) { o.push(this.trap('c.gp(0);')); return 'end'; }
      return 'jump';
    }
    if (op === 0xe8) {
      if (!this.ctx.ss32) return 'no';
      const target = (next + d.imm) | 0;
      if ((target >>> 0) > this.ctx.csLimit) { o.push(this.trap('c.gp(0);')); return 'end'; }
      this.push(this.abs(next));
      if (this.stores) this.out.push(`if (cc) ${this.exit(idx, this.abs(target), EXIT_SMC)}`);
      this.inlined++;
      return 'jump';
    }
    if (op === 0xc3 || op === 0xc2) {
      if (!this.ctx.ss32) return 'no';
      this.lin(2, this.r(4), 4, false);
      o.push(`${this.load(4)}`);
      if (this.ctx.csLimit !== 0xffffffff) o.push(`if ((v >>> 0) > ${this.ctx.csLimit}) ${this.trap('c.gp(0);')}`);
      o.push(`r4 = (r4 + ${4 + (op === 0xc2 ? d.imm : 0)}) | 0;`);
      this.inlined++;
      const ret = this.retTo.get(idx);
      if (ret !== undefined) {
        // The unit goes on at the return address of the CALL it followed, if that is what was popped.
        o.push(`if ((v | 0) !== ${this.abs(ret)}) ${this.exit(idx, 'v', EXIT_RET)}`);
        return 'cont';
      }
      o.push(this.exit(idx, 'v', EXIT_RET));
      return 'end';
    }
    return 'no';
  }

  /**
   * Instruction idx (at `eip`) is the first of another code page: the unit goes on only if that linear page
   * still maps to host page `host` (translated from there); otherwise it leaves for the dispatcher with
   * EIP = eip, as if it had ended before.
   */
  enterPage(idx: number, eip: number, host: number, csBase: number): void {
    this.out.push(`k = (${csBase} + ${this.abs(eip)}) >>> 12; y = te[k]; if (!((y & rm) && (y & -4096) === ${host})) { ${this.exit(idx - 1, this.abs(eip), EXIT_BRANCH)} }`);
  }

  /**
   * Opens the labelled block of forward branches to instruction `to`: they jump to the end of the block,
   * which `closeForward` puts just before that instruction.
   */
  openForward(to: number): void {
    this.out.push(`T${to}: {`);
  }
  /** The Jcc at `from` (emitted next) jumps to instruction `to`, inside an open block (openForward). */
  forwardBranch(from: number, to: number): void {
    this.forward.set(from, to);
  }
  /** The Jcc at `idx` (emitted next) leaves on its fall-through side; the unit goes on at its target. */
  invertJcc(idx: number): void {
    this.inverted.add(idx);
  }
  /** The RET at `idx` (emitted next) goes on in the unit at `ret` when it pops that address. */
  returnTo(idx: number, ret: number): void {
    this.retTo.set(idx, ret);
  }
  /** The JMP at `from`, just emitted, goes on at instruction `to` (see forwardBranch). */
  breakForward(from: number, to: number): void {
    this.out.push(`{ ${this.joinFlags(to)} n -= ${to - from - 1}; break T${to}; }`);
  }
  /**
   * A forward branch to instruction `to`: a placeholder for its flag write-back, decided when the block
   * closes (closeForward).
   */
  private joinFlags(to: number): string {
    const id = this.joinCode.length;
    this.joinCode.push('');
    let list = this.joins.get(to);
    if (list === undefined) { list = []; this.joins.set(to, list); }
    list.push({ id, fl: this.fl, code: this.syncCode() });
    return `/*J${id}*/`;
  }
  /**
   * Closes the innermost open forward block, which ends before instruction `to`. When every branch to it
   * left with the flags where the fall-through path has them (the same operation's operands in the same
   * locals, or the same explicit bits: e.g. a CMP, a Jcc, then only moves and stores), the flags stay in
   * the locals across the join. Otherwise both ways write them into the CPU first, as an exit does.
   * Flags written back at every join cost each `if` in a loop seven stores to the CPU object and made
   * the INC/DEC after it read CF back through the CPU.
   */
  closeForward(to: number): void {
    const list = this.joins.get(to) ?? [];
    this.joins.delete(to);
    const f = this.fl;
    const same = (g: FlagState) => g.lazy === f.lazy && g.expl === f.expl && (g.rot ?? 0) === (f.rot ?? 0) && (f.lazy === 0 || (g.op === f.op && g.bits === f.bits));
    if (list.every((b) => same(b.fl))) {
      this.out.push('}');
      return;
    }
    for (const b of list) this.joinCode[b.id] = b.code;
    this.syncNow();
    this.out.push('}');
  }

  /** The end of an unconditional direct jump/call not followed: loop or leave. */
  jumpOut(idx: number, target: number, loop: boolean): void {
    this.out.push(this.jumpTo(idx, target, loop));
  }

  private done(idx: number, next: number): 'cont' {
    this.inlined++;
    this.endInsn(idx, next);
    return 'cont';
  }

  private push(val: string): void {
    // As push32: the value is read first (PUSH ESP pushes the old ESP), ESP changes after the store.
    this.out.push(`t = ${val};`);
    this.lin(2, `(${this.r(4)} - 4) | 0`, 4, true);
    this.store(4, 't');
    this.out.push('r4 = o;');
  }

  /** The unit's code, to be wrapped in a function by unitSource or groupSource. */
  body(loop: boolean): UnitBody {
    const raw = this.out.join('\n').replace(/\/\*J(\d+)\*\//g, (_, i: string) => this.joinCode[Number(i)]);
    return { raw: loop ? `for (;;) {\n${raw}\n}` : raw, used: [...this.used], guard: this.guard };
  }

  /** The complete function source. `loop`: the body is wrapped in a loop (a back edge to the entry). */
  finish(loop: boolean): string {
    return unitSource(this.body(loop), (this.ctx.entry >>> 0).toString(16));
  }
}

/**
 * Whether generated code may go on after `done` instructions without returning to the dispatcher (a loop's
 * back edge, a group's transfer): the checks the dispatcher makes between two units.
 */
const mayGoOn = (done: string) => `${done} < budget && !c.stopSlice && !c.nmiPending && !(c.intr && (c.flags & ${IF}))`;

/** A unit's code before it becomes a function: placeholders for register write-back and the guard remain. */
export interface UnitBody {
  raw: string;
  /** Registers the code reads or writes (as locals r0..r7). */
  used: number[];
  /** The CPU.flatSegs bits the code assumes. */
  guard: number;
}

/** The declarations and placeholder values shared by unit and group functions. */
function frame(raw: string, used: number[], guard: number): { body: string; decl: string; wb: string; guardLine: string } {
  const regs = [...new Set(used)].sort();
  // Only registers the unit assigns are written back: the others still equal c.r32 (loaded at entry and
  // reloaded after every monitor call).
  const assigned = new Set([...raw.matchAll(/\br([0-7]) = /g)].map((m) => Number(m[1])));
  const wb = regs.filter((r) => assigned.has(r)).map((r) => `R[${r}] = r${r};`).join(' ');
  const rl = regs.map((r) => `r${r} = R[${r}];`).join(' ');
  // Fault handlers pass all eight registers to J.fault when the unit assigns any (the others unchanged).
  const wa = wb === '' ? '' : `, ${[0, 1, 2, 3, 4, 5, 6, 7].map((r) => (assigned.has(r) && regs.includes(r) ? `r${r}` : `R[${r}]`)).join(', ')}`;
  const body = raw.replaceAll('/*WB*/', wb).replaceAll('/*WA*/', wa).replaceAll('/*RL*/', rl).replaceAll('/*G*/0', String(guard));
  const decl = regs.length ? `let ${regs.map((r) => `r${r} = R[${r}]`).join(', ')};` : '';
  // The segments the code treats as flat (see lin) must still be: otherwise the dispatcher interprets.
  const guardLine = guard ? `if ((c.flatSegs & ${guard}) !== ${guard}) return -1;\n` : '';
  return { body, decl, wb, guardLine };
}

const LOCALS = 'let n = 0, cc = false, o = 0, l = 0, h = 0, v = 0, t = 0, k = 0, fa = 0, fb = 0, fr = 0, fx = 0, fy = 0, y = 0, fc = 0, e = 0, q = 0, x = 0';
const CONSTS = 'const R = c.r32, te = c.tlbEntry, dv = c.dv, pool = c.pool, sf = c.segFast, sb = c.segBase, rm = c.rdMask, wm = c.wrMask;';

/** The source of one unit's function. */
export function unitSource(u: UnitBody, name: string): string {
  const f = frame(u.raw, u.used, u.guard);
  // The parentheses make V8 compile the unit's body while it parses the source (its heuristic for a
  // function expression called at once) instead of pre-parsing it now and parsing it again at the first
  // call, which always comes right away: ~20% less parse and compile time per unit (docs/jit.md).
  return `'use strict';
return (function unit_${name}(c, J, budget) {
${f.guardLine}${CONSTS}
${f.decl}
const E = c.eip;
${LOCALS};
out: {
${f.body}
}
${f.wb} c.eip = e | 0; X[x]++; return n + q;
});`;
}

/** A unit inside a group function (Jit.group). */
export interface GroupMember {
  body: UnitBody;
  /** Its entry EIP minus the group's (the root's). */
  delta: number;
  /** The host page of its entry. */
  page: number;
  /** Members (indexes) its exits may lead to. */
  to: number[];
  /** Its code may end right after STI, in the interrupt shadow: then it never goes on to another member. */
  shadow: boolean;
}

/**
 * The source of a group: several units in one function, entered at the first. Registers stay in locals
 * from one member to the next; an exit whose target is the entry of a member it is known to lead to (and
 * whose linear page still maps to that member's host page) goes on there instead of returning to the
 * dispatcher, after the checks the dispatcher makes between two units (budget, stopSlice, NMI,
 * interrupts). Flags are written back at every exit as for a unit, so each member starts with them in the CPU.
 */
export function groupSource(ms: GroupMember[], csBase: number, name: string): string {
  const chainable = [EXIT_BRANCH, EXIT_RET, EXIT_INDIRECT, EXIT_END].map((r) => `x === ${r}`).join(' || ');
  const raw = ms.map((m, i) => {
    const cases = m.shadow ? [] : m.to.map((j) => `case ${ms[j].delta}: y = te[((${csBase} + e) | 0) >>> 12]; if ((y & rm) !== 0 && (y & -4096) === ${ms[j].page}) { E = e | 0; b = ${j}; X[${EXIT_GROUP}]++; continue grp; } break;`);
    const transfer = cases.length === 0 ? '' :
      `if ((${chainable}) && ${mayGoOn('n + q')}) { n += q; q = 0; switch ((e - E0) | 0) {\n${cases.join('\n')}\n} }\n`;
    return `case ${i}: {\nout: {\n${m.body.raw}\n}\n${transfer}break grp; }`;
  }).join('\n');
  const f = frame(raw, ms.flatMap((m) => m.body.used), ms.reduce((g, m) => g | m.body.guard, 0));
  return `'use strict';
return (function group_${name}(c, J, budget) {
${f.guardLine}${CONSTS}
${f.decl}
let E = c.eip;
const E0 = E;
${LOCALS}, sl = -1, b = 0;
grp: for (;;) {
switch (b) {
${f.body}
}
break;
}
${f.wb} c.eip = e | 0; X[x]++; J.ex = sl; return n + q;
});`;
}
