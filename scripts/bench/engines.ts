// The engines the benchmark compares. Each one boots the same kernel and initrd as a child process whose
// stdin/stdout is the guest's first serial port, so one driver (session.ts) times all of them the same way.
// Setup installs what an engine needs into a cache (npm) or the system (apt, when root), or says why it can't.

import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BASE_CMDLINE } from '../../src/cli/run.ts';

export const REPO = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The kernel command line v86 and QEMU boot with: the same one `trapeze run` uses, so all three engines
 *  run the guest identically. */
export const CMDLINE = BASE_CMDLINE;
export const MEMORY_MIB = 256;

export interface GuestFiles { kernel: string; initrd: string }

/** A scratch raw disk image for the disk section, on virtio-blk (/dev/vda) or PIIX IDE (/dev/sda). */
export interface DiskSpec { file: string; iface: 'virtio' | 'ide' }

/**
 * One NIC for the network section: the chip (`trapeze run --nic …,model=`; `qemuDevice` is QEMU's -device for
 * the same chip) plugged into the vde_switch whose control directory is `switchDir` (the bench starts it,
 * with a slirp plug on its other port), with MAC `mac`.
 */
export interface NicAttach { model: string; qemuDevice?: string; switchDir: string; mac: string }

export interface Launch {
  /** Program and arguments; the child's pid is the engine (peak RSS is read from it). */
  argv: string[];
  env?: NodeJS.ProcessEnv;
}

export interface Engine {
  /** Row label in the table, e.g. "trapeze (interp)". */
  label: string;
  /** Key for --engines (several rows may share one, e.g. both Trapeze CPUs answer to "trapeze"). */
  key: string;
  /** Makes the engine runnable; returns null when ready, else why it can't run (printed in the table). */
  setup(log: (s: string) => void): string | null;
  /** The command line; `disks` (the disk section) are attached in order, virtio ones first; `nic` (the
   *  network section) is the machine's only NIC. */
  launch(guest: GuestFiles, disks?: DiskSpec[], nic?: NicAttach): Launch;
  /** A one-line description for the report (version, flags). */
  describe(): string;
  /** Why the engine has no disk rows, when it has none (printed under the disk table). */
  noDisks?: string;
  /** Why the engine has no network rows, when it has none. */
  noNet?: string;
  /**
   * The engine prints its per-device register access and interrupt counts on SIGUSR2 (`trapeze run`), so
   * the disk section can measure a workload's traps per MiB.
   */
  countersOnSigusr2?: boolean;
}

/** QEMU's -drive syntax, which `trapeze run --drive` shares. */
const driveArg = (d: DiskSpec): string => `file=${d.file.replace(/,/g, ',,')},format=raw,if=${d.iface}`;

function run(argv: string[], opts: { inherit?: boolean; cwd?: string } = {}): { ok: boolean; out: string } {
  const r = spawnSync(argv[0], argv.slice(1), {
    cwd: opts.cwd, encoding: 'utf8', stdio: opts.inherit ? ['ignore', 'inherit', 'inherit'] : 'pipe', timeout: 20 * 60_000,
  });
  return { ok: !r.error && r.status === 0, out: `${r.stdout ?? ''}${r.stderr ?? ''}`.trim() };
}

function which(cmd: string): string | null {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : null;
}

const isRoot = (): boolean => typeof process.getuid === 'function' && process.getuid() === 0;

// ---------------------------------------------------------------------------------------------- Trapeze

let trapezeBuilt: string | null | undefined;
let trapezeHelp = '';

/** Builds dist/ once (npm run build) and reads `trapeze run --help` to learn which --cpu values exist. */
function buildTrapeze(log: (s: string) => void): string | null {
  if (trapezeBuilt !== undefined) return trapezeBuilt;
  log('trapeze: npm run build');
  const b = run(['npm', 'run', 'build'], { cwd: REPO });
  if (!b.ok) return (trapezeBuilt = `npm run build failed: ${b.out.split('\n').slice(-3).join(' | ')}`);
  const h = run([process.execPath, join(REPO, 'bin', 'trapeze'), 'run', '--help']);
  trapezeHelp = h.out;
  return (trapezeBuilt = null);
}

/** True when `trapeze run` accepts `--cpu` (the flag that picks interpreter or JIT). */
function hasCpuFlag(): boolean { return /--cpu\b/.test(trapezeHelp); }

export function trapezeEngine(cpu: 'interp' | 'jit'): Engine {
  return {
    label: `trapeze (${cpu})`,
    key: 'trapeze',
    setup(log) {
      const err = buildTrapeze(log);
      if (err) return err;
      if (hasCpuFlag()) {
        // Trust the help text: the value must be listed for the variant to run.
        return new RegExp(`\\b${cpu}\\b`).test(trapezeHelp.split('\n').filter((l) => /--cpu/.test(l)).join(' ') || trapezeHelp)
          ? null : `\`trapeze run --help\` lists --cpu but not '${cpu}'`;
      }
      // No --cpu flag yet: the interpreter is the only CPU, so it runs without a flag and the JIT slot stays empty.
      return cpu === 'interp' ? null : '`trapeze run` has no --cpu flag yet (no JIT to select)';
    },
    launch(g, disks = [], nic) {
      const argv = [process.execPath, join(REPO, 'bin', 'trapeze'), 'run', '--kernel', g.kernel, '--initrd', g.initrd,
        '--memory', String(MEMORY_MIB), '--no-reboot', '--stats'];
      if (hasCpuFlag()) argv.push('--cpu', cpu);
      for (const d of disks) argv.push('--drive', driveArg(d));
      // `vde=URL` runs `vde_plug URL`, as `--nic user` runs `vde_plug slirp://`: here the URL is the bench's switch.
      if (nic) argv.push('--nic', `vde=vde://${nic.switchDir},model=${nic.model},mac=${nic.mac}`);
      return { argv };
    },
    countersOnSigusr2: true,
    describe() {
      return `node ${process.version} bin/trapeze run --memory ${MEMORY_MIB} --no-reboot${hasCpuFlag() ? ` --cpu ${cpu}` : ' (interpreter; no --cpu flag)'}`;
    },
  };
}

// ---------------------------------------------------------------------------------------------- QEMU

const APT_PACKAGES = ['qemu-system-x86', 'seabios'];
const SEABIOS = '/usr/share/seabios/bios-256k.bin';
const VGABIOS = '/usr/share/seabios/vgabios-stdvga.bin';
let aptTried = false;

/** Installs QEMU and SeaBIOS with apt-get when root and they are missing; otherwise names the command. */
function ensureApt(log: (s: string) => void, need: () => boolean): string | null {
  if (!need()) return null;
  const cmd = `apt-get install -y --no-install-recommends ${APT_PACKAGES.join(' ')}`;
  if (!isRoot()) return `missing; run as root: ${cmd}`;
  if (!aptTried) {
    aptTried = true;
    log(`apt: ${cmd}`);
    let r = run(['apt-get', 'install', '-y', '--no-install-recommends', ...APT_PACKAGES]);
    if (!r.ok) {
      log('apt: install failed; apt-get update and retry');
      run(['apt-get', 'update']);
      r = run(['apt-get', 'install', '-y', '--no-install-recommends', ...APT_PACKAGES]);
    }
    if (!r.ok) log(`apt: ${r.out.split('\n').slice(-2).join(' | ')}`);
  }
  return need() ? `still missing after \`${cmd}\`` : null;
}

export function qemuEngine(): Engine {
  let version = '';
  return {
    label: 'qemu (tcg)',
    key: 'qemu',
    setup(log) {
      const err = ensureApt(log, () => !which('qemu-system-i386'));
      if (err) return `qemu-system-i386 ${err}`;
      version = run(['qemu-system-i386', '--version']).out.split('\n')[0] ?? '';
      return null;
    },
    launch(g, disks = [], nic) {
      if (nic && !nic.qemuDevice) throw new Error(`QEMU has no counterpart of Trapeze's ${nic.model}`);
      return {
        // -drive without cache= is cache=writeback: through the host's page cache, as `trapeze run` reads and
        // writes its image files.
        argv: ['qemu-system-i386', '-accel', 'tcg', '-m', String(MEMORY_MIB), '-kernel', g.kernel, '-initrd', g.initrd,
          '-append', CMDLINE, '-nographic', '-monitor', 'none', '-serial', 'stdio', '-no-reboot',
          ...disks.flatMap((d) => ['-drive', driveArg(d)]),
          // QEMU's vde netdev links libvdeplug and plugs into the same switch; a -netdev also drops the default NIC.
          ...(nic ? ['-netdev', `vde,id=n0,sock=${nic.switchDir}`, '-device', `${nic.qemuDevice},netdev=n0,mac=${nic.mac}`] : [])],
      };
    },
    describe() { return `${version || 'qemu-system-i386'}: -accel tcg -m ${MEMORY_MIB} -nographic -serial stdio`; },
  };
}

// ---------------------------------------------------------------------------------------------- v86

export const BENCH_CACHE = join(process.env.TRAPEZE_CACHE ?? join(homedir(), '.cache', 'trapeze'), 'bench');

export function v86Engine(): Engine {
  const pkgDir = join(BENCH_CACHE, 'node_modules', 'v86');
  let version = '';
  return {
    label: 'v86',
    key: 'v86',
    setup(log) {
      const lib = join(pkgDir, 'build', 'libv86.mjs');
      if (!existsSync(lib)) {
        mkdirSync(BENCH_CACHE, { recursive: true });
        log(`v86: npm install --prefix ${BENCH_CACHE} v86`);
        const r = run(['npm', 'install', '--prefix', BENCH_CACHE, '--no-audit', '--no-fund', '--no-save', 'v86']);
        if (!r.ok || !existsSync(lib)) return `npm install --prefix ${BENCH_CACHE} v86 failed: ${r.out.split('\n').slice(-2).join(' | ')}`;
      }
      const err = ensureApt(log, () => !existsSync(SEABIOS) || !existsSync(VGABIOS));
      if (err) return `SeaBIOS (${SEABIOS}) ${err}`;
      try {
        version = JSON.parse(run(['cat', join(pkgDir, 'package.json')]).out).version;
      } catch { version = '?'; }
      return null;
    },
    launch(g) {
      const cfg = { kernel: g.kernel, initrd: g.initrd, bios: SEABIOS, vgaBios: VGABIOS, memoryMiB: MEMORY_MIB, cmdline: CMDLINE };
      return { argv: [process.execPath, join(REPO, 'scripts', 'bench', 'v86-runner.mjs'), pkgDir, JSON.stringify(cfg)] };
    },
    describe() { return `v86 ${version} (npm, JIT to wasm) in node ${process.version}, SeaBIOS, ${MEMORY_MIB} MiB`; },
    noDisks: 'not run: scripts/bench/v86-runner.mjs attaches no disks (not wired up)',
    noNet: 'not run: scripts/bench/v86-runner.mjs attaches no network (not wired up)',
  };
}

/** All rows, in table order. */
export function allEngines(): Engine[] {
  return [trapezeEngine('interp'), trapezeEngine('jit'), v86Engine(), qemuEngine()];
}
