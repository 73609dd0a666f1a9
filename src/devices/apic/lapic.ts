// The local APIC of one vCPU, in xAPIC mode (Intel SDM vol. 3A chapter 10): the register page at
// 0xFEE00000, interrupt acceptance through IRR/ISR with task and processor priority (§10.8), EOI, the
// local vector table with LINT0/LINT1, error and timer (§10.5), and interprocessor interrupts (§10.6).
//
// The 8259 PIC is wired to LINT0 as on every PC: in ExtINT mode (virtual wire, MP spec §3.6.2.2) the PIC
// drives INTR and answers the INTA cycle itself, so the vCPU's `intSource` can always be the local APIC.

import type { InterruptSource } from '../../cpu/bus.ts';
import type { MmioHandler } from '../../memory/guest-memory.ts';
import type { Clock, Timer } from '../../machine/clock.ts';
import type { IrqSink } from '../../machine/irq.ts';
import type { Stateful } from '../state.ts';
import { ApicBus, DM_EXTINT, DM_FIXED, DM_INIT, DM_LOWEST, DM_NMI, DM_SIPI, DM_SMI, type ApicMessage, type ApicTarget } from './apic-bus.ts';

/**
 * Version register: 0x14 is an integrated (not 82489DX) APIC, bits 23:16 the highest LVT index — five
 * means timer, thermal, performance counter, LINT0, LINT1 and error, what Linux expects of a P6 or later
 * (SDM vol. 3A §10.4.8).
 */
export const LAPIC_VERSION = 0x00050014;
/** Timer input clock. The SDM leaves the bus/core crystal frequency to the part; Linux calibrates it. */
export const APIC_TIMER_HZ = 1_000_000_000;

// LVT indices in `state.lvt`, in register order from 0x320 (SDM vol. 3A Figure 10-8).
const LVT_TIMER = 0, LVT_THERMAL = 1, LVT_PERF = 2, LVT_LINT0 = 3, LVT_LINT1 = 4, LVT_ERROR = 5;
const LVT_MASKED = 1 << 16;
const LVT_LEVEL = 1 << 15;
const TIMER_PERIODIC = 1 << 17;
/** Writable LVT bits per entry: the timer has a mode, LINTn have polarity/trigger, all have mask+vector. */
const LVT_WMASK = [0x300ff, 0x107ff, 0x107ff, 0x1a7ff, 0x1a7ff, 0x100ff];
const SVR_ENABLE = 1 << 8;
// ESR bits (SDM vol. 3A §10.5.3).
const ESR_SEND_ILLEGAL = 1 << 5, ESR_RECV_ILLEGAL = 1 << 6, ESR_ILLEGAL_REG = 1 << 7;

export type LapicState = {
  id: number; tpr: number; ldr: number; dfr: number; svr: number;
  isr: Uint32Array; tmr: Uint32Array; irr: Uint32Array;
  esr: number; esrPending: number; icrLo: number; icrHi: number;
  lvt: Uint32Array; initialCount: number; divideConfig: number;
  /** Clock time (ns) the current count was last loaded with the initial count. */
  timerStart: number;
  /** One-shot mode: the count reached (or will reach) zero and its interrupt has not been signalled yet. */
  oneShotPending: boolean;
  /** IA32_APIC_BASE bit 11: a globally disabled APIC passes INTR and NMI straight through (§10.4.3). */
  hwEnabled: boolean;
  /** Levels of the LINT0/LINT1 pins. */
  lint: boolean[];
  /** An ExtINT message from an I/O APIC is waiting for its INTA cycle. */
  extIntReq: boolean;
};

export interface LapicOptions {
  id: number;
  bus: ApicBus;
  clock: Clock;
  /** The 8259 PIC behind LINT0; it supplies the vector of an ExtINT interrupt. */
  extInt?: InterruptSource;
  /** The vCPU's INTR line. */
  onIntrChange: (level: boolean) => void;
  onNmi?: () => void;
  /** INIT: the vCPU resets and waits for a start-up IPI (SDM vol. 3A §8.4.1). */
  onInit?: () => void;
  onSipi?: (vector: number) => void;
  /** The bootstrap processor comes up in virtual-wire mode as a BIOS leaves it (LINT0 ExtINT, LINT1 NMI). */
  bsp?: boolean;
}

export class Lapic implements InterruptSource, IrqSink, ApicTarget, Stateful<LapicState> {
  readonly name: string;
  state: LapicState;
  readonly mmio: MmioHandler;
  private readonly bus: ApicBus;
  private readonly clock: Clock;
  private readonly timer: Timer;
  private readonly opts: LapicOptions;
  private intrOut = false;

  constructor(opts: LapicOptions) {
    this.opts = opts;
    this.name = `lapic${opts.id}`;
    this.bus = opts.bus;
    this.clock = opts.clock;
    this.state = this.resetState(opts.id, true, [false, false], opts.bsp ?? false);
    this.timer = this.clock.createTimer(() => this.timerExpired());
    this.mmio = { read: (a, s) => this.mmioRead(a, s), write: (a, s, v) => this.mmioWrite(a, s, v) };
    opts.bus.lapics.push(this);
  }

  /** Power-on state (SDM vol. 3A §10.4.7.1), or after INIT, which keeps the APIC ID. */
  private resetState(id: number, hwEnabled: boolean, lint: boolean[], virtualWire: boolean): LapicState {
    const lvt = new Uint32Array(6).fill(LVT_MASKED);
    if (virtualWire) { lvt[LVT_LINT0] = DM_EXTINT << 8; lvt[LVT_LINT1] = DM_NMI << 8; }
    return {
      id, tpr: 0, ldr: 0, dfr: 0xffffffff, svr: 0xff,
      isr: new Uint32Array(8), tmr: new Uint32Array(8), irr: new Uint32Array(8),
      esr: 0, esrPending: 0, icrLo: 0, icrHi: 0, lvt, initialCount: 0, divideConfig: 0, timerStart: 0,
      oneShotPending: false, hwEnabled, lint, extIntReq: false,
    };
  }

  get apicId(): number { return this.state.id; }
  get priority(): number { return this.state.tpr; }
  private get swEnabled(): boolean { return (this.state.svr & SVR_ENABLE) !== 0; }

  /** IA32_APIC_BASE[11] (the machine's MSR code calls this). */
  setHardwareEnabled(on: boolean): void { this.state.hwEnabled = on; this.updateIntr(); }

  // --- Interrupt acceptance and priority (§10.8) --------------------------------------------------------------

  /** Flat model: a bit of the 8-bit logical ID; cluster model: cluster nibble equal, member bits overlap. */
  matchesLogical(dest: number): boolean {
    const ldr = this.state.ldr >>> 24;
    if ((this.state.dfr >>> 28) === 0xf) return (ldr & dest) !== 0;
    return ((dest >>> 4) === 0xf || (dest >>> 4) === (ldr >>> 4)) && (dest & ldr & 0xf) !== 0;
  }

  accept(msg: ApicMessage): void {
    switch (msg.deliveryMode) {
      case DM_FIXED: case DM_LOWEST: this.acceptFixed(msg.vector, msg.levelTriggered); break;
      case DM_NMI: this.nmi(); break;
      case DM_INIT:
        // INIT level de-assert only resynchronises arbitration IDs (SDM vol. 3A §10.6.1).
        if (msg.levelTriggered && msg.assert === false) return;
        this.init();
        break;
      case DM_SIPI: this.opts.onSipi?.(msg.vector); break;
      case DM_EXTINT: this.state.extIntReq = true; this.updateIntr(); break;
      case DM_SMI: break; // no SMM in this machine
    }
  }

  private acceptFixed(vector: number, level: boolean): void {
    // Vectors 0-15 are reserved; the APIC refuses them and reports it (§10.5.3).
    if (vector < 16) { this.error(ESR_RECV_ILLEGAL); return; }
    setBit(this.state.irr, vector, true);
    setBit(this.state.tmr, vector, level);
    this.updateIntr();
  }

  private nmi(): void { this.opts.onNmi?.(); }

  private init(): void {
    const s = this.state;
    this.state = this.resetState(s.id, s.hwEnabled, s.lint, false);
    this.timer.deadline = -1;
    this.updateIntr();
    this.opts.onInit?.();
  }

  /** PPR: the TPR, or the class of the highest in-service vector if that is higher (§10.8.3.1). */
  get ppr(): number {
    const tpr = this.state.tpr & 0xff;
    const isrv = highest(this.state.isr);
    return isrv < 0 || (tpr >>> 4) >= (isrv >>> 4) ? tpr : isrv & 0xf0;
  }

  /** The 8259's output reaches INTR when LINT0 is an unmasked ExtINT entry, or with the APIC disabled. */
  private extIntPending(): boolean {
    const s = this.state;
    if (!s.hwEnabled) return s.lint[0];
    const lvt = s.lvt[LVT_LINT0];
    return s.extIntReq || (s.lint[0] && !(lvt & LVT_MASKED) && ((lvt >>> 8) & 7) === DM_EXTINT);
  }

  /** A fixed interrupt whose priority class beats the PPR can be dispatched (§10.8.3.1). */
  private fixedPending(): number {
    if (!this.state.hwEnabled || !this.swEnabled) return -1;
    const v = highest(this.state.irr);
    return v >= 0 && (v >>> 4) > (this.ppr >>> 4) ? v : -1;
  }

  private updateIntr(): void {
    const level = this.extIntPending() || this.fixedPending() >= 0;
    if (level !== this.intrOut) { this.intrOut = level; this.opts.onIntrChange(level); }
  }

  /** The INTA cycle (SDM vol. 3A §10.8.4 steps; §10.9 for the spurious case). */
  acknowledge(): number {
    if (this.extIntPending()) {
      this.state.extIntReq = false;
      const v = this.opts.extInt ? this.opts.extInt.acknowledge() : -1;
      this.updateIntr();
      return v;
    }
    const v = this.fixedPending();
    if (v < 0) return this.swEnabled ? this.state.svr & 0xff : -1;
    setBit(this.state.irr, v, false);
    setBit(this.state.isr, v, true);
    this.updateIntr();
    return v;
  }

  private eoi(): void {
    const v = highest(this.state.isr);
    if (v < 0) return;
    setBit(this.state.isr, v, false);
    // Level-triggered interrupts are EOI'd at their I/O APIC too, which clears Remote IRR (§10.8.5).
    if (getBit(this.state.tmr, v)) this.bus.broadcastEoi(v);
    this.updateIntr();
  }

  // --- LINT pins, LVT and errors (§10.5.1) ----------------------------------------------------------------------

  /** LINT0 (the 8259's INTR) and LINT1 (NMI on a PC) as an interrupt sink: lines 0 and 1. */
  setIrq(line: number, level: boolean): void { this.setLint(line, level); }

  setLint(pin: number, level: boolean): void {
    const s = this.state;
    const was = s.lint[pin];
    s.lint[pin] = level;
    if (!s.hwEnabled) {
      if (pin === 1 && level && !was) this.nmi();
      this.updateIntr();
      return;
    }
    const lvt = s.lvt[LVT_LINT0 + pin];
    const mode = (lvt >>> 8) & 7;
    if (!(lvt & LVT_MASKED) && mode !== DM_EXTINT) {
      // LINT1 is always edge-triggered; a level-triggered LINT0 re-requests while it stays asserted.
      const levelMode = pin === 0 && (lvt & LVT_LEVEL) !== 0;
      if (level && (!was || levelMode)) this.fireLvt(LVT_LINT0 + pin, levelMode);
    }
    this.updateIntr();
  }

  private fireLvt(i: number, level = false): void {
    const lvt = this.state.lvt[i];
    if (lvt & LVT_MASKED) return;
    const mode = i === LVT_TIMER || i === LVT_ERROR ? DM_FIXED : (lvt >>> 8) & 7;
    if (mode === DM_NMI) this.nmi();
    else if (mode === DM_FIXED) this.acceptFixed(lvt & 0xff, level);
    else if (mode === DM_INIT) this.init();
  }

  private error(bit: number): void {
    this.state.esrPending |= bit;
    this.fireLvt(LVT_ERROR);
  }

  // --- Timer (§10.5.4) ---------------------------------------------------------------------------------------

  /** Divide configuration bits 3,1:0 → 2, 4, ..., 128, and 111b → 1 (Figure 10-10). */
  private get divisor(): number {
    const d = this.state.divideConfig;
    const v = (d & 3) | ((d & 8) >>> 1);
    return v === 7 ? 1 : 2 << v;
  }

  private get tickNs(): number { return (this.divisor * 1e9) / APIC_TIMER_HZ; }

  private get periodic(): boolean { return (this.state.lvt[LVT_TIMER] & TIMER_PERIODIC) !== 0; }

  currentCount(): number {
    const s = this.state;
    if (s.initialCount === 0) return 0;
    const ticks = Math.floor((this.clock.now() - s.timerStart) / this.tickNs);
    if (this.periodic) return s.initialCount - (ticks % s.initialCount);
    return ticks >= s.initialCount ? 0 : s.initialCount - ticks;
  }

  /**
   * A one-shot count that already ran out but whose interrupt the host has not delivered yet (timers run
   * between slices of guest code) stays armed: re-arming it on an LVT or divide write must not lose it.
   */
  private armTimer(): void {
    const s = this.state;
    const running = s.initialCount !== 0 && (this.periodic || s.oneShotPending);
    this.timer.deadline = running ? s.timerStart + s.initialCount * this.tickNs : -1;
  }

  private timerExpired(): void {
    const s = this.state;
    s.oneShotPending = false;
    this.fireLvt(LVT_TIMER);
    if (this.periodic && s.initialCount) {
      // Reload; if the host fell behind by several periods the missed ones coalesce into this one.
      const period = s.initialCount * this.tickNs;
      s.timerStart += Math.max(1, Math.floor((this.clock.now() - s.timerStart) / period)) * period;
      this.armTimer();
    }
  }

  // --- Registers (Table 10-1) -------------------------------------------------------------------------------

  private mmioRead(off: number, size: 1 | 2 | 4): number {
    const v = this.readReg(off & 0xff0);
    if (off & 0xc) return 0;
    const sh = (off & 3) * 8;
    return size === 4 ? v | 0 : (v >>> sh) & (size === 1 ? 0xff : 0xffff);
  }

  private mmioWrite(off: number, size: 1 | 2 | 4, value: number): void {
    // Registers are 32 bits wide on 16-byte boundaries; narrower or unaligned writes are undefined (§10.4.1).
    if (size !== 4 || (off & 0xf)) return;
    this.writeReg(off, value >>> 0);
  }

  readReg(reg: number): number {
    const s = this.state;
    if (reg >= 0x100 && reg < 0x280) {
      const arr = reg < 0x180 ? s.isr : reg < 0x200 ? s.tmr : s.irr;
      return arr[((reg - 0x100) >>> 4) & 7];
    }
    if (reg >= 0x320 && reg <= 0x370) {
      return s.lvt[(reg - 0x320) >>> 4]; // delivery status stays 0: messages are delivered at once
    }
    switch (reg) {
      case 0x020: return s.id << 24 >>> 0;
      case 0x030: return LAPIC_VERSION;
      case 0x080: return s.tpr;
      case 0x090: return 0; // arbitration priority: arbitration is not modelled
      case 0x0a0: return this.ppr;
      case 0x0d0: return s.ldr;
      case 0x0e0: return s.dfr;
      case 0x0f0: return s.svr;
      case 0x280: return s.esr;
      case 0x300: return s.icrLo;
      case 0x310: return s.icrHi;
      case 0x380: return s.initialCount;
      case 0x390: return this.currentCount();
      case 0x3e0: return s.divideConfig;
      default: return 0;
    }
  }

  writeReg(reg: number, v: number): void {
    const s = this.state;
    if (reg >= 0x320 && reg <= 0x370) {
      const i = (reg - 0x320) >>> 4;
      // A software-disabled APIC keeps every LVT entry masked (§10.4.7.2).
      s.lvt[i] = (v & LVT_WMASK[i]) | (this.swEnabled ? 0 : LVT_MASKED);
      if (i === LVT_TIMER) this.armTimer();
      if (i === LVT_LINT0) this.updateIntr();
      return;
    }
    switch (reg) {
      case 0x020: s.id = v >>> 24; break;
      case 0x080: s.tpr = v & 0xff; this.updateIntr(); break;
      case 0x0b0: this.eoi(); break;
      case 0x0d0: s.ldr = v & 0xff000000; break;
      case 0x0e0: s.dfr = (v | 0x0fffffff) >>> 0; break;
      case 0x0f0:
        s.svr = v & 0x13ff;
        if (!this.swEnabled) for (let i = 0; i < 6; i++) s.lvt[i] |= LVT_MASKED;
        this.updateIntr();
        break;
      case 0x280: s.esr = s.esrPending; s.esrPending = 0; break; // a write latches the errors (§10.5.3)
      case 0x300: s.icrLo = v & 0x000ccfff; this.sendIpi(); break;
      case 0x310: s.icrHi = v & 0xff000000; break;
      case 0x380: s.initialCount = v; s.timerStart = this.clock.now(); s.oneShotPending = v !== 0; this.armTimer(); break;
      case 0x3e0: {
        // Keep the current count across a divider change; only the rate changes.
        const cur = this.currentCount();
        s.divideConfig = v & 0xb;
        if (s.initialCount) s.timerStart = this.clock.now() - (s.initialCount - cur) * this.tickNs;
        this.armTimer();
        break;
      }
      case 0x030: case 0x0a0: case 0x390: break; // read-only
      default:
        if (![0x090, 0x0c0].includes(reg)) this.error(ESR_ILLEGAL_REG);
    }
  }

  /** Sends the IPI the ICR describes (SDM vol. 3A §10.6.1, Figure 10-12). */
  private sendIpi(): void {
    const lo = this.state.icrLo;
    const msg: ApicMessage = {
      vector: lo & 0xff, deliveryMode: (lo >>> 8) & 7, logical: (lo & (1 << 11)) !== 0,
      dest: this.state.icrHi >>> 24, levelTriggered: (lo & (1 << 15)) !== 0, assert: (lo & (1 << 14)) !== 0,
    };
    if ((msg.deliveryMode === DM_FIXED || msg.deliveryMode === DM_LOWEST) && msg.vector < 16) {
      this.error(ESR_SEND_ILLEGAL);
      return;
    }
    const all = this.bus.lapics;
    switch ((lo >>> 18) & 3) {
      case 0: this.bus.deliver(msg); break;
      case 1: this.bus.deliver(msg, [this]); break;
      case 2: this.bus.deliver(msg, all.slice()); break;
      case 3: this.bus.deliver(msg, all.filter((l) => l !== this)); break;
    }
  }

  afterRestore(): void {
    this.armTimer();
    this.intrOut = this.extIntPending() || this.fixedPending() >= 0;
    this.opts.onIntrChange(this.intrOut);
  }
}

function setBit(a: Uint32Array, v: number, on: boolean): void {
  if (on) a[v >>> 5] |= 1 << (v & 31);
  else a[v >>> 5] &= ~(1 << (v & 31));
}

function getBit(a: Uint32Array, v: number): boolean { return (a[v >>> 5] & (1 << (v & 31))) !== 0; }

/** Highest set vector in a 256-bit register, or -1. */
function highest(a: Uint32Array): number {
  for (let i = 7; i >= 0; i--) if (a[i]) return i * 32 + 31 - Math.clz32(a[i]);
  return -1;
}
