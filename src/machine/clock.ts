// Virtual time for devices. Time is host monotonic time (so guest clocks follow the wall clock), read
// through one object so that tests can drive it by hand and a paused VM can stop it.

export interface Timer {
  /** Absolute deadline in nanoseconds of Clock time, or -1 when disarmed. */
  deadline: number;
  callback: () => void;
}

export interface ClockOptions {
  /** Only moves with `advance` (deterministic device tests). */
  manual?: boolean;
  /** The host's monotonic time in ns (default `performance.now()`); tests inject one to model stalls. */
  hostNs?: () => number;
}

export class Clock {
  private readonly timers = new Set<Timer>();
  private manualNs: number | null = null;
  private offsetNs = 0;
  private readonly hostNs: () => number;
  /** The latest time `now()` has handed out: the guest may have seen it, so time never goes below it. */
  private observedNs = 0;

  constructor(opts: ClockOptions = {}) {
    this.hostNs = opts.hostNs ?? (() => performance.now() * 1e6);
    if (opts.manual) this.manualNs = 0;
    else this.offsetNs = -this.hostNs();
  }

  /** Nanoseconds since the clock was made; never less than any earlier result. */
  now(): number {
    if (this.manualNs !== null) return this.manualNs;
    const t = Math.floor(this.hostNs() + this.offsetNs);
    if (t > this.observedNs) this.observedNs = t;
    return this.observedNs;
  }

  /**
   * Removes up to `ns` of host time from the guest's view: time the host did not run the VM (the process
   * was descheduled, or a garbage-collection pause) would otherwise reach the guest as a jump that only
   * some of its clocks can follow (interrupt-counted jiffies lag the TSC), which Linux then reports as
   * an unstable clocksource.
   *
   * Only time nobody has read yet can be withheld. Every guest clock (TSC, local APIC current count, ACPI
   * PM timer, PIT) is derived from `now()`, and each must count monotonically: the TSC "increments
   * monotonically" (SDM vol. 3B §17.17), the PM timer is a free-running up-counter (ACPI spec, "Power
   * Management Timer"). Rewinding past a value already read makes Linux's LAPIC calibration
   * (calibrate_APIC_clock) see its TSC-paced 100 ms window end at once with negative APIC and PM-timer
   * deltas ("APIC calibration not consistent with PM-Timer: 4685ms"); the rescaled rate is garbage (in
   * one loaded boot the timer was taken for 61x faster than it runs), so every APIC timer event comes far
   * too late and the guest's tick and clock practically stop.
   * Returns the nanoseconds actually withheld.
   */
  steal(ns: number): number {
    if (this.manualNs !== null || ns <= 0) return 0;
    const unobserved = Math.floor(this.hostNs() + this.offsetNs) - this.observedNs;
    const taken = Math.min(ns, Math.max(0, unobserved));
    this.offsetNs -= taken;
    this.stolenNs += taken;
    return taken;
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
