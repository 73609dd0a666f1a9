// Intel 8254 programmable interval timer at 0x40-0x43 (channel 0 -> IRQ0, channel 1 = DRAM refresh,
// channel 2 -> PC speaker), clocked at 1.193182 MHz, and the PC/AT "NMI status and control" port 0x61
// that gates channel 2 and reads its output back (Linux's PIT TSC calibration polls it).
// References: Intel 8254 datasheet (order 231164): "Control Word Format", "Read Operations" (counter latch,
// read-back command, status byte), "Mode Definitions" 0-5, "Gate" table (Figure 19);
// Intel 82371AB PIIX4 datasheet §4.7.5 (NMISC, port 61h).

import type { Clock, Timer } from '../../machine/clock.ts';
import type { IoBus, PortDevice } from '../../machine/io-bus.ts';
import type { IrqLine } from '../../machine/irq.ts';
import type { Stateful } from '../state.ts';
import { widenByte } from './byte-port.ts';

export const PIT_HZ = 1_193_182;

type Channel = {
  /** Control word bits 5-0 as programmed (RW1 RW0 M2 M1 M0 BCD); the status byte reports them. */
  control: number;
  mode: number;
  /** 1 = LSB only, 2 = MSB only, 3 = LSB then MSB. */
  rw: number;
  bcd: boolean;
  /** The count register (binary, already converted from BCD); 0 means the maximum count. */
  count: number;
  /** A count is in the counting element (a count has been written since the control word). */
  loaded: boolean;
  /** Modes 1 and 5: a gate trigger has started the count. */
  triggered: boolean;
  /** Counting is in progress (loaded, gate allows it); elapsed = baseTicks + ticks since startNs. */
  running: boolean;
  startNs: number;
  baseTicks: number;
  /** Modes 2/3: a count written while counting takes effect at the end of the current period; until
   *  then (elapsed < 0) the counter finishes the period of `prevN`. */
  prevN: number;
  gate: boolean;
  nullCount: boolean;
  writeMsbNext: boolean;
  lsb: number;
  readMsbNext: boolean;
  /** Counter latch: bytes still to read (0 = not latched) and the latched value. */
  latchBytes: number;
  latchMsbNext: boolean;
  latched: number;
  statusLatched: boolean;
  status: number;
  /** Last OUT level presented to the IRQ line. */
  out: boolean;
};

/**
 * `lost`: channel 0 periods whose IRQ0 edge the host delivered late (it ran guest code past them);
 * `lastPeriod`: index of the last period that got its edge (-1 after (re)programming).
 */
export type PitState = { ch: Channel[]; port61: number; lost: number; lastPeriod: number };

/**
 * Late channel-0 edges are re-delivered this far apart, so the guest's tick count catches up with real
 * time (the 8254 itself never loses one; only our host can stall). Linux's clocksource watchdog compares
 * jiffies with the TSC early in boot and marks the TSC unstable if they drift apart.
 */
const CATCHUP_NS = 200_000;

function newChannel(gate: boolean): Channel {
  return {
    control: 0, mode: 0, rw: 3, bcd: false, count: 0, loaded: false, triggered: false, running: false,
    startNs: 0, baseTicks: 0, prevN: 0, gate, nullCount: true, writeMsbNext: false, lsb: 0,
    readMsbNext: false, latchBytes: 0, latchMsbNext: false, latched: 0, statusLatched: false, status: 0, out: false,
  };
}

/** Whole PIT clocks in `ns` nanoseconds, exact for long spans (seconds and remainder kept apart). */
export function pitTicks(ns: number): number {
  const s = Math.floor(ns / 1e9);
  return s * PIT_HZ + Math.floor(((ns - s * 1e9) * PIT_HZ) / 1e9);
}
/** The first nanosecond at which `ticks` PIT clocks have elapsed. */
export function pitNs(ticks: number): number {
  const s = Math.floor(ticks / PIT_HZ);
  return s * 1e9 + Math.ceil(((ticks - s * PIT_HZ) * 1e9) / PIT_HZ);
}

const toBcd = (v: number): number => ((v / 1000 | 0) % 10) << 12 | ((v / 100 | 0) % 10) << 8 | ((v / 10 | 0) % 10) << 4 | v % 10;
const fromBcd = (v: number): number => (v >> 12 & 15) * 1000 + (v >> 8 & 15) * 100 + (v >> 4 & 15) * 10 + (v & 15);

export class Pit8254 implements PortDevice, Stateful<PitState> {
  readonly name = 'pit';
  // Channels 0 and 1 have GATE tied high on the PC; channel 2's gate is port 61h bit 0.
  state: PitState = { ch: [newChannel(true), newChannel(true), newChannel(false)], port61: 0, lost: 0, lastPeriod: -1 };
  private readonly timer: Timer;
  /** The speaker's tone in Hz (0 = silent): channel 2 square wave gated by port 61h bits 0 and 1. */
  onSpeaker: ((hz: number) => void) | null = null;
  private speakerHz = 0;

  /** Channel 0's OUT drives `irq0` (ISA IRQ0). */
  constructor(private readonly clock: Clock, private readonly irq0: IrqLine) {
    this.timer = clock.createTimer(() => this.channel0Event());
  }

  register(bus: IoBus): void {
    bus.register(0x40, 4, this, 'pit');
    bus.register(0x61, 1, this, 'port61');
  }

  /** N, the number of clocks in a full count: a count of 0 is 2^16 in binary, 10^4 in BCD. */
  private n(c: Channel): number { return c.count || (c.bcd ? 10000 : 0x10000); }

  private elapsed(c: Channel): number {
    return c.running ? c.baseTicks + pitTicks(this.clock.now() - c.startNs) : c.baseTicks;
  }

  private start(c: Channel, fromTick: number): void {
    c.running = true; c.startNs = this.clock.now(); c.baseTicks = fromTick;
    if (c === this.state.ch[0]) { this.state.lost = 0; this.state.lastPeriod = -1; }
  }
  private freeze(c: Channel): void {
    c.baseTicks = this.elapsed(c); c.running = false;
  }

  /** The counting element's value now (what a latch captures). */
  private value(c: Channel): number {
    const n = this.n(c), d = this.elapsed(c), wrap = c.bcd ? 10000 : 0x10000;
    if (!c.loaded) return c.count;
    switch (c.mode) {
      case 2: return d < 0 ? -d : n - (d % n);
      // Mode 3 decrements by two each clock and runs through the count once per half period.
      case 3: return d < 0 ? (2 * -d) % c.prevN || c.prevN : n - ((2 * d) % n);
      default: return (((n - d) % wrap) + wrap) % wrap;
    }
  }

  /** OUT per "Mode Definitions": initial level after the control word, then the per-mode waveform. */
  private outLevel(c: Channel): boolean {
    const n = this.n(c), d = this.elapsed(c);
    switch (c.mode) {
      case 0: return c.loaded && d >= n;
      case 1: return !c.triggered || d >= n;
      case 2: if (!c.loaded || !c.gate) return true; return d < 0 ? d !== -1 : d % n !== n - 1;
      case 3: if (!c.loaded || !c.gate) return true; return d < 0 ? -d > (c.prevN >> 1) : d % n < (n + 1) >> 1;
      case 4: return !c.loaded || d !== n;
      default: return !c.triggered || d !== n;
    }
  }

  ioRead(port: number, size: 1 | 2 | 4): number {
    if (port === 0x61) return widenByte(this.readPort61(), size);
    if (port === 0x43) return 0xff; // the control register is write-only
    return widenByte(this.readCounter(this.state.ch[port - 0x40]), size);
  }

  ioWrite(port: number, size: 1 | 2 | 4, value: number): void {
    value &= 0xff;
    if (port === 0x61) return this.writePort61(value);
    if (port === 0x43) return this.writeControl(value);
    this.writeCounter(port - 0x40, value);
  }

  private readCounter(c: Channel): number {
    // A latched status byte is read first, then a latched count ("Read-Back Command").
    if (c.statusLatched) { c.statusLatched = false; return c.status; }
    let v: number, msb: boolean;
    if (c.latchBytes) {
      v = c.latched;
      msb = c.rw === 2 || (c.rw === 3 && c.latchMsbNext);
      c.latchMsbNext = !c.latchMsbNext;
      c.latchBytes--;
    } else {
      v = this.value(c);
      if (c.bcd) v = toBcd(v);
      msb = c.rw === 2 || (c.rw === 3 && c.readMsbNext);
      if (c.rw === 3) c.readMsbNext = !c.readMsbNext;
    }
    return msb ? v >> 8 & 0xff : v & 0xff;
  }

  private latchCount(c: Channel): void {
    // "If a Counter is latched and then, some time later, latched again before the count is read, the
    // second Counter Latch Command is ignored."
    if (c.latchBytes) return;
    c.latched = c.bcd ? toBcd(this.value(c)) : this.value(c);
    c.latchBytes = c.rw === 3 ? 2 : 1;
    c.latchMsbNext = false;
  }

  private writeControl(v: number): void {
    const sc = v >> 6;
    if (sc === 3) { // Read-back: bit 5 = !COUNT, bit 4 = !STATUS, bits 3-1 select counters 2..0
      for (let i = 0; i < 3; i++) {
        if (!(v & (2 << i))) continue;
        const c = this.state.ch[i];
        if (!(v & 0x20)) this.latchCount(c);
        if (!(v & 0x10) && !c.statusLatched) {
          c.status = (this.outLevel(c) ? 0x80 : 0) | (c.nullCount ? 0x40 : 0) | c.control;
          c.statusLatched = true;
        }
      }
      return;
    }
    const c = this.state.ch[sc];
    const rw = (v >> 4) & 3;
    if (rw === 0) return this.latchCount(c);
    // A new control word resets the counter's control logic; OUT goes to its mode's initial state.
    c.control = v & 0x3f;
    c.mode = (v >> 1) & 7;
    if (c.mode > 5) c.mode -= 4; // modes 6 and 7 are aliases of 2 and 3 (M2 is a don't-care)
    c.rw = rw; c.bcd = (v & 1) !== 0;
    c.loaded = false; c.triggered = false; c.running = false; c.baseTicks = 0; c.nullCount = true;
    c.writeMsbNext = false; c.readMsbNext = false; c.latchBytes = 0; c.statusLatched = false;
    this.changed(c);
  }

  private writeCounter(i: number, v: number): void {
    const c = this.state.ch[i];
    let count: number;
    if (c.rw === 1) count = v;
    else if (c.rw === 2) count = v << 8;
    else if (!c.writeMsbNext) {
      c.lsb = v; c.writeMsbNext = true;
      // Mode 0: "writing the first byte disables counting" and OUT goes low at once.
      if (c.mode === 0) { this.freeze(c); c.loaded = false; this.changed(c); }
      return;
    } else { count = c.lsb | v << 8; c.writeMsbNext = false; }
    if (c.bcd) count = fromBcd(count) % 10000;
    this.load(c, count);
  }

  private load(c: Channel, count: number): void {
    const oldN = this.n(c), wasCounting = c.loaded && c.running;
    c.count = count;
    c.nullCount = false;
    switch (c.mode) {
      case 0: case 4: // a new count restarts the count (mode 4: retriggerable by software)
        c.loaded = true; c.running = false; c.baseTicks = 0;
        if (c.gate) this.start(c, 0);
        break;
      case 1: case 5: // the count waits for a gate trigger
        c.loaded = true;
        break;
      default: // modes 2 and 3: a count written while counting is loaded at the end of the period
        if (wasCounting) {
          const d = this.elapsed(c);
          const left = d < 0 ? -d : oldN - (d % oldN);
          c.prevN = d < 0 ? c.prevN : oldN;
          this.start(c, -left);
        } else {
          c.loaded = true; c.running = false; c.baseTicks = 0; c.prevN = this.n(c);
          if (c.gate) this.start(c, 0);
        }
    }
    this.changed(c);
  }

  /** The gate table (Figure 19): modes 0/4 pause while low; 1/5 trigger on a rising edge; 2/3 stop while
   *  low (OUT high) and restart from a full count on the rising edge. */
  private setGate(i: number, level: boolean): void {
    const c = this.state.ch[i];
    if (c.gate === level) return;
    c.gate = level;
    if (c.mode === 0 || c.mode === 4) {
      if (!level) this.freeze(c); else if (c.loaded) this.start(c, c.baseTicks);
    } else if (c.mode === 1 || c.mode === 5) {
      if (level && c.loaded) { c.triggered = true; this.start(c, 0); }
    } else if (!level) {
      this.freeze(c);
    } else if (c.loaded) {
      c.prevN = this.n(c); this.start(c, 0);
    }
    this.changed(c);
  }

  /** After any change to a channel: update IRQ0 / the speaker and re-arm channel 0's timer. */
  private changed(c: Channel): void {
    if (c === this.state.ch[0]) {
      c.out = this.outLevel(c);
      this.irq0.set(c.out);
      this.arm();
    } else if (c === this.state.ch[2]) this.speaker();
  }

  /** Schedules the next rising edge of OUT0 strictly after now, skipping any that were missed. */
  private arm(): void {
    const c = this.state.ch[0];
    this.timer.deadline = -1;
    if (!c.loaded || !c.running) return;
    const n = this.n(c), d = this.elapsed(c);
    let next: number;
    if (c.mode === 2 || c.mode === 3) next = d < 0 ? 0 : (Math.floor(d / n) + 1) * n;
    else if (c.mode === 4 || c.mode === 5) { if (d > n) return; next = n + 1; }
    else { if (d >= n) return; next = n; }
    this.timer.deadline = c.startNs + pitNs(next - c.baseTicks);
    if (this.state.lost > 0) this.timer.deadline = Math.min(this.timer.deadline, this.clock.now() + CATCHUP_NS);
  }

  /** One timer event = one edge on IRQ0, however many periods the host let slip by: the missed ones are
   *  coalesced into this one (the PIC could latch no more than one anyway). */
  private channel0Event(): void {
    const c = this.state.ch[0];
    if (c.mode === 0 || c.mode === 1) this.irq0.set(this.outLevel(c));
    else { this.irq0.set(false); this.irq0.set(true); } // OUT's low pulse (or square wave) ends in a rising edge
    c.out = this.irq0.high;
    if (c.mode >= 2 && this.elapsed(c) >= 0) {
      c.prevN = this.n(c);
      this.countPeriods(c);
    }
    this.arm();
  }

  /**
   * Periodic modes: this edge belongs to a new period (the periods skipped since the last edge become
   * `lost`, to be re-delivered), or, when no new period began, it is one of the re-delivered edges.
   * The backlog is capped at one second's worth, beyond which a stalled host's ticks are dropped.
   */
  private countPeriods(c: Channel): void {
    const st = this.state;
    const idx = Math.floor(this.elapsed(c) / this.n(c));
    if (st.lastPeriod < 0) st.lastPeriod = idx;
    else if (idx === st.lastPeriod) { if (st.lost > 0) st.lost--; }
    else {
      st.lost = Math.min(st.lost + (idx - st.lastPeriod - 1), Math.ceil(PIT_HZ / this.n(c)));
      st.lastPeriod = idx;
    }
  }

  private speaker(): void {
    const c = this.state.ch[2];
    const hz = (this.state.port61 & 3) === 3 && c.mode === 3 && c.loaded ? PIT_HZ / this.n(c) : 0;
    if (hz !== this.speakerHz) { this.speakerHz = hz; this.onSpeaker?.(hz); }
  }

  /** Port 61h: bits 3-0 read back as written; bit 4 = refresh toggle, bit 5 = OUT2, bits 7-6 = NMI
   *  sources (SERR#, IOCHK#), never asserted here. */
  private readPort61(): number {
    // The refresh request bit toggles every 15.085 us (channel 1's DRAM refresh period at count 18).
    const refresh = Math.floor(this.clock.now() / 15085) & 1;
    return (this.state.port61 & 0x0f) | refresh << 4 | (this.outLevel(this.state.ch[2]) ? 0x20 : 0);
  }

  private writePort61(v: number): void {
    this.state.port61 = v & 0x0f;
    this.setGate(2, (v & 1) !== 0);
    this.speaker(); // bit 1 (speaker data enable) alone changes the tone too
  }

  afterRestore(): void {
    const c = this.state.ch[0];
    this.irq0.set(c.out);
    this.arm();
    this.speaker();
  }
}
