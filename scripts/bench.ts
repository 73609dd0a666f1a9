// `npm run bench`: boots the default guest (Debian 12's i386 kernel + our busybox initramfs) on Trapeze, v86
// and QEMU TCG, one engine after another, types the same workload lines on each one's serial console, and
// prints one table: seconds per workload, Trapeze/v86 and Trapeze/QEMU ratios, geometric means, peak RSS.
// The disk section then boots each engine again with two scratch raw images (virtio-blk and IDE) and
// prints MB/s of sequential writes and reads, and Trapeze's disk controller traps per MiB. The network section
// boots each engine once per NIC model on a private VDE network with slirp, and prints guest → host TCP
// MB/s, ping round trips, and Trapeze's NIC register accesses and interrupts per packet.
// Method and results: docs/bench.md.
//
//   npm run bench -- [--quick] [--only cpu|disk|net] [--nics e1000,virtio,...] [--engines trapeze,v86,qemu] [--workloads sha256,awk,...]
//                    [--boot-timeout S] [--timeout S] [--json FILE] [--transcripts DIR]

import { parseArgs } from 'node:util';
import { closeSync, ftruncateSync, mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cpus, loadavg, tmpdir } from 'node:os';
import { spawnSync } from 'node:child_process';
import { prepareDefaultGuest } from '../src/guest/fetch.ts';
import { allEngines, REPO, type DiskSpec, type Engine } from './bench/engines.ts';
import {
  DISK_IMAGE_MIB, DISK_WORKLOADS, NET_MAC, NET_MODELS, NET_TX_MIB, NET_TX_QUICK_MIB, netWorkloads, WORKLOADS, type Workload,
} from './bench/workloads.ts';
import { runSession, type EngineResult } from './bench/session.ts';
import { renderDiskTable, renderNetTable, renderTable, type NetRun } from './bench/report.ts';
import { ensureVde, Sink, startVdeNetwork } from './bench/network.ts';

const USAGE = `usage: npm run bench -- [options]

  --quick              smaller workloads (about a tenth; disks 16 MiB, network 8 MiB), for a fast end-to-end check
  --only SECTION       cpu (the workload table), disk (the disk section) or net (the network section);
                       default all three
  --nics LIST          NIC models for the network section, comma-separated subset of:
                       ${NET_MODELS.map((m) => m.model).join(', ')} (default: all; none when --workloads
                       is given without --nics)
  --engines LIST       comma-separated subset of: trapeze (both CPUs), trapeze-interp, trapeze-jit, v86,
                       qemu (default: all)
  --workloads LIST     comma-separated subset of: ${[...WORKLOADS, ...DISK_WORKLOADS].map((w) => w.name).join(', ')}
  --boot-timeout S     seconds an engine may take to reach the guest banner (default 900)
  --timeout S          seconds any one workload may take (default 1800, --quick 600)
  --json FILE          also write the results as JSON
  --transcripts DIR    save each engine's raw serial output (default tmp/bench/)
`;

const log = (s: string): void => { process.stderr.write(`bench: ${s}\n`); };

async function main(): Promise<number> {
  let v;
  try {
    v = parseArgs({
      options: {
        quick: { type: 'boolean' }, only: { type: 'string' }, engines: { type: 'string' }, workloads: { type: 'string' }, nics: { type: 'string' },
        'boot-timeout': { type: 'string' }, timeout: { type: 'string' }, json: { type: 'string' },
        transcripts: { type: 'string' }, help: { type: 'boolean', short: 'h' },
      },
      strict: true, allowPositionals: false,
    }).values;
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  if (v.help) { process.stdout.write(USAGE); return 0; }
  const quick = v.quick === true;

  const engines = allEngines();
  // An engine answers to its key (both Trapeze rows to "trapeze") and to its label as one word ("trapeze-jit").
  const names = (e: Engine): string[] => [e.key, e.label.replace(/\s*\((.*)\)$/, '-$1')];
  const keys = new Set(engines.flatMap(names));
  let chosen: Engine[] = engines;
  if (v.engines) {
    const want = v.engines.split(',').map((s) => s.trim()).filter(Boolean);
    const bad = want.filter((w) => !keys.has(w));
    if (bad.length) { process.stderr.write(`unknown engine(s) ${bad.join(', ')}; choose from ${[...keys].join(', ')}\n`); return 2; }
    chosen = engines.filter((e) => names(e).some((n) => want.includes(n)));
  }
  if (v.only !== undefined && v.only !== 'cpu' && v.only !== 'disk' && v.only !== 'net') { process.stderr.write(`--only must be cpu, disk or net, not '${v.only}'\n`); return 2; }
  let workloads = v.only === 'disk' || v.only === 'net' ? [] : WORKLOADS;
  let diskWorkloads = v.only === 'cpu' || v.only === 'net' ? [] : DISK_WORKLOADS;
  let nics = v.only === 'cpu' || v.only === 'disk' || v.workloads ? [] : NET_MODELS;
  if (v.nics) {
    const want = v.nics.split(',').map((s) => s.trim()).filter(Boolean);
    const bad = want.filter((w) => !NET_MODELS.some((m) => m.model === w));
    if (bad.length) { process.stderr.write(`unknown NIC model(s) ${bad.join(', ')}; choose from ${NET_MODELS.map((m) => m.model).join(', ')}\n`); return 2; }
    nics = NET_MODELS.filter((m) => want.includes(m.model));
  }
  if (v.workloads) {
    const want = v.workloads.split(',').map((s) => s.trim()).filter(Boolean);
    const bad = want.filter((w) => ![...WORKLOADS, ...DISK_WORKLOADS].some((x) => x.name === w));
    if (bad.length) { process.stderr.write(`unknown workload(s) ${bad.join(', ')}\n`); return 2; }
    workloads = workloads.filter((w) => want.includes(w.name));
    diskWorkloads = diskWorkloads.filter((w) => want.includes(w.name));
  }
  // The CPU section also has its boot row, so it runs unless only disk workloads were asked for.
  const cpuSection = v.only !== 'disk' && v.only !== 'net' && (workloads.length > 0 || !v.workloads);
  const num = (s: string | undefined, d: number, what: string): number => {
    if (s === undefined) return d;
    const n = Number(s);
    if (!(n > 0)) throw new Error(`${what} must be a positive number of seconds, not '${s}'`);
    return n;
  };
  const bootTimeoutS = num(v['boot-timeout'], 900, '--boot-timeout');
  const workloadTimeoutS = num(v.timeout, quick ? 600 : 1800, '--timeout');
  const transcripts = v.transcripts ?? join(REPO, 'tmp', 'bench');
  mkdirSync(transcripts, { recursive: true });

  log('preparing the default guest (Debian i386 kernel + busybox initramfs)');
  const g = await prepareDefaultGuest({ log });
  const guest = { kernel: g.kernel, initrd: g.initrd };

  // The engines run one after another, but nothing stops other programs on the host: the load average is
  // printed with the table so a noisy run can be recognised.
  const loadStart = loadavg()[0];
  // Which Trapeze was measured: the bench builds dist/ from the working tree, uncommitted edits included.
  const git = (...a: string[]): string => spawnSync('git', ['-C', REPO, ...a], { encoding: 'utf8' }).stdout?.trim() ?? '';
  const rev = git('rev-parse', '--short', 'HEAD') || 'unknown';
  const dirty = git('status', '--porcelain', '--untracked-files=no') ? '+uncommitted changes' : '';
  const results: EngineResult[] = [];
  const skipped: { label: string; reason: string }[] = [];
  // Setup first (builds, installs), so no engine's timing overlaps another's install.
  const ready: Engine[] = [];
  for (const e of chosen) {
    const why = e.setup(log);
    if (why) { skipped.push({ label: e.label, reason: why }); log(`${e.label}: not run: ${why}`); } else ready.push(e);
  }
  const logName = (e: Engine, suffix = ''): string => join(transcripts, `${e.label.replace(/[^a-z0-9]+/gi, '-').replace(/-$/, '')}${suffix}.log`);
  // Strictly one engine at a time: the host has few cores and the engines must not compete for them.
  if (cpuSection) {
    for (const e of ready) {
      const r = await runSession(e, guest, { workloads, quick, bootTimeoutS, workloadTimeoutS, log, transcript: logName(e) });
      results.push(r);
    }
  }

  // The disk section: a fresh boot per engine with two new sparse scratch images, removed afterwards.
  const diskResults: EngineResult[] = [];
  const diskSkipped = skipped.map((s) => ({ label: s.label, reason: `not run: ${s.reason}` }));
  if (diskWorkloads.length) {
    for (const e of ready) {
      if (e.noDisks) { diskSkipped.push({ label: e.label, reason: e.noDisks }); continue; }
      const dir = mkdtempSync(join(tmpdir(), 'trapeze-bench-disk-'));
      try {
        const disks: DiskSpec[] = (['virtio', 'ide'] as const).map((iface) => {
          const file = join(dir, `${iface}.img`);
          const fd = openSync(file, 'w');
          ftruncateSync(fd, DISK_IMAGE_MIB * 1048576);
          closeSync(fd);
          return { file, iface };
        });
        diskResults.push(await runSession(e, guest, {
          workloads: diskWorkloads, quick, bootTimeoutS, workloadTimeoutS, log, disks, transcript: logName(e, '-disk'),
        }));
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }
  }

  // The network section: per NIC model, per engine, a fresh boot with that one NIC on a fresh private VDE
  // network (vde_switch + a slirp plug), and the host's TCP sink timing what the guest sends.
  const netRuns: NetRun[] = [];
  const netNotes: string[] = [];
  const txMib = quick ? NET_TX_QUICK_MIB : NET_TX_MIB;
  if (nics.length) {
    const netEngines: Engine[] = [];
    for (const s of skipped) netNotes.push(`${s.label}: not run: ${s.reason}`);
    for (const e of ready) if (e.noNet) netNotes.push(`${e.label}: ${e.noNet}`); else netEngines.push(e);
    const vdeMissing = ensureVde(log);
    if (vdeMissing) netNotes.push(`network section not run: vde_switch / vde_plug / libvdeplug_slirp ${vdeMissing}`);
    const sink = new Sink();
    if (!vdeMissing) await sink.listen();
    try {
      for (const m of vdeMissing ? [] : nics) {
        for (const e of netEngines) {
          const qemuDevice = 'device' in m.qemu ? m.qemu.device : undefined;
          if (e.key === 'qemu' && !qemuDevice) {
            netRuns.push({ model: m.model, driver: m.driver, engine: e.label, skipped: 'none' in m.qemu ? m.qemu.none : '', mib: txMib });
            continue;
          }
          const net = await startVdeNetwork(log);
          try {
            sink.take();
            const result = await runSession(e, guest, {
              workloads: netWorkloads(m, sink.port), quick, bootTimeoutS, workloadTimeoutS, log,
              nic: { model: m.model, qemuDevice, switchDir: net.switchDir, mac: NET_MAC }, transcript: logName(e, `-net-${m.model}`),
            });
            const got = sink.take();
            if (got.length > 1) result.notes.push(`the sink saw ${got.length} connections; the first is measured`);
            netRuns.push({ model: m.model, driver: m.driver, engine: e.label, result, transfer: got[0], mib: txMib });
          } finally {
            await net.close();
          }
        }
      }
    } finally {
      await sink.close();
    }
    for (const m of nics) if (m.note) netNotes.push(`${m.model}: ${m.note}`);
  }

  const rowNames = ['boot', ...workloads.map((w) => w.name)];
  const head = `Trapeze bench${quick ? ' (--quick)' : ''}: guest ${g.kernelVersion} + busybox ${g.packages.busybox}, ${256} MiB, serial console; ` +
    `host ${cpus()[0]?.model ?? '?'} x${cpus().length}, node ${process.version}, trapeze ${rev}${dirty}`;
  const load = `host load average (1 min) ${loadStart.toFixed(1)} at start, ${loadavg()[0].toFixed(1)} at end, on ${cpus().length} CPUs`;
  process.stdout.write(`\n${head}\n${load}\n`);
  const legend = (ws: Workload[]): string => ws.map((w) => `  ${w.name.padEnd(Math.max(9, ...ws.map((x) => x.name.length)))} ${w.what}\n      $ ${quick ? w.quick : w.full}`).join('\n');
  if (cpuSection) {
    process.stdout.write(`\n${renderTable(rowNames, results, skipped)}\n`);
    process.stdout.write(`\nThe same, in CPU seconds of the engine process (user+sys; less disturbed by other load on the host):\n\n${renderTable(rowNames, results, [], 'cpu')}\n`);
    process.stdout.write(`\nworkloads:\n${legend(workloads)}\n`);
  }
  if (diskWorkloads.length) {
    const rows = diskWorkloads.map((w) => ({ name: w.name, mib: quick ? w.quickMib : w.mib, counterDevice: w.counterDevice }));
    process.stdout.write(`\nDisks: fresh ${DISK_IMAGE_MIB} MiB raw images, virtio-blk (/dev/vda) and IDE (/dev/sda), host page cache (QEMU cache=writeback)\n\n`);
    process.stdout.write(`${renderDiskTable(rows, diskResults, diskSkipped)}\n\ndisk workloads:\n${legend(diskWorkloads)}\n`);
  }

  if (nics.length) {
    process.stdout.write(`\nNetwork: one NIC per boot on a private vde_switch whose other port is \`vde_plug … slirp://\` (user-mode NAT);\n` +
      `guest 10.0.2.15 (DHCP) sends ${txMib} MiB with busybox nc to 10.0.2.2 = the host's 127.0.0.1, and pings 10.0.2.2\n\n`);
    process.stdout.write(`${renderNetTable(netRuns, netNotes)}\n\nnetwork workloads (per boot):\n${legend(netWorkloads(NET_MODELS[0], 'PORT'))}\n`);
  }

  if (v.json) {
    writeFileSync(v.json, JSON.stringify({
      quick, guest: { ...guest, kernelVersion: g.kernelVersion }, skipped,
      engines: results.map((r) => ({ ...r, results: Object.fromEntries(r.results) })),
      disk: diskResults.map((r) => ({ ...r, results: Object.fromEntries(r.results) })),
      net: netRuns.map((r) => ({ ...r, result: r.result && { ...r.result, results: Object.fromEntries(r.result.results) } })),
    }, null, 2));
  }
  return [...results, ...diskResults, ...netRuns.flatMap((r) => (r.result ? [r.result] : []))].some((r) => r.failure) ? 1 : 0;
}

main().then((c) => { process.exitCode = c; }, (e) => { process.stderr.write(`bench: ${(e as Error).stack ?? e}\n`); process.exitCode = 2; });
