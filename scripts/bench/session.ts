// Drives one engine through the benchmark: starts it, waits for the guest banner (boot time), types each
// workload line on the serial console once the previous one has finished, and timestamps the marker lines
// as they arrive on the host. Peak RSS is the child's VmHWM, polled from /proc while it runs.

import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync, writeFileSync, writeSync } from 'node:fs';
import type { DiskSpec, Engine, GuestFiles, NicAttach } from './engines.ts';
import { BANNER, commandLine, type Workload } from './workloads.ts';
import { countsDelta, parseCountsTable, type DeviceCounts } from '../../src/machine/device-counters.ts';

export interface WorkloadResult {
  seconds?: number;
  /** The engine process's user+system CPU seconds over the same interval (10 ms resolution). */
  cpuSeconds?: number;
  /** Why there is no time (timeout, engine exit, nonzero status). */
  error?: string;
  /** The guest's output between the markers, to compare across engines. */
  output?: string;
  /**
   * For a workload with a `counterDevice`, on an engine with `countersOnSigusr2`: that device's register
   * accesses and interrupts over the workload (from the engine's counter dumps before the command line is
   * typed and after its end marker; the controller is idle outside the workload, so this is the workload's).
   */
  counters?: DeviceCounts;
}

export interface EngineResult {
  label: string;
  describe: string;
  /** Set when the engine could not run at all, or stopped part way (then some results are missing). */
  failure?: string;
  /** name → result; 'boot' is engine start to the banner line. */
  results: Map<string, WorkloadResult>;
  peakRssKiB?: number;
  /** The engine process's user+system CPU seconds over the whole session, and up to the boot banner. */
  cpuSeconds?: number;
  bootCpuSeconds?: number;
  /** Anything notable the engine printed on stderr at exit (e.g. Trapeze's --stats MIPS line). */
  notes: string[];
  totalSeconds: number;
}

export interface SessionOptions {
  workloads: Workload[];
  quick: boolean;
  bootTimeoutS: number;
  workloadTimeoutS: number;
  /** Raw serial transcript goes here, for debugging a failed run. */
  transcript?: string;
  /** Disk images to attach (the disk section). */
  disks?: DiskSpec[];
  /** The machine's NIC (the network section). */
  nic?: NicAttach;
  log: (s: string) => void;
}

class TimeoutError extends Error {}

const CLK_TCK = 100; // USER_HZ: the unit of /proc/PID/stat times on every Linux architecture Node runs on

/** User+system CPU seconds a process has used so far (from /proc/PID/stat), or undefined once it is gone. */
function cpuTime(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15 overall.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / CLK_TCK;
  } catch {
    return undefined;
  }
}

/** Reads VmHWM (peak resident set) of a process, in KiB. */
function vmHwm(pid: number): number | undefined {
  try {
    const m = /^VmHWM:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

export async function runSession(engine: Engine, guest: GuestFiles, opts: SessionOptions): Promise<EngineResult> {
  const res: EngineResult = { label: engine.label, describe: engine.describe(), results: new Map(), notes: [], totalSeconds: 0 };
  const { argv, env } = engine.launch(guest, opts.disks, opts.nic);
  const t0 = performance.now();
  const child: ChildProcess = spawn(argv[0], argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'], env: env ?? process.env });
  const pid = child.pid;
  // The raw serial output, written as it arrives so a long run can be watched (tail -f).
  const tfd = opts.transcript ? openSync(opts.transcript, 'w') : undefined;
  let stderr = '';
  // Completed lines with the host time their newline arrived; `partial` is the line still being printed.
  const lines: { text: string; t: number }[] = [];
  let partial = '';
  let waiter: (() => void) | null = null;
  let exited: string | null = null;
  const wake = (): void => { const w = waiter; waiter = null; w?.(); };

  child.stdout!.on('data', (chunk: Buffer) => {
    const t = performance.now();
    const s = chunk.toString('latin1');
    if (tfd !== undefined) writeSync(tfd, chunk);
    let text = partial + s;
    let nl;
    while ((nl = text.indexOf('\n')) >= 0) {
      lines.push({ text: clean(text.slice(0, nl)), t });
      text = text.slice(nl + 1);
    }
    partial = text;
    wake();
  });
  child.stderr!.on('data', (chunk: Buffer) => { stderr += chunk.toString('utf8'); });
  child.on('error', (e) => { exited = `could not start ${argv[0]}: ${e.message}`; wake(); });
  child.on('exit', (code, sig) => { exited = `engine exited (${sig ? `signal ${sig}` : `status ${code}`}) ${lastWords(stderr)}`.trim(); wake(); });
  child.stdin!.on('error', () => { /* the engine went away; 'exit' reports it */ });

  let peak: number | undefined;
  let cpu: number | undefined;
  const sample = (): void => {
    if (!pid || exited) return;
    const v = vmHwm(pid);
    if (v !== undefined) peak = Math.max(peak ?? 0, v);
    cpu = cpuTime(pid) ?? cpu;
  };
  const poll = setInterval(sample, 250);

  // Waits until a completed line (from index `from` on) satisfies `pred`; returns its index.
  let cursor = 0;
  const waitLine = async (pred: (l: string) => boolean, timeoutS: number, what: string): Promise<{ text: string; t: number }> => {
    const deadline = performance.now() + timeoutS * 1000;
    for (;;) {
      while (cursor < lines.length) {
        const l = lines[cursor++];
        if (pred(l.text)) return l;
      }
      if (exited) throw new Error(`${exited} while waiting for ${what}`);
      const left = deadline - performance.now();
      if (left <= 0) throw new TimeoutError(`no ${what} within ${timeoutS} s`);
      await new Promise<void>((r) => {
        const tm = setTimeout(() => { waiter = null; r(); }, Math.min(left, 1000));
        waiter = () => { clearTimeout(tm); r(); };
      });
    }
  };
  // Waits for the shell prompt: the unfinished last line ends in "# " or "$ ".
  const waitPrompt = async (timeoutS: number): Promise<void> => {
    const deadline = performance.now() + timeoutS * 1000;
    while (!/[#$] $/.test(clean(partial))) {
      if (exited) throw new Error(`${exited} while waiting for the shell prompt`);
      if (performance.now() > deadline) throw new TimeoutError(`no shell prompt within ${timeoutS} s`);
      await new Promise<void>((r) => {
        const tm = setTimeout(() => { waiter = null; r(); }, 200);
        waiter = () => { clearTimeout(tm); r(); };
      });
    }
  };
  const send = (s: string): void => { if (!exited) child.stdin!.write(s); };
  // The engine's per-device counters now: SIGUSR2, then the table of the dump it prints on stderr.
  const DUMP_END = 'trapeze: end of statistics\n';
  const dumps = (): number => stderr.split(DUMP_END).length - 1;
  const counters = async (): Promise<DeviceCounts[]> => {
    const n = dumps();
    child.kill('SIGUSR2');
    const deadline = performance.now() + 60_000;
    while (dumps() <= n) {
      if (exited) throw new Error(`${exited} while waiting for its counters`);
      if (performance.now() > deadline) throw new TimeoutError('no counter dump within 60 s of SIGUSR2');
      await new Promise((r) => setTimeout(r, 50));
    }
    const table = parseCountsTable(stderr.slice(0, stderr.lastIndexOf(DUMP_END)));
    if (!table) throw new Error('SIGUSR2 dump without a device table');
    return table;
  };

  try {
    opts.log(`${engine.label}: booting (${argv.map((a) => (a.length > 60 ? '…' + a.slice(-40) : a)).join(' ')})`);
    const banner = await waitLine((l) => l.includes(BANNER), opts.bootTimeoutS, `"${BANNER}" banner`);
    const boot = (banner.t - t0) / 1000;
    res.bootCpuSeconds = cpuTime(pid!);
    res.results.set('boot', { seconds: boot, cpuSeconds: res.bootCpuSeconds });
    opts.log(`${engine.label}: boot ${boot.toFixed(2)} s`);
    await waitPrompt(opts.bootTimeoutS);

    for (const w of opts.workloads) {
      const device = engine.countersOnSigusr2 && 'counterDevice' in w ? String(w.counterDevice) : undefined;
      const before = device ? await counters() : undefined;
      send(commandLine(w, opts.quick) + '\n');
      try {
        const b = await waitLine((l) => l.startsWith(`@@BEGIN ${w.name}`), opts.workloadTimeoutS, `@@BEGIN ${w.name}`);
        const cpu0 = cpuTime(pid!);
        const begin = cursor;
        const e = await waitLine((l) => l.startsWith(`@@END ${w.name} `), opts.workloadTimeoutS, `@@END ${w.name}`);
        const cpu1 = cpuTime(pid!);
        const cpuSeconds = cpu0 !== undefined && cpu1 !== undefined ? cpu1 - cpu0 : undefined;
        const status = e.text.slice(`@@END ${w.name} `.length).trim();
        const output = lines.slice(begin, cursor - 1).map((l) => l.text.trim()).filter(Boolean).join(' / ');
        const seconds = (e.t - b.t) / 1000;
        if (status !== '0') {
          res.results.set(w.name, { error: `exit status ${status}`, output });
          opts.log(`${engine.label}: ${w.name} failed with status ${status}: ${output}`);
        } else {
          const delta = before ? countsDelta(await counters(), before).find((r) => r.device === device) : undefined;
          // A device that never appears in the table did nothing at all: zero traps, not unknown.
          const count = device && before ? delta ?? { device, reads: 0, writes: 0, irqs: 0 } : undefined;
          res.results.set(w.name, { seconds, cpuSeconds, output, counters: count });
          opts.log(`${engine.label}: ${w.name} ${seconds.toFixed(2)} s (cpu ${cpuSeconds?.toFixed(2) ?? '?'} s)  [${output}]` +
            (count ? ` ${device}: ${count.reads} reads, ${count.writes} writes, ${count.irqs} irqs` : ''));
        }
      } catch (e) {
        if (!(e instanceof TimeoutError)) throw e;
        res.results.set(w.name, { error: 'timeout' });
        // A stuck workload leaves the shell busy: the remaining lines would queue behind it, so stop here.
        throw new Error(`${w.name}: ${e.message}; later workloads skipped`);
      }
      await waitPrompt(opts.workloadTimeoutS).catch(() => { /* the next marker wait reports trouble */ });
    }

    // Clean shutdown, so the engine's own exit statistics (Trapeze --stats) are printed. Engines that stay up
    // after the guest powers off (v86 has no exit on ACPI power-off) are stopped a few seconds after the
    // kernel's "reboot: Power down" (or, without ACPI, "System halted") line.
    sample();
    send('poweroff\n');
    let deadline = performance.now() + 120_000;
    let poweredDown = false;
    while (!exited && performance.now() < deadline) {
      if (!poweredDown && lines.slice(cursor).some((l) => /reboot: (Power down|System halted)/.test(l.text))) {
        poweredDown = true;
        deadline = Math.min(deadline, performance.now() + 5_000);
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  } catch (e) {
    res.failure = (e as Error).message;
    opts.log(`${engine.label}: FAILED: ${res.failure}`);
  } finally {
    clearInterval(poll);
    sample();
    if (!exited) {
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
    }
    res.peakRssKiB = peak;
    res.cpuSeconds = cpu;
    res.totalSeconds = (performance.now() - t0) / 1000;
    // The exit statistics come last (SIGUSR2 dumps before them have the same line).
    const mips = [...stderr.matchAll(/trapeze: .*MIPS\)/g)].at(-1);
    if (mips) res.notes.push(mips[0]);
    if (tfd !== undefined) closeSync(tfd);
    // The engine's stderr (Trapeze's --stats at exit and its SIGUSR2 dumps) next to the serial transcript.
    if (opts.transcript) writeFileSync(opts.transcript.replace(/\.log$/, '') + '.stderr.log', stderr);
  }
  return res;
}

/** Drops carriage returns and terminal escape sequences (ash asks for the cursor position after its prompt). */
function clean(s: string): string {
  return s.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '').replace(/\r/g, '');
}

function lastWords(stderr: string): string {
  const l = stderr.trim().split('\n').filter(Boolean).slice(-2).join(' | ');
  return l ? `: ${l.slice(0, 300)}` : '';
}
