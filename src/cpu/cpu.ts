// The vCPU: architectural state, instruction fetch, ModRM decoding, segmented and paged memory access
// through a TLB, lazy arithmetic flags, and the run loop with precise exceptions.
//
// Instruction semantics live in the op-table files (ops-*.ts) that fill `ops1`/`ops2`; system behaviour
// (descriptor loads, interrupt delivery, task switches) in system.ts. This file is the machinery they share.

import {
  AC, AF, ARITH, CF, CR0_MP, CR0_TS, EXC_MF, EXC_NM, CR0_PE, CR0_PG, CR0_WP, CR4_PGE, CR4_PSE, CR4_TSD, CS, DF, DS, EXC_CONTRIBUTORY, EXC_DB, EXC_DF,
  EXC_GP, EXC_HAS_ERROR, EXC_PF, EXC_SS, FLAGS_FIXED1, FLAGS_IMPLEMENTED, IF, OF, PF, SF, SS, TF, VM, ZF,
} from './constants.ts';
import type { GuestMemory } from '../memory/guest-memory.ts';
import { NO_PORTS, type InterruptSource, type PortBus } from './bus.ts';
import { ops1 } from './optable.ts';
import './ops.ts';
import { deliverInterrupt, loadSegmentReal } from './system.ts';
import { X87 } from './x87-state.ts';
import { SseState } from './sse-state.ts';

/** Thrown by an instruction to raise an exception; the run loop restores EIP and delivers it. */
export class CpuFault {
  /** Whether the exception pushes an error code follows from its vector (SDM vol. 3A Table 6-1). */
  readonly hasCode: boolean;
  constructor(readonly vector: number, readonly code: number = 0) {
    this.hasCode = ((EXC_HAS_ERROR >> vector) & 1) === 1;
  }
}

/** Raised (thrown) when the vCPU stops for a reason the machine must handle (triple fault, shutdown). */
export class CpuStop extends Error {
  constructor(readonly reason: 'triple-fault' | 'shutdown', message: string) { super(message); }
}

// TLB entry flags. An entry allows the fast path for an access only if the bit for that access kind is set.
const TLB_VALID = 1;
const TLB_RS = 2; // supervisor read
const TLB_WS = 4; // supervisor write
const TLB_RU = 8; // user read
const TLB_WU = 16; // user write
const TLB_GLOBAL = 32;
const TLB_LIST_MAX = 1 << 16;

// Lazy-flag operation kinds: which formula derives CF/AF/OF from (a, b, result).
export const LZ_ADD = 0, LZ_ADC = 1, LZ_SUB = 2, LZ_SBB = 3, LZ_LOGIC = 4;

// Segment access-rights word (descriptor bits 40..55 shifted down by 8, SDM vol. 3A §3.4.5) plus our flag.
export const AR_UNUSABLE = 1 << 16;

const PARITY = new Uint8Array(256);
for (let i = 0; i < 256; i++) {
  let b = i, p = 1;
  while (b) { p ^= b & 1; b >>= 1; }
  PARITY[i] = p ? PF : 0;
}

export interface CpuHooks {
  /** Called instead of delivering an exception; return true if it was handled (tests, user-mode runner). */
  exception?(vector: number, code: number): boolean;
  /** Software INT n; return true if handled by the host (user-mode syscall emulation). */
  softInt?(vector: number): boolean;
  /** SYSENTER executed; return true if handled by the host. */
  sysenter?(): boolean;
  /** IA32_APIC_BASE was written (the local APIC's global enable follows bit 11). */
  apicBase?(value: bigint): void;
}

export class CPU {
  // General registers, with byte and word views (host is little-endian, like x86).
  readonly r32 = new Int32Array(8);
  readonly r16 = new Uint16Array(this.r32.buffer);
  readonly r8 = new Uint8Array(this.r32.buffer);

  eip = 0;
  /** EIP of the instruction being executed: where a fault restarts. */
  prevEip = 0;

  // EFLAGS: non-arithmetic bits always here; arithmetic bits here unless pending in lzMask.
  flags = FLAGS_FIXED1;
  lzMask = 0;
  lzOp = 0;
  lzA = 0;
  lzB = 0;
  lzRes = 0;
  lzBits = 32;
  lzCin = 0;
  /** Sets the pending lazy flags in one call (the translator's fault handlers: src/jit/codegen.ts). */
  lzSet(op: number, a: number, b: number, res: number, bits: number, mask: number): void {
    this.lzOp = op; this.lzA = a; this.lzB = b; this.lzRes = res; this.lzBits = bits; this.lzMask = mask;
  }

  // Segment registers and their descriptor caches.
  readonly sreg = new Uint16Array(6);
  readonly segBase = new Int32Array(6);
  readonly segLimit = new Uint32Array(6);
  readonly segAr = new Int32Array(6);
  /** Per segment: bit 0 = reads need no checks, bit 1 = writes need no checks (limit 4 GiB, expand-up). */
  readonly segFast = new Uint8Array(6);

  gdtBase = 0; gdtLimit = 0xffff;
  idtBase = 0; idtLimit = 0x3ff;
  ldtSel = 0; ldtBase = 0; ldtLimit = 0xffff;
  trSel = 0; trBase = 0; trLimit = 0xffff; trAr = 0x8b;

  cr0 = 0x60000010;
  cr2 = 0;
  cr3 = 0;
  cr4 = 0;
  readonly dr = new Int32Array(8);
  cpl = 0;

  // Per-instruction decode state.
  os32 = false;
  as32 = false;
  /** Default operand/address size of the current code segment (CS.D). */
  cs32 = false;
  /** Stack width from SS.B. */
  ss32 = false;
  segOverride = -1;
  /** 0, 0xF2 (REPNE) or 0xF3 (REP/REPE). */
  rep = 0;
  lock = false;
  /** Segment of the last effective address computed by `ea`. */
  eaSeg = DS;
  modrm = 0;

  // Run state.
  halted = false;
  /** Set by instructions that must end the current run slice (HLT, mode changes the caller should see). */
  stopSlice = false;
  /** The INTR line; the machine sets it and supplies `intSource`. */
  intr = false;
  nmiPending = false;
  inhibitIrq = false;
  intSource: InterruptSource | null = null;
  instructions = 0;
  tscOffset = 0n;
  hooks: CpuHooks = {};

  readonly msr = new Map<number, bigint>();
  /** Optional hardware the machine wires to this vCPU (CPUID and MSRs report it). */
  features = { apic: false };
  apicBase = 0xfee00900n;
  readonly fpu = new X87();
  readonly sse = new SseState();

  // Memory and TLB.
  readonly mem: GuestMemory;
  readonly io: PortBus;
  readonly pool: Uint8Array;
  readonly dv: DataView;
  readonly tlbFlags = new Uint8Array(1 << 20);
  readonly tlbHost = new Int32Array(1 << 20);
  /**
   * The same TLB in one word per page for translated code (src/jit/): the host frame offset (page-aligned,
   * 0 when the frame is not RAM) ORed with the TLB_* flags, which fit in the low 12 bits. One load then
   * gives both the permission and the frame: the generated load and store fast paths read one typed array
   * instead of two (measured 19% less per access in isolation). Zero wherever tlbFlags is zero; every
   * write of tlbFlags or tlbHost updates it.
   */
  readonly tlbEntry = new Int32Array(1 << 20);
  private readonly tlbList = new Int32Array(TLB_LIST_MAX);
  private tlbCount = 0;
  private tlbOverflow = false;
  private tlbGeneration = -1;
  rdMask = TLB_RS;
  wrMask = TLB_WS;
  private fetchPage = 1;
  private fetchHost = 0;

  constructor(mem: GuestMemory, io: PortBus = NO_PORTS) {
    this.mem = mem;
    this.io = io;
    this.pool = mem.pool;
    this.dv = mem.view;
    this.reset();
  }

  /** Power-on/RESET state (SDM vol. 3A §9.1.1, Table 9-1), except that we start at our loader's choice. */
  reset(): void {
    this.r32.fill(0);
    this.r32[2] = 0x00000600 | this.cpuidSignature();
    this.flags = FLAGS_FIXED1;
    this.lzMask = 0;
    this.cr0 = 0x60000010; this.cr2 = 0; this.cr3 = 0; this.cr4 = 0;
    this.dr.fill(0); this.dr[6] = 0xffff0ff0 | 0; this.dr[7] = 0x400;
    this.gdtBase = 0; this.gdtLimit = 0xffff; this.idtBase = 0; this.idtLimit = 0x3ff;
    this.ldtSel = 0; this.ldtBase = 0; this.ldtLimit = 0xffff;
    this.trSel = 0; this.trBase = 0; this.trLimit = 0xffff; this.trAr = 0x8b;
    for (let s = 0; s < 6; s++) {
      this.sreg[s] = 0; this.segBase[s] = 0; this.segLimit[s] = 0xffff;
      this.segAr[s] = s === CS ? 0x9b : 0x93;
    }
    this.sreg[CS] = 0xf000; this.segBase[CS] = 0xffff0000 | 0;
    this.eip = 0xfff0;
    this.cpl = 0;
    this.halted = false;
    this.intr = false; this.nmiPending = false; this.inhibitIrq = false;
    this.msr.clear();
    this.fpu.reset();
    this.sse.reset();
    this.updateModes();
    this.flushTlb(true);
  }

  /**
   * Nanoseconds of the machine's time base. The machine points this at the same clock its timers use, so
   * the TSC and every timer device agree on how much time has passed.
   */
  clockNs: () => number = () => performance.now() * 1e6;

  /** The time-stamp counter: 1 GHz from the machine's time base, plus the guest's offset. */
  readTsc(): bigint {
    return BigInt(Math.floor(this.clockNs())) + this.tscOffset;
  }

  /** RDTSC (SDM vol. 2B): EDX:EAX = TSC; #GP(0) outside ring 0 when CR4.TSD is set. Translated code calls it directly. */
  rdtsc(): void {
    if ((this.cr4 & CR4_TSD) && this.cpl !== 0 && (this.cr0 & CR0_PE)) this.gp(0);
    const t = this.readTsc();
    this.r32[0] = Number(t & 0xffffffffn); this.r32[2] = Number((t >> 32n) & 0xffffffffn);
  }

  writeTsc(v: bigint): void {
    this.tscOffset = BigInt.asUintN(64, v) - BigInt(Math.floor(this.clockNs()));
  }

  /** WAIT/FWAIT and the x87 checks of SDM vol. 1 §8.6: #NM when CR0.MP and TS, #MF for pending exceptions. */
  fpuWait(): void {
    if ((this.cr0 & (CR0_MP | CR0_TS)) === (CR0_MP | CR0_TS)) this.fault(EXC_NM);
    if (this.fpu.fsw & 0x80) this.fault(EXC_MF);
  }

  // Family 6, model 15, stepping 6 (a Core 2 class core, reporting only what we implement). Linux disables
  // PAT on P6 models below 15 for an erratum, and treats models from 14 on as having a constant-rate TSC.
  cpuidSignature(): number { return 0x6f6; }

  // ------------------------------------------------------------------------------------------------
  // Flags

  getCF(): number {
    if (!(this.lzMask & CF)) return this.flags & CF;
    const m = this.lzBits === 32 ? 0xffffffff : (1 << this.lzBits) - 1;
    switch (this.lzOp) {
      case LZ_ADD: return this.lzA + this.lzB > m ? 1 : 0;
      case LZ_ADC: return this.lzA + this.lzB + this.lzCin > m ? 1 : 0;
      case LZ_SUB: return this.lzA < this.lzB ? 1 : 0;
      case LZ_SBB: return this.lzA < this.lzB + this.lzCin ? 1 : 0;
      default: return 0;
    }
  }

  getZF(): number {
    if (!(this.lzMask & ZF)) return this.flags & ZF;
    const m = this.lzBits === 32 ? -1 : (1 << this.lzBits) - 1;
    return (this.lzRes & m) === 0 ? ZF : 0;
  }

  getSF(): number {
    if (!(this.lzMask & SF)) return this.flags & SF;
    return (this.lzRes >>> (this.lzBits - 1)) & 1 ? SF : 0;
  }

  getOF(): number {
    if (!(this.lzMask & OF)) return this.flags & OF;
    const a = this.lzA, b = this.lzB, r = this.lzRes, sh = this.lzBits - 1;
    switch (this.lzOp) {
      case LZ_ADD: case LZ_ADC: return (((a ^ r) & (b ^ r)) >>> sh) & 1 ? OF : 0;
      case LZ_SUB: case LZ_SBB: return (((a ^ b) & (a ^ r)) >>> sh) & 1 ? OF : 0;
      default: return 0;
    }
  }

  getPF(): number {
    if (!(this.lzMask & PF)) return this.flags & PF;
    return PARITY[this.lzRes & 0xff];
  }

  getAF(): number {
    if (!(this.lzMask & AF)) return this.flags & AF;
    if (this.lzOp === LZ_LOGIC) return 0;
    return (this.lzA ^ this.lzB ^ this.lzRes) & AF;
  }

  /** Folds pending lazy flags into `flags`. */
  materialize(): void {
    if (this.lzMask === 0) return;
    const m = this.lzMask;
    let f = this.flags & ~m;
    if (m & CF) f |= this.getCF();
    if (m & PF) f |= this.getPF();
    if (m & AF) f |= this.getAF();
    if (m & ZF) f |= this.getZF();
    if (m & SF) f |= this.getSF();
    if (m & OF) f |= this.getOF();
    this.flags = f;
    this.lzMask = 0;
  }

  getEflags(): number {
    this.materialize();
    return this.flags;
  }

  /** Writes EFLAGS bits in `mask` (the caller applies the privilege rules of POPF/IRET). */
  setEflagsMasked(v: number, mask: number): void {
    this.materialize();
    const old = this.flags;
    this.flags = ((old & ~mask) | (v & mask) & FLAGS_IMPLEMENTED) | FLAGS_FIXED1;
    if ((old ^ this.flags) & (VM | AC)) this.updateModes();
  }

  setEflags(v: number): void { this.setEflagsMasked(v, -1); }

  /** Sets the arithmetic flags lazily for an add/sub family result (values already masked to `bits`). */
  setLazy(op: number, a: number, b: number, res: number, bits: number, mask = ARITH): void {
    // Flags outside `mask` keep their value: fold any still-pending ones first.
    if (mask !== ARITH) this.materialize();
    this.lzOp = op; this.lzA = a; this.lzB = b; this.lzRes = res; this.lzBits = bits;
    this.lzMask = mask;
  }

  /** Result flags (SF ZF PF lazy) with CF/OF/AF given explicitly, as logic ops and shifts leave them. */
  setResultFlags(res: number, bits: number, cfOfAf: number): void {
    this.lzOp = LZ_LOGIC; this.lzRes = res; this.lzBits = bits;
    this.flags = (this.flags & ~ARITH) | cfOfAf;
    this.lzMask = SF | ZF | PF;
  }

  /** Sets some arithmetic flags directly; the others keep their value. */
  setFlagBits(mask: number, value: number): void {
    this.materialize();
    this.flags = (this.flags & ~mask) | (value & mask);
  }

  /** Evaluates condition code cc (the low nibble of Jcc/SETcc/CMOVcc, SDM vol. 1 Table B-1). */
  cond(cc: number): boolean {
    let r: boolean;
    if (this.lzMask === ARITH && this.lzOp === LZ_SUB) {
      // After CMP/SUB (the usual case before a Jcc) every condition is a comparison of the operands,
      // which are stored unsigned and masked to lzBits.
      const a = this.lzA, b = this.lzB, sh = 32 - this.lzBits;
      switch (cc >> 1) {
        case 0: r = this.getOF() !== 0; break;
        case 1: r = a < b; break;
        case 2: r = a === b; break;
        case 3: r = a <= b; break;
        case 4: r = this.getSF() !== 0; break;
        case 5: r = PARITY[this.lzRes & 0xff] !== 0; break;
        case 6: r = (a << sh) < (b << sh); break;
        default: r = (a << sh) <= (b << sh); break;
      }
      return (cc & 1) ? !r : r;
    }
    switch (cc >> 1) {
      case 0: r = this.getOF() !== 0; break;
      case 1: r = this.getCF() !== 0; break;
      case 2: r = this.getZF() !== 0; break;
      case 3: r = this.getCF() !== 0 || this.getZF() !== 0; break;
      case 4: r = this.getSF() !== 0; break;
      case 5: r = this.getPF() !== 0; break;
      case 6: r = (this.getSF() !== 0) !== (this.getOF() !== 0); break;
      default: r = this.getZF() !== 0 || (this.getSF() !== 0) !== (this.getOF() !== 0); break;
    }
    return (cc & 1) ? !r : r;
  }

  // ------------------------------------------------------------------------------------------------
  // Modes

  /** Recomputes cached mode-dependent values after a change of CR0, CS, SS, CPL or EFLAGS.VM/AC. */
  updateModes(): void {
    this.cs32 = (this.segAr[CS] & 0x4000) !== 0 && (this.cr0 & CR0_PE) !== 0 && !(this.flags & VM);
    this.ss32 = (this.segAr[SS] & 0x4000) !== 0 && (this.cr0 & CR0_PE) !== 0 && !(this.flags & VM);
    const user = this.cpl === 3;
    this.rdMask = user ? TLB_RU : TLB_RS;
    this.wrMask = user ? TLB_WU : TLB_WS;
    for (let s = 0; s < 6; s++) this.updateSegFast(s);
    this.fetchPage = 1;
  }

  updateSegFast(s: number): void {
    const ar = this.segAr[s];
    let f = 0;
    // Expand-up data or code, present, 4 GiB limit: no limit checks needed.
    if (!(ar & AR_UNUSABLE) && (ar & 0x80) && this.segLimit[s] === 0xffffffff && !((ar & 0x1c) === 0x14)) {
      if (ar & 0x10) {
        if (ar & 0x8) { if (ar & 2) f = 1; } // code: readable
        else { f = 1; if (ar & 2) f |= 2; } // data: writable?
      }
    }
    this.segFast[s] = f;
    // [jit hook] The same bits, two per segment, where the base is also 0: a translated unit that assumed
    // flat segments checks them all with one test at entry.
    const z = this.segBase[s] === 0 ? f : 0;
    this.flatSegs = (this.flatSegs & ~(3 << (s * 2))) | (z << (s * 2));
  }

  /** See updateSegFast: bit 2s = segment s is readable, 2s+1 = writable, with base 0 and no limit checks. */
  flatSegs = 0;

  isProtected(): boolean { return (this.cr0 & CR0_PE) !== 0 && !(this.flags & VM); }
  isV86(): boolean { return (this.flags & VM) !== 0; }
  isReal(): boolean { return (this.cr0 & CR0_PE) === 0; }

  setCpl(cpl: number): void {
    if (cpl !== this.cpl) { this.cpl = cpl; this.updateModes(); }
  }

  // ------------------------------------------------------------------------------------------------
  // Exceptions

  fault(vector: number, code = 0): never {
    throw new CpuFault(vector, code);
  }

  gp(code = 0): never { throw new CpuFault(EXC_GP, code); }
  ud(): never { throw new CpuFault(6, 0); }

  // ------------------------------------------------------------------------------------------------
  // TLB and page walk (SDM vol. 3A §4.3 32-bit paging, §4.10 caching translations)

  flushTlb(includeGlobal: boolean): void {
    if (this.tlbOverflow) {
      if (includeGlobal) { this.tlbFlags.fill(0); this.tlbEntry.fill(0); }
      else for (let i = 0; i < this.tlbFlags.length; i++) if (!(this.tlbFlags[i] & TLB_GLOBAL)) { this.tlbFlags[i] = 0; this.tlbEntry[i] = 0; }
      this.tlbOverflow = false;
      this.tlbCount = 0;
      if (!includeGlobal) {
        for (let i = 0; i < this.tlbFlags.length && this.tlbCount < TLB_LIST_MAX; i++) if (this.tlbFlags[i]) this.tlbList[this.tlbCount++] = i;
      }
    } else {
      let kept = 0;
      for (let i = 0; i < this.tlbCount; i++) {
        const vpn = this.tlbList[i];
        if (!includeGlobal && (this.tlbFlags[vpn] & TLB_GLOBAL)) this.tlbList[kept++] = vpn;
        else { this.tlbFlags[vpn] = 0; this.tlbEntry[vpn] = 0; }
      }
      this.tlbCount = kept;
    }
    this.fetchPage = 1;
    this.tlbGeneration = this.mem.mapGeneration;
  }

  invlpg(lin: number): void {
    this.tlbFlags[lin >>> 12] = 0;
    this.tlbEntry[lin >>> 12] = 0;
    this.fetchPage = 1;
  }

  /**
   * Translates a linear address for an access of the given kind, filling the TLB.
   * Returns the physical address; raises #PF with the SDM's error code (§4.7) when not permitted.
   */
  translate(lin: number, write: boolean, user: boolean): number {
    if (this.tlbGeneration !== this.mem.mapGeneration) this.flushTlb(true);
    const vpn = lin >>> 12;
    let phys: number;
    let fl: number;
    if (!(this.cr0 & CR0_PG)) {
      phys = lin >>> 0;
      fl = TLB_VALID | TLB_RS | TLB_WS | TLB_RU | TLB_WU;
    } else {
      const pdeAddr = ((this.cr3 & ~0xfff) | ((lin >>> 22) << 2)) >>> 0;
      const pde = this.mem.read32(pdeAddr);
      const errBase = (write ? 2 : 0) | (user ? 4 : 0);
      if (!(pde & 1)) this.pageFault(lin, errBase);
      const wp = (this.cr0 & CR0_WP) !== 0;
      let uFlag: boolean, wFlag: boolean, dirty: boolean, global: boolean;
      if ((pde & 0x80) && (this.cr4 & CR4_PSE)) {
        // 4 MiB page (§4.3, Table 4-4).
        uFlag = (pde & 4) !== 0; wFlag = (pde & 2) !== 0;
        this.checkPagePerm(lin, write, user, uFlag, wFlag, wp, errBase);
        const nd = pde | 0x20 | (write ? 0x40 : 0);
        if (nd !== pde) this.mem.write32(pdeAddr, nd);
        dirty = (nd & 0x40) !== 0;
        global = (pde & 0x100) !== 0;
        phys = ((pde & 0xffc00000) | (lin & 0x3ff000)) >>> 0;
      } else {
        const pteAddr = ((pde & ~0xfff) | (((lin >>> 12) & 0x3ff) << 2)) >>> 0;
        const pte = this.mem.read32(pteAddr);
        if (!(pte & 1)) this.pageFault(lin, errBase);
        uFlag = (pde & pte & 4) !== 0; wFlag = (pde & pte & 2) !== 0;
        this.checkPagePerm(lin, write, user, uFlag, wFlag, wp, errBase);
        if (!(pde & 0x20)) this.mem.write32(pdeAddr, pde | 0x20);
        const nt = pte | 0x20 | (write ? 0x40 : 0);
        if (nt !== pte) this.mem.write32(pteAddr, nt);
        dirty = (nt & 0x40) !== 0;
        global = (pte & 0x100) !== 0;
        phys = (pte & ~0xfff) >>> 0;
      }
      fl = TLB_VALID | TLB_RS;
      // A write is allowed on the fast path only once the dirty bit is set, so the first write walks.
      if (dirty && (wFlag || !wp)) fl |= TLB_WS;
      if (uFlag) { fl |= TLB_RU; if (wFlag && dirty) fl |= TLB_WU; }
      if (global && (this.cr4 & CR4_PGE)) fl |= TLB_GLOBAL;
      phys = (phys | (lin & 0xfff)) >>> 0;
    }
    const host = this.mem.frameOffset(phys >>> 12);
    if (host < 0) fl &= ~(TLB_RS | TLB_WS | TLB_RU | TLB_WU); // MMIO or unbacked: always the slow path
    // [jit hook] A frame holding translated code is write-protected in the TLB, so every store to it takes
    // writeSlow, which tells the translator to drop that frame's units (self-modifying code, src/jit/).
    else if (this.mem.codeFrames !== null && this.mem.codeFrames[host >>> 12]) fl &= ~(TLB_WS | TLB_WU);
    if (this.tlbFlags[vpn] === 0) {
      if (this.tlbCount < TLB_LIST_MAX) this.tlbList[this.tlbCount++] = vpn;
      else this.tlbOverflow = true;
    }
    this.tlbFlags[vpn] = fl;
    this.tlbHost[vpn] = host;
    this.tlbEntry[vpn] = (host < 0 ? 0 : host) | fl;
    return (phys & ~0xfff | (lin & 0xfff)) >>> 0;
  }

  private checkPagePerm(lin: number, write: boolean, user: boolean, u: boolean, w: boolean, wp: boolean, err: number): void {
    if (user) {
      if (!u || (write && !w)) this.pageFault(lin, err | 1);
    } else if (write && !w && wp) {
      this.pageFault(lin, err | 1);
    }
  }

  pageFault(lin: number, code: number): never {
    this.cr2 = lin | 0;
    throw new CpuFault(EXC_PF, code);
  }

  // ------------------------------------------------------------------------------------------------
  // Linear-address accesses. `user` is the privilege of the access: CPL 3, except for implicit
  // supervisor accesses to system tables (GDT, IDT, TSS), which use the *Sys variants.

  readLin8(lin: number): number {
    const vpn = lin >>> 12;
    let e: number;
    if ((e = this.tlbEntry[vpn]) & this.rdMask) return this.pool[(e & -4096) | (lin & 0xfff)];
    return this.readSlow(lin, 1, this.cpl === 3);
  }

  readLin16(lin: number): number {
    const vpn = lin >>> 12;
    let e: number;
    if (((e = this.tlbEntry[vpn]) & this.rdMask) && (lin & 0xfff) !== 0xfff) return this.dv.getUint16((e & -4096) | (lin & 0xfff), true);
    return this.readSlow(lin, 2, this.cpl === 3);
  }

  readLin32(lin: number): number {
    const vpn = lin >>> 12;
    let e: number;
    if (((e = this.tlbEntry[vpn]) & this.rdMask) && (lin & 0xfff) <= 0xffc) return this.dv.getInt32((e & -4096) | (lin & 0xfff), true);
    return this.readSlow(lin, 4, this.cpl === 3);
  }

  writeLin8(lin: number, v: number): void {
    const vpn = lin >>> 12;
    let e: number;
    if ((e = this.tlbEntry[vpn]) & this.wrMask) { this.pool[(e & -4096) | (lin & 0xfff)] = v; return; }
    this.writeSlow(lin, 1, v, this.cpl === 3);
  }

  writeLin16(lin: number, v: number): void {
    const vpn = lin >>> 12;
    let e: number;
    if (((e = this.tlbEntry[vpn]) & this.wrMask) && (lin & 0xfff) !== 0xfff) { this.dv.setUint16((e & -4096) | (lin & 0xfff), v, true); return; }
    this.writeSlow(lin, 2, v, this.cpl === 3);
  }

  writeLin32(lin: number, v: number): void {
    const vpn = lin >>> 12;
    let e: number;
    if (((e = this.tlbEntry[vpn]) & this.wrMask) && (lin & 0xfff) <= 0xffc) { this.dv.setInt32((e & -4096) | (lin & 0xfff), v, true); return; }
    this.writeSlow(lin, 4, v, this.cpl === 3);
  }

  /** Checks that [lin, lin+size) is writable (page faults first), so a later multi-part store cannot fault halfway. */
  probeWrite(lin: number, size: number): void {
    const vpn = lin >>> 12;
    if (!(this.tlbFlags[vpn] & this.wrMask)) this.translate(lin, true, this.cpl === 3);
    const last = (lin + size - 1) | 0;
    if ((last >>> 12) !== vpn && !(this.tlbFlags[last >>> 12] & this.wrMask)) this.translate(last, true, this.cpl === 3);
  }

  probeRead(lin: number, size: number): void {
    const vpn = lin >>> 12;
    if (!(this.tlbFlags[vpn] & this.rdMask)) this.translate(lin, false, this.cpl === 3);
    const last = (lin + size - 1) | 0;
    if ((last >>> 12) !== vpn && !(this.tlbFlags[last >>> 12] & this.rdMask)) this.translate(last, false, this.cpl === 3);
  }

  readSlow(lin: number, size: number, user: boolean): number {
    if ((lin & 0xfff) > 0x1000 - size) {
      // Crosses a page: both pages must be readable before anything is returned.
      let v = 0;
      for (let i = 0; i < size; i++) v |= this.readSlow((lin + i) | 0, 1, user) << (8 * i);
      return size === 4 ? v | 0 : v;
    }
    const phys = this.translate(lin, false, user);
    const host = this.tlbHost[lin >>> 12];
    if (host >= 0) {
      const o = host | (lin & 0xfff);
      return size === 1 ? this.pool[o] : size === 2 ? this.dv.getUint16(o, true) : this.dv.getInt32(o, true);
    }
    const v = this.mem.mmioRead(phys, size as 1 | 2 | 4);
    return size === 4 ? v | 0 : v & (size === 1 ? 0xff : 0xffff);
  }

  writeSlow(lin: number, size: number, v: number, user: boolean): void {
    if ((lin & 0xfff) > 0x1000 - size) {
      this.translate(lin, true, user);
      this.translate((lin + size - 1) | 0, true, user);
      for (let i = 0; i < size; i++) this.writeSlow((lin + i) | 0, 1, v >>> (8 * i), user);
      return;
    }
    const phys = this.translate(lin, true, user);
    const host = this.tlbHost[lin >>> 12];
    if (host >= 0) {
      const o = host | (lin & 0xfff);
      // [jit hook] Store to a frame with translated code: invalidate it (see translate()).
      if (this.mem.codeFrames !== null && this.mem.codeFrames[host >>> 12]) this.mem.codeWritten(host >>> 12);
      if (size === 1) this.pool[o] = v; else if (size === 2) this.dv.setUint16(o, v, true); else this.dv.setInt32(o, v, true);
      return;
    }
    this.mem.mmioWrite(phys, size as 1 | 2 | 4, size === 4 ? v | 0 : v & (size === 1 ? 0xff : 0xffff));
  }

  // Implicit supervisor-privilege accesses (descriptor tables, TSS): SDM vol. 3A §4.6.1. Reads take the
  // TLB's supervisor-read entry when there is one: every segment register load reads a descriptor, and the
  // i386 kernel reloads DS, ES and FS on each system call (from the GDT in its fixmap area, a page walk
  // per load before).
  readSys8(lin: number): number {
    const vpn = lin >>> 12;
    let e: number;
    if ((e = this.tlbEntry[vpn]) & TLB_RS) return this.pool[(e & -4096) | (lin & 0xfff)];
    return this.readSlow(lin | 0, 1, false);
  }
  readSys16(lin: number): number {
    const vpn = lin >>> 12;
    let e: number;
    if (((e = this.tlbEntry[vpn]) & TLB_RS) && (lin & 0xfff) !== 0xfff) return this.dv.getUint16((e & -4096) | (lin & 0xfff), true);
    return this.readSlow(lin | 0, 2, false);
  }
  readSys32(lin: number): number {
    const vpn = lin >>> 12;
    let e: number;
    if (((e = this.tlbEntry[vpn]) & TLB_RS) && (lin & 0xfff) <= 0xffc) return this.dv.getInt32((e & -4096) | (lin & 0xfff), true);
    return this.readSlow(lin | 0, 4, false);
  }
  writeSys8(lin: number, v: number): void { this.writeSlow(lin | 0, 1, v, false); }
  writeSys16(lin: number, v: number): void { this.writeSlow(lin | 0, 2, v, false); }
  writeSys32(lin: number, v: number): void { this.writeSlow(lin | 0, 4, v, false); }

  // ------------------------------------------------------------------------------------------------
  // Segmented accesses: segment checks (SDM vol. 3A §5.3 limit checking, §5.5 type checking).

  /** Linear address of seg:off for an access of `size` bytes, after limit and rights checks. */
  lin(seg: number, off: number, size: number, write: boolean): number {
    if (this.segFast[seg] & (write ? 2 : 1)) return (this.segBase[seg] + off) | 0;
    return this.linChecked(seg, off, size, write);
  }

  linChecked(seg: number, off: number, size: number, write: boolean): number {
    const ar = this.segAr[seg];
    const vec = seg === SS ? EXC_SS : EXC_GP;
    if (this.cr0 & CR0_PE && !(this.flags & VM)) {
      if (ar & AR_UNUSABLE) this.fault(vec, 0);
      if (write) {
        if ((ar & 0x8) || !(ar & 2)) this.fault(vec, 0); // code, or read-only data
      } else if ((ar & 0xa) === 0x8) this.fault(vec, 0); // execute-only code
    }
    const o = off >>> 0;
    const last = o + size - 1;
    const limit = this.segLimit[seg];
    if ((ar & 0x1c) === 0x14) {
      // Expand-down data: valid offsets are limit+1 .. 0xFFFF or 0xFFFFFFFF by the B flag.
      const upper = (ar & 0x4000) ? 0xffffffff : 0xffff;
      if (o <= limit || last > upper) this.fault(vec, 0);
    } else if (last > limit) {
      this.fault(vec, 0);
    }
    return (this.segBase[seg] + off) | 0;
  }

  rd8(seg: number, off: number): number { return this.readLin8(this.lin(seg, off, 1, false)); }
  rd16(seg: number, off: number): number { return this.readLin16(this.lin(seg, off, 2, false)); }
  rd32(seg: number, off: number): number { return this.readLin32(this.lin(seg, off, 4, false)); }
  wr8(seg: number, off: number, v: number): void { this.writeLin8(this.lin(seg, off, 1, true), v); }
  wr16(seg: number, off: number, v: number): void { this.writeLin16(this.lin(seg, off, 2, true), v); }
  wr32(seg: number, off: number, v: number): void { this.writeLin32(this.lin(seg, off, 4, true), v); }

  /** Reads a 64-bit value as [low, high] into `out` (MMX/SSE/x87/CMPXCHG8B). */
  rd64(seg: number, off: number, out: Int32Array, i = 0): void {
    const l = this.lin(seg, off, 8, false);
    this.probeRead(l, 8);
    out[i] = this.readLin32(l);
    out[i + 1] = this.readLin32((l + 4) | 0);
  }

  wr64(seg: number, off: number, lo: number, hi: number): void {
    const l = this.lin(seg, off, 8, true);
    this.probeWrite(l, 8);
    this.writeLin32(l, lo);
    this.writeLin32((l + 4) | 0, hi);
  }

  /** Reads `n` bytes (n ≤ 512) into out; all checks happen before anything is copied. */
  rdBytes(seg: number, off: number, n: number, out: Uint8Array): void {
    const l = this.lin(seg, off, n, false);
    this.probeRead(l, n);
    for (let i = 0; i < n; i++) out[i] = this.readLin8((l + i) | 0);
  }

  wrBytes(seg: number, off: number, data: Uint8Array, n = data.length): void {
    const l = this.lin(seg, off, n, true);
    this.probeWrite(l, n);
    for (let i = 0; i < n; i++) this.writeLin8((l + i) | 0, data[i]);
  }

  // ------------------------------------------------------------------------------------------------
  // Instruction fetch

  fetch8(): number {
    const lin = (this.segBase[CS] + this.eip) | 0;
    if ((lin & ~0xfff) !== this.fetchPage) return this.fetchSlow(lin);
    this.eip = (this.eip + 1) | 0;
    return this.pool[this.fetchHost | (lin & 0xfff)];
  }

  private fetchSlow(lin: number): number {
    if ((this.eip >>> 0) > this.segLimit[CS]) this.gp(0);
    const vpn = lin >>> 12;
    if (!(this.tlbFlags[vpn] & this.rdMask)) this.translate(lin, false, this.cpl === 3);
    const host = this.tlbHost[vpn];
    let b: number;
    if ((this.tlbFlags[vpn] & this.rdMask) && host >= 0) {
      this.fetchPage = lin & ~0xfff;
      this.fetchHost = host;
      b = this.pool[host | (lin & 0xfff)];
    } else {
      b = this.readSlow(lin, 1, this.cpl === 3);
    }
    this.eip = (this.eip + 1) | 0;
    return b;
  }

  fetch16(): number {
    const lin = (this.segBase[CS] + this.eip) | 0;
    if ((lin & ~0xfff) === this.fetchPage && (lin & 0xfff) !== 0xfff) {
      this.eip = (this.eip + 2) | 0;
      return this.dv.getUint16(this.fetchHost | (lin & 0xfff), true);
    }
    const lo = this.fetch8();
    return lo | (this.fetch8() << 8);
  }

  fetch32(): number {
    const lin = (this.segBase[CS] + this.eip) | 0;
    if ((lin & ~0xfff) === this.fetchPage && (lin & 0xfff) <= 0xffc) {
      this.eip = (this.eip + 4) | 0;
      return this.dv.getInt32(this.fetchHost | (lin & 0xfff), true);
    }
    const lo = this.fetch16();
    return lo | (this.fetch16() << 16);
  }

  /** Immediate of operand size (16 or 32 bits). */
  fetchImm(): number { return this.os32 ? this.fetch32() : this.fetch16(); }

  // ------------------------------------------------------------------------------------------------
  // ModRM / SIB effective addresses (SDM vol. 2 §2.1.5 Tables 2-1, 2-2, 2-3)

  fetchModrm(): number {
    const m = this.fetch8();
    this.modrm = m;
    return m;
  }

  /** Effective address offset for a memory ModRM; sets `eaSeg`. */
  ea(m: number): number {
    if (this.as32) return this.ea32(m);
    return this.ea16(m);
  }

  private ea32(m: number): number {
    const mod = m >> 6;
    const rm = m & 7;
    let seg = DS;
    let off: number;
    if (rm === 4) {
      const sib = this.fetch8();
      const base = sib & 7;
      const idx = (sib >> 3) & 7;
      if (base === 5 && mod === 0) off = this.fetch32();
      else {
        off = this.r32[base];
        if (base === 4 || base === 5) seg = SS;
      }
      if (idx !== 4) off = (off + (this.r32[idx] << (sib >> 6))) | 0;
    } else if (rm === 5 && mod === 0) {
      off = this.fetch32();
    } else {
      off = this.r32[rm];
      if (rm === 5) seg = SS;
    }
    if (mod === 1) off = (off + ((this.fetch8() << 24) >> 24)) | 0;
    else if (mod === 2) off = (off + this.fetch32()) | 0;
    this.eaSeg = this.segOverride >= 0 ? this.segOverride : seg;
    return off;
  }

  private ea16(m: number): number {
    const mod = m >> 6;
    const rm = m & 7;
    const r = this.r16;
    let seg = DS;
    let off: number;
    switch (rm) {
      case 0: off = r[6] + r[12]; break; // BX+SI
      case 1: off = r[6] + r[14]; break; // BX+DI
      case 2: off = r[10] + r[12]; seg = SS; break; // BP+SI
      case 3: off = r[10] + r[14]; seg = SS; break; // BP+DI
      case 4: off = r[12]; break;
      case 5: off = r[14]; break;
      case 6: if (mod === 0) off = this.fetch16(); else { off = r[10]; seg = SS; } break;
      default: off = r[6]; break;
    }
    if (mod === 1) off += (this.fetch8() << 24) >> 24;
    else if (mod === 2) off += this.fetch16();
    this.eaSeg = this.segOverride >= 0 ? this.segOverride : seg;
    return off & 0xffff;
  }

  /**
   * Linear address of the memory ModRM operand `m` (m < 0xC0) for a read of `size` bytes, after the
   * segment checks. One call instead of ea() + lin() keeps the common flat-segment case to a single branch.
   */
  eaRead(m: number, size: number): number {
    const off = this.as32 ? this.ea32(m) : this.ea16(m);
    const s = this.eaSeg;
    if (this.segFast[s] & 1) return (this.segBase[s] + off) | 0;
    return this.linChecked(s, off, size, false);
  }

  /** Like eaRead, for a write. */
  eaWrite(m: number, size: number): number {
    const off = this.as32 ? this.ea32(m) : this.ea16(m);
    const s = this.eaSeg;
    if (this.segFast[s] & 2) return (this.segBase[s] + off) | 0;
    return this.linChecked(s, off, size, true);
  }

  /**
   * For a read-modify-write: like eaWrite, and the page(s) are checked writable before anything is read,
   * so a fault leaves the destination and the flags untouched. A TLB write permission implies read.
   */
  eaRmw(m: number, size: number): number {
    const l = this.eaWrite(m, size);
    if (!(this.tlbFlags[l >>> 12] & this.wrMask) || (l & 0xfff) > 0x1000 - size) this.probeWrite(l, size);
    return l;
  }

  /** Segment for an instruction's default DS-relative access (string sources, XLAT, moffs). */
  dataSeg(): number { return this.segOverride >= 0 ? this.segOverride : DS; }

  // 8-bit register index (AL CL DL BL AH CH DH BH) → byte offset in r8.
  static readonly R8 = new Uint8Array([0, 4, 8, 12, 1, 5, 9, 13]);

  getReg8(i: number): number { return this.r8[CPU.R8[i]]; }
  setReg8(i: number, v: number): void { this.r8[CPU.R8[i]] = v; }

  // ------------------------------------------------------------------------------------------------
  // Stack (SDM vol. 1 §6.2: the stack-address size follows SS.B)

  push16(v: number): void {
    const sp = (this.r32[4] - 2) | 0;
    if (this.ss32) { this.wr16(SS, sp, v); this.r32[4] = sp; }
    else { this.wr16(SS, sp & 0xffff, v); this.r16[8] = sp; }
  }

  push32(v: number): void {
    const sp = (this.r32[4] - 4) | 0;
    if (this.ss32) { this.wr32(SS, sp, v); this.r32[4] = sp; }
    else { this.wr32(SS, sp & 0xffff, v); this.r16[8] = sp; }
  }

  push(v: number): void { if (this.os32) this.push32(v); else this.push16(v); }

  pop16(): number {
    const sp = this.ss32 ? this.r32[4] : this.r16[8];
    const v = this.rd16(SS, sp);
    if (this.ss32) this.r32[4] = sp + 2; else this.r16[8] = sp + 2;
    return v;
  }

  pop32(): number {
    const sp = this.ss32 ? this.r32[4] : this.r16[8];
    const v = this.rd32(SS, sp);
    if (this.ss32) this.r32[4] = sp + 4; else this.r16[8] = sp + 4;
    return v;
  }

  pop(): number { return this.os32 ? this.pop32() : this.pop16(); }

  /** Reads the stack at ESP+delta without popping (for instructions that must not fault halfway). */
  peek16(delta: number): number {
    const sp = this.ss32 ? (this.r32[4] + delta) | 0 : (this.r16[8] + delta) & 0xffff;
    return this.rd16(SS, sp);
  }

  peek32(delta: number): number {
    const sp = this.ss32 ? (this.r32[4] + delta) | 0 : (this.r16[8] + delta) & 0xffff;
    return this.rd32(SS, sp);
  }

  addSp(delta: number): void {
    if (this.ss32) this.r32[4] = (this.r32[4] + delta) | 0;
    else this.r16[8] = this.r16[8] + delta;
  }

  // ------------------------------------------------------------------------------------------------
  // Control transfer

  /** Near jump: EIP wraps to 16 bits with a 16-bit operand size; checked against the CS limit. */
  jumpNear(target: number): void {
    if (!this.os32) target &= 0xffff;
    if ((target >>> 0) > this.segLimit[CS]) this.gp(0);
    this.eip = target | 0;
  }

  /** Loads a segment register in real or virtual-8086 mode (protected mode goes through system.ts). */
  loadSegReal(seg: number, sel: number): void { loadSegmentReal(this, seg, sel); }

  // ------------------------------------------------------------------------------------------------
  // Running

  /** Executes one instruction (no interrupt check). Faults propagate as CpuFault. */
  step(): void {
    this.prevEip = this.eip;
    this.segOverride = -1;
    this.os32 = this.as32 = this.cs32;
    this.rep = 0;
    this.lock = false;
    ops1[this.fetch8()](this);
  }

  /**
   * Runs up to `budget` instructions, delivering exceptions and interrupts, and returns how many ran.
   * Returns early when the vCPU halts or an instruction sets `stopSlice`.
   */
  run(budget: number): number {
    // [jit hook] With a binary translator attached (src/jit/jit.ts), it runs the slice; it calls back
    // into interpret() for single-stepping (TF) and into step() for code it has not translated.
    if (this.jit !== null) return this.jit.run(budget);
    return this.interpret(budget);
  }

  /** [jit hook] The binary translator attached to this vCPU, if any (`--cpu jit`). */
  jit: { run(budget: number): number } | null = null;

  /**
   * [jit hook] Removes the fast-path write permission of every TLB entry that maps host frame offset
   * `host`: the translator calls this when a frame first receives translated code.
   */
  protectFrame(host: number): void {
    if (this.tlbOverflow) {
      for (let i = 0; i < this.tlbFlags.length; i++) if (this.tlbFlags[i] && this.tlbHost[i] === host) { this.tlbFlags[i] &= ~(TLB_WS | TLB_WU); this.tlbEntry[i] &= ~(TLB_WS | TLB_WU); }
    } else {
      for (let i = 0; i < this.tlbCount; i++) { const v = this.tlbList[i]; if (this.tlbHost[v] === host) { this.tlbFlags[v] &= ~(TLB_WS | TLB_WU); this.tlbEntry[v] &= ~(TLB_WS | TLB_WU); } }
    }
  }

  /** The interpreter's run loop (see run()). */
  interpret(budget: number): number {
    const table = ops1;
    let n = 0;
    this.stopSlice = false;
    while (n < budget && !this.stopSlice) {
      if (this.halted) {
        if (!this.wakeFromHalt()) break;
      }
      try {
        while (n < budget) {
          // The instruction after STI / MOV SS / POP SS runs before interrupts are recognised (SDM vol. 2
          // "STI"); the shadow ends after that one instruction whether or not an interrupt was waiting.
          if (this.inhibitIrq) this.inhibitIrq = false;
          else if (this.intr || this.nmiPending) {
            if (this.nmiPending || (this.flags & IF)) { this.serviceInterrupt(); }
          }
          const tf = this.flags & TF;
          // step(), inlined: this loop runs once per guest instruction.
          this.prevEip = this.eip;
          this.segOverride = -1;
          this.os32 = this.as32 = this.cs32;
          this.rep = 0;
          this.lock = false;
          table[this.fetch8()](this);
          n++;
          if (tf) this.singleStepTrap();
          if (this.stopSlice || this.halted) break;
        }
      } catch (e) {
        if (!(e instanceof CpuFault)) throw e;
        n++;
        this.eip = this.prevEip;
        this.raiseException(e.vector, e.code, e.hasCode);
      }
      if (this.halted) break;
    }
    this.instructions += n;
    return n;
  }

  wakeFromHalt(): boolean {
    if (this.nmiPending || (this.intr && (this.flags & IF))) { this.halted = false; return true; }
    return false;
  }

  private singleStepTrap(): void {
    this.dr[6] |= 0x4000; // BS
    this.raiseException(EXC_DB, 0, false);
  }

  /** Takes an external interrupt from the interrupt source (or an NMI) and delivers it. */
  serviceInterrupt(): void {
    if (this.nmiPending) {
      this.nmiPending = false;
      this.halted = false;
      this.raiseException(2, 0, false);
      return;
    }
    const src = this.intSource;
    if (!src) return;
    const vec = src.acknowledge();
    if (vec < 0) return;
    this.halted = false;
    this.deliver(vec, false, false, 0, true);
  }

  /** Delivers an exception with the double/triple-fault rules of SDM vol. 3A §6.15 (interrupt 8). */
  raiseException(vector: number, code: number, hasCode: boolean): void {
    const hook = this.hooks.exception;
    if (hook && hook(vector, code)) return;
    this.deliver(vector, false, hasCode, code, true);
  }

  private deliverDepth = 0;
  private firstVector = -1;

  /** Delivers interrupt `vector`; a fault while doing so escalates to #DF and then to a triple fault. */
  deliver(vector: number, software: boolean, hasCode: boolean, code: number, external: boolean): void {
    const depth = this.deliverDepth;
    if (depth === 0) this.firstVector = vector;
    this.deliverDepth++;
    try {
      deliverInterrupt(this, vector, software, hasCode, code, external && !software);
    } catch (e) {
      if (!(e instanceof CpuFault)) throw e;
      // A fault while delivering INT n/INT3/INTO is a fault of that instruction, not a nested event: it
      // propagates to the run loop, which restores EIP to the INT (SDM vol. 3A §6.12.1.1, §6.15 Table 6-5).
      if (software && depth === 0) throw e;
      const first = this.firstVector;
      const second = e.vector;
      this.deliverDepth = depth;
      if (first === EXC_DF) {
        throw new CpuStop('triple-fault', `triple fault (fault ${second} while delivering a double fault) at ${this.sreg[CS].toString(16)}:${(this.eip >>> 0).toString(16)}`);
      }
      const contributory = (v: number) => ((EXC_CONTRIBUTORY >> v) & 1) === 1;
      if ((contributory(first) && contributory(second)) || (first === EXC_PF && (contributory(second) || second === EXC_PF))) {
        this.firstVector = EXC_DF;
        this.deliverDepth = depth + 1;
        try {
          deliverInterrupt(this, EXC_DF, false, true, 0, true);
        } catch (e2) {
          if (!(e2 instanceof CpuFault)) throw e2;
          throw new CpuStop('triple-fault', `triple fault (fault ${e2.vector} while delivering a double fault) at ${this.sreg[CS].toString(16)}:${(this.eip >>> 0).toString(16)}`);
        } finally {
          this.deliverDepth = depth;
        }
        return;
      }
      // Benign combinations: the second exception is handled serially.
      this.deliver(second, false, e.hasCode, e.code, true);
      return;
    } finally {
      this.deliverDepth = depth;
    }
  }

  /** INT n / INT3 / INTO: a software interrupt with the gate-DPL check; EIP already points past it. */
  softwareInterrupt(vector: number): void {
    const hook = this.hooks.softInt;
    if (hook && hook(vector)) return;
    this.deliver(vector, true, false, 0, false);
  }

  /** Paging-related state changed (CR0.PG/WP, CR3, CR4.PSE/PGE): flush as SDM vol. 3A §4.10.4 requires. */
  onPagingChange(global: boolean): void {
    this.flushTlb(global);
  }

  get pagingEnabled(): boolean { return (this.cr0 & CR0_PG) !== 0; }
  get df(): boolean { return (this.flags & DF) !== 0; }
}
