// The host side of the network section: a private VDE network per boot (a vde_switch with a slirp plug on
// one port and the engine's NIC on another) and a TCP sink on 127.0.0.1 that times what the guest sends.
// Both engines plug into the same kind of network: Trapeze through `vde_plug vde://SWITCH` (its --nic vde=),
// QEMU through its vde netdev (libvdeplug in process); from the switch on, the path is the same.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Debian packages and the files that show they are installed (as scripts/test.mjs checks them). */
const VDE_PACKAGES = [
  { pkg: 'vde2', present: () => existsSync('/usr/bin/vde_switch') },
  { pkg: 'vdeplug', present: () => existsSync('/usr/bin/vde_plug') },
  { pkg: 'libvdeplug-slirp', present: () => existsSync('/usr/lib/x86_64-linux-gnu/vdeplug/libvdeplug_slirp.so') },
];

/** Installs vde_switch, vde_plug and its slirp module when missing (as root); else says what is missing. */
export function ensureVde(log: (s: string) => void): string | null {
  const missing = (): string[] => VDE_PACKAGES.filter((p) => !p.present()).map((p) => p.pkg);
  if (!missing().length) return null;
  const cmd = ['apt-get', 'install', '-y', '--no-install-recommends', ...missing()];
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return `missing; run as root: ${cmd.join(' ')}`;
  log(`apt: ${cmd.join(' ')}`);
  let r = spawnSync(cmd[0], cmd.slice(1), { stdio: 'ignore', timeout: 10 * 60_000 });
  if (r.status !== 0) {
    spawnSync('apt-get', ['update'], { stdio: 'ignore', timeout: 10 * 60_000 });
    r = spawnSync(cmd[0], cmd.slice(1), { stdio: 'ignore', timeout: 10 * 60_000 });
  }
  return missing().length ? `still missing after \`${cmd.join(' ')}\`: ${missing().join(' ')}` : null;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** One private network: `switchDir` is the vde_switch control directory NICs plug into. */
export interface VdeNetwork { switchDir: string; close(): Promise<void> }

/**
 * Starts `vde_switch -s DIR` (in the foreground, as our child, with a stdin we keep open: it exits on EOF
 * there) and `vde_plug vde://DIR slirp://`, which joins the switch to a fresh libslirp: DHCP server, DNS
 * proxy and NAT to the host, with the gateway 10.0.2.2 standing for the host's loopback.
 */
export async function startVdeNetwork(log: (s: string) => void): Promise<VdeNetwork> {
  const dir = mkdtempSync(join(tmpdir(), 'trapeze-bench-net-'));
  const switchDir = join(dir, 'switch');
  const children: ChildProcess[] = [];
  const close = async (): Promise<void> => {
    for (const c of children.reverse()) {
      if (c.exitCode === null && c.signalCode === null) {
        const gone = new Promise((r) => c.once('exit', r));
        c.kill('SIGTERM');
        await Promise.race([gone, sleep(3000)]);
        if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
      }
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const start = (argv: string[]): ChildProcess => {
    const c = spawn(argv[0], argv.slice(1), { stdio: ['pipe', 'ignore', 'pipe'] });
    let err = '';
    c.stderr!.on('data', (d: Buffer) => { if (err.length < 2000) err += d.toString(); });
    c.on('error', (e) => log(`${argv[0]}: ${e.message}`));
    c.on('exit', (code, sig) => { if (!closing) log(`${argv[0]} exited (${sig ?? code}) ${err.trim().split('\n')[0] ?? ''}`); });
    children.push(c);
    return c;
  };
  let closing = false;
  try {
    const sw = start(['vde_switch', '-s', switchDir]);
    // The switch creates its control socket once it is up (bounded wait).
    for (let i = 0; i < 100 && !existsSync(join(switchDir, 'ctl')); i++) {
      if (sw.exitCode !== null) throw new Error('vde_switch exited at start');
      await sleep(50);
    }
    if (!existsSync(join(switchDir, 'ctl'))) throw new Error(`vde_switch made no ${join(switchDir, 'ctl')}`);
    const plug = start(['vde_plug', `vde://${switchDir}`, 'slirp://']);
    await sleep(300);
    if (plug.exitCode !== null) throw new Error('vde_plug vde:// slirp:// exited at start');
  } catch (e) {
    closing = true;
    await close();
    throw e;
  }
  return { switchDir, close: async () => { closing = true; await close(); } };
}

/** One TCP connection the sink saw: bytes received, host times of the first byte and of the sender's FIN. */
export interface Transfer { bytes: number; firstByte?: number; end?: number; error?: string }

/**
 * A TCP server on 127.0.0.1 that reads and discards what each connection sends, and records when the first
 * byte and the end of the stream arrived (performance.now()). It closes its side once the sender has
 * finished, which is what lets busybox nc exit. Only loopback connections are accepted (slirp's NAT makes the
 * guest's connection to 10.0.2.2 one from 127.0.0.1).
 */
export class Sink {
  readonly transfers: Transfer[] = [];
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  port = 0;

  constructor() {
    this.server = createServer((s) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
      if (s.remoteAddress !== '127.0.0.1' && s.remoteAddress !== '::ffff:127.0.0.1') { s.destroy(); return; }
      const t: Transfer = { bytes: 0 };
      this.transfers.push(t);
      s.on('data', (d: Buffer) => {
        if (t.firstByte === undefined) t.firstByte = performance.now();
        t.bytes += d.length;
      });
      s.on('end', () => { t.end = performance.now(); s.end(); });
      s.on('error', (e) => { t.error = e.message; });
    });
  }

  listen(): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(0, '127.0.0.1', () => {
        const a = this.server.address();
        this.port = typeof a === 'object' && a ? a.port : 0;
        resolve(this.port);
      });
    });
  }

  /** The transfers since the last call. */
  take(): Transfer[] { return this.transfers.splice(0); }

  close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    return new Promise((r) => this.server.close(() => r()));
  }
}
