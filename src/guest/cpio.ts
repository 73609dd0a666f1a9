// A writer for the "newc" cpio format (magic 070701), the only one the Linux kernel unpacks as an initramfs.
//
// Each entry is a 110-byte ASCII header (the magic, then 13 fields of 8 hex digits), the NUL-terminated path name
// padded so that header+name is a multiple of 4 bytes, then the file's data padded to a multiple of 4 bytes.
// The archive ends with an entry named "TRAILER!!!". Symlinks carry their target as data; device nodes carry
// their major/minor in the rdev fields and no data.
import { gzipSync } from 'node:zlib';

// File-type bits of st_mode, as the kernel's initramfs unpacker tests them.
export const S_IFDIR = 0o040000;
export const S_IFREG = 0o100000;
export const S_IFLNK = 0o120000;
export const S_IFCHR = 0o020000;
export const S_IFBLK = 0o060000;

export type CpioEntry =
  | { type: 'dir'; path: string; mode?: number }
  | { type: 'file'; path: string; data: Uint8Array; mode?: number }
  | { type: 'symlink'; path: string; target: string }
  | { type: 'char' | 'block'; path: string; major: number; minor: number; mode?: number };

export interface CpioOptions {
  /** Modification time stamped on every entry (seconds). A fixed value keeps the archive reproducible. */
  mtime?: number;
  uid?: number;
  gid?: number;
}

const TRAILER = 'TRAILER!!!';

function hex8(n: number): string {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new RangeError(`cpio field out of range: ${n}`);
  return n.toString(16).padStart(8, '0');
}

const pad4 = (n: number): number => (4 - (n & 3)) & 3;

/** Strips leading "/" and "./": the kernel and cpio(1) both expect names relative to the archive's root. */
function normalize(path: string): string {
  let p = path.replace(/\/+/g, '/');
  while (p.startsWith('/') || p.startsWith('./')) p = p.startsWith('/') ? p.slice(1) : p.slice(2);
  if (p.endsWith('/')) p = p.slice(0, -1);
  if (p === '' || p.split('/').some((c) => c === '..')) throw new Error(`bad cpio path: ${JSON.stringify(path)}`);
  return p;
}

/** Builds an uncompressed newc archive in memory. Entries are written in the order given, so a directory must
 *  come before what it contains (the kernel's unpacker does not create missing parents). */
export function buildCpio(entries: CpioEntry[], opts: CpioOptions = {}): Buffer {
  const mtime = opts.mtime ?? 0;
  const uid = opts.uid ?? 0;
  const gid = opts.gid ?? 0;
  const chunks: Buffer[] = [];
  let offset = 0;
  const push = (b: Buffer): void => {
    chunks.push(b);
    offset += b.length;
  };
  const seen = new Set<string>();

  const writeEntry = (
    name: string, mode: number, nlink: number, data: Uint8Array, rdevMajor: number, rdevMinor: number, ino: number,
  ): void => {
    const nameBytes = Buffer.from(name + '\0', 'utf8');
    const header =
      '070701' +
      hex8(ino) + hex8(mode) + hex8(uid) + hex8(gid) + hex8(nlink) + hex8(mtime) + hex8(data.length) +
      hex8(0) + hex8(0) + // devmajor/devminor of the filesystem the file came from: meaningless here
      hex8(rdevMajor) + hex8(rdevMinor) + hex8(nameBytes.length) +
      hex8(0); // checksum: only the 070702 variant uses it
    push(Buffer.from(header, 'ascii'));
    push(nameBytes);
    push(Buffer.alloc(pad4(offset)));
    if (data.length) {
      push(Buffer.from(data.buffer, data.byteOffset, data.length));
      push(Buffer.alloc(pad4(offset)));
    }
  };

  let ino = 1;
  for (const e of entries) {
    const name = normalize(e.path);
    if (seen.has(name)) throw new Error(`duplicate cpio entry: ${name}`);
    seen.add(name);
    const perm = (m: number | undefined, dflt: number): number => (m ?? dflt) & 0o7777;
    switch (e.type) {
      case 'dir':
        writeEntry(name, S_IFDIR | perm(e.mode, 0o755), 2, new Uint8Array(0), 0, 0, ino++);
        break;
      case 'file':
        writeEntry(name, S_IFREG | perm(e.mode, 0o644), 1, e.data, 0, 0, ino++);
        break;
      case 'symlink':
        // Symlinks are always 0777 on Linux; their permission bits are never consulted.
        writeEntry(name, S_IFLNK | 0o777, 1, Buffer.from(e.target, 'utf8'), 0, 0, ino++);
        break;
      case 'char':
      case 'block':
        writeEntry(name, (e.type === 'char' ? S_IFCHR : S_IFBLK) | perm(e.mode, 0o600), 1, new Uint8Array(0), e.major, e.minor, ino++);
        break;
    }
  }
  // The trailer has nlink 1 and everything else zero, as GNU cpio writes it.
  writeEntry(TRAILER, 0, 1, new Uint8Array(0), 0, 0, 0);
  return Buffer.concat(chunks, offset);
}

/** The archive gzip'd, the form the kernel's CONFIG_RD_GZIP unpacks and boot loaders pass as initrd. */
export function buildCpioGz(entries: CpioEntry[], opts: CpioOptions = {}): Buffer {
  // mtime 0 in the gzip header too, so equal inputs give byte-identical images.
  return gzipSync(buildCpio(entries, opts), { level: 9 });
}

export interface CpioListing {
  name: string;
  mode: number;
  uid: number;
  gid: number;
  nlink: number;
  mtime: number;
  rdevMajor: number;
  rdevMinor: number;
  data: Buffer;
}

/** Reads a newc archive back: used to check images and to look inside a built initrd without host tools. */
export function parseCpio(buf: Buffer): CpioListing[] {
  const out: CpioListing[] = [];
  let off = 0;
  for (;;) {
    if (off + 110 > buf.length) throw new Error('cpio: truncated header');
    const magic = buf.toString('ascii', off, off + 6);
    if (magic !== '070701' && magic !== '070702') throw new Error(`cpio: bad magic ${JSON.stringify(magic)} at ${off}`);
    const f = (i: number): number => parseInt(buf.toString('ascii', off + 6 + i * 8, off + 14 + i * 8), 16);
    const size = f(6);
    const namesize = f(11);
    const nameStart = off + 110;
    const name = buf.toString('utf8', nameStart, nameStart + namesize - 1);
    let p = nameStart + namesize;
    p += pad4(p);
    const data = buf.subarray(p, p + size);
    if (data.length !== size) throw new Error('cpio: truncated data');
    p += size;
    p += pad4(p);
    if (name === TRAILER) return out;
    out.push({ name, mode: f(1), uid: f(2), gid: f(3), nlink: f(4), mtime: f(5), rdevMajor: f(9), rdevMinor: f(10), data });
    off = p;
  }
}
