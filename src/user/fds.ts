// Guest file descriptors, each mapped onto a host file descriptor.
//
// An OpenFile is Linux's "open file description" (open(2): shared by dup'ed descriptors, holds the offset);
// the table maps guest fd numbers to descriptions plus the per-descriptor FD_CLOEXEC flag. Node's fs has no
// lseek, so for files the guest opened we keep the offset here and use pread/pwrite; descriptors inherited
// from the host (stdio) keep using the host kernel's offset, since the host shell may share it.

import * as fs from 'node:fs';
import { constants as osConstants } from 'node:os';

export interface DirEntry { name: Buffer; ino: bigint; type: number }

export class OpenFile {
  refs = 1;
  /** Our offset for seekable files we opened; -1 = use the host's offset (inherited stdio, pipes, ttys). */
  pos = -1;
  dirents?: DirEntry[];
  dirPos = 0;
  constructor(
    readonly host: number,
    readonly path: string,
    /** O_ACCMODE | O_APPEND | O_NONBLOCK …, as given to open(2) (F_GETFL reports them). */
    public flags: number,
    readonly isDir: boolean,
    readonly ownsHost: boolean,
  ) {}

  get append(): boolean { return (this.flags & O_APPEND) !== 0; }
}

// open(2) flag values of the i386 ABI (asm-generic/fcntl.h), identical to the x86-64 host's except O_LARGEFILE.
export const O_ACCMODE = 3, O_WRONLY = 1, O_RDWR = 2, O_CREAT = 0o100, O_EXCL = 0o200, O_NOCTTY = 0o400, O_TRUNC = 0o1000,
  O_APPEND = 0o2000, O_NONBLOCK = 0o4000, O_LARGEFILE = 0o100000, O_DIRECTORY = 0o200000, O_NOFOLLOW = 0o400000,
  O_CLOEXEC = 0o2000000, O_PATH = 0o10000000;

const HOST_PASSTHROUGH = O_ACCMODE | O_CREAT | O_EXCL | O_NOCTTY | O_TRUNC | O_APPEND | O_DIRECTORY | O_NOFOLLOW;

export const errno = osConstants.errno as Record<string, number>;

/** -errno for a host error (the x86-64 host's errno numbers equal the i386 ones: asm-generic/errno*.h). */
export function hostErrno(e: unknown): number {
  const code = (e as { code?: string }).code;
  const n = code !== undefined ? errno[code] : undefined;
  if (n === undefined) throw e;
  return -n;
}

// d_type values (dirent.h).
const DT_UNKNOWN = 0, DT_FIFO = 1, DT_CHR = 2, DT_DIR = 4, DT_BLK = 6, DT_REG = 8, DT_LNK = 10, DT_SOCK = 12;

function direntType(d: fs.Dirent | fs.BigIntStats): number {
  if (d.isFile()) return DT_REG;
  if (d.isDirectory()) return DT_DIR;
  if (d.isSymbolicLink()) return DT_LNK;
  if (d.isFIFO()) return DT_FIFO;
  if (d.isCharacterDevice()) return DT_CHR;
  if (d.isBlockDevice()) return DT_BLK;
  if (d.isSocket()) return DT_SOCK;
  return DT_UNKNOWN;
}

export class FdTable {
  private readonly fds = new Map<number, { file: OpenFile; cloexec: boolean }>();

  constructor(stdio: [number, number, number]) {
    stdio.forEach((host, i) => {
      const flags = i === 0 ? 0 : O_WRONLY;
      this.fds.set(i, { file: new OpenFile(host, `/proc/self/fd/${host}`, flags, false, false), cloexec: false });
    });
  }

  get(fd: number): OpenFile | undefined { return this.fds.get(fd)?.file; }

  lowestFree(from = 0): number {
    let fd = from;
    while (this.fds.has(fd)) fd++;
    return fd;
  }

  install(file: OpenFile, cloexec: boolean, at = this.lowestFree()): number {
    if (this.fds.has(at)) this.close(at);
    this.fds.set(at, { file, cloexec });
    return at;
  }

  close(fd: number): number {
    const e = this.fds.get(fd);
    if (!e) return -errno.EBADF;
    this.fds.delete(fd);
    if (--e.file.refs === 0 && e.file.ownsHost) {
      try { fs.closeSync(e.file.host); } catch (err) { return hostErrno(err); }
    }
    return 0;
  }

  dup(fd: number, at: number, cloexec: boolean): number {
    const e = this.fds.get(fd);
    if (!e) return -errno.EBADF;
    if (at === fd) return fd;
    e.file.refs++;
    return this.install(e.file, cloexec, at);
  }

  getCloexec(fd: number): boolean { return this.fds.get(fd)?.cloexec ?? false; }
  setCloexec(fd: number, v: boolean): void { const e = this.fds.get(fd); if (e) e.cloexec = v; }

  /** Opens a host path for the guest; returns the new guest fd or -errno. */
  open(path: string, flags: number, mode: number): number {
    let host: number;
    try {
      host = fs.openSync(path, flags & HOST_PASSTHROUGH, mode);
    } catch (e) {
      return hostErrno(e);
    }
    let st: fs.Stats;
    try { st = fs.fstatSync(host); } catch (e) { fs.closeSync(host); return hostErrno(e); }
    const file = new OpenFile(host, path, flags & ~(O_CLOEXEC | O_LARGEFILE | O_CREAT | O_EXCL | O_TRUNC | O_NOCTTY), st.isDirectory(), true);
    if (st.isFile() || st.isBlockDevice()) file.pos = 0;
    return this.install(file, (flags & O_CLOEXEC) !== 0);
  }

  /** Snapshot of a directory for getdents64, with "." and ".." first as the kernel reports them. */
  static readDir(path: string): DirEntry[] {
    const out: DirEntry[] = [];
    for (const name of ['.', '..']) {
      try {
        const st = fs.statSync(`${path}/${name}`, { bigint: true });
        out.push({ name: Buffer.from(name), ino: st.ino, type: DT_DIR });
      } catch { /* unreadable parent: skip */ }
    }
    for (const d of fs.readdirSync(path, { withFileTypes: true, encoding: 'buffer' })) {
      let ino = 0n;
      try { ino = fs.lstatSync(Buffer.concat([Buffer.from(path + '/'), d.name]), { bigint: true }).ino; } catch { /* raced away */ }
      out.push({ name: d.name, ino, type: direntType(d as unknown as fs.Dirent) });
    }
    return out;
  }
}
