// Shared plumbing for tests that boot the default guest and talk to its shell over the serial console:
// spawning `trapeze run` (or QEMU on the same kernel and initramfs), sending one command at a time and
// reading back exactly its output and exit status, and the host-side helpers network tests need (an HTTP
// server on 127.0.0.1, the host processes a VM started, the --stats NIC counters).
//
// Reading output robustly: the shell echoes what it is sent (and its line editor redraws long lines), so a
// command is sent as one line `echo "@<""N>@"; CMD; echo "@@""N@@ $?"`. The quotes make the markers differ
// between the echoed input and the output, so the output of CMD is exactly what lies between `@<N>@` and
// `@@N@@ STATUS`. (Turning the echo off with `stty -echo` is no way out: busybox's line editor then reads
// with plain fgets, which returns NULL when a finishing background job's SIGCHLD interrupts the read, and
// the shell exits as if at end of file, which powers the guest off.) `ready` also keeps kernel messages off
// the console (`dmesg -n 1`).

import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { appendFileSync, readFileSync, readdirSync } from 'node:fs';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';

export const bin = join(import.meta.dirname, '..', 'bin', 'trapeze');

const has = (sh: string): boolean => spawnSync('sh', ['-c', sh], { stdio: 'ignore' }).status === 0;
/** vde_plug with the slirp module (Debian packages vdeplug, libvdeplug-slirp). */
export const haveSlirp = has('command -v vde_plug && test -e /usr/lib/x86_64-linux-gnu/vdeplug/libvdeplug_slirp.so');
/** vde_plug and vde_switch (vdeplug, vde2). */
export const haveSwitch = has('command -v vde_plug && command -v vde_switch');

export const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

export interface ShResult { status: number; out: string }

/** A booted guest driven through its serial console. */
export class Guest {
  readonly proc: ChildProcessWithoutNullStreams;
  out = '';
  err = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private seq = 0;
  private closed = false;
  private waiters: (() => void)[] = [];
  private readonly started = Date.now();

  /** Starts `trapeze run ARGS` (or, with `command`, any program with a serial console on stdio). */
  constructor(readonly name: string, args: string[], opts: { command?: string; killAfterMs?: number } = {}) {
    const [cmd, argv] = opts.command ? [opts.command, args] : [process.execPath, [bin, 'run', ...args]];
    this.proc = spawn(cmd, argv, { stdio: ['pipe', 'pipe', 'pipe'] });
    const poke = () => { for (const w of this.waiters.splice(0)) w(); };
    // GUEST_LOG_DIR=DIR copies each VM's console and stderr to DIR/NAME.log as they arrive (for debugging).
    const logDir = process.env.GUEST_LOG_DIR;
    const tee = (d: string) => { if (logDir) appendFileSync(join(logDir, `${name}.log`), d); };
    this.proc.stdout.setEncoding('utf8');
    this.proc.stderr.setEncoding('utf8');
    this.proc.stdout.on('data', (d: string) => { this.out += d; tee(d); poke(); });
    this.proc.stderr.on('data', (d: string) => { this.err += d; tee(d); poke(); });
    this.proc.stdin.on('error', () => { /* the VM ended; reported by the exit */ });
    const killer = setTimeout(() => this.proc.kill('SIGKILL'), opts.killAfterMs ?? 20 * 60_000);
    this.exited = new Promise((resolve) => this.proc.on('close', (code, signal) => { clearTimeout(killer); this.closed = true; poke(); resolve({ code, signal }); }));
  }

  get pid(): number { return this.proc.pid!; }
  /** Until the process has exited and its output streams are drained. */
  get running(): boolean { return !this.closed; }
  elapsed(): number { return (Date.now() - this.started) / 1000; }

  /** Waits until `test` (which looks at `out` and `err`) returns something truthy. */
  async waitFor<T>(what: string, test: () => T | null | undefined | false, timeoutMs: number): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const v = test();
      if (v) return v;
      if (!this.running) throw new Error(`${this.name}: exited while waiting for ${what}${this.context()}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`${this.name}: timed out after ${timeoutMs / 1000} s waiting for ${what}${this.context()}`);
      await new Promise<void>((r) => { const t = setTimeout(r, Math.min(left, 1000)); this.waiters.push(() => { clearTimeout(t); r(); }); });
    }
  }

  /** Waits for the shell (the initramfs banner) and, unless `printk`, keeps kernel messages off the console. */
  async ready(timeoutMs: number, opts: { banner?: RegExp; printk?: boolean } = {}): Promise<void> {
    const banner = opts.banner ?? /Trapeze guest:/;
    await this.waitFor('the shell', () => banner.test(this.out), timeoutMs);
    if (!opts.printk) await this.sh('dmesg -n 1', 60_000);
  }

  /** Runs one shell command line in the guest; resolves with its exit status and exactly what it printed. */
  async sh(cmd: string, timeoutMs: number): Promise<ShResult> {
    if (/[\r\n]/.test(cmd)) throw new Error('Guest.sh takes one line');
    const n = ++this.seq;
    const from = this.out.length;
    // A command ending in & is already separated from what follows it.
    this.proc.stdin.write(`echo "@<""${n}>@"; ${cmd}${/&\s*$/.test(cmd) ? ' ' : '; '}echo "@@""${n}@@ $?"\n`);
    const re = new RegExp(`@<${n}>@\\r?\\n([\\s\\S]*?)@@${n}@@ (\\d+)\\r?\\n`);
    const m = await this.waitFor(`\`${cmd.slice(0, 60)}\``, () => re.exec(this.out.slice(from)), timeoutMs);
    return { status: Number(m[2]), out: m[1].replace(/\r/g, '') };
  }

  /** Like sh, but the command must succeed; returns its output trimmed. */
  async ok(cmd: string, timeoutMs: number): Promise<string> {
    const r = await this.sh(cmd, timeoutMs);
    if (r.status !== 0) throw new Error(`${this.name}: \`${cmd}\` exited with ${r.status}: ${r.out.slice(-1500)}${this.context()}`);
    return r.out.trim();
  }

  /** Asks the guest to power off and waits for the VM to end. */
  async poweroff(timeoutMs = 120_000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (this.running) this.proc.stdin.write('poweroff\n');
    const t = setTimeout(() => this.proc.kill('SIGKILL'), timeoutMs);
    const r = await this.exited;
    clearTimeout(t);
    return r;
  }

  kill(): void { if (this.running) this.proc.kill('SIGKILL'); }

  /** The end of both streams, for assertion messages. */
  context(): string { return `\n--- ${this.name} stderr: ${this.err.slice(-1500)}\n--- ${this.name} console: ${this.out.slice(-2500)}`; }

  /** True when the default guest could not be fetched (no archive): the caller should skip. */
  archiveUnreachable(): boolean { return /archive unreachable/i.test(this.err); }
}

/** `name: rx N pkts/B B, tx N pkts/B B` from `trapeze run --stats`. */
export function nicStats(stderr: string, name: string): { rxPackets: number; rxBytes: number; txPackets: number; txBytes: number } | null {
  const m = new RegExp(`${name.replace(/\./g, '\\.')}: rx (\\d+) pkts/(\\d+) B, tx (\\d+) pkts/(\\d+) B`).exec(stderr);
  return m ? { rxPackets: Number(m[1]), rxBytes: Number(m[2]), txPackets: Number(m[3]), txBytes: Number(m[4]) } : null;
}

/** The direct children of a host process (from /proc/PID/task/TID/children), with their command lines. */
export function childProcesses(pid: number): { pid: number; cmdline: string[] }[] {
  const pids: number[] = [];
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    for (const c of readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim().split(/\s+/)) if (c) pids.push(Number(c));
  }
  return pids.flatMap((p) => {
    try { return [{ pid: p, cmdline: readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0').filter(Boolean) }]; } catch { return []; }
  });
}

/** An HTTP server on 127.0.0.1 serving fixed bodies by path; counts requests per path. */
export async function httpServer(files: Record<string, Uint8Array>): Promise<{ server: Server; port: number; hits: Map<string, number> }> {
  const hits = new Map<string, number>();
  const server = createServer((req, res) => {
    const body = files[req.url ?? ''];
    hits.set(req.url ?? '', (hits.get(req.url ?? '') ?? 0) + 1);
    if (!body) { res.writeHead(404).end(); return; }
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': body.length }).end(body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as AddressInfo).port, hits };
}

/** Distinct TCP ports on 127.0.0.1 that were free a moment ago (for hostfwd). */
export async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(Array.from({ length: n }, () => new Promise<ReturnType<typeof createNetServer>>((r) => { const s = createNetServer(); s.listen(0, '127.0.0.1', () => r(s)); })));
  const ports = servers.map((s) => (s.address() as AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

/** GET http://127.0.0.1:PORT/PATH into a buffer (node's fetch), with a deadline. */
export async function httpGet(port: number, path: string, timeoutMs: number): Promise<Buffer> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(timeoutMs) });
  if (!res.ok) throw new Error(`GET ${path} on port ${port}: HTTP ${res.status}`);
  return Buffer.from(await res.arrayBuffer());
}

/** The default guest's kernel and initramfs (fetched and built when missing), for running it elsewhere. */
export function defaultGuestFiles(): { kernel: string; initrd: string } | null {
  const r = spawnSync(process.execPath, [bin, 'guest', 'fetch'], { encoding: 'utf8', timeout: 15 * 60_000 });
  const get = (k: string) => new RegExp(`^${k}: (.+)$`, 'm').exec(r.stdout)?.[1];
  const kernel = get('kernel'), initrd = get('initrd');
  return r.status === 0 && kernel && initrd ? { kernel, initrd } : null;
}

/**
 * Boots `trapeze run ARGS` with SCRIPT as the whole console input (the VM holds typed input until the
 * guest's shell listens) and waits for the VM to exit; SIGKILL after `killAfterMs`. For tests that type a
 * fixed script and read its `key=value` answers; `Guest` is the one for command-at-a-time dialogues.
 */
export function runScript(args: string[], script: string, killAfterMs: number, trapeze = bin): Promise<{ code: number | null; out: string; err: string; seconds: number }> {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const p = spawn(process.execPath, [trapeze, 'run', ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '', err = '';
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { err += d; });
    p.stdin.end(script);
    const timer = setTimeout(() => p.kill('SIGKILL'), killAfterMs);
    p.on('close', (code) => { clearTimeout(timer); resolve({ code, out, err, seconds: (Date.now() - t0) / 1000 }); });
  });
}
