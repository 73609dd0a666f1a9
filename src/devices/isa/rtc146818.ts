// Motorola MC146818A real-time clock with its 128 bytes of CMOS RAM, behind the PC's index/data ports
// 0x70/0x71 (bit 7 of the index write is the PC's NMI mask). Time is the host's UTC wall clock plus an
// offset the guest sets by writing the time registers.
// References: Motorola MC146818A datasheet: "Address Map" (Figure 3), "Time, Calendar and Alarm
// Locations" (Table 3, data modes), "Register A/B/C/D", "Update Cycle" (UIP timing, Figure 16),
// "Interrupts" (periodic rates, Table 4). IBM PC/AT Technical Reference, "CMOS RAM Address Map" (0x10-0x3F).

import type { Clock, Timer } from '../../machine/clock.ts';
import type { IoBus, PortDevice } from '../../machine/io-bus.ts';
import type { IrqLine } from '../../machine/irq.ts';
import type { Stateful } from '../state.ts';
import { widenByte } from './byte-port.ts';

export type RtcState = {
  cmos: Uint8Array;
  index: number;
  nmiMasked: boolean;
  /** Guest time minus host time, in milliseconds (the guest's setting of the clock). */
  offsetMs: number;
  /** Clock time up to which periodic/update/alarm events have been accounted for. */
  lastCheckNs: number;
  /** The divider chain was held in reset since the time registers were frozen. */
  dividerWasReset: boolean;
};

const SEC = 0, SEC_ALARM = 1, MIN = 2, MIN_ALARM = 3, HOUR = 4, HOUR_ALARM = 5, WDAY = 6, MDAY = 7,
  MONTH = 8, YEAR = 9, REG_A = 0x0a, REG_B = 0x0b, REG_C = 0x0c, REG_D = 0x0d, CENTURY = 0x32;
const B_SET = 0x80, B_PIE = 0x40, B_AIE = 0x20, B_UIE = 0x10, B_DM = 0x04, B_24H = 0x02;
const C_IRQF = 0x80, C_PF = 0x40, C_AF = 0x20, C_UF = 0x10;
/** "Update Cycle": UIP rises 244 us (tBUC) before the update, which then takes 1984 us (tUC). */
const UIP_MS = 0.244 + 1.984;

/** The registers the update cycle maintains (the alarm bytes in between are plain RAM to it). */
const isTimeReg = (r: number): boolean =>
  r === SEC || r === MIN || r === HOUR || (r >= WDAY && r <= YEAR) || r === CENTURY;
const bcd = (v: number): number => ((v / 10) | 0) << 4 | v % 10;
const unbcd = (v: number): number => (v >> 4) * 10 + (v & 15);

export class Rtc146818 implements PortDevice, Stateful<RtcState> {
  readonly name = 'rtc';
  state: RtcState;
  private readonly timer: Timer;
  private readonly hostEpochMs: number;
  private readonly hostClockNs: number;

  /**
   * `memoryBytes` (guest RAM size) fills the BIOS memory-size bytes; `epochMs` is the host's wall-clock
   * time now (default `Date.now()`), which then advances with `clock`.
   */
  constructor(private readonly clock: Clock, private readonly irq8: IrqLine,
    opts: { memoryBytes: number; epochMs?: number }) {
    this.hostEpochMs = opts.epochMs ?? Date.now();
    this.hostClockNs = clock.now();
    const cmos = new Uint8Array(128);
    cmos[REG_A] = 0x26; // DV = 010 (32.768 kHz time base), RS = 0110 (1024 Hz), as the PC BIOS sets it
    cmos[REG_B] = B_24H; // 24-hour BCD, interrupts off
    cmos[REG_D] = 0x80; // VRT: the RAM and time are valid (battery good)
    this.fillMemorySize(cmos, opts.memoryBytes);
    this.state = { cmos, index: 0, nmiMasked: false, offsetMs: 0, lastCheckNs: this.hostClockNs, dividerWasReset: false };
    this.timer = clock.createTimer(() => this.checkEvents());
  }

  register(bus: IoBus): void { bus.register(0x70, 2, this, 'rtc'); }

  /** Whether the NMI mask bit (port 0x70 bit 7) lets NMIs through. */
  get nmiEnabled(): boolean { return !this.state.nmiMasked; }

  /** PC/AT CMOS map: 0x15-16 base KB, 0x17-18 and 0x30-31 KB above 1 MiB, 0x34-35 64 KiB units above 16 MiB. */
  private fillMemorySize(c: Uint8Array, bytes: number): void {
    const put16 = (at: number, v: number): void => { c[at] = v & 0xff; c[at + 1] = v >> 8; };
    put16(0x15, 640);
    const ext = Math.min(0xffff, Math.max(0, Math.floor((bytes - 0x100000) / 1024)));
    put16(0x17, ext); put16(0x30, ext);
    put16(0x34, Math.min(0xffff, Math.max(0, Math.floor((bytes - 0x1000000) / 0x10000))));
    c[0x14] = 0x06; // equipment: keyboard present, math coprocessor present, no floppy
    let sum = 0; // checksum of 0x10-0x2D, big-endian at 0x2E
    for (let i = 0x10; i <= 0x2d; i++) sum += c[i];
    put16(0x2e, ((sum & 0xff) << 8) | (sum >> 8));
  }

  private hostMs(ns = this.clock.now()): number { return this.hostEpochMs + (ns - this.hostClockNs) / 1e6; }
  private guestMs(ns = this.clock.now()): number { return this.hostMs(ns) + this.state.offsetMs; }

  /** SET (register B) or a divider reset (DV = 11x) stop the update cycles; the registers then hold still. */
  private frozen(): boolean {
    const c = this.state.cmos;
    return (c[REG_B] & B_SET) !== 0 || (c[REG_A] & 0x60) === 0x60;
  }

  private enc(v: number): number { return this.state.cmos[REG_B] & B_DM ? v : bcd(v); }
  private dec(v: number): number { return this.state.cmos[REG_B] & B_DM ? v : unbcd(v); }
  private encHour(h: number): number {
    if (this.state.cmos[REG_B] & B_24H) return this.enc(h);
    return this.enc(h % 12 || 12) | (h >= 12 ? 0x80 : 0); // 12-hour mode: 1-12, bit 7 = PM
  }
  private decHour(v: number): number {
    if (this.state.cmos[REG_B] & B_24H) return this.dec(v);
    return (this.dec(v & 0x7f) % 12) + (v & 0x80 ? 12 : 0);
  }

  /** Writes the current guest time into the time registers in the current data mode. */
  private snapshot(): void {
    const c = this.state.cmos, t = new Date(Math.floor(this.guestMs() / 1000) * 1000);
    c[SEC] = this.enc(t.getUTCSeconds()); c[MIN] = this.enc(t.getUTCMinutes());
    c[HOUR] = this.encHour(t.getUTCHours()); c[WDAY] = this.enc(t.getUTCDay() + 1);
    c[MDAY] = this.enc(t.getUTCDate()); c[MONTH] = this.enc(t.getUTCMonth() + 1);
    c[YEAR] = this.enc(t.getUTCFullYear() % 100); c[CENTURY] = this.enc(Math.floor(t.getUTCFullYear() / 100));
  }

  /** Takes the time registers as the guest's new time. Leaving divider reset puts the next update 500 ms
   *  away ("Divider chain reset"); otherwise the sub-second phase carries on. */
  private commit(fromDividerReset: boolean): void {
    const c = this.state.cmos;
    const year = this.dec(c[CENTURY]) * 100 + this.dec(c[YEAR]);
    const secs = Date.UTC(year, this.dec(c[MONTH]) - 1, this.dec(c[MDAY]), this.decHour(c[HOUR]),
      this.dec(c[MIN]), this.dec(c[SEC])) / 1000;
    const g = this.guestMs();
    const phase = fromDividerReset ? 500 : g - Math.floor(g / 1000) * 1000;
    if (Number.isFinite(secs)) this.state.offsetMs = secs * 1000 + phase - this.hostMs();
  }

  ioRead(port: number, size: 1 | 2 | 4): number {
    if (port === 0x70) return 0xff; // the index register is write-only on the PC
    return widenByte(this.readReg(this.state.index), size);
  }

  ioWrite(port: number, _size: 1 | 2 | 4, value: number): void {
    value &= 0xff;
    if (port === 0x70) { this.state.index = value & 0x7f; this.state.nmiMasked = (value & 0x80) !== 0; return; }
    this.writeReg(this.state.index, value);
  }

  private readReg(r: number): number {
    const c = this.state.cmos;
    if (isTimeReg(r)) {
      if (!this.frozen()) this.snapshot();
      return c[r];
    }
    switch (r) {
      case REG_A: {
        const g = this.guestMs();
        const uip = !this.frozen() && g - Math.floor(g / 1000) * 1000 >= 1000 - UIP_MS;
        return (c[REG_A] & 0x7f) | (uip ? 0x80 : 0);
      }
      case REG_C: { // reading C clears every flag and releases the IRQ
        this.checkEvents();
        const v = c[REG_C];
        c[REG_C] = 0;
        this.irq8.lower();
        this.arm();
        return v;
      }
      case REG_D: return 0x80;
      default: return c[r];
    }
  }

  private writeReg(r: number, v: number): void {
    const c = this.state.cmos;
    this.checkEvents();
    if (r === REG_C || r === REG_D) return; // read-only
    const wasFrozen = this.frozen();
    const isTime = isTimeReg(r);
    if (!wasFrozen && (isTime || r === REG_A || r === REG_B)) this.snapshot();
    if (r === REG_A) c[r] = (c[r] & 0x80) | (v & 0x7f); // UIP is read-only
    else if (r === REG_B) c[r] = v & B_SET ? v & ~B_UIE : v; // setting SET clears UIE
    else c[r] = v;
    if ((c[REG_A] & 0x60) === 0x60) this.state.dividerWasReset = true;
    if (!this.frozen() && (wasFrozen || isTime)) { this.commit(this.state.dividerWasReset); this.state.dividerWasReset = false; }
    this.state.lastCheckNs = this.clock.now();
    this.updateIrq();
  }

  /** Periodic interrupt period from RS3-RS0 with the 32.768 kHz time base (Table 4); 0 = off. */
  private periodNs(): number {
    const rs = this.state.cmos[REG_A] & 15;
    if (rs === 0 || (this.state.cmos[REG_A] & 0x60) === 0x60) return 0;
    return 1e9 / (rs <= 2 ? 65536 >> (rs + 7) : 65536 >> rs);
  }

  private alarmField(v: number, hour: boolean): number {
    if ((v & 0xc0) === 0xc0) return -1; // "don't care" code 11xxxxxx matches every value
    return hour ? this.decHour(v) : this.dec(v);
  }

  /** The first guest second after `from` (epoch seconds) at which the alarm registers match. */
  private nextAlarm(from: number): number {
    const c = this.state.cmos;
    const hs = this.alarmField(c[HOUR_ALARM], true), ms = this.alarmField(c[MIN_ALARM], false);
    const ss = this.alarmField(c[SEC_ALARM], false);
    if (hs > 23 || ms > 59 || ss > 59) return Infinity;
    const day0 = Math.floor(from / 86400) * 86400;
    for (let day = day0; day <= day0 + 86400; day += 86400)
      for (let h = hs < 0 ? 0 : hs; h <= (hs < 0 ? 23 : hs); h++) {
        if (day + h * 3600 + 3599 <= from) continue;
        for (let m = ms < 0 ? 0 : ms; m <= (ms < 0 ? 59 : ms); m++) {
          if (day + h * 3600 + m * 60 + 59 <= from) continue;
          for (let s = ss < 0 ? 0 : ss; s <= (ss < 0 ? 59 : ss); s++) {
            const t = day + h * 3600 + m * 60 + s;
            if (t > from) return t;
          }
        }
      }
    return Infinity;
  }

  /** Sets PF/UF/AF for every event since the last check (the flags are set whether or not the interrupt
   *  is enabled, "Register C"), raising IRQ8 when an enabled one is set. Many missed events are one. */
  private checkEvents(): void {
    const s = this.state, c = s.cmos, now = this.clock.now(), from = s.lastCheckNs;
    if (now > from) {
      const p = this.periodNs();
      if (p && Math.floor(now / p) > Math.floor(from / p)) c[REG_C] |= C_PF;
      if (!this.frozen()) {
        const s0 = Math.floor(this.guestMs(from) / 1000), s1 = Math.floor(this.guestMs(now) / 1000);
        if (s1 > s0) c[REG_C] |= C_UF;
        if (this.nextAlarm(s0) <= s1) c[REG_C] |= C_AF;
      }
      s.lastCheckNs = now;
    }
    this.updateIrq();
  }

  private updateIrq(): void {
    const c = this.state.cmos;
    if (c[REG_C] & c[REG_B] & (C_PF | C_AF | C_UF)) { c[REG_C] |= C_IRQF; this.irq8.raise(); }
    this.arm();
  }

  /** Wakes at the next enabled event, unless IRQF is already up (then nothing new can be signalled
   *  before the guest reads register C, which re-arms). */
  private arm(): void {
    const c = this.state.cmos, b = c[REG_B], now = this.clock.now();
    let next = Infinity;
    if (!(c[REG_C] & C_IRQF)) {
      const p = this.periodNs();
      if (b & B_PIE && p) next = Math.ceil((Math.floor(now / p) + 1) * p);
      if (!this.frozen() && b & (B_UIE | B_AIE)) {
        const sec = Math.floor(this.guestMs(now) / 1000);
        const at = b & B_UIE ? sec + 1 : this.nextAlarm(sec);
        if (at !== Infinity) {
          const ns = Math.ceil(this.hostClockNs + (at * 1000 - this.state.offsetMs - this.hostEpochMs) * 1e6);
          next = Math.min(next, Math.max(ns, now + 1));
        }
      }
    }
    this.timer.deadline = next === Infinity ? -1 : next;
  }

  afterRestore(): void {
    this.irq8.set((this.state.cmos[REG_C] & C_IRQF) !== 0);
    this.arm();
  }
}
