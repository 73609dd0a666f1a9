// Formats the results: seconds per workload per engine, Trapeze's ratio to v86 and to QEMU per workload,
// geometric means over the workloads every compared engine finished, peak RSS, and whether the guests agreed
// on each workload's output.

import type { EngineResult } from './session.ts';
import type { DeviceCounts } from '../../src/machine/device-counters.ts';

const pad = (s: string, n: number, right = false): string => (right ? s.padStart(n) : s.padEnd(n));

function geomean(xs: number[]): number | undefined {
  if (!xs.length) return undefined;
  return Math.exp(xs.reduce((a, x) => a + Math.log(x), 0) / xs.length);
}

const fmtS = (x: number | undefined): string => (x === undefined ? '' : x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2));
const fmtR = (x: number | undefined): string => (x === undefined ? '-' : x >= 100 ? `${x.toFixed(0)}x` : x >= 10 ? `${x.toFixed(1)}x` : `${x.toFixed(2)}x`);

export type Metric = 'wall' | 'cpu';

/** The table for one metric: 'wall' is host wall-clock seconds between the markers (the headline numbers),
 *  'cpu' the engine process's user+system seconds over the same interval, which a busy host disturbs less. */
export function renderTable(names: string[], engines: EngineResult[], skipped: { label: string; reason: string }[], metric: Metric = 'wall'): string {
  const out: string[] = [];
  const ran = engines;
  const sec = (e: EngineResult | undefined, n: string): number | undefined => {
    const r = e?.results.get(n);
    return metric === 'wall' ? r?.seconds : r?.seconds === undefined ? undefined : r.cpuSeconds;
  };
  const cell = (e: EngineResult, n: string): string => {
    const r = e.results.get(n);
    if (!r) return e.failure ? 'skipped' : '-';
    if (r.seconds === undefined) return r.error ?? 'failed';
    const x = sec(e, n);
    return x === undefined ? '?' : fmtS(x);
  };

  // The Trapeze row the ratios are about: the JIT when it ran, else the interpreter. Both get ratio columns.
  const trapezes = ran.filter((e) => e.label.startsWith('trapeze'));
  const v86 = ran.find((e) => e.label === 'v86');
  const qemu = ran.find((e) => e.label.startsWith('qemu'));
  const ratioCols: { head: string; num: EngineResult; den: EngineResult }[] = [];
  for (const t of trapezes) {
    const tag = t.label.replace(/^trapeze \((.*)\)$/, '$1');
    if (v86) ratioCols.push({ head: `${tag}/v86`, num: t, den: v86 });
    if (qemu) ratioCols.push({ head: `${tag}/qemu`, num: t, den: qemu });
  }

  const W0 = Math.max(10, ...names.map((n) => n.length)) + 1;
  const cols = ran.map((e) => Math.max(9, e.label.length + 1));
  const rcols = ratioCols.map((c) => Math.max(9, c.head.length + 1));
  const header = pad(metric === 'wall' ? 'seconds' : 'cpu s', W0) + ran.map((e, i) => pad(e.label, cols[i], true)).join('') + (ratioCols.length ? ' |' : '') + ratioCols.map((c, i) => pad(c.head, rcols[i], true)).join('') + '  output';
  out.push(header);
  out.push('-'.repeat(header.length));
  for (const n of names) {
    const outputs = new Set(ran.map((e) => e.results.get(n)?.output).filter((o): o is string => o !== undefined));
    const agree = n === 'boot' || metric === 'cpu' ? '' : outputs.size === 0 ? '' : outputs.size === 1 ? `same: ${[...outputs][0].slice(0, 40)}` : 'DIFFERS (see log)';
    out.push(pad(n, W0) + ran.map((e, i) => pad(cell(e, n), cols[i], true)).join('') + (ratioCols.length ? ' |' : '') +
      ratioCols.map((c, i) => {
        const a = sec(c.num, n), b = sec(c.den, n);
        return pad(a !== undefined && b !== undefined && b > 0 ? fmtR(a / b) : '-', rcols[i], true);
      }).join('') + '  ' + agree);
  }
  out.push('-'.repeat(header.length));

  // Geometric means over the workloads (boot excluded) that the engines being compared both finished.
  const work = names.filter((n) => n !== 'boot');
  const gm = (e: EngineResult): string => {
    const xs = work.map((n) => sec(e, n)).filter((x): x is number => x !== undefined);
    const g = geomean(xs);
    return g === undefined ? '-' : `${fmtS(g)}${xs.length < work.length ? `(${xs.length}/${work.length})` : ''}`;
  };
  out.push(pad('geomean', W0) + ran.map((e, i) => pad(gm(e), cols[i], true)).join('') + (ratioCols.length ? ' |' : '') +
    ratioCols.map((c, i) => {
      const rs = work.map((n) => [sec(c.num, n), sec(c.den, n)]).filter(([a, b]) => a !== undefined && b !== undefined && b > 0).map(([a, b]) => a! / b!);
      return pad(fmtR(geomean(rs)), rcols[i], true);
    }).join('') + '  (workloads, boot excluded; ratios over workloads both finished)');
  if (metric === 'cpu') return out.join('\n');
  out.push(pad('peak RSS', W0) + ran.map((e, i) => pad(e.peakRssKiB === undefined ? '?' : `${(e.peakRssKiB / 1024).toFixed(0)}M`, cols[i], true)).join(''));
  out.push(pad('cpu', W0) + ran.map((e, i) => pad(e.cpuSeconds === undefined ? '?' : fmtS(e.cpuSeconds), cols[i], true)).join('') + '  (engine process user+sys seconds, whole session)');
  out.push(pad('wall', W0) + ran.map((e, i) => pad(fmtS(e.totalSeconds), cols[i], true)).join('') + '  (whole session incl. shutdown)');

  const notes: string[] = [];
  for (const e of ran) {
    notes.push(`${e.label}: ${e.describe}`);
    if (e.failure) notes.push(`  stopped early: ${e.failure}`);
    for (const n of e.notes) notes.push(`  ${n}`);
  }
  for (const s of skipped) notes.push(`${s.label}: not run: ${s.reason}`);
  if (notes.length) out.push('', ...notes);
  return out.join('\n');
}

/** What the disk table needs to know about each disk workload. */
export interface DiskRow { name: string; mib: number; counterDevice: string }

const fmtRate = (x: number | undefined): string => (x === undefined ? '' : x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2));

/**
 * The disk section: MB/s (10^6 bytes per second, as dd reports) per workload per engine, Trapeze's time
 * ratio to QEMU, and for each Trapeze row the disk controller's register accesses (traps) and interrupts
 * per MiB moved, from the engine's counters.
 */
export function renderDiskTable(rows: DiskRow[], engines: EngineResult[], skipped: { label: string; reason: string }[]): string {
  const out: string[] = [];
  const trapezes = engines.filter((e) => e.label.startsWith('trapeze'));
  const qemu = engines.find((e) => e.label.startsWith('qemu'));
  const tag = (e: EngineResult): string => e.label.replace(/^trapeze \((.*)\)$/, '$1');
  const rate = (e: EngineResult, r: DiskRow): number | undefined => {
    const s = e.results.get(r.name)?.seconds;
    return s === undefined || s <= 0 ? undefined : (r.mib * 1048576) / 1e6 / s;
  };
  const cell = (e: EngineResult, r: DiskRow): string => {
    const res = e.results.get(r.name);
    if (!res) return e.failure ? 'skipped' : '-';
    if (res.seconds === undefined) return res.error ?? 'failed';
    return fmtRate(rate(e, r));
  };
  const extra: { head: string; val: (r: DiskRow) => string }[] = [];
  for (const t of trapezes) {
    if (qemu) {
      extra.push({
        head: `${tag(t)}/qemu`, val: (r) => {
          const a = t.results.get(r.name)?.seconds, b = qemu.results.get(r.name)?.seconds;
          return a !== undefined && b !== undefined && b > 0 ? fmtR(a / b) : '-';
        },
      });
    }
  }
  for (const t of trapezes) {
    const per = (f: (c: DeviceCounts) => number) => (r: DiskRow): string => {
      const res = t.results.get(r.name);
      return res?.seconds !== undefined && res.counters ? (f(res.counters) / r.mib).toFixed(1) : '-';
    };
    extra.push({ head: `${tag(t)} traps/MiB`, val: per((c) => c.reads + c.writes) });
    extra.push({ head: `${tag(t)} irqs/MiB`, val: per((c) => c.irqs) });
  }
  const W0 = Math.max(14, ...rows.map((r) => `${r.name} MB/s`.length)) + 1;
  const cols = engines.map((e) => Math.max(9, e.label.length + 1));
  const xcols = extra.map((x) => Math.max(9, x.head.length + 1));
  const header = pad('disk', W0) + engines.map((e, i) => pad(e.label, cols[i], true)).join('') + (extra.length ? ' |' : '') +
    extra.map((x, i) => pad(x.head, xcols[i], true)).join('');
  out.push(header, '-'.repeat(header.length));
  for (const r of rows) {
    out.push(pad(`${r.name} MB/s`, W0) + engines.map((e, i) => pad(cell(e, r), cols[i], true)).join('') + (extra.length ? ' |' : '') +
      extra.map((x, i) => pad(x.val(r), xcols[i], true)).join(''));
  }
  out.push('-'.repeat(header.length));
  const counted = [...new Set(rows.map((r) => r.counterDevice))].join(', ');
  out.push(`MB/s = 10^6 bytes/s between the markers; x/qemu = Trapeze seconds / QEMU seconds; traps = the controller's (${counted})`,
    'register accesses (port I/O + MMIO reads and writes) during the workload, irqs = its interrupt assertions and MSIs.');
  const notes: string[] = [];
  for (const e of engines) {
    notes.push(`${e.label}: ${e.describe}`);
    if (e.failure) notes.push(`  stopped early: ${e.failure}`);
  }
  for (const s of skipped) notes.push(`${s.label}: ${s.reason}`);
  if (notes.length) out.push('', ...notes);
  return out.join('\n');
}

/** One boot of the network section: one engine with one NIC model. */
export interface NetRun {
  model: string;
  /** The driver Linux should bind (from workloads.ts). */
  driver: string;
  engine: string;
  /** The session, when the engine ran this model. */
  result?: EngineResult;
  /** Why it did not run (e.g. QEMU has no such chip). */
  skipped?: string;
  /** What the host's sink received during net-tx (first connection), and the size the guest sent. */
  transfer?: { bytes: number; firstByte?: number; end?: number; error?: string };
  mib: number;
}

/** The figures of one network run, from the guest's output, the sink and the counters. */
export interface NetFigures {
  driver?: string;
  /** Host-side MB/s (10^6 bytes/s), first byte to the end of the stream; or why there is none. */
  mbps?: number;
  txError?: string;
  seconds?: number;
  /** The guest interface's packets received + sent over the transfer. */
  rxPackets?: number;
  txPackets?: number;
  rttAvgMs?: number;
  /** Median of the individual echo times. */
  rttMedianMs?: number;
  rttMinMs?: number;
  rttMaxMs?: number;
  pingLine?: string;
  pingError?: string;
  traps?: number;
  irqs?: number;
}

export function netFigures(r: NetRun): NetFigures {
  const f: NetFigures = {};
  const res = r.result;
  if (!res) return f;
  const up = res.results.get('net-up');
  f.driver = /\bdriver (\S+)/.exec(up?.output ?? '')?.[1];
  const tx = res.results.get('net-tx');
  const want = r.mib * 1048576;
  const t = r.transfer;
  if (!tx) f.txError = res.failure ? 'skipped' : '-';
  else if (tx.seconds === undefined) f.txError = tx.error ?? 'failed';
  else if (!t) f.txError = 'no connection reached the host';
  else if (t.error) f.txError = t.error;
  else if (t.bytes !== want) f.txError = `${t.bytes} of ${want} bytes`;
  else if (t.firstByte === undefined || t.end === undefined || t.end <= t.firstByte) f.txError = 'no timing';
  else {
    f.seconds = (t.end - t.firstByte) / 1000;
    f.mbps = want / 1e6 / f.seconds;
  }
  const pk = [...(tx?.output ?? '').matchAll(/\bpk (\d+) (\d+)/g)].map((m) => [Number(m[1]), Number(m[2])]);
  if (tx?.seconds !== undefined && pk.length === 2) {
    f.rxPackets = pk[1][0] - pk[0][0];
    f.txPackets = pk[1][1] - pk[0][1];
  }
  if (tx?.counters) { f.traps = tx.counters.reads + tx.counters.writes; f.irqs = tx.counters.irqs; }
  const ping = res.results.get('net-ping');
  const rtt = /round-trip min\/avg\/max = ([\d.]+)\/([\d.]+)\/([\d.]+) ms/.exec(ping?.output ?? '');
  f.pingLine = /\d+ packets transmitted, \d+ packets received[^/]*/.exec(ping?.output ?? '')?.[0]?.trim();
  if (rtt) { f.rttMinMs = Number(rtt[1]); f.rttAvgMs = Number(rtt[2]); f.rttMaxMs = Number(rtt[3]); }
  const echoes = [...(ping?.output ?? '').matchAll(/seq=\d+ ttl=\d+ time=([\d.]+) ms/g)].map((m) => Number(m[1])).sort((a, b) => a - b);
  if (echoes.length) {
    const h = echoes.length >> 1;
    f.rttMedianMs = echoes.length & 1 ? echoes[h] : (echoes[h - 1] + echoes[h]) / 2;
  }
  else f.pingError = !ping ? (res.failure ? 'skipped' : '-') : ping.error ?? 'no reply';
  return f;
}

/**
 * The network table: one line per NIC model and engine, with the guest → host TCP throughput measured on
 * the host, the ping round trip, the packets the guest's interface moved during the transfer, and (Trapeze)
 * the NIC's register accesses and interrupts per packet. x/qemu is QEMU's MB/s over this row's (how many
 * times longer the transfer took than on QEMU with the same chip).
 */
export function renderNetTable(runs: NetRun[], notes: string[]): string {
  const head = ['nic', 'guest driver', 'engine', 'tx MB/s', 'x/qemu', 'rtt med ms', 'avg', 'min-max', 'rx+tx pkts', 'traps/pkt', 'irqs/pkt'];
  const right = [false, false, false, true, true, true, true, true, true, true, true];
  const rows: string[][] = [];
  const fig = new Map(runs.map((r) => [r, netFigures(r)]));
  for (const r of runs) {
    const f = fig.get(r)!;
    const q = runs.find((o) => o.model === r.model && o.engine.startsWith('qemu'));
    const qm = q ? fig.get(q)!.mbps : undefined;
    if (r.skipped) { rows.push([r.model, '', r.engine, 'n/a', '', '', '', '', '', '', '', r.skipped]); continue; }
    const pkts = f.rxPackets !== undefined ? f.rxPackets + f.txPackets! : undefined;
    const per = (n: number | undefined): string => n === undefined ? (r.engine.startsWith('trapeze') ? '-' : 'n/a') : pkts ? (n / pkts).toFixed(2) : '-';
    const driver = f.driver === undefined ? '?' : f.driver === r.driver ? f.driver : `${f.driver} (not ${r.driver})`;
    rows.push([
      r.model, driver, r.engine, f.mbps !== undefined ? fmtRate(f.mbps) : f.txError ?? '-',
      r.engine.startsWith('qemu') || f.mbps === undefined || qm === undefined ? '' : fmtR(qm / f.mbps),
      f.rttMedianMs !== undefined ? f.rttMedianMs.toFixed(2) : f.pingError ?? '-',
      f.rttAvgMs !== undefined ? f.rttAvgMs.toFixed(2) : '',
      f.rttAvgMs !== undefined ? `${f.rttMinMs!.toFixed(1)}-${f.rttMaxMs!.toFixed(1)}` : '',
      pkts !== undefined ? `${f.rxPackets}+${f.txPackets}` : '-',
      per(f.traps), per(f.irqs),
    ]);
  }
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)) + 2);
  const line = (c: string[]): string => c.slice(0, head.length).map((x, i) => pad(x, w[i], right[i])).join('') + (c[head.length] ? `  ${c[head.length]}` : '');
  const out = [line(head), '-'.repeat(w.reduce((a, b) => a + b, 0))];
  let last = '';
  for (const r of rows) { out.push(line(r[0] === last ? ['', ...r.slice(1)] : r)); last = r[0]; }
  out.push('-'.repeat(w.reduce((a, b) => a + b, 0)));
  out.push('tx MB/s = 10^6 bytes/s received by the host, first byte to end of stream; x/qemu = QEMU MB/s / this MB/s;',
    'rtt = busybox ping of the gateway (median of 20 echoes, avg, min-max, ms); pkts = the guest interface\'s rx+tx packet counters over the transfer; traps = the NIC\'s',
    'register accesses (port I/O + MMIO reads and writes) over the transfer, irqs = its interrupt assertions and MSIs.');
  const engines = new Map<string, EngineResult>();
  for (const r of runs) if (r.result && !engines.has(r.engine)) engines.set(r.engine, r.result);
  const foot: string[] = [...[...engines.values()].map((e) => `${e.label}: ${e.describe}`), ...notes];
  for (const r of runs) {
    if (r.result?.failure) foot.push(`${r.engine} ${r.model}: stopped early: ${r.result.failure}`);
    const f = fig.get(r)!;
    if (f.pingLine && !/, 0% packet loss/.test(r.result?.results.get('net-ping')?.output ?? '')) foot.push(`${r.engine} ${r.model}: ping: ${f.pingLine}`);
  }
  if (foot.length) out.push('', ...foot);
  return out.join('\n');
}
