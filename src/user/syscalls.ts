// Linux i386 system calls for the user-mode runner.
//
// Calling convention (arch/x86/entry/entry_32.S, `int $0x80`): EAX = number, arguments in EBX ECX EDX ESI
// EDI EBP, result in EAX, -errno on failure. Numbers come from arch/x86/entry/syscalls/syscall_32.tbl.
// Structure layouts are the i386 ones from the kernel's uapi headers, cited at each writer.
// Files and directories are the host's: paths resolve against the guest's own cwd, with no sysroot.

import * as fs from 'node:fs';
import { isatty } from 'node:tty';
import { hostname, totalmem, freemem, loadavg, uptime } from 'node:os';
import { randomFillSync } from 'node:crypto';
import { resolve as resolvePath } from 'node:path';
import type { UserProcess } from './process.ts';
import { GDT_ENTRY_TLS_MIN, GDT_ENTRY_TLS_ENTRIES } from './process.ts';
import { BadAddress, pageUp } from './memory.ts';
import { FdTable, OpenFile, errno, hostErrno, O_APPEND, O_NONBLOCK, O_LARGEFILE } from './fds.ts';

const E = errno;
const AT_FDCWD = -100;
const AT_SYMLINK_NOFOLLOW = 0x100;
const AT_REMOVEDIR = 0x200;
const AT_EMPTY_PATH = 0x1000;
const MAX_IO = 4 << 20; // largest single transfer; shorter reads and writes are legal (read(2), write(2))

type Handler = (p: UserProcess, a: number, b: number, c: number, d: number, e: number, f: number) => number;
/** name, argument formats for strace (s = string, d = decimal, x = hex), handler */
type Entry = [string, string, Handler];
const table = new Map<number, Entry>();
const def = (nr: number, name: string, args: string, h: Handler): void => { table.set(nr, [name, args, h]); };

/** Dispatches one system call; returns the value for EAX. */
export function syscall(p: UserProcess, nr: number, a: number, b: number, c: number, d: number, e: number, f: number): number {
  const ent = table.get(nr);
  if (!ent) {
    if (p.strace) p.log(`trapeze: unimplemented syscall ${nr} (0x${(a >>> 0).toString(16)}, 0x${(b >>> 0).toString(16)}, 0x${(c >>> 0).toString(16)}) = -ENOSYS`);
    return -E.ENOSYS;
  }
  const [name, fmt, h] = ent;
  let shown = '';
  if (p.strace) shown = formatArgs(p, fmt, [a, b, c, d, e, f]);
  let r: number;
  try {
    r = h(p, a, b, c, d, e, f);
  } catch (err) {
    if (err instanceof BadAddress) r = -E.EFAULT;
    else r = hostErrno(err);
  }
  if (p.strace) p.log(`${name}(${shown}) = ${r < 0 && r > -4096 ? `-1 ${errnoName(-r)}` : r < 0 ? `0x${(r >>> 0).toString(16)}` : r}`);
  // Writing to a pipe nobody reads raises SIGPIPE before returning EPIPE (pipe(7)); Node ignores SIGPIPE for
  // itself, so the host only reports EPIPE and the default action (terminate) is applied here.
  if (r === -E.EPIPE && (nr === 4 || nr === 146 || nr === 181 || nr === 187 || nr === 239)) selfSignal(p, 13);
  return r | 0;
}

function errnoName(n: number): string {
  for (const [k, v] of Object.entries(errno)) if (v === n) return k;
  return String(n);
}

function formatArgs(p: UserProcess, fmt: string, args: number[]): string {
  const out: string[] = [];
  for (let i = 0; i < fmt.length; i++) {
    const v = args[i];
    if (fmt[i] === 's') {
      try { out.push(JSON.stringify(p.as.cstring(v, 256))); } catch { out.push(`0x${(v >>> 0).toString(16)}`); }
    } else if (fmt[i] === 'd') out.push(String(v));
    else if (fmt[i] === 'o') out.push(`0${(v >>> 0).toString(8)}`);
    else out.push(`0x${(v >>> 0).toString(16)}`);
  }
  return out.join(', ');
}

// ---------------------------------------------------------------------------------------------------------
// Helpers

const sleepCell = new Int32Array(new SharedArrayBuffer(4));
function sleepMs(ms: number): void { Atomics.wait(sleepCell, 0, 0, ms); }

function fileOf(p: UserProcess, fd: number): OpenFile {
  const f = p.fds.get(fd);
  if (!f) throw Object.assign(new Error('EBADF'), { code: 'EBADF' });
  return f;
}

/** Host path for a guest path relative to dirfd (openat(2) semantics). */
function pathAt(p: UserProcess, dirfd: number, ptr: number): string {
  const path = p.as.cstring(ptr);
  if (path === '') throw Object.assign(new Error('ENOENT'), { code: 'ENOENT' });
  return hostPath(p, dirfd, path);
}

function hostPath(p: UserProcess, dirfd: number, path: string): string {
  if (path === '/proc/self/exe') return p.exePath;
  if (path.startsWith('/')) return path;
  const base = dirfd === AT_FDCWD ? p.cwd : fileOf(p, dirfd).path;
  return resolvePath(base, path);
}

/** Reads from the host; non-blocking descriptors (a Node-owned pipe or tty) are retried until data arrives. */
function hostRead(file: OpenFile, len: number, at: number | null = null): Buffer {
  const buf = Buffer.allocUnsafe(Math.min(len, MAX_IO));
  for (;;) {
    try {
      const pos = at ?? (file.pos >= 0 ? file.pos : null);
      const n = fs.readSync(file.host, buf, 0, buf.length, pos);
      if (at === null && file.pos >= 0) file.pos += n;
      return buf.subarray(0, n);
    } catch (e) {
      if ((e as { code?: string }).code === 'EAGAIN' && !(file.flags & O_NONBLOCK)) { sleepMs(2); continue; }
      if ((e as { code?: string }).code === 'EOF') return buf.subarray(0, 0);
      throw e;
    }
  }
}

function hostWrite(file: OpenFile, data: Uint8Array, at: number | null = null): number {
  let done = 0;
  while (done < data.length) {
    try {
      let pos: number | null = at !== null ? at + done : file.pos >= 0 && !file.append ? file.pos : null;
      const n = fs.writeSync(file.host, data, done, data.length - done, pos);
      done += n;
      if (at === null && file.pos >= 0) file.pos = file.append ? fs.fstatSync(file.host).size : file.pos + n;
      pos = null;
    } catch (e) {
      const code = (e as { code?: string }).code;
      if (code === 'EAGAIN' && !(file.flags & O_NONBLOCK)) { sleepMs(1); continue; }
      if (done > 0) return done;
      throw e;
    }
  }
  return done;
}

function writeStat64(p: UserProcess, addr: number, st: fs.BigIntStats): void {
  // struct stat64, arch/x86/include/uapi/asm/stat.h (i386): 96 bytes, 64-bit fields only 4-byte aligned.
  const b = Buffer.alloc(96);
  b.writeBigUInt64LE(BigInt.asUintN(64, st.dev), 0);
  b.writeUInt32LE(Number(st.ino & 0xffffffffn), 12); // __st_ino
  b.writeUInt32LE(Number(st.mode), 16);
  b.writeUInt32LE(Number(st.nlink), 20);
  b.writeUInt32LE(Number(st.uid), 24);
  b.writeUInt32LE(Number(st.gid), 28);
  b.writeBigUInt64LE(BigInt.asUintN(64, st.rdev), 32);
  b.writeBigInt64LE(st.size, 44);
  b.writeUInt32LE(Number(st.blksize), 52);
  b.writeBigUInt64LE(st.blocks, 56);
  const ts = (ns: bigint, o: number) => { b.writeUInt32LE(Number(BigInt.asUintN(32, ns / 1_000_000_000n)), o); b.writeUInt32LE(Number(ns % 1_000_000_000n), o + 4); };
  ts(st.atimeNs, 64); ts(st.mtimeNs, 72); ts(st.ctimeNs, 80);
  b.writeBigUInt64LE(st.ino, 88);
  p.as.write(addr, b);
}

function writeStatx(p: UserProcess, addr: number, st: fs.BigIntStats): void {
  // struct statx, include/uapi/linux/stat.h: 256 bytes.
  const b = Buffer.alloc(256);
  const STATX_BASIC_STATS = 0x7ff, STATX_BTIME = 0x800;
  b.writeUInt32LE(STATX_BASIC_STATS | STATX_BTIME, 0);
  b.writeUInt32LE(Number(st.blksize), 4);
  b.writeUInt32LE(Number(st.nlink), 16);
  b.writeUInt32LE(Number(st.uid), 20);
  b.writeUInt32LE(Number(st.gid), 24);
  b.writeUInt16LE(Number(st.mode) & 0xffff, 28);
  b.writeBigUInt64LE(st.ino, 32);
  b.writeBigUInt64LE(BigInt.asUintN(64, st.size), 40);
  b.writeBigUInt64LE(st.blocks, 48);
  const ts = (ns: bigint, o: number) => { b.writeBigInt64LE(ns / 1_000_000_000n, o); b.writeUInt32LE(Number(ns % 1_000_000_000n), o + 8); };
  ts(st.atimeNs, 64); ts(st.birthtimeNs, 80); ts(st.ctimeNs, 96); ts(st.mtimeNs, 112);
  // Device numbers in glibc's dev_t encoding (gnu_dev_major/minor).
  const maj = (d: bigint) => Number(((d >> 8n) & 0xfffn) | ((d >> 32n) & ~0xfffn));
  const min = (d: bigint) => Number((d & 0xffn) | ((d >> 12n) & ~0xffn)) >>> 0;
  b.writeUInt32LE(maj(st.rdev) >>> 0, 128); b.writeUInt32LE(min(st.rdev), 132);
  b.writeUInt32LE(maj(st.dev) >>> 0, 136); b.writeUInt32LE(min(st.dev), 140);
  p.as.write(addr, b);
}

/** stat of dirfd/path with the *at(2) flags (AT_EMPTY_PATH: the fd itself; AT_SYMLINK_NOFOLLOW: lstat). */
function statAt(p: UserProcess, dirfd: number, ptr: number, flags: number): fs.BigIntStats {
  const path = p.as.cstring(ptr);
  if (path === '' && (flags & AT_EMPTY_PATH)) {
    if (dirfd === AT_FDCWD) return fs.statSync(p.cwd, { bigint: true });
    return fs.fstatSync(fileOf(p, dirfd).host, { bigint: true });
  }
  if (path === '') throw Object.assign(new Error('ENOENT'), { code: 'ENOENT' });
  const hp = hostPath(p, dirfd, path);
  return flags & AT_SYMLINK_NOFOLLOW ? fs.lstatSync(hp, { bigint: true }) : fs.statSync(hp, { bigint: true });
}

function seek(file: OpenFile, off: number, whence: number): number {
  if (file.isDir) {
    // Directories: only rewinding is meaningful for our snapshot (readdir's rewinddir does lseek(fd, 0, SEEK_SET)).
    if (whence !== 0 || off < 0) return -E.EINVAL;
    file.dirPos = off;
    if (off === 0) file.dirents = undefined;
    return off;
  }
  if (file.pos < 0) return -E.ESPIPE;
  let base: number;
  switch (whence) {
    case 0: base = 0; break; // SEEK_SET
    case 1: base = file.pos; break; // SEEK_CUR
    case 2: base = fs.fstatSync(file.host).size; break; // SEEK_END
    default: return -E.EINVAL;
  }
  const pos = base + off;
  if (pos < 0) return -E.EINVAL;
  file.pos = pos;
  return pos;
}

const u64 = (lo: number, hi: number): number => (hi >>> 0) * 0x100000000 + (lo >>> 0);

// ---------------------------------------------------------------------------------------------------------
// Process

def(1, 'exit', 'd', (p, status) => { p.exitStatus = status & 0xff; return 0; });
def(252, 'exit_group', 'd', (p, status) => { p.exitStatus = status & 0xff; return 0; });
def(20, 'getpid', '', (p) => p.pid);
def(224, 'gettid', '', (p) => p.pid);
def(64, 'getppid', '', (p) => p.ppid);
for (const [nr, name] of [[24, 'getuid'], [199, 'getuid32']] as const) def(nr, name, '', () => process.getuid?.() ?? 0);
for (const [nr, name] of [[49, 'geteuid'], [201, 'geteuid32']] as const) def(nr, name, '', () => process.geteuid?.() ?? 0);
for (const [nr, name] of [[47, 'getgid'], [200, 'getgid32']] as const) def(nr, name, '', () => process.getgid?.() ?? 0);
for (const [nr, name] of [[50, 'getegid'], [202, 'getegid32']] as const) def(nr, name, '', () => process.getegid?.() ?? 0);
def(205, 'getgroups32', 'dx', (p, size, list) => {
  const groups = process.getgroups?.() ?? [];
  if (size === 0) return groups.length;
  if (size < groups.length) return -E.EINVAL;
  groups.forEach((g, i) => p.as.setU32(list + i * 4, g));
  return groups.length;
});
def(65, 'getpgrp', '', (p) => p.pid);
def(132, 'getpgid', 'd', (p) => p.pid);
def(147, 'getsid', 'd', (p) => p.pid);
def(57, 'setpgid', 'dd', () => 0);
def(60, 'umask', 'x', (p, mask) => { const old = p.umask; p.umask = mask & 0o777; return old; });
def(258, 'set_tid_address', 'x', (p, ptr) => { p.clearChildTid = ptr >>> 0; return p.pid; });
def(311, 'set_robust_list', 'xd', () => 0);
def(136, 'personality', 'x', () => 0); // PER_LINUX
def(158, 'sched_yield', '', () => 0);

def(122, 'uname', 'x', (p, buf) => {
  // struct new_utsname: six 65-byte fields (include/uapi/linux/utsname.h).
  const b = Buffer.alloc(65 * 6);
  ['Linux', hostname(), '6.1.0-trapeze', '#1 SMP PREEMPT_DYNAMIC Trapeze', 'i686', '(none)']
    .forEach((s, i) => b.write(s.slice(0, 64), i * 65, 'utf8'));
  p.as.write(buf, b);
  return 0;
});

def(116, 'sysinfo', 'x', (p, buf) => {
  // struct sysinfo (include/uapi/linux/sysinfo.h) for 32-bit longs: 64 bytes; sizes in units of mem_unit.
  const b = Buffer.alloc(64);
  const unit = 4096;
  b.writeUInt32LE(Math.floor(uptime()) >>> 0, 0);
  loadavg().forEach((l, i) => b.writeUInt32LE(Math.min(0xffffffff, Math.round(l * 65536)), 4 + i * 4));
  b.writeUInt32LE(Math.min(0xffffffff, Math.floor(totalmem() / unit)), 16);
  b.writeUInt32LE(Math.min(0xffffffff, Math.floor(freemem() / unit)), 20);
  b.writeUInt16LE(1, 40);
  b.writeUInt32LE(unit, 52);
  p.as.write(buf, b);
  return 0;
});

// Resource limits: RLIMIT_STACK reports our stack reserve, RLIMIT_NOFILE a typical 1024/4096; the rest unlimited.
function rlimit(res: number): [bigint, bigint] {
  const INF = 0xffffffffffffffffn;
  if (res === 3) return [BigInt(8 << 20), INF];
  if (res === 7) return [1024n, 4096n];
  if (res === 4) return [0n, INF]; // RLIMIT_CORE
  return [INF, INF];
}
def(340, 'prlimit64', 'ddxx', (p, _pid, res, _new, old) => {
  if (res < 0 || res >= 16) return -E.EINVAL;
  if (old) { const [cur, max] = rlimit(res); p.as.setU64(old, cur); p.as.setU64(old + 8, max); }
  return 0;
});
for (const [nr, name] of [[191, 'ugetrlimit'], [76, 'getrlimit']] as const) {
  def(nr, name, 'dx', (p, res, buf) => {
    if (res < 0 || res >= 16) return -E.EINVAL;
    const clamp = (v: bigint) => (v > 0xffffffffn ? 0xffffffff : Number(v)); // RLIM_INFINITY is ~0UL for 32-bit
    const [cur, max] = rlimit(res);
    p.as.setU32(buf, clamp(cur)); p.as.setU32(buf + 4, clamp(max));
    return 0;
  });
}
def(75, 'setrlimit', 'dx', () => 0);

// Signals are recorded but never delivered (no asynchronous sources exist in this runner).
def(174, 'rt_sigaction', 'dxxd', (p, sig, act, oact, size) => {
  if (sig < 1 || sig > 64 || sig === 9 || sig === 19 || size !== 8) return -E.EINVAL;
  // struct sigaction of the kernel for i386: handler, flags, restorer, 64-bit mask = 20 bytes.
  if (oact) p.as.write(oact, p.sigactions.get(sig) ?? new Uint8Array(20));
  if (act) p.sigactions.set(sig, p.as.read(act, 20));
  return 0;
});
def(175, 'rt_sigprocmask', 'dxxd', (p, how, set, oset, size) => {
  if (size !== 8) return -E.EINVAL;
  const old = p.sigmask;
  if (set) {
    const s = BigInt(p.as.u32(set)) | (BigInt(p.as.u32(set + 4)) << 32n);
    if (how === 0) p.sigmask |= s; else if (how === 1) p.sigmask &= ~s; else if (how === 2) p.sigmask = s; else return -E.EINVAL;
    p.sigmask &= ~((1n << 8n) | (1n << 18n)); // SIGKILL and SIGSTOP cannot be blocked
  }
  if (oset) p.as.setU64(oset, old);
  return 0;
});
def(186, 'sigaltstack', 'xx', (p, _ss, oss) => {
  if (oss) { p.as.setU32(oss, 0); p.as.setU32(oss + 4, 2 /* SS_DISABLE */); p.as.setU32(oss + 8, 0); }
  return 0;
});

/** A signal sent to ourselves: handlers cannot run, so apply the default action (signal(7)). */
function selfSignal(p: UserProcess, sig: number): number {
  if (sig === 0) return 0;
  if (sig < 0 || sig > 64) return -E.EINVAL;
  const act = p.sigactions.get(sig);
  const handler = act ? new DataView(act.buffer, act.byteOffset).getUint32(0, true) : 0;
  if (handler === 1) return 0; // SIG_IGN
  if ([17, 18, 23, 28].includes(sig)) return 0; // SIGCHLD SIGCONT SIGURG SIGWINCH: ignored by default
  const names: Record<number, string> = { 6: 'Aborted', 15: 'Terminated', 2: 'Interrupt', 9: 'Killed', 13: 'Broken pipe', 14: 'Alarm clock' };
  p.kill(sig, `${names[sig] ?? `signal ${sig}`}, raised by the program itself`);
  return 0;
}
def(37, 'kill', 'dd', (p, pid, sig) => (pid === p.pid || pid === 0 || pid === -1 ? selfSignal(p, sig) : -E.ESRCH));
def(270, 'tgkill', 'ddd', (p, _tgid, tid, sig) => (tid === p.pid ? selfSignal(p, sig) : -E.ESRCH));
def(238, 'tkill', 'dd', (p, tid, sig) => (tid === p.pid ? selfSignal(p, sig) : -E.ESRCH));

// One thread: a futex wake finds no waiters, and a wait could never be woken.
def(240, 'futex', 'xdd', (p, addr, op, val) => {
  const cmd = op & 0x7f;
  if (cmd === 1) return 0; // FUTEX_WAKE
  if (cmd === 0) return p.as.i32(addr) !== val ? -E.EAGAIN : -E.EDEADLK;
  return -E.ENOSYS;
});
table.set(422, ['futex_time64', 'xdd', table.get(240)![2]]);

// ---------------------------------------------------------------------------------------------------------
// Time

function realtimeNs(): bigint { return BigInt(Math.round((performance.timeOrigin + performance.now()) * 1e3)) * 1000n; }
function clockNs(clk: number): bigint | undefined {
  switch (clk) {
    case 0: case 5: case 8: return realtimeNs(); // REALTIME, REALTIME_COARSE, REALTIME_ALARM
    case 1: case 4: case 6: case 7: case 9: return process.hrtime.bigint(); // MONOTONIC, _RAW, _COARSE, BOOTTIME
    case 2: case 3: { const u = process.cpuUsage(); return BigInt(u.user + u.system) * 1000n; } // CPU time
    default: return undefined;
  }
}
def(265, 'clock_gettime', 'dx', (p, clk, ts) => {
  const ns = clockNs(clk);
  if (ns === undefined) return -E.EINVAL;
  p.as.setU32(ts, Number(BigInt.asUintN(32, ns / 1_000_000_000n))); p.as.setU32(ts + 4, Number(ns % 1_000_000_000n));
  return 0;
});
def(403, 'clock_gettime64', 'dx', (p, clk, ts) => {
  const ns = clockNs(clk);
  if (ns === undefined) return -E.EINVAL;
  p.as.setU64(ts, ns / 1_000_000_000n); p.as.setU64(ts + 8, ns % 1_000_000_000n);
  return 0;
});
def(266, 'clock_getres', 'dx', (p, clk, ts) => {
  if (clockNs(clk) === undefined) return -E.EINVAL;
  if (ts) { p.as.setU32(ts, 0); p.as.setU32(ts + 4, 1); }
  return 0;
});
def(406, 'clock_getres_time64', 'dx', (p, clk, ts) => {
  if (clockNs(clk) === undefined) return -E.EINVAL;
  if (ts) { p.as.setU64(ts, 0); p.as.setU64(ts + 8, 1); }
  return 0;
});
def(78, 'gettimeofday', 'xx', (p, tv, tz) => {
  const us = realtimeNs() / 1000n;
  if (tv) { p.as.setU32(tv, Number(us / 1_000_000n)); p.as.setU32(tv + 4, Number(us % 1_000_000n)); }
  if (tz) { p.as.setU32(tz, 0); p.as.setU32(tz + 4, 0); }
  return 0;
});
def(13, 'time', 'x', (p, tloc) => {
  const s = Number(realtimeNs() / 1_000_000_000n);
  if (tloc) p.as.setU32(tloc, s);
  return s;
});
def(43, 'times', 'x', (p, buf) => {
  // struct tms: four clock_t in USER_HZ (100) ticks.
  const u = process.cpuUsage();
  if (buf) { p.as.setU32(buf, Math.floor(u.user / 10000)); p.as.setU32(buf + 4, Math.floor(u.system / 10000)); p.as.setU32(buf + 8, 0); p.as.setU32(buf + 12, 0); }
  return Math.floor(performance.now() / 10) | 0;
});
function sleepFor(ns: bigint): void { if (ns > 0n) sleepMs(Number(ns / 1_000_000n)); }
def(162, 'nanosleep', 'xx', (p, req) => { sleepFor(BigInt(p.as.u32(req)) * 1_000_000_000n + BigInt(p.as.u32(req + 4))); return 0; });
def(267, 'clock_nanosleep', 'ddxx', (p, clk, flags, req) => {
  let ns = BigInt(p.as.u32(req)) * 1_000_000_000n + BigInt(p.as.u32(req + 4));
  if (flags & 1) ns -= clockNs(clk) ?? 0n; // TIMER_ABSTIME
  sleepFor(ns);
  return 0;
});
def(407, 'clock_nanosleep_time64', 'ddxx', (p, clk, flags, req) => {
  let ns = BigInt(p.as.u32(req)) * 1_000_000_000n + BigInt(p.as.u32(req + 8));
  if (flags & 1) ns -= clockNs(clk) ?? 0n;
  sleepFor(ns);
  return 0;
});

def(355, 'getrandom', 'xdx', (p, buf, len) => {
  const n = Math.min(len >>> 0, MAX_IO);
  p.as.write(buf, randomFillSync(new Uint8Array(n)));
  return n;
});

// ---------------------------------------------------------------------------------------------------------
// Memory

def(45, 'brk', 'x', (p, addr) => p.as.setBrk(addr >>> 0));

const MAP_SHARED = 1, MAP_FIXED = 0x10, MAP_ANONYMOUS = 0x20, MAP_FIXED_NOREPLACE = 0x100000;

function mmap(p: UserProcess, addr: number, len: number, _prot: number, flags: number, fd: number, offset: number): number {
  addr >>>= 0; len >>>= 0;
  if (len === 0 || (offset & 0xfff)) return -E.EINVAL;
  if (!(flags & 3)) return -E.EINVAL; // neither MAP_SHARED nor MAP_PRIVATE
  const size = pageUp(len);
  if (size === 0 || size > p.as.mmapTop) return -E.ENOMEM;
  let file: OpenFile | undefined;
  if (!(flags & MAP_ANONYMOUS)) {
    file = p.fds.get(fd);
    if (!file) return -E.EBADF;
    if (file.isDir) return -E.ENODEV;
  }
  let start: number;
  if (flags & (MAP_FIXED | MAP_FIXED_NOREPLACE)) {
    if (addr & 0xfff) return -E.EINVAL;
    if (!p.as.fixedAllowed(addr, addr + size)) return -E.ENOMEM;
    if ((flags & MAP_FIXED_NOREPLACE) && !(flags & MAP_FIXED) && !p.as.isFree(addr, addr + size)) return -E.EEXIST;
    start = addr;
  } else if (addr && !(addr & 0xfff) && p.as.isFree(addr, addr + size) && addr >= pageUp(p.as.brkCur) + 0x1000) {
    start = addr; // the hint is free: honour it, as Linux does
  } else {
    start = p.as.findFree(size);
    if (start < 0) return -E.ENOMEM;
  }
  p.as.map(start, start + size);
  if (file) {
    // A private copy of the file's bytes; past EOF the mapping reads as zero. MAP_SHARED writes are not written
    // back (no program we run relies on that), so shared mappings behave like private ones.
    void MAP_SHARED;
    for (let done = 0; done < len;) {
      const chunk = hostRead(file, Math.min(len - done, MAX_IO), offset + done);
      if (chunk.length === 0) break;
      p.as.write(start + done, chunk);
      done += chunk.length;
    }
  }
  return start | 0;
}
def(192, 'mmap2', 'xxxxdx', (p, addr, len, prot, flags, fd, pgoff) => mmap(p, addr, len, prot, flags, fd, (pgoff >>> 0) * 4096));
def(90, 'mmap', 'x', (p, args) => {
  // old_mmap: one pointer to struct mmap_arg_struct { addr, len, prot, flags, fd, offset } (arch/x86/kernel/sys_ia32.c).
  const a = (i: number) => p.as.i32(args + i * 4);
  return mmap(p, a(0), a(1), a(2), a(3), a(4), a(5) >>> 0);
});
def(91, 'munmap', 'xx', (p, addr, len) => {
  addr >>>= 0; len >>>= 0;
  if ((addr & 0xfff) || len === 0) return -E.EINVAL;
  p.as.unmap(addr, addr + pageUp(len));
  return 0;
});
def(125, 'mprotect', 'xxx', (_p, addr) => ((addr & 0xfff) ? -E.EINVAL : 0)); // no page permissions without paging
def(219, 'madvise', 'xxd', (p, addr, len, advice) => {
  if (advice === 4) p.as.zero(addr >>> 0, (addr >>> 0) + pageUp(len >>> 0)); // MADV_DONTNEED: anonymous pages read as zero again
  return 0;
});
def(163, 'mremap', 'xxxxx', (p, old, oldLen, newLen, flags, newAddr) => {
  old >>>= 0; oldLen = pageUp(oldLen >>> 0); newLen = pageUp(newLen >>> 0);
  const MREMAP_MAYMOVE = 1, MREMAP_FIXED = 2;
  if ((old & 0xfff) || newLen === 0) return -E.EINVAL;
  if (flags & MREMAP_FIXED) {
    newAddr >>>= 0;
    if (!(flags & MREMAP_MAYMOVE) || (newAddr & 0xfff) || !p.as.fixedAllowed(newAddr, newAddr + newLen)) return -E.EINVAL;
    p.as.map(newAddr, newAddr + newLen);
    p.as.copy(newAddr, old, Math.min(oldLen, newLen));
    p.as.unmap(old, old + oldLen);
    return newAddr | 0;
  }
  if (newLen <= oldLen) { p.as.unmap(old + newLen, old + oldLen); return old | 0; }
  if (p.as.isFree(old + oldLen, old + newLen)) {
    p.as.map(old + oldLen, old + newLen); // grows in place; map() keeps the old part and zeroes the new
    p.as.unmap(old, old + newLen);
    p.as.map(old, old + newLen);
    return old | 0;
  }
  if (!(flags & MREMAP_MAYMOVE)) return -E.ENOMEM;
  const start = p.as.findFree(newLen);
  if (start < 0) return -E.ENOMEM;
  p.as.map(start, start + newLen);
  p.as.copy(start, old, oldLen);
  p.as.unmap(old, old + oldLen);
  return start | 0;
});

def(243, 'set_thread_area', 'x', (p, uinfo) => {
  // struct user_desc (arch/x86/include/uapi/asm/ldt.h); descriptor built as fill_ldt() in arch/x86/include/asm/desc.h.
  let entry = p.as.i32(uinfo);
  const base = p.as.u32(uinfo + 4);
  const limit = p.as.u32(uinfo + 8);
  const fl = p.as.u32(uinfo + 12);
  const seg32 = fl & 1, contents = (fl >> 1) & 3, readExecOnly = (fl >> 3) & 1, limitInPages = (fl >> 4) & 1;
  const notPresent = (fl >> 5) & 1, useable = (fl >> 6) & 1;
  if (entry === -1) {
    entry = -1;
    for (let i = GDT_ENTRY_TLS_MIN; i < GDT_ENTRY_TLS_MIN + GDT_ENTRY_TLS_ENTRIES; i++) {
      if (p.readDescriptorHigh(i) === 0 && p.as.mem.read32(p.as.gdtBase + i * 8) === 0) { entry = i; break; }
    }
    if (entry < 0) return -E.ESRCH;
    p.as.setU32(uinfo, entry);
  }
  if (entry < GDT_ENTRY_TLS_MIN || entry >= GDT_ENTRY_TLS_MIN + GDT_ENTRY_TLS_ENTRIES) return -E.EINVAL;
  // LDT_empty(): this combination clears the slot.
  const empty = base === 0 && limit === 0 && contents === 0 && readExecOnly === 1 && seg32 === 0 && limitInPages === 0 && notPresent === 1 && useable === 0;
  let lo = 0, hi = 0;
  if (!empty) {
    lo = ((base & 0xffff) << 16) | (limit & 0xffff);
    const type = ((readExecOnly ^ 1) << 1) | (contents << 2) | 1; // accessed bit set
    hi = ((base >>> 16) & 0xff) | (type << 8) | (1 << 12) /* S */ | (3 << 13) /* DPL 3 */ | ((notPresent ^ 1) << 15)
      | (limit & 0xf0000) | (useable << 20) | (seg32 << 22) | (limitInPages << 23) | (base & 0xff000000);
  }
  p.writeDescriptor(entry, lo, hi);
  p.reloadSegmentsUsing(entry);
  return 0;
});
def(244, 'get_thread_area', 'x', (p, uinfo) => {
  const entry = p.as.i32(uinfo);
  if (entry < GDT_ENTRY_TLS_MIN || entry >= GDT_ENTRY_TLS_MIN + GDT_ENTRY_TLS_ENTRIES) return -E.EINVAL;
  const lo = p.as.mem.read32(p.as.gdtBase + entry * 8) >>> 0, hi = p.readDescriptorHigh(entry) >>> 0;
  p.as.setU32(uinfo + 4, ((lo >>> 16) | ((hi & 0xff) << 16) | (hi & 0xff000000)) >>> 0);
  p.as.setU32(uinfo + 8, (lo & 0xffff) | (hi & 0xf0000));
  const type = (hi >> 8) & 0xf;
  p.as.setU32(uinfo + 12, ((hi >> 22) & 1) | (((type >> 2) & 3) << 1) | ((((type >> 1) & 1) ^ 1) << 3) | (((hi >> 23) & 1) << 4)
    | ((((hi >> 15) & 1) ^ 1) << 5) | (((hi >> 20) & 1) << 6));
  return 0;
});

// ---------------------------------------------------------------------------------------------------------
// Files

function openAt(p: UserProcess, dirfd: number, ptr: number, flags: number, mode: number): number {
  const path = pathAt(p, dirfd, ptr);
  return p.fds.open(path, flags, mode & ~p.umask & 0o7777);
}
def(5, 'open', 'sxo', (p, path, flags, mode) => openAt(p, AT_FDCWD, path, flags, mode));
def(295, 'openat', 'dsxo', (p, dirfd, path, flags, mode) => openAt(p, dirfd, path, flags, mode));
def(8, 'creat', 'so', (p, path, mode) => openAt(p, AT_FDCWD, path, 0o1101 /* O_WRONLY|O_CREAT|O_TRUNC */, mode));
def(6, 'close', 'd', (p, fd) => p.fds.close(fd));
def(436, 'close_range', 'ddx', (p, first, last) => {
  for (let fd = first >>> 0; fd <= Math.min(last >>> 0, 65535); fd++) if (p.fds.get(fd)) p.fds.close(fd);
  return 0;
});

def(3, 'read', 'dxd', (p, fd, buf, count) => {
  const file = fileOf(p, fd);
  if (file.isDir) return -E.EISDIR;
  p.as.check(buf, count >>> 0);
  const data = hostRead(file, count >>> 0);
  p.as.write(buf, data);
  return data.length;
});
def(4, 'write', 'dxd', (p, fd, buf, count) => {
  const file = fileOf(p, fd);
  return hostWrite(file, p.as.read(buf, Math.min(count >>> 0, MAX_IO)));
});
def(180, 'pread64', 'dxdxx', (p, fd, buf, count, lo, hi) => {
  const file = fileOf(p, fd);
  if (file.pos < 0 && !file.isDir) return -E.ESPIPE;
  const data = hostRead(file, count >>> 0, u64(lo, hi));
  p.as.write(buf, data);
  return data.length;
});
def(181, 'pwrite64', 'dxdxx', (p, fd, buf, count, lo, hi) => {
  const file = fileOf(p, fd);
  if (file.pos < 0) return -E.ESPIPE;
  return hostWrite(file, p.as.read(buf, Math.min(count >>> 0, MAX_IO)), u64(lo, hi));
});

function iovecs(p: UserProcess, iov: number, cnt: number): [number, number][] {
  if (cnt < 0 || cnt > 1024) throw Object.assign(new Error('EINVAL'), { code: 'EINVAL' });
  const out: [number, number][] = [];
  for (let i = 0; i < cnt; i++) out.push([p.as.u32(iov + i * 8), p.as.u32(iov + i * 8 + 4)]);
  return out;
}
def(146, 'writev', 'dxd', (p, fd, iov, cnt) => {
  const file = fileOf(p, fd);
  // One host write for the whole vector keeps writev's atomicity for pipes and O_APPEND files.
  const parts = iovecs(p, iov, cnt).map(([base, len]) => p.as.read(base, len));
  const data = Buffer.concat(parts);
  return data.length ? hostWrite(file, data) : 0;
});
def(145, 'readv', 'dxd', (p, fd, iov, cnt) => {
  const file = fileOf(p, fd);
  const vec = iovecs(p, iov, cnt);
  const total = vec.reduce((s, [, l]) => s + l, 0);
  for (const [base, len] of vec) p.as.check(base, len);
  const data = hostRead(file, total);
  let o = 0;
  for (const [base, len] of vec) {
    if (o >= data.length) break;
    const n = Math.min(len, data.length - o);
    p.as.write(base, data.subarray(o, o + n));
    o += n;
  }
  return data.length;
});

def(19, 'lseek', 'ddd', (p, fd, off, whence) => {
  const r = seek(fileOf(p, fd), off, whence);
  return r > 0x7fffffff ? -E.EOVERFLOW : r;
});
def(140, '_llseek', 'dxxxd', (p, fd, hi, lo, result, whence) => {
  const off = Number((BigInt(hi) << 32n) | BigInt(lo >>> 0));
  const r = seek(fileOf(p, fd), off, whence);
  if (r < 0) return r;
  p.as.setU64(result, r);
  return 0;
});

def(41, 'dup', 'd', (p, fd) => (p.fds.get(fd) ? p.fds.dup(fd, p.fds.lowestFree(), false) : -E.EBADF));
def(63, 'dup2', 'dd', (p, fd, to) => {
  if (!p.fds.get(fd)) return -E.EBADF;
  if (to < 0 || to >= 65536) return -E.EBADF;
  return p.fds.dup(fd, to, false);
});
def(330, 'dup3', 'ddx', (p, fd, to, flags) => {
  if (fd === to || (flags & ~0o2000000)) return -E.EINVAL;
  if (!p.fds.get(fd)) return -E.EBADF;
  if (to < 0 || to >= 65536) return -E.EBADF;
  return p.fds.dup(fd, to, (flags & 0o2000000) !== 0);
});

function fcntl(p: UserProcess, fd: number, cmd: number, arg: number): number {
  const file = fileOf(p, fd);
  switch (cmd) {
    case 0: case 1030: // F_DUPFD, F_DUPFD_CLOEXEC
      if (arg < 0 || arg >= 65536) return -E.EINVAL;
      return p.fds.dup(fd, p.fds.lowestFree(arg), cmd === 1030);
    case 1: return p.fds.getCloexec(fd) ? 1 : 0; // F_GETFD
    case 2: p.fds.setCloexec(fd, (arg & 1) !== 0); return 0; // F_SETFD
    case 3: return file.flags | O_LARGEFILE; // F_GETFL (the i386 kernel forces O_LARGEFILE for large-file opens)
    case 4: { // F_SETFL: only O_APPEND, O_NONBLOCK (and O_ASYNC, O_DIRECT, O_NOATIME) may change
      const changeable = O_APPEND | O_NONBLOCK;
      file.flags = (file.flags & ~changeable) | (arg & changeable);
      return 0;
    }
    case 5: case 12: // F_GETLK, F_GETLK64: no other process holds locks we could see; report F_UNLCK
      p.as.write(arg, Uint8Array.of(2, 0));
      return 0;
    case 6: case 7: case 13: case 14: return 0; // F_SETLK(W)(64): a single process always gets its lock
    case 1025: case 1026: return 0; // F_SETLEASE/F_GETLEASE
    case 1031: return 4096 * 16; // F_GETPIPE_SZ
    default: return -E.EINVAL;
  }
}
def(55, 'fcntl', 'ddx', (p, fd, cmd, arg) => fcntl(p, fd, cmd, arg));
def(221, 'fcntl64', 'ddx', (p, fd, cmd, arg) => fcntl(p, fd, cmd, arg));

def(54, 'ioctl', 'dxx', (p, fd, req, arg) => {
  const file = fileOf(p, fd);
  const tty = !file.isDir && isatty(file.host);
  req >>>= 0;
  switch (req) {
    case 0x5401: { // TCGETS: struct termios (asm-generic/termbits.h): 4 flag words, c_line, 19 control chars
      if (!tty) return -E.ENOTTY;
      const b = Buffer.alloc(36);
      b.writeUInt32LE(0o2400, 0); // ICRNL | IXON
      b.writeUInt32LE(0o5, 4); // OPOST | ONLCR
      b.writeUInt32LE(0o277, 8); // B38400 | CS8 | CREAD
      b.writeUInt32LE(0o105073, 12); // ISIG ICANON ECHO ECHOE ECHOK ECHOCTL ECHOKE IEXTEN
      Buffer.from([3, 0x1c, 0x7f, 0x15, 4, 0, 1, 0, 0x11, 0x13, 0x1a, 0, 0x12, 0x0f, 0x17, 0x16, 0, 0, 0]).copy(b, 17);
      p.as.write(arg, b);
      return 0;
    }
    case 0x5402: case 0x5403: case 0x5404: return tty ? 0 : -E.ENOTTY; // TCSETS*: accepted, no line discipline here
    case 0x5413: { // TIOCGWINSZ: struct winsize { rows, cols, xpixel, ypixel }
      if (!tty) return -E.ENOTTY;
      const out = file.host === 1 || file.host === 2 ? process.stdout : undefined;
      const b = Buffer.alloc(8);
      b.writeUInt16LE(out?.rows ?? 24, 0); b.writeUInt16LE(out?.columns ?? 80, 2);
      p.as.write(arg, b);
      return 0;
    }
    case 0x5414: return tty ? 0 : -E.ENOTTY; // TIOCSWINSZ
    case 0x540f: if (!tty) return -E.ENOTTY; p.as.setU32(arg, p.pid); return 0; // TIOCGPGRP
    case 0x5410: return tty ? 0 : -E.ENOTTY; // TIOCSPGRP
    case 0x5421: file.flags = p.as.u32(arg) ? file.flags | O_NONBLOCK : file.flags & ~O_NONBLOCK; return 0; // FIONBIO
    case 0x5451: p.fds.setCloexec(fd, true); return 0; // FIOCLEX
    case 0x5450: p.fds.setCloexec(fd, false); return 0; // FIONCLEX
    default: return -E.ENOTTY;
  }
});

def(195, 'stat64', 'sx', (p, path, buf) => { writeStat64(p, buf, statAt(p, AT_FDCWD, path, 0)); return 0; });
def(196, 'lstat64', 'sx', (p, path, buf) => { writeStat64(p, buf, statAt(p, AT_FDCWD, path, AT_SYMLINK_NOFOLLOW)); return 0; });
def(197, 'fstat64', 'dx', (p, fd, buf) => { writeStat64(p, buf, fs.fstatSync(fileOf(p, fd).host, { bigint: true })); return 0; });
def(300, 'fstatat64', 'dsxx', (p, dirfd, path, buf, flags) => { writeStat64(p, buf, statAt(p, dirfd, path, flags)); return 0; });
def(383, 'statx', 'dsxxx', (p, dirfd, path, flags, _mask, buf) => { writeStatx(p, buf, statAt(p, dirfd, path, flags)); return 0; });

def(220, 'getdents64', 'dxd', (p, fd, dirp, count) => {
  const file = fileOf(p, fd);
  if (!file.isDir) return -E.ENOTDIR;
  file.dirents ??= FdTable.readDir(file.path);
  // struct linux_dirent64 { u64 d_ino; s64 d_off; u16 d_reclen; u8 d_type; char d_name[]; }, 8-byte aligned records.
  const chunks: Buffer[] = [];
  let used = 0;
  while (file.dirPos < file.dirents.length) {
    const d = file.dirents[file.dirPos];
    const reclen = (19 + d.name.length + 1 + 7) & ~7;
    if (used + reclen > (count >>> 0)) {
      if (used === 0) return -E.EINVAL;
      break;
    }
    const b = Buffer.alloc(reclen);
    b.writeBigUInt64LE(d.ino, 0);
    b.writeBigInt64LE(BigInt(file.dirPos + 1), 8);
    b.writeUInt16LE(reclen, 16);
    b.writeUInt8(d.type, 18);
    d.name.copy(b, 19);
    chunks.push(b);
    used += reclen;
    file.dirPos++;
  }
  if (used) p.as.write(dirp, Buffer.concat(chunks));
  return used;
});

def(33, 'access', 'so', (p, path, mode) => { fs.accessSync(pathAt(p, AT_FDCWD, path), mode & 7); return 0; });
def(307, 'faccessat', 'dso', (p, dirfd, path, mode) => { fs.accessSync(pathAt(p, dirfd, path), mode & 7); return 0; });
def(439, 'faccessat2', 'dsox', (p, dirfd, path, mode) => { fs.accessSync(pathAt(p, dirfd, path), mode & 7); return 0; });

function readlinkAt(p: UserProcess, dirfd: number, path: number, buf: number, size: number): number {
  if (size <= 0) return -E.EINVAL;
  const name = p.as.cstring(path);
  const target = name === '/proc/self/exe' ? Buffer.from(p.exePath) : fs.readlinkSync(hostPath(p, dirfd, name), { encoding: 'buffer' });
  const n = Math.min(target.length, size);
  p.as.write(buf, target.subarray(0, n));
  return n;
}
def(85, 'readlink', 'sxd', (p, path, buf, size) => readlinkAt(p, AT_FDCWD, path, buf, size));
def(305, 'readlinkat', 'dsxd', (p, dirfd, path, buf, size) => readlinkAt(p, dirfd, path, buf, size));

def(183, 'getcwd', 'xd', (p, buf, size) => {
  const b = Buffer.from(p.cwd + '\0');
  if ((size >>> 0) < b.length) return -E.ERANGE;
  p.as.write(buf, b);
  return b.length;
});
def(12, 'chdir', 's', (p, path) => {
  const hp = pathAt(p, AT_FDCWD, path);
  if (!fs.statSync(hp).isDirectory()) return -E.ENOTDIR;
  p.cwd = hp;
  return 0;
});
def(133, 'fchdir', 'd', (p, fd) => {
  const file = fileOf(p, fd);
  if (!file.isDir) return -E.ENOTDIR;
  p.cwd = file.path;
  return 0;
});

def(39, 'mkdir', 'so', (p, path, mode) => { fs.mkdirSync(pathAt(p, AT_FDCWD, path), mode & ~p.umask & 0o7777); return 0; });
def(296, 'mkdirat', 'dso', (p, dirfd, path, mode) => { fs.mkdirSync(pathAt(p, dirfd, path), mode & ~p.umask & 0o7777); return 0; });
def(40, 'rmdir', 's', (p, path) => { fs.rmdirSync(pathAt(p, AT_FDCWD, path)); return 0; });
def(10, 'unlink', 's', (p, path) => { fs.unlinkSync(pathAt(p, AT_FDCWD, path)); return 0; });
def(301, 'unlinkat', 'dsx', (p, dirfd, path, flags) => {
  const hp = pathAt(p, dirfd, path);
  if (flags & AT_REMOVEDIR) fs.rmdirSync(hp); else fs.unlinkSync(hp);
  return 0;
});
def(38, 'rename', 'ss', (p, from, to) => { fs.renameSync(pathAt(p, AT_FDCWD, from), pathAt(p, AT_FDCWD, to)); return 0; });
def(302, 'renameat', 'dsds', (p, fd1, from, fd2, to) => { fs.renameSync(pathAt(p, fd1, from), pathAt(p, fd2, to)); return 0; });
def(353, 'renameat2', 'dsdsx', (p, fd1, from, fd2, to, flags) => {
  if (flags) return -E.EINVAL; // RENAME_NOREPLACE/EXCHANGE/WHITEOUT have no host API here
  fs.renameSync(pathAt(p, fd1, from), pathAt(p, fd2, to));
  return 0;
});
def(9, 'link', 'ss', (p, from, to) => { fs.linkSync(pathAt(p, AT_FDCWD, from), pathAt(p, AT_FDCWD, to)); return 0; });
def(83, 'symlink', 'ss', (p, target, path) => { fs.symlinkSync(p.as.cstring(target), pathAt(p, AT_FDCWD, path)); return 0; });
def(304, 'symlinkat', 'sds', (p, target, dirfd, path) => { fs.symlinkSync(p.as.cstring(target), pathAt(p, dirfd, path)); return 0; });
def(15, 'chmod', 'so', (p, path, mode) => { fs.chmodSync(pathAt(p, AT_FDCWD, path), mode & 0o7777); return 0; });
def(306, 'fchmodat', 'dso', (p, dirfd, path, mode) => { fs.chmodSync(pathAt(p, dirfd, path), mode & 0o7777); return 0; });
def(94, 'fchmod', 'do', (p, fd, mode) => { fs.fchmodSync(fileOf(p, fd).host, mode & 0o7777); return 0; });
def(207, 'fchown32', 'ddd', (p, fd, uid, gid) => { fs.fchownSync(fileOf(p, fd).host, uid, gid); return 0; });
def(212, 'chown32', 'sdd', (p, path, uid, gid) => { fs.chownSync(pathAt(p, AT_FDCWD, path), uid, gid); return 0; });
def(118, 'fsync', 'd', (p, fd) => { fs.fsyncSync(fileOf(p, fd).host); return 0; });
def(148, 'fdatasync', 'd', (p, fd) => { fs.fdatasyncSync(fileOf(p, fd).host); return 0; });
def(36, 'sync', '', () => 0);
def(194, 'ftruncate64', 'dxx', (p, fd, lo, hi) => { fs.ftruncateSync(fileOf(p, fd).host, u64(lo, hi)); return 0; });
def(193, 'truncate64', 'sxx', (p, path, lo, hi) => { fs.truncateSync(pathAt(p, AT_FDCWD, path), u64(lo, hi)); return 0; });
def(272, 'fadvise64_64', 'd', () => 0);
def(250, 'fadvise64', 'd', () => 0);

/** utimensat(2): times[2] of {sec, nsec} (32- or 64-bit fields); UTIME_NOW / UTIME_OMIT in nsec. */
function utimens(p: UserProcess, dirfd: number, path: number, times: number, flags: number, wide: boolean): number {
  const UTIME_NOW = (1 << 30) - 1, UTIME_OMIT = (1 << 30) - 2;
  const st = path ? statAt(p, dirfd, path, flags) : fs.fstatSync(fileOf(p, dirfd).host, { bigint: true });
  const now = Date.now() / 1000;
  const pick = (i: number, old: bigint): number => {
    if (!times) return now;
    const sec = wide ? Number(BigInt(p.as.u32(times + i * 16)) | (BigInt(p.as.i32(times + i * 16 + 4)) << 32n)) : p.as.i32(times + i * 8);
    const nsec = p.as.u32(times + i * (wide ? 16 : 8) + (wide ? 8 : 4));
    if (nsec === UTIME_NOW) return now;
    if (nsec === UTIME_OMIT) return Number(old) / 1e9;
    return sec + nsec / 1e9;
  };
  const at = pick(0, st.atimeNs), mt = pick(1, st.mtimeNs);
  if (!path) fs.futimesSync(fileOf(p, dirfd).host, at, mt);
  else if (flags & AT_SYMLINK_NOFOLLOW) fs.lutimesSync(pathAt(p, dirfd, path), at, mt);
  else fs.utimesSync(pathAt(p, dirfd, path), at, mt);
  return 0;
}
def(320, 'utimensat', 'dsxx', (p, dirfd, path, times, flags) => utimens(p, dirfd, path, times, flags, false));
def(412, 'utimensat_time64', 'dsxx', (p, dirfd, path, times, flags) => utimens(p, dirfd, path, times, flags, true));

def(239, 'sendfile64', 'ddxd', (p, outFd, inFd, offPtr, count) => {
  const out = fileOf(p, outFd), inp = fileOf(p, inFd);
  const at = offPtr ? Number(BigInt(p.as.u32(offPtr)) | (BigInt(p.as.u32(offPtr + 4)) << 32n)) : null;
  const data = hostRead(inp, Math.min(count >>> 0, MAX_IO), at);
  const n = data.length ? hostWrite(out, data) : 0;
  if (offPtr && at !== null) p.as.setU64(offPtr, at + n);
  return n;
});
def(187, 'sendfile', 'ddxd', (p, outFd, inFd, offPtr, count) => {
  const out = fileOf(p, outFd), inp = fileOf(p, inFd);
  const at = offPtr ? p.as.u32(offPtr) : null;
  const data = hostRead(inp, Math.min(count >>> 0, MAX_IO), at);
  const n = data.length ? hostWrite(out, data) : 0;
  if (offPtr && at !== null) p.as.setU32(offPtr, at + n);
  return n;
});

// poll(2): regular files, pipes and terminals are reported ready for what was asked; a blocking read then waits.
def(168, 'poll', 'xdd', (p, fds, nfds) => {
  let ready = 0;
  for (let i = 0; i < (nfds >>> 0); i++) {
    const fd = p.as.i32(fds + i * 8);
    const events = p.as.u16(fds + i * 8 + 4);
    let rev = 0;
    if (fd >= 0) rev = p.fds.get(fd) ? events & (1 | 4) /* POLLIN | POLLOUT */ : 0x20 /* POLLNVAL */;
    p.as.write(fds + i * 8 + 6, Uint8Array.of(rev & 0xff, rev >> 8));
    if (rev) ready++;
  }
  return ready;
});
