// Runs one PcMachine: alternates guest execution slices with timer processing, sleeps while the vCPU is
// halted, feeds console input to the serial port as fast as the guest accepts it, and reports why the
// machine stopped. Host-specific waiting is injected, so this also runs in a browser.

import { PcMachine, type PcConfig, type StopReason } from './pc.ts';

export interface VmHost {
  /** Resolves after `ms` milliseconds, or earlier when `kick()` is called. */
  sleep(ms: number): Promise<void>;
  /** Lets the host's event loop run (I/O callbacks) without delay. */
  yield(): Promise<void>;
}

/** A guest console besides the first UART, such as virtio-console's hvc0. */
export interface ConsolePort {
  /** Offers console input; returns how many bytes the guest took (0 while it has no room). */
  receive(data: Uint8Array): number;
}

export interface VmOptions {
  config: PcConfig;
  host: VmHost;
  /** Bytes the guest wrote to its first serial port. */
  onConsoleOutput: (data: Uint8Array) => void;
  /**
   * A second console on every machine built (again after each reboot): `attach` adds the device and gets
   * where its output goes (the same stream as the serial console's); with `input`, console input goes to it
   * instead of the UART.
   */
  extraConsole?: { attach: (m: PcMachine, output: (data: Uint8Array) => void) => ConsolePort; input: boolean };
  /** Reset behaviour: false restarts the machine (a reboot), true stops with reason 'reset'. */
  noReboot?: boolean;
}

/**
 * Host time a slice of guest execution (or a yield to the event loop) may take before the excess counts
 * as stolen: a slice normally takes well under a millisecond, so anything past this is the host not
 * running us, not the guest doing work.
 */
const STEAL_THRESHOLD_MS = 10;

/**
 * A slice is sized in host time: long enough to amortise the loop around it (timers, console, event
 * loop), short enough that timers fire on time. Linux calibrates its local APIC timer by counting PIT
 * ticks (4 ms at HZ=250); a slice that runs past a tick coalesces ticks and skews the calibration, so a
 * slice stays well under a millisecond. The instruction budget starts at SLICE_MIN and doubles or halves
 * towards SLICE_TARGET_MS: 20,000 instructions are ~0.3 ms on the interpreter but ~40 µs on the JIT,
 * where the per-slice work cost 7% of a SHA-256 run.
 */
const SLICE_MIN = 20_000, SLICE_MAX = 320_000, SLICE_TARGET_MS = 0.25;

export class Vm {
  machine: PcMachine;
  private input: number[] = [];
  private outBuf: number[] = [];
  private wake: (() => void) | null = null;
  private extraConsole: ConsolePort | null = null;
  private quitRequested = false;
  instructions = 0;
  readonly startedAt = performance.now();

  constructor(private readonly opts: VmOptions) {
    this.machine = this.build();
  }

  private build(): PcMachine {
    const extra = this.opts.extraConsole;
    const config = !extra ? this.opts.config : {
      ...this.opts.config,
      devices: [...(this.opts.config.devices ?? []), (m: PcMachine) => {
        this.extraConsole = extra.attach(m, (d) => { for (const b of d) this.outBuf.push(b); });
      }],
    };
    const m = new PcMachine(config);
    m.serial[0].onTransmit = (b) => { this.outBuf.push(b); };
    return m;
  }

  /** Queues console input; bytes enter the UART only when its receive FIFO has room. */
  sendInput(data: Uint8Array): void {
    for (const b of data) this.input.push(b);
    this.kick();
  }

  /** Asks the run loop to stop (the console's quit key). */
  quit(): void { this.quitRequested = true; this.kick(); }

  private kick(): void { const w = this.wake; this.wake = null; w?.(); }

  private flushOutput(): void {
    if (this.outBuf.length) { this.opts.onConsoleOutput(Uint8Array.from(this.outBuf)); this.outBuf.length = 0; }
  }

  /**
   * Linux's 8250 driver clears the FIFOs when it opens the port, so input is held until the guest's
   * receiver has settled (Uart16550.readyForInput), then offered byte by byte while the FIFO accepts it.
   */
  private feedInput(): void {
    if (this.extraConsole && this.opts.extraConsole?.input) {
      if (this.input.length) this.input.splice(0, this.extraConsole.receive(Uint8Array.from(this.input)));
      return;
    }
    const uart = this.machine.serial[0];
    if (!this.input.length || !uart.readyForInput()) return;
    let n = 0;
    while (n < this.input.length && uart.receive(this.input[n])) n++;
    if (n) this.input.splice(0, n);
  }

  private accountSteal(ms: number): void {
    if (ms > STEAL_THRESHOLD_MS) this.machine.clock.steal((ms - STEAL_THRESHOLD_MS) * 1e6);
  }

  async run(): Promise<StopReason | { kind: 'quit' }> {
    const host = this.opts.host;
    let slices = 0;
    let slice = SLICE_MIN;
    for (;;) {
      if (this.quitRequested) { this.flushOutput(); return { kind: 'quit' }; }
      this.feedInput();
      const before = this.machine.cpu.instructions;
      // The slice withholds its own excess host time (before its timers read the clock; see runSlice).
      const t0 = performance.now();
      const sleepNs = this.machine.runSlice(slice, STEAL_THRESHOLD_MS);
      const ran = this.machine.cpu.instructions - before;
      this.instructions += ran;
      if (ran >= slice) {
        const ms = performance.now() - t0;
        if (ms < SLICE_TARGET_MS / 2 && slice < SLICE_MAX) slice *= 2;
        else if (ms > SLICE_TARGET_MS * 2 && slice > SLICE_MIN) slice /= 2;
      }
      this.flushOutput();
      const stop = this.machine.stopped;
      if (stop) {
        if (stop.kind === 'reset' && !this.opts.noReboot) {
          this.machine = this.build();
          // A guest that resets in a loop must not starve the host's event loop (console keys, timers).
          await host.yield();
          continue;
        }
        return stop;
      }
      if (sleepNs > 0) {
        await new Promise<void>((resolve) => { this.wake = resolve; host.sleep(Math.max(1, Math.floor(sleepNs / 1e6))).then(() => { if (this.wake === resolve) this.wake = null; resolve(); }); });
      } else if (++slices % 16 === 0) {
        const t1 = performance.now();
        await host.yield();
        this.accountSteal(performance.now() - t1);
      }
    }
  }
}
