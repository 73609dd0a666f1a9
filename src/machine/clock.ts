// Virtual time for devices. Time is host monotonic time (so guest clocks follow the wall clock), read
// through one object so that tests can drive it by hand and a paused VM can stop it.

export interface Timer {
  /** Absolute deadline in nanoseconds of Clock time, or -1 when disarmed. */
  deadline: number;
  callback: () => void;
}

export class Clock {
  private readonly timers = new Set<Timer>();
  private manualNs: number | null = null;
  private offsetNs = 0;

  /** `manual` clocks only move with `advance` (deterministic device tests). */
  constructor(opts: { manual?: boolean } = {}) {
    if (opts.manual) this.manualNs = 0;
    else this.offsetNs = -performance.now() * 1e6;
  }

  /** Nanoseconds since the clock was made. */
  now(): number {
    return this.manualNs !== null ? this.manualNs : Math.floor(performance.now() * 1e6 + this.offsetNs);
  }

  /**
   * Removes `ns` of host time from the guest's view: time the host did not run the VM (the process was
   * descheduled, or a garbage-collection pause) would otherwise reach the guest as a jump that only
   * some of its clocks can follow (interrupt-counted jiffies lag the TSC), which Linux then reports as
   * an unstable clocksource.
   */
  steal(ns: number): void {
    if (this.manualNs !== null || ns <= 0) return;
    this.offsetNs -= ns;
    this.stolenNs += ns;
  }

  /** Total host time withheld from the guest by `steal`. */
  stolenNs = 0;

  advance(ns: number): void {
    if (this.manualNs === null) throw new Error('advance() is for manual clocks');
    this.manualNs += ns;
    this.runDue();
  }

  createTimer(callback: () => void): Timer {
    const t: Timer = { deadline: -1, callback };
    this.timers.add(t);
    return t;
  }

  removeTimer(t: Timer): void { this.timers.delete(t); }

  /** Runs every timer whose deadline has passed; returns the next deadline (or -1). */
  runDue(): number {
    const now = this.now();
    let next = -1;
    for (const t of this.timers) {
      if (t.deadline >= 0 && t.deadline <= now) { t.deadline = -1; t.callback(); }
      if (t.deadline >= 0 && (next < 0 || t.deadline < next)) next = t.deadline;
    }
    return next;
  }
}
