// The VDE network backend: runs `vde_plug URL` (Debian package vdeplug; `slirp://` needs libvdeplug-slirp)
// as a child process and exchanges Ethernet frames with it over its stdin/stdout. With one URL and no
// terminal, vde_plug converts the network into a byte stream in which every frame is preceded by its length
// as a 2-byte big-endian number (the stream format vde_plug and dpipe share; checked against vde_plug
// slirp:// answering an ARP request). If vde_plug dies the link goes down with one log line and the plug is
// restarted with exponential backoff; the VM keeps running meanwhile.

import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { NetBackend } from '../../devices/net/backend.ts';

export interface VdeBackendOptions {
  /** One line per event worth telling the user (link lost, restarted). */
  log: (line: string) => void;
  /** Program to run (tests may point at another build); default `vde_plug`. */
  command?: string;
  /** Frames held in the pipe to vde_plug before further sends are dropped (the pipe never grows without bound). */
  maxPendingBytes?: number;
  /** First and longest wait before restarting a dead vde_plug. */
  backoffMs?: [number, number];
}

/** Largest frame the stream format can carry (the length field is 16 bits). */
const MAX_FRAME = 0xffff;
/** How long a fresh vde_plug must survive before its link counts as up. */
const SETTLE_MS = 300;

export class VdeBackend implements NetBackend {
  linkUp = false;
  /** Frames sent to / received from vde_plug, frames dropped because the link was down or the pipe full. */
  readonly counters = { sent: 0, received: 0, dropped: 0, restarts: 0 };
  private child: ChildProcessWithoutNullStreams | null = null;
  private rx: ((f: Uint8Array) => void) | null = null;
  private link: ((up: boolean) => void) | null = null;
  private pending = Buffer.alloc(0);
  private closed = false;
  private backoff: number;
  private restartTimer: NodeJS.Timeout | null = null;
  private startedAt = 0;
  private warned = false;

  constructor(readonly url: string, private readonly opts: VdeBackendOptions) {
    this.backoff = opts.backoffMs?.[0] ?? 500;
    this.start();
  }

  private start(): void {
    this.restartTimer = null;
    if (this.closed) return;
    const child = spawn(this.opts.command ?? 'vde_plug', [this.url], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child = child;
    this.pending = Buffer.alloc(0);
    this.startedAt = Date.now();
    let errText = '';
    child.stderr.on('data', (d: Buffer) => { if (errText.length < 2000) errText += d.toString(); });
    child.stdout.on('data', (d: Buffer) => this.onData(d));
    child.stdin.on('error', () => { /* EPIPE when the plug died: reported by 'exit' */ });
    // vde_plug starts before it has connected: only one that is still running a moment later counts as up.
    child.on('spawn', () => {
      const t = setTimeout(() => { if (this.child === child) this.setLink(true); }, SETTLE_MS);
      t.unref?.();
    });
    const onGone = (why: string) => {
      if (this.child !== child) return;
      this.child = null;
      this.setLink(false);
      if (this.closed) return;
      // A plug that had stayed up for a while earns a fresh backoff.
      if (Date.now() - this.startedAt > 10_000) this.backoff = this.opts.backoffMs?.[0] ?? 500;
      if (!this.warned) {
        this.opts.log(`trapeze: network ${this.url}: vde_plug ${why}${errText.trim() ? `: ${errText.trim().split('\n')[0]}` : ''}; link down, restarting`);
        this.warned = true;
      }
      this.counters.restarts++;
      this.restartTimer = setTimeout(() => this.start(), this.backoff);
      this.restartTimer.unref?.();
      this.backoff = Math.min(this.backoff * 2, this.opts.backoffMs?.[1] ?? 30_000);
    };
    child.on('error', (e) => onGone(`could not run (${(e as NodeJS.ErrnoException).code ?? e.message})`));
    child.on('exit', (code, sig) => onGone(sig ? `killed by ${sig}` : `exited with status ${code}`));
  }

  private setLink(up: boolean): void {
    if (up === this.linkUp) return;
    this.linkUp = up;
    if (up && this.warned) { this.opts.log(`trapeze: network ${this.url}: vde_plug running again; link up`); this.warned = false; }
    this.link?.(up);
  }

  /** Splits the stream into frames; a partial frame waits for the rest. */
  private onData(d: Buffer): void {
    const buf = this.pending.length ? Buffer.concat([this.pending, d]) : d;
    let off = 0;
    while (buf.length - off >= 2) {
      const len = buf.readUInt16BE(off);
      if (buf.length - off - 2 < len) break;
      const frame = new Uint8Array(buf.subarray(off + 2, off + 2 + len));
      off += 2 + len;
      this.counters.received++;
      this.rx?.(frame.slice());
    }
    this.pending = off < buf.length ? Buffer.from(buf.subarray(off)) : Buffer.alloc(0);
  }

  send(frame: Uint8Array): void {
    const c = this.child;
    if (!c || !this.linkUp || frame.length > MAX_FRAME || c.stdin.writableLength > (this.opts.maxPendingBytes ?? 1 << 20)) { this.counters.dropped++; return; }
    const out = Buffer.allocUnsafe(frame.length + 2);
    out.writeUInt16BE(frame.length, 0);
    out.set(frame, 2);
    c.stdin.write(out);
    this.counters.sent++;
  }

  onReceive(cb: (frame: Uint8Array) => void): void { this.rx = cb; }
  onLinkChange(cb: (up: boolean) => void): void { this.link = cb; }

  /** The running vde_plug's process id (tests kill it to check the restart). */
  get pid(): number | undefined { return this.child?.pid; }

  close(): void {
    this.closed = true;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    const c = this.child;
    this.child = null;
    this.linkUp = false;
    if (c) { c.stdin.end(); c.kill('SIGTERM'); }
  }
}

/**
 * Makes sure a vde_switch serves the control directory `dir`, starting one as a daemon if none does (no root
 * needed: the switch is only a process with a socket directory). Returns the URL vde_plug connects to.
 */
export function ensureSwitch(dir: string, log: (line: string) => void): string {
  const pidFile = join(dir, 'vde_switch.pid');
  const alive = (): boolean => {
    if (!existsSync(join(dir, 'ctl'))) return false;
    try {
      const pid = Number(readFileSync(pidFile, 'utf8').trim());
      if (!pid) return false;
      process.kill(pid, 0);
      return true;
    } catch { return false; }
  };
  if (!alive()) {
    mkdirSync(join(dir, '..'), { recursive: true });
    const r = spawnSync('vde_switch', ['-s', dir, '-d', '-p', pidFile], { encoding: 'utf8' });
    if (r.error || r.status !== 0) {
      const missing = (r.error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
      throw new Error(`cannot start vde_switch for ${dir}: ${missing ? 'vde_switch not found; install Debian\'s vde2 package' : r.error?.message ?? r.stderr.trim().split('\n')[0]}`);
    }
    // The daemonised switch writes its pid file after the parent has exited: wait for it (bounded).
    const wait = new Int32Array(new SharedArrayBuffer(4));
    for (let i = 0; i < 100 && !alive(); i++) Atomics.wait(wait, 0, 0, 20);
    if (!alive()) throw new Error(`vde_switch for ${dir} did not come up`);
    log(`trapeze: started vde_switch ${dir}`);
  }
  return `vde://${dir}`;
}
