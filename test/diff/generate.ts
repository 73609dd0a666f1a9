// Turns one row of the form table into a concrete, edge-biased test case.
//
// Order of work for a case: random registers and flags -> lay out the byte
// template (ModRM/SIB/displacement/immediates chosen at random) -> the form's
// `setup` pins registers it needs (stack pointer, counts...) -> memory
// operands are solved so the effective address lands in a mapped area ->
// branch displacements are aimed at landing pads -> the form's `fix` makes
// interesting relations happen (equal compares, non-overflowing divides).

import { AREA, CODE_AT, CODE_HI, CODE_LO, DATA_AT, SLOT, STACK_AT, type CaseInput, type Patch } from './format.ts';
import { Rng, edge, edgeReg } from './rng.ts';

export type Category =
  | 'integer-alu'
  | 'integer-muldiv'
  | 'integer-shift'
  | 'integer-bit'
  | 'integer-move'
  | 'integer-stack'
  | 'integer-string'
  | 'integer-bcd'
  | 'integer-misc'
  | 'control'
  | 'fault'
  | 'x87'
  | 'mmx'
  | 'sse'
  | 'sse2';

/**
 * One row per instruction form.
 *
 * Template tokens (space separated):
 *   `8B`       a literal byte
 *   `50+r`     byte plus a random register number (g.opreg)
 *   `70+cc`    byte plus a random condition code (g.cc)
 *   `/r`       ModRM with random reg and r/m fields; `/0`..`/7` fix the reg
 *              field; a `:m` or `:r` suffix restricts r/m to memory or to a
 *              register (e.g. `/r:m`, `/1:m`)
 *   `ib iw id` immediates (edge-biased; `setup`/`fix` may overwrite them)
 *   `cb cd`    relative branch displacement (aimed at a landing pad)
 *   `md`       32-bit absolute memory offset (MOV moffs)
 * A leading 0x67 prefix selects 16-bit addressing, which is used without a
 * memory access only (LEA): the low 64 KiB are not mapped in this layout.
 */
export interface Form {
  name: string; // readable, e.g. 'add r/m32, imm8'
  mnem: string; // key of the UNDEFINED table (and of the per-mnemonic statistics)
  cat: Category;
  t: string; // byte template
  os: number; // operand size in bits (drives value biasing and flag masks)
  mem?: number; // bytes accessed by the r/m memory operand (default os/8)
  noAccess?: boolean; // memory form that computes an address only (LEA)
  align?: number; // probability the memory operand is aligned to its size (default 0.5)
  setup?: (g: Gen) => void;
  fix?: (g: Gen) => void;
  memval?: (g: Gen) => Uint8Array; // initial value of the memory operand
  fpu?: (g: Gen) => void; // build the FXSAVE input image (FPU/SIMD forms)
  weight?: number; // relative share of cases (default 1)
  /** byte ranges [from, to) of the memory operand whose stored contents are implementation-specific */
  memSkip?: [number, number][];
  /** results the SDM bounds only by an accuracy (x87 transcendentals, SDM vol. 1 §8.3.10): the listed
   *  ST slots may differ by `ulp` units in the last place and the `fsw` bits are not compared */
  approx?: { st: number[]; ulp: number; fsw: number };
}

export interface ModRM {
  pos: number; // index of the ModRM byte in g.bytes
  mod: number;
  reg: number;
  rm: number;
  mem: boolean;
  base: number; // -1 = none
  index: number; // -1 = none
  scale: number; // 1, 2, 4, 8
  dispPos: number;
  dispSize: number; // 0, 1, 2 (16-bit addressing) or 4
}

/** A generated case: the input both CPUs get, plus what the comparison needs to know. */
export interface Case extends CaseInput {
  form: Form;
  count?: number;
  ea: number; // effective address of the memory operand, -1 if none
  windows: [number, number][]; // memory ranges the vCPU side reads back
}

export const REG_MASK32 = 0xffffffff;
const SEG_PREFIXES = new Set([0x26, 0x2e, 0x36, 0x3e]);

/** Thrown when a case's constraints collide; the generator starts the case over. */
export class Retry extends Error {}

function inAreas(addr: number, len: number): boolean {
  return [DATA_AT, STACK_AT].some((at) => addr >= at && addr + len <= at + AREA);
}

export class Gen {
  readonly gpr = new Uint32Array(8);
  readonly pinned = new Array<boolean>(8).fill(false);
  readonly addrRegs = new Set<number>();
  eflags: number;
  fx: Uint8Array | null = null;
  readonly patches: Patch[] = [];
  bytes: number[] = [];
  modrm: ModRM | null = null;
  opreg = -1;
  cc = -1;
  readonly imms: { pos: number; size: number }[] = [];
  rel: { pos: number; size: number } | null = null;
  moffsPos = -1;
  addr16 = false;
  count: number | undefined;
  ea = -1;
  /** bytes around the effective address the instruction may touch, relative to it */
  span: [number, number];
  /** region the memory operand should land in */
  region = DATA_AT;
  /** forms that aim a branch set this (default: a random landing pad) */
  target = -1;
  readonly windows: [number, number][] = [];

  constructor(
    readonly r: Rng,
    readonly form: Form,
    readonly fxDefault: Uint8Array,
    private readonly pristine: { data: Uint8Array; stack: Uint8Array },
  ) {
    for (let i = 0; i < 8; i++) this.gpr[i] = edgeReg(r, form.os === 8 ? 8 : form.os === 16 ? 16 : 32);
    // The arithmetic flags at random, DF sometimes; IF and bit 1 are what
    // user mode always runs with.
    this.eflags = 0x202 | (r.u32() & 0x8d5) | (r.chance(0.2) ? 0x400 : 0);
    const size = this.memSize();
    this.span = [0, size];
  }

  memSize(): number {
    return this.form.mem ?? Math.max(1, this.form.os / 8);
  }

  // ---- registers ----------------------------------------------------------

  /** Value of register `i` seen as a `bits`-wide operand (8-bit: AL..BH). */
  reg(i: number, bits: number): number {
    if (bits === 8) return i < 4 ? this.gpr[i] & 0xff : (this.gpr[i - 4] >>> 8) & 0xff;
    if (bits === 16) return this.gpr[i] & 0xffff;
    return this.gpr[i];
  }

  /** Sets a (sub)register unless it is pinned or forms an address; returns whether it did. */
  setReg(i: number, bits: number, v: number): boolean {
    const full = bits === 8 && i >= 4 ? i - 4 : i;
    if (this.pinned[full] || this.addrRegs.has(full)) return false;
    if (bits === 8) {
      if (i < 4) this.gpr[i] = ((this.gpr[i] & ~0xff) | (v & 0xff)) >>> 0;
      else this.gpr[i - 4] = ((this.gpr[i - 4] & ~0xff00) | ((v & 0xff) << 8)) >>> 0;
    } else if (bits === 16) this.gpr[i] = ((this.gpr[i] & 0xffff0000) | (v & 0xffff)) >>> 0;
    else this.gpr[i] = v >>> 0;
    return true;
  }

  /** Fixes a full register's value for the rest of generation. */
  pin(i: number, v: number): void {
    if (this.pinned[i]) throw new Retry();
    this.gpr[i] = v >>> 0;
    this.pinned[i] = true;
  }

  /** Points a register (ESP by default) into the stack area with `room` bytes of slack either way. */
  pinStack(i = 4, room = 64, aligned = 0.85): number {
    let v = STACK_AT + this.r.range(room + 16, AREA - room - 16);
    if (this.r.chance(aligned)) v &= ~3;
    this.pin(i, v);
    return v;
  }

  /** Points a register into the data area with `room` bytes of slack either way. */
  pinData(i: number, room = 64): number {
    let v = DATA_AT + this.r.range(room + 16, AREA - room - 16);
    if (this.r.chance(0.5)) v &= ~3;
    this.pin(i, v);
    return v;
  }

  // ---- memory -------------------------------------------------------------

  readMem(addr: number, n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let k = 0; k < n; k++) {
      const a = (addr + k) >>> 0;
      let v: number;
      if (a >= DATA_AT && a < DATA_AT + AREA) v = this.pristine.data[a - DATA_AT];
      else if (a >= STACK_AT && a < STACK_AT + AREA) v = this.pristine.stack[a - STACK_AT];
      else throw new Error(`readMem outside the areas: ${a.toString(16)}`);
      for (const p of this.patches) if (a >= p.addr && a < p.addr + p.bytes.length) v = p.bytes[a - p.addr];
      out[k] = v;
    }
    return out;
  }

  readU(addr: number, bytes: number): number {
    const b = this.readMem(addr, bytes);
    let v = 0;
    for (let k = Math.min(bytes, 4) - 1; k >= 0; k--) v = v * 256 + b[k];
    return v >>> 0;
  }

  patch(addr: number, bytes: Uint8Array): void {
    if (this.patches.length >= 64) throw new Retry();
    if (!inAreas(addr, bytes.length)) throw new Error(`form ${this.form.name}: memory patch at ${addr.toString(16)} is outside the areas`);
    this.patches.push({ addr: addr >>> 0, bytes });
    this.window(addr, bytes.length);
  }

  patchU(addr: number, bytes: number, v: number): void {
    const b = new Uint8Array(bytes);
    for (let k = 0; k < bytes; k++) b[k] = k < 4 ? (v >>> (8 * k)) & 0xff : 0;
    this.patch(addr, b);
  }

  window(addr: number, len: number, slack = 16): void {
    this.windows.push([(addr - slack) >>> 0, len + 2 * slack]);
  }

  // ---- the r/m operand ------------------------------------------------------

  isMem(): boolean {
    return this.modrm?.mem ?? false;
  }

  /** Value of the r/m operand (register or memory), `bits` wide. */
  rm(bits = this.form.os): number {
    const m = this.modrm!;
    if (!m.mem) return this.reg(m.rm, bits);
    return this.readU(this.ea, bits / 8);
  }

  setRm(v: number, bits = this.form.os): boolean {
    const m = this.modrm!;
    if (!m.mem) return this.setReg(m.rm, bits, v);
    this.patchU(this.ea, bits / 8, v);
    return true;
  }

  /** The ModRM reg field's register value. */
  regf(bits = this.form.os): number {
    return this.reg(this.modrm!.reg, bits);
  }

  // ---- code bytes -----------------------------------------------------------

  setImm(k: number, v: number): void {
    const im = this.imms[k];
    for (let b = 0; b < im.size; b++) this.bytes[im.pos + b] = (v >>> (8 * b)) & 0xff;
  }

  imm(k: number): number {
    const im = this.imms[k];
    let v = 0;
    for (let b = im.size - 1; b >= 0; b--) v = v * 256 + this.bytes[im.pos + b];
    return v;
  }

  /** A random landing-pad address reachable by a displacement of `size` bytes from `next`. */
  landingPad(next: number, size: number): number {
    const lo = Math.max(CODE_LO, size === 1 ? next - 128 : CODE_LO);
    const hi = Math.min(CODE_HI - SLOT, size === 1 ? next + 127 : CODE_HI - SLOT);
    for (;;) {
      const t = (lo + this.r.int(hi - lo + 1) + SLOT - 1) & ~(SLOT - 1);
      // The instruction and its fall-through pad occupy the first two slots.
      if (t > hi || (t >= CODE_AT && t < CODE_AT + 2 * SLOT)) continue;
      return t;
    }
  }

  anyLandingPad(): number {
    return this.landingPad(CODE_AT, 4);
  }

  // ---- template expansion ---------------------------------------------------

  expand(): void {
    const toks = this.form.t.trim().split(/\s+/);
    let prefixes = true;
    for (const tok of toks) {
      // `cb`/`cd` are also hex bytes: the keywords are lower case, literal bytes upper case.
      const m = /^([0-9A-F]{2})(\+r|\+cc)?$/.exec(tok);
      if (m) {
        let b = parseInt(m[1], 16);
        if (prefixes && b === 0x67) this.addr16 = true;
        if (!(b === 0x66 || b === 0x67 || b === 0xf0 || b === 0xf2 || b === 0xf3 || SEG_PREFIXES.has(b))) prefixes = false;
        if (m[2] === '+r') b += this.opreg = this.r.int(8);
        else if (m[2] === '+cc') b += this.cc = this.r.int(16);
        this.bytes.push(b);
        continue;
      }
      const mm = /^\/([r0-7])(?::([mr]))?$/.exec(tok);
      if (mm) {
        this.layoutModrm(mm[1] === 'r' ? this.r.int(8) : Number(mm[1]), mm[2]);
        continue;
      }
      switch (tok) {
        case 'ib':
        case 'iw':
        case 'id': {
          const size = tok === 'ib' ? 1 : tok === 'iw' ? 2 : 4;
          this.imms.push({ pos: this.bytes.length, size });
          const v = edge(this.r, size * 8);
          for (let b = 0; b < size; b++) this.bytes.push((v >>> (8 * b)) & 0xff);
          break;
        }
        case 'cb':
        case 'cd':
          this.rel = { pos: this.bytes.length, size: tok === 'cb' ? 1 : 4 };
          for (let b = 0; b < this.rel.size; b++) this.bytes.push(0);
          break;
        case 'md':
          this.moffsPos = this.bytes.length;
          this.bytes.push(0, 0, 0, 0);
          break;
        default:
          throw new Error(`form ${this.form.name}: bad template token ${tok}`);
      }
    }
    if (this.bytes.length > 15) throw new Error(`form ${this.form.name}: longer than 15 bytes`);
  }

  private layoutModrm(reg: number, only: string | undefined): void {
    const r = this.r;
    const mem = only === 'm' ? true : only === 'r' ? false : r.chance(0.5);
    const pos = this.bytes.length;
    const m: ModRM = { pos, mod: 3, reg, rm: r.int(8), mem, base: -1, index: -1, scale: 1, dispPos: -1, dispSize: 0 };
    if (mem) {
      m.mod = r.int(3);
      if (this.addr16) {
        // 16-bit forms: [bx+si] [bx+di] [bp+si] [bp+di] [si] [di] [bp]/disp16 [bx]
        this.bytes.push((m.mod << 6) | (reg << 3) | m.rm);
        m.dispSize = m.mod === 1 ? 1 : m.mod === 2 || (m.mod === 0 && m.rm === 6) ? 2 : 0;
      } else {
        this.bytes.push((m.mod << 6) | (reg << 3) | m.rm);
        if (m.rm === 4) {
          const scale = r.int(4), index = r.int(8), base = r.int(8);
          this.bytes.push((scale << 6) | (index << 3) | base);
          m.scale = 1 << scale;
          m.index = index === 4 ? -1 : index;
          m.base = base === 5 && m.mod === 0 ? -1 : base;
          m.dispSize = m.mod === 1 ? 1 : m.mod === 2 || (base === 5 && m.mod === 0) ? 4 : 0;
        } else if (m.rm === 5 && m.mod === 0) {
          m.dispSize = 4;
        } else {
          m.base = m.rm;
          m.dispSize = m.mod === 1 ? 1 : m.mod === 2 ? 4 : 0;
        }
      }
      m.dispPos = this.bytes.length;
      for (let k = 0; k < m.dispSize; k++) this.bytes.push(r.u32() & 0xff);
    } else {
      this.bytes.push(0xc0 | (reg << 3) | m.rm);
    }
    this.modrm = m;
  }

  private putDisp(d: number): void {
    const m = this.modrm!;
    for (let k = 0; k < m.dispSize; k++) this.bytes[m.dispPos + k] = (d >>> (8 * k)) & 0xff;
  }

  private inArea(ea: number): boolean {
    const lo = (ea + this.span[0]) >>> 0, hi = ea + this.span[1];
    for (const at of [DATA_AT, STACK_AT, this.region]) if (lo >= at + 8 && hi <= at + AREA - 8 && lo <= hi) return true;
    return false;
  }

  /** Chooses base/index/displacement so the memory operand lands in `region`. */
  solveAddress(): void {
    const m = this.modrm!;
    const r = this.r;
    const size = this.span[1] - this.span[0];
    let t = this.region + r.range(Math.max(0, -this.span[0]) + 16, AREA - this.span[1] - 16);
    const align = Math.min(16, this.memSize());
    if (r.chance(this.form.align ?? 0.5)) t -= t % align;
    if (size > AREA - 64) throw new Error(`form ${this.form.name}: span too large`);
    const s = m.scale;
    const b = m.base, x = m.index;
    const free = (i: number) => i >= 0 && !this.pinned[i];
    const pickIndex = () => {
      const k = r.int(10);
      if (k < 4) return r.range(-16, 16) >>> 0;
      if (k < 6) return r.pick([0, 1, 0xffffffff, 0x80000000, 0x7fffffff, 0x100]);
      return r.u32();
    };
    const pickDisp = (): number => {
      if (m.dispSize === 1) return (r.chance(0.5) ? r.pick([0, -1, 1, 127, -128, 4, -4]) : r.range(-128, 127)) | 0;
      if (m.dispSize === 0) return 0;
      const k = r.int(10);
      if (k < 4) return r.range(-256, 256) | 0;
      if (k < 7) return (this.region + r.range(-0x100, 0x100)) | 0;
      return r.u32() | 0;
    };
    let d = 0;
    if (b >= 0 && b === x) {
      if (this.pinned[b]) {
        const ea0 = Math.imul(this.gpr[b], s + 1);
        d = this.fitDisp(ea0, t);
      } else {
        d = m.dispSize ? (m.dispSize === 1 ? pickDisp() : r.range(-256, 256)) : 0;
        const v = Math.floor((t - d) / (s + 1));
        this.gpr[b] = v >>> 0;
      }
    } else {
      if (x >= 0 && free(x) && !(b >= 0 && this.pinned[b])) this.gpr[x] = pickIndex();
      if (b < 0) {
        // Displacement only (plus an index): the displacement absorbs the rest.
        if (x >= 0 && !free(x)) d = (t - Math.imul(this.gpr[x], s)) | 0;
        else d = (t - (x >= 0 ? Math.imul(this.gpr[x], s) : 0)) | 0;
      } else if (free(b)) {
        d = pickDisp();
        this.gpr[b] = (t - (x >= 0 ? Math.imul(this.gpr[x], s) : 0) - d) >>> 0;
      } else if (x >= 0 && free(x)) {
        d = m.dispSize === 1 ? r.range(-128, 127) : m.dispSize === 4 ? r.range(-256, 256) : 0;
        let diff = (t - this.gpr[b] - d) >>> 0;
        diff -= diff % s;
        this.gpr[x] = (diff / s) >>> 0;
      } else {
        d = this.fitDisp((this.gpr[b] + (x >= 0 ? Math.imul(this.gpr[x], s) : 0)) >>> 0, t);
      }
    }
    this.putDisp(d);
    if (b >= 0) this.addrRegs.add(b);
    if (x >= 0) this.addrRegs.add(x);
    const ea = ((b >= 0 ? this.gpr[b] : 0) + (x >= 0 ? Math.imul(this.gpr[x], s) : 0) + d) >>> 0;
    if (!this.inArea(ea)) throw new Retry();
    this.ea = ea;
    this.window(ea + this.span[0], size);
  }

  /** Displacement that moves a fixed `ea0` to `t` if the displacement size allows, else a random one. */
  private fitDisp(ea0: number, t: number): number {
    const m = this.modrm!;
    const want = (t - ea0) | 0;
    if (m.dispSize === 4) return want;
    if (m.dispSize === 1) return want >= -128 && want <= 127 ? want : this.r.range(-128, 127);
    return 0;
  }

  build(): Case {
    const f = this.form;
    this.expand();
    f.setup?.(this);
    const m = this.modrm;
    if (m?.mem && !this.addr16 && !f.noAccess) this.solveAddress();
    else if (m?.mem && !f.noAccess) throw new Error(`form ${f.name}: 16-bit addressing needs noAccess`);
    if (this.moffsPos >= 0) {
      const t = this.region + this.r.range(16, AREA - 32);
      for (let k = 0; k < 4; k++) this.bytes[this.moffsPos + k] = (t >>> (8 * k)) & 0xff;
      this.ea = t;
      this.window(t, this.memSize());
    }
    if (this.ea >= 0 && inAreas(this.ea, this.memSize()) && this.r.chance(0.7)) {
      this.patch(this.ea, f.memval ? f.memval(this) : this.edgeBytes(this.memSize()));
    }
    if (this.rel) {
      const next = CODE_AT + this.bytes.length;
      const tgt = this.target >= 0 ? this.target : this.landingPad(next, this.rel.size);
      const disp = (tgt - next) | 0;
      for (let k = 0; k < this.rel.size; k++) this.bytes[this.rel.pos + k] = (disp >>> (8 * k)) & 0xff;
    }
    f.fpu?.(this);
    f.fix?.(this);
    // The stack around ESP: pushes, pops and calls land there.
    if (this.pinned[4]) this.window(this.gpr[4] - 160, 320, 0);
    return {
      form: f,
      gpr: this.gpr,
      eflags: this.eflags,
      code: Uint8Array.from(this.bytes),
      patches: this.patches,
      fx: this.fx,
      count: this.count,
      ea: this.ea,
      windows: this.windows,
    };
  }

  edgeBytes(n: number): Uint8Array {
    const b = new Uint8Array(n);
    const dv = new DataView(b.buffer);
    if (n === 1) b[0] = edge(this.r, 8);
    else if (n === 2) dv.setUint16(0, edge(this.r, 16), true);
    else for (let k = 0; k + 4 <= n; k += 4) dv.setUint32(k, edge(this.r, 32), true);
    if (n % 4 && n > 2) for (let k = n - (n % 4); k < n; k++) b[k] = this.r.u32() & 0xff;
    return b;
  }
}

/** Generates one case of `form`, retrying when its constraints collide. */
export function generate(r: Rng, form: Form, fxDefault: Uint8Array, pristine: { data: Uint8Array; stack: Uint8Array }): Case {
  for (let attempt = 0; attempt < 200; attempt++) {
    try {
      return new Gen(r, form, fxDefault, pristine).build();
    } catch (e) {
      if (!(e instanceof Retry)) throw e;
    }
  }
  throw new Error(`form ${form.name}: cannot satisfy its constraints`);
}
