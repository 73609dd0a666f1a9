// qcow2 images, versions 2 and 3, after QEMU's format description docs/interop/qcow2.txt ("the spec"
// below). A two-level table maps guest clusters to host clusters: the L1 table points to L2 tables, whose
// entries point to data clusters; a refcount table points to refcount blocks that count the references
// to every host cluster. A cluster the L2 tables do not map reads from the backing file, if any.
//
// Crash safety. The spec gives no journal; consistency comes from ordering. Every update below is a
// positioned write issued only after the writes it depends on:
//   1. a new cluster's contents (data, a zeroed L2 table, a refcount block) are written first,
//   2. then its refcount is raised,
//   3. then the single 8-byte entry (L2, L1 or refcount table) that makes it reachable is written,
//   4. a cluster that lost its last reference has its refcount lowered only after step 3.
// Dying between any two writes therefore leaves at worst a cluster whose refcount is higher than its
// references — a leak, which `qemu-img check` reports as harmless — never a reference to a cluster that
// is uncounted or holds garbage. The file is only ever appended to or updated in place by entries of at
// most 8 aligned bytes (and the 12-byte refcount-table pointer in the header), which a process kill
// cannot tear. Durability against power loss is the guest's flush: `flush()` is fsync.
//
// Not supported: encryption, external data files, extended L2 entries, zstd compression, writing to
// images with internal snapshots (clusters shared with a snapshot would need copy-on-write of tables).
// Compressed clusters are read (raw deflate) and rewritten uncompressed when the guest writes them.
// Discard and write-zeroes work on L2 entries where they cover whole clusters: version 3's zero flag makes
// a cluster read as zeros (with or without its host cluster), freeing follows rule 4; partial clusters are
// written with zeros (write-zeroes) or left alone (discard).

import { closeSync, fstatSync, fsyncSync, openSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { inflateRawSync } from 'node:zlib';
import { ImageError, probeFormat, type DiskImage, type ImageFormat } from './image.ts';
import { lockImage, type ImageLock } from './lock.ts';
import { preadFull, pwriteFull } from './fileio.ts';
import { RawImage } from './raw.ts';
import { BlockError } from '../../devices/block-backend.ts';

const MAGIC = 0x514649fb; // "QFI\xfb"
const TWO32 = 2 ** 32;

// Header extension types (spec, "Header extensions").
const EXT_END = 0x00000000;
const EXT_BACKING_FORMAT = 0xe2792aca;
const EXT_FEATURE_TABLE = 0x6803f857;

// Incompatible feature bits (spec, header bytes 72-79).
const INCOMPAT_DIRTY = 1, INCOMPAT_CORRUPT = 2, INCOMPAT_DATA_FILE = 4, INCOMPAT_COMPRESSION = 8, INCOMPAT_EXTL2 = 16;
const INCOMPAT_NAMES: Record<number, string> = { 4: 'external data file', 8: 'compression type', 16: 'extended L2 entries' };

// L1/L2 entry flag bits, as bits of the high 32-bit word (bit 63 COPIED, bit 62 compressed) or the low word (bit 0 zero).
const HI_COPIED = 0x80000000, HI_COMPRESSED = 0x40000000, LO_ZERO = 1;
/** Bits 9-55 of an entry: the host offset of a cluster (high word bits 0-23, low word bits 9-31). */
function entryOffset(hi: number, lo: number): number { return (hi & 0x00ffffff) * TWO32 + ((lo & 0xfffffe00) >>> 0); }

export interface Qcow2OpenOptions {
  readOnly?: boolean;
  /** Take the image lock (default true); backing files are locked shared. */
  lock?: boolean;
}

export interface Qcow2CreateOptions {
  /** Virtual size in bytes; defaults to the backing file's size. */
  size?: number;
  backingFile?: string;
  /** Format of the backing file, recorded in the header so nothing needs to probe it later. */
  backingFormat?: ImageFormat;
  /** log2 of the cluster size, 9..21 (default 16: 64 KiB, as qemu-img). */
  clusterBits?: number;
  version?: 2 | 3;
}

/** Opens a disk image of a known or probed format. */
export function openImage(path: string, opts: { format?: ImageFormat; readOnly?: boolean; lock?: boolean } = {}): DiskImage {
  const format = opts.format ?? probeFormat(path);
  return format === 'qcow2' ? Qcow2Image.open(path, opts) : RawImage.open(path, { ...opts, probed: opts.format === undefined });
}

/** A bounded cache of metadata clusters (L2 tables, refcount blocks) kept write-through. */
class ClusterCache {
  private readonly map = new Map<number, Uint8Array>();
  constructor(private readonly limit: number) {}
  get(off: number): Uint8Array | undefined {
    const t = this.map.get(off);
    if (t) { this.map.delete(off); this.map.set(off, t); }
    return t;
  }
  set(off: number, t: Uint8Array): void {
    this.map.set(off, t);
    if (this.map.size > this.limit) this.map.delete(this.map.keys().next().value!);
  }
  delete(off: number): void { this.map.delete(off); }
}

type Entry = { hi: number; lo: number };

export class Qcow2Image implements DiskImage {
  readonly size: number;
  readonly version: number;
  readonly clusterBits: number;
  readonly clusterSize: number;
  readonly backing: DiskImage | null;
  readonly backingFile: string | null;
  readonly backingFormat: ImageFormat | null;
  private readonly l2Entries: number;
  private readonly l1Offset: number;
  private readonly l1: Uint8Array;
  private readonly l1View: DataView;
  private refTableOffset: number;
  private refTable: Uint8Array;
  private refTableView: DataView;
  private readonly refOrder: number;
  /** Refcount entries per refcount block. */
  private readonly refBlockEntries: number;
  private readonly l2Cache: ClusterCache;
  private readonly refCache: ClusterCache;
  /** Where the next cluster is allocated: the end of the file, rounded up to a cluster. */
  private fileEnd: number;
  private decompressed: { off: number; data: Uint8Array } | null = null;
  private closed = false;

  private constructor(
    private readonly fd: number, readonly path: string, readonly readOnly: boolean, private readonly lock: ImageLock | null,
    h: ParsedHeader, backing: DiskImage | null,
  ) {
    this.size = h.size; this.version = h.version; this.clusterBits = h.clusterBits; this.clusterSize = 2 ** h.clusterBits;
    this.l2Entries = this.clusterSize / 8;
    this.l1Offset = h.l1Offset; this.l1 = h.l1; this.l1View = new DataView(h.l1.buffer);
    this.refTableOffset = h.refTableOffset; this.refTable = h.refTable; this.refTableView = new DataView(h.refTable.buffer);
    this.refOrder = h.refOrder;
    this.refBlockEntries = (this.clusterSize * 8) >> h.refOrder;
    this.backing = backing; this.backingFile = h.backingFile; this.backingFormat = h.backingFormat;
    const tables = Math.max(16, Math.floor(32 * 2 ** 20 / this.clusterSize));
    this.l2Cache = new ClusterCache(tables);
    this.refCache = new ClusterCache(tables);
    this.fileEnd = Math.ceil(h.fileSize / this.clusterSize) * this.clusterSize;
  }

  static open(path: string, opts: Qcow2OpenOptions = {}): Qcow2Image {
    const readOnly = opts.readOnly === true;
    const lock = opts.lock === false ? null : lockImage(path, readOnly);
    let fd = -1, backing: DiskImage | null = null;
    try {
      try { fd = openSync(path, readOnly ? 'r' : 'r+'); } catch (e) {
        throw new ImageError(`cannot open ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
      }
      const h = parseHeader(fd, path, readOnly);
      if (h.backingFile) {
        const bpath = isAbsolute(h.backingFile) ? h.backingFile : resolve(dirname(path), h.backingFile);
        try {
          backing = openImage(bpath, { format: h.backingFormat ?? undefined, readOnly: true, lock: opts.lock });
        } catch (e) {
          throw new ImageError(`${path}: backing file ${h.backingFile}: ${(e as Error).message}`);
        }
      }
      return new Qcow2Image(fd, path, readOnly, lock, h, backing);
    } catch (e) {
      (backing as DiskImage | null)?.close();
      if (fd >= 0) closeSync(fd);
      lock?.release();
      throw e;
    }
  }

  // --- Guest I/O --------------------------------------------------------------------------------------------

  private check(offset: number, len: number): void {
    if (this.closed) throw new Error(`${this.path}: image is closed`);
    if (offset < 0 || len < 0 || offset + len > this.size) throw new BlockError(`${this.path}: access [${offset}, ${offset + len}) outside the ${this.size}-byte disk`);
  }

  read(offset: number, buf: Uint8Array): void {
    this.check(offset, buf.length);
    this.eachCluster(offset, buf.length, (cstart, inOff, pos, n) => this.readCluster(cstart, inOff, buf.subarray(pos, pos + n)));
  }

  write(offset: number, data: Uint8Array): void {
    if (this.readOnly) throw new BlockError(`${this.path} is open read-only`);
    this.check(offset, data.length);
    this.eachCluster(offset, data.length, (cstart, inOff, pos, n) => this.writeCluster(cstart, inOff, data.subarray(pos, pos + n)));
  }

  flush(): void { if (!this.readOnly && !this.closed) fsyncSync(this.fd); }

  /** Discard deallocates whole clusters only, so the guest is told to align to them. */
  get discardGranularity(): number { return this.clusterSize; }
  /** Write-zeroes with unmap frees the clusters it covers (see zeroCluster). */
  readonly zeroesMayUnmap = true;

  /**
   * Deallocates the whole clusters in the range, as QEMU's qcow2 driver does for a guest discard
   * (qcow2_co_pdiscard, not a full discard): version 3 leaves the zero flag in the L2 entry so the range
   * reads as zeros rather than as the backing file; version 2 has no zero flag, so the entry is cleared and
   * the cluster shows the backing file again (zeros without one), which a discard allows (virtio 1.2
   * §5.2.6.2: the driver assumes nothing about discarded data). Partial clusters at the edges stay as they
   * are: a discard is a hint, and part of a cluster cannot be deallocated.
   */
  discard(offset: number, len: number): void {
    if (this.readOnly) throw new BlockError(`${this.path} is open read-only`);
    this.check(offset, len);
    this.eachCluster(offset, len, (cstart, inOff, _pos, n) => {
      if (!this.wholeCluster(cstart, inOff, n)) return;
      if (this.version >= 3) { this.zeroCluster(cstart, true); return; }
      const e = this.lookup(cstart);
      if (!(e.hi & HI_COMPRESSED) && entryOffset(e.hi, e.lo) === 0) return;
      this.setEntry(cstart, 0, 0);
      this.release(e);
    });
  }

  /**
   * Makes the range read as zeros. Whole clusters of a version 3 image get the zero flag (spec, "Standard
   * Cluster Descriptor", bit 0), keeping their host cluster unless `mayUnmap` lets it go; version 2 has no
   * zero flag, so there a cluster is unmapped when nothing shows through (no backing data under it) and
   * otherwise written with zeros. Partial clusters get zeros written unless they already read as zeros.
   */
  writeZeroes(offset: number, len: number, mayUnmap = false): void {
    if (this.readOnly) throw new BlockError(`${this.path} is open read-only`);
    this.check(offset, len);
    this.eachCluster(offset, len, (cstart, inOff, _pos, n) => {
      if (this.wholeCluster(cstart, inOff, n)) this.zeroCluster(cstart, mayUnmap);
      else if (!this.readsAsZeros(this.lookup(cstart), cstart)) this.writeCluster(cstart, inOff, new Uint8Array(n));
    });
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    closeSync(this.fd);
    this.backing?.close();
    this.lock?.release();
  }

  private eachCluster(offset: number, len: number, fn: (cstart: number, inOff: number, pos: number, n: number) => void): void {
    let pos = 0;
    while (pos < len) {
      const off = offset + pos;
      const inOff = off % this.clusterSize;
      const n = Math.min(this.clusterSize - inOff, len - pos);
      fn(off - inOff, inOff, pos, n);
      pos += n;
    }
  }

  // --- Mapping ------------------------------------------------------------------------------------------------

  private l1Index(guest: number): number { return Math.floor(guest / (this.clusterSize * this.l2Entries)); }
  private l2Index(guest: number): number { return Math.floor(guest / this.clusterSize) % this.l2Entries; }

  private l1Entry(i: number): Entry { return { hi: this.l1View.getUint32(i * 8), lo: this.l1View.getUint32(i * 8 + 4) }; }

  private loadL2(off: number): Uint8Array { return this.loadMetadata(this.l2Cache, off); }

  /** A metadata cluster (L2 table or refcount block) from its cache, read from the file on a miss. */
  private loadMetadata(cache: ClusterCache, off: number): Uint8Array {
    let t = cache.get(off);
    if (!t) {
      t = new Uint8Array(this.clusterSize);
      preadFull(this.fd, t, off);
      cache.set(off, t);
    }
    return t;
  }

  /** The L2 entry mapping guest cluster `guest`, or zero when its L2 table does not exist. */
  private lookup(guest: number): Entry {
    const l1e = this.l1Entry(this.l1Index(guest));
    const l2off = entryOffset(l1e.hi, l1e.lo);
    if (l2off === 0) return { hi: 0, lo: 0 };
    const v = new DataView(this.loadL2(l2off).buffer);
    const i = this.l2Index(guest);
    return { hi: v.getUint32(i * 8), lo: v.getUint32(i * 8 + 4) };
  }

  private hostOffset(e: Entry): number {
    const off = entryOffset(e.hi, e.lo);
    if (off % this.clusterSize) throw new ImageError(`${this.path}: corrupt L2 entry: data cluster offset 0x${off.toString(16)} is not cluster aligned`);
    if (off + this.clusterSize > this.fileEnd) throw new ImageError(`${this.path}: corrupt L2 entry: data cluster 0x${off.toString(16)} lies beyond the end of the file`);
    return off;
  }

  /** Compressed cluster descriptor (spec, "Compressed Clusters Descriptor"): byte offset and sector count. */
  private compressedRange(e: Entry): { off: number; len: number } {
    const x = 62 - (this.clusterBits - 8);
    const v = (BigInt(e.hi & 0x3fffffff) << 32n) | BigInt(e.lo >>> 0);
    const off = Number(v & ((1n << BigInt(x)) - 1n));
    const sectors = Number(v >> BigInt(x)) + 1;
    // The count is of 512-byte sectors starting at the one holding `off`, so the end is sector aligned.
    return { off, len: (off & ~511) + sectors * 512 - off };
  }

  private readCompressed(e: Entry): Uint8Array {
    const { off, len } = this.compressedRange(e);
    if (this.decompressed?.off === off) return this.decompressed.data;
    const src = new Uint8Array(Math.min(len, Math.max(0, this.fileEnd - off)));
    preadFull(this.fd, src, off);
    let data: Uint8Array;
    try {
      // Compression type 0 is raw deflate (no zlib header); the stream may be followed by padding.
      data = inflateRawSync(src, { finishFlush: 2 /* Z_SYNC_FLUSH */ });
    } catch (err) {
      throw new ImageError(`${this.path}: compressed cluster at 0x${off.toString(16)} does not decompress (${(err as Error).message})`);
    }
    if (data.length < this.clusterSize) throw new ImageError(`${this.path}: compressed cluster at 0x${off.toString(16)} decompresses to ${data.length} bytes, not ${this.clusterSize}`);
    data = data.subarray(0, this.clusterSize);
    this.decompressed = { off, data };
    return data;
  }

  private readCluster(cstart: number, inOff: number, out: Uint8Array): void {
    const e = this.lookup(cstart);
    if (e.hi & HI_COMPRESSED) { out.set(this.readCompressed(e).subarray(inOff, inOff + out.length)); return; }
    if (this.version >= 3 && e.lo & LO_ZERO) { out.fill(0); return; }
    const host = entryOffset(e.hi, e.lo);
    if (host !== 0) { preadFull(this.fd, out, this.hostOffset(e) + inOff); return; }
    this.readBacking(cstart + inOff, out);
  }

  /** Unallocated clusters show the backing file; past its end (a smaller backing file) they read as zeros. */
  private readBacking(off: number, out: Uint8Array): void {
    const b = this.backing;
    if (!b || off >= b.size) { out.fill(0); return; }
    const n = Math.min(out.length, b.size - off);
    b.read(off, out.subarray(0, n));
    out.fill(0, n);
  }

  // --- Writing ------------------------------------------------------------------------------------------------

  /** Writes an 8-byte table entry both in the file and in its cached copy. */
  private putEntry(table: Uint8Array, fileOff: number, index: number, hi: number, lo: number): void {
    const v = new DataView(table.buffer, table.byteOffset);
    v.setUint32(index * 8, hi >>> 0); v.setUint32(index * 8 + 4, lo >>> 0);
    pwriteFull(this.fd, table.subarray(index * 8, index * 8 + 8), fileOff + index * 8);
  }

  /** The L2 table for guest offset `guest`, created (zeroed, counted, then linked from L1) if missing. */
  private ensureL2(guest: number): { off: number; table: Uint8Array } {
    const i = this.l1Index(guest);
    const e = this.l1Entry(i);
    const off = entryOffset(e.hi, e.lo);
    if (off !== 0) {
      // Without COPIED the table is shared with a snapshot (refcount > 1) and must not change in place.
      if (!(e.hi & HI_COPIED)) throw new ImageError(`${this.path}: L2 table at 0x${off.toString(16)} is shared with an internal snapshot; writing such images is not supported`);
      return { off, table: this.loadL2(off) };
    }
    const table = new Uint8Array(this.clusterSize);
    const c = this.allocCluster();
    pwriteFull(this.fd, table, c);
    this.addRef(c, 1);
    this.l2Cache.set(c, table);
    this.putEntry(this.l1, this.l1Offset, i, HI_COPIED | Math.floor(c / TWO32), c % TWO32);
    return { off: c, table };
  }

  private writeCluster(cstart: number, inOff: number, chunk: Uint8Array): void {
    const { off: l2off, table } = this.ensureL2(cstart);
    const i = this.l2Index(cstart);
    const v = new DataView(table.buffer, table.byteOffset);
    const e = { hi: v.getUint32(i * 8), lo: v.getUint32(i * 8 + 4) };
    const compressed = (e.hi & HI_COMPRESSED) !== 0;
    const host = compressed ? 0 : entryOffset(e.hi, e.lo);
    const zero = !compressed && this.version >= 3 && (e.lo & LO_ZERO) !== 0;
    if (host !== 0 && e.hi & HI_COPIED) {
      const h = this.hostOffset(e);
      if (!zero) { pwriteFull(this.fd, chunk, h + inOff); return; }
      // A preallocated zero cluster: its bytes on disk are undefined, so the whole cluster is written
      // before the zero flag is dropped.
      const full = new Uint8Array(this.clusterSize);
      full.set(chunk, inOff);
      pwriteFull(this.fd, full, h);
      this.putEntry(table, l2off, i, e.hi, e.lo & ~LO_ZERO);
      return;
    }
    // Copy-on-write: a new cluster gets the old contents (backing file, zeros, decompressed or shared
    // data) merged with the new bytes, and only then replaces the old mapping.
    const full = new Uint8Array(this.clusterSize);
    if (chunk.length < this.clusterSize) this.readCluster(cstart, 0, full);
    full.set(chunk, inOff);
    const c = this.allocCluster();
    pwriteFull(this.fd, full, c);
    this.addRef(c, 1);
    this.putEntry(table, l2off, i, HI_COPIED | Math.floor(c / TWO32), c % TWO32);
    this.release(e);
  }

  /** Whether [cstart + inOff, + n) covers a whole guest cluster (the last one may end at the disk's end). */
  private wholeCluster(cstart: number, inOff: number, n: number): boolean {
    return inOff === 0 && (n === this.clusterSize || cstart + n === this.size);
  }

  /** Whether guest cluster `cstart` with L2 entry `e` reads as zeros without any data behind it. */
  private readsAsZeros(e: Entry, cstart: number): boolean {
    if (e.hi & HI_COMPRESSED) return false;
    if (this.version >= 3 && e.lo & LO_ZERO) return true;
    return entryOffset(e.hi, e.lo) === 0 && !this.backingUnder(cstart);
  }

  /** Whether an unmapped guest cluster at `cstart` would show backing-file data. */
  private backingUnder(cstart: number): boolean { return this.backing !== null && cstart < this.backing.size; }

  /** Rewrites the L2 entry of guest cluster `cstart` (creating its L2 table if needed). */
  private setEntry(cstart: number, hi: number, lo: number): void {
    const { off, table } = this.ensureL2(cstart);
    this.putEntry(table, off, this.l2Index(cstart), hi, lo);
  }

  /**
   * Makes a whole guest cluster read as zeros without writing data where the format allows. Ordering as
   * for every other update: the new entry is written first, and only then is the old host cluster's
   * refcount lowered (rule 4 above), so a crash in between leaks a cluster at worst.
   */
  private zeroCluster(cstart: number, mayUnmap: boolean): void {
    const e = this.lookup(cstart);
    const compressed = (e.hi & HI_COMPRESSED) !== 0;
    const host = compressed ? 0 : entryOffset(e.hi, e.lo);
    if (this.version >= 3) {
      // A compressed cluster cannot carry the flag (its descriptor has no flag bits), so it is always freed.
      const unmap = compressed || (mayUnmap && host !== 0);
      if (unmap) { this.setEntry(cstart, 0, LO_ZERO); this.release(e); return; }
      if (host === 0 && this.readsAsZeros(e, cstart)) return;
      // Unmapped over a backing file, or a data cluster that stays allocated ("preallocated zero cluster").
      if (e.lo & LO_ZERO) return;
      this.setEntry(cstart, e.hi, e.lo | LO_ZERO);
      return;
    }
    // Version 2: zeros must be stored wherever the backing file would otherwise show through.
    if (this.backingUnder(cstart)) { this.writeCluster(cstart, 0, new Uint8Array(Math.min(this.clusterSize, this.size - cstart))); return; }
    if (!compressed && host === 0) return;
    if (mayUnmap || compressed) { this.setEntry(cstart, 0, 0); this.release(e); return; }
    this.writeCluster(cstart, 0, new Uint8Array(Math.min(this.clusterSize, this.size - cstart)));
  }

  /** Drops the references an old L2 entry held, after the entry no longer points there. */
  private release(e: Entry): void {
    if (e.hi & HI_COMPRESSED) {
      const { off, len } = this.compressedRange(e);
      const first = Math.floor((off & ~511) / this.clusterSize), last = Math.floor((off + len - 1) / this.clusterSize);
      for (let c = first; c <= last; c++) this.addRef(c * this.clusterSize, -1);
      if (this.decompressed?.off === off) this.decompressed = null;
      return;
    }
    const host = entryOffset(e.hi, e.lo);
    if (host !== 0) this.addRef(host, -1);
  }

  // --- Refcounts ----------------------------------------------------------------------------------------------

  private loadRefBlock(off: number): Uint8Array { return this.loadMetadata(this.refCache, off); }

  private refTableEntries(): number { return this.refTable.length / 8; }

  private refBlockAt(ri: number): number {
    if (ri >= this.refTableEntries()) return 0;
    return entryOffset(this.refTableView.getUint32(ri * 8), this.refTableView.getUint32(ri * 8 + 4));
  }

  /** The refcount of the host cluster at byte offset `host`. */
  refcount(host: number): number {
    const idx = Math.floor(host / this.clusterSize);
    const b = this.refBlockAt(Math.floor(idx / this.refBlockEntries));
    if (b === 0) return 0;
    return getRef(this.loadRefBlock(b), idx % this.refBlockEntries, this.refOrder);
  }

  /** A free cluster at the end of the file (not yet written). */
  private allocCluster(): number {
    for (;;) {
      const c = this.fileEnd;
      this.fileEnd += this.clusterSize;
      // An image from another tool may count clusters past its end (preallocation); never reuse those.
      if (this.refcount(c) === 0) return c;
    }
  }

  /** Adds `delta` to the refcount of host cluster `host`, creating its refcount block if needed. */
  private addRef(host: number, delta: number): void {
    const idx = Math.floor(host / this.clusterSize);
    const ri = Math.floor(idx / this.refBlockEntries);
    if (ri >= this.refTableEntries()) this.growRefTable(ri);
    let b = this.refBlockAt(ri);
    if (b === 0) b = this.newRefBlock(ri);
    const block = this.loadRefBlock(b);
    const j = idx % this.refBlockEntries;
    const old = getRef(block, j, this.refOrder);
    const next = old + delta;
    if (next < 0 || next >= 2 ** Math.min(53, 2 ** this.refOrder)) {
      throw new ImageError(`${this.path}: refcount of cluster 0x${host.toString(16)} would become ${next}; the image's refcounts are inconsistent (try qemu-img check -r all)`);
    }
    const byte = setRef(block, j, this.refOrder, next);
    pwriteFull(this.fd, block.subarray(byte.start, byte.end), b + byte.start);
  }

  /** Creates refcount block `ri`, counting itself, and links it from the refcount table. */
  private newRefBlock(ri: number): number {
    const c = this.allocCluster();
    const block = new Uint8Array(this.clusterSize);
    const cidx = c / this.clusterSize;
    const self = Math.floor(cidx / this.refBlockEntries) === ri;
    if (self) setRef(block, cidx % this.refBlockEntries, this.refOrder, 1);
    pwriteFull(this.fd, block, c);
    this.refCache.set(c, block);
    if (!self) this.addRef(c, 1);
    if (ri >= this.refTableEntries()) this.growRefTable(ri);
    this.putEntry(this.refTable, this.refTableOffset, ri, Math.floor(c / TWO32), c % TWO32);
    return c;
  }

  /**
   * Replaces the refcount table by a larger one at the end of the file (spec: the table is contiguous).
   * The new table and the refcount blocks needed to count it are written first, the header is switched
   * to it in one 12-byte write, and only then is the old table freed.
   */
  private growRefTable(ri: number): void {
    const cs = this.clusterSize, E = this.refBlockEntries, perTable = cs / 8;
    const start = this.fileEnd / cs;
    let T = Math.max(this.refTable.length / cs * 2, Math.ceil((ri + 1) / perTable));
    let newBlocks: number[] = [];
    for (;;) {
      // Ranges covering [start, start + T + R) that have no refcount block yet get new ones right after the table.
      let R = 0;
      for (;;) {
        const end = start + T + R;
        newBlocks = [];
        for (let r = Math.floor(start / E); r <= Math.floor((end - 1) / E); r++) if (this.refBlockAt(r) === 0) newBlocks.push(r);
        if (newBlocks.length === R) break;
        R = newBlocks.length;
      }
      const maxRange = Math.max(ri, Math.floor((start + T + R - 1) / E));
      if (maxRange < T * perTable) break;
      T++;
    }
    const R = newBlocks.length;
    const table = new Uint8Array(T * cs);
    table.set(this.refTable);
    const tv = new DataView(table.buffer);
    const blocks = newBlocks.map(() => new Uint8Array(cs));
    newBlocks.forEach((r, k) => {
      const off = (start + T + k) * cs;
      tv.setUint32(r * 8, Math.floor(off / TWO32)); tv.setUint32(r * 8 + 4, off % TWO32);
    });
    // Count the new table and blocks: in the new blocks where they cover them, else in existing blocks.
    const existing: number[] = [];
    for (let c = start; c < start + T + R; c++) {
      const k = newBlocks.indexOf(Math.floor(c / E));
      if (k >= 0) setRef(blocks[k], c % E, this.refOrder, 1);
      else existing.push(c);
    }
    blocks.forEach((b, k) => { pwriteFull(this.fd, b, (start + T + k) * cs); this.refCache.set((start + T + k) * cs, b); });
    pwriteFull(this.fd, table, start * cs);
    this.fileEnd = (start + T + R) * cs;
    const oldOff = this.refTableOffset, oldClusters = this.refTable.length / cs;
    for (const c of existing) this.addRefIn(c * cs, 1, this.refTable);
    const hdr = new Uint8Array(12);
    const hv = new DataView(hdr.buffer);
    hv.setUint32(0, Math.floor(start * cs / TWO32)); hv.setUint32(4, (start * cs) % TWO32); hv.setUint32(8, T);
    pwriteFull(this.fd, hdr, 48);
    this.refTableOffset = start * cs; this.refTable = table; this.refTableView = tv;
    for (let k = 0; k < oldClusters; k++) this.addRef(oldOff + k * cs, -1);
  }

  /** addRef for a cluster whose refcount block already exists in `table` (used while the table moves). */
  private addRefIn(host: number, delta: number, table: Uint8Array): void {
    const idx = host / this.clusterSize, ri = Math.floor(idx / this.refBlockEntries);
    const v = new DataView(table.buffer, table.byteOffset);
    const b = entryOffset(v.getUint32(ri * 8), v.getUint32(ri * 8 + 4));
    const block = this.loadRefBlock(b), j = idx % this.refBlockEntries;
    const byte = setRef(block, j, this.refOrder, getRef(block, j, this.refOrder) + delta);
    pwriteFull(this.fd, block.subarray(byte.start, byte.end), b + byte.start);
  }
}

// Refcount entries are refcount_bits = 1 << refcount_order wide; narrower than a byte they fill each byte
// from its least significant bit, wider ones are big-endian (spec, "Refcount block entries"; QEMU's reader).
function getRef(block: Uint8Array, j: number, order: number): number {
  const bits = 1 << order;
  if (bits < 8) return (block[(j * bits) >> 3] >> ((j * bits) & 7)) & ((1 << bits) - 1);
  const bytes = bits >> 3;
  let v = 0;
  for (let k = 0; k < bytes; k++) v = v * 256 + block[j * bytes + k];
  return v;
}

function setRef(block: Uint8Array, j: number, order: number, value: number): { start: number; end: number } {
  const bits = 1 << order;
  if (bits < 8) {
    const at = (j * bits) >> 3, sh = (j * bits) & 7, mask = ((1 << bits) - 1) << sh;
    block[at] = (block[at] & ~mask) | ((value << sh) & mask);
    return { start: at, end: at + 1 };
  }
  const bytes = bits >> 3;
  let v = value;
  for (let k = bytes - 1; k >= 0; k--) { block[j * bytes + k] = v % 256; v = Math.floor(v / 256); }
  return { start: j * bytes, end: j * bytes + bytes };
}

// --- Header -----------------------------------------------------------------------------------------------------

interface ParsedHeader {
  version: number;
  clusterBits: number;
  size: number;
  l1Offset: number;
  l1: Uint8Array;
  refTableOffset: number;
  refTable: Uint8Array;
  refOrder: number;
  backingFile: string | null;
  backingFormat: ImageFormat | null;
  fileSize: number;
}

function u64(v: DataView, off: number, path: string, what: string): number {
  const hi = v.getUint32(off), lo = v.getUint32(off + 4);
  if (hi >= 0x200000) throw new ImageError(`${path}: ${what} 0x${hi.toString(16)}${lo.toString(16).padStart(8, '0')} is out of range`);
  return hi * TWO32 + lo;
}

/** Reads and validates the header and the L1 and refcount tables; every problem is one line naming it. */
function parseHeader(fd: number, path: string, readOnly: boolean): ParsedHeader {
  const fileSize = fstatSync(fd).size;
  const bad = (what: string): never => { throw new ImageError(`${path}: not a usable qcow2 image: ${what}`); };
  if (fileSize < 72) bad(`file is ${fileSize} bytes, shorter than a qcow2 header`);
  const first = new Uint8Array(Math.min(fileSize, 112));
  preadFull(fd, first, 0);
  const v = new DataView(first.buffer);
  if (v.getUint32(0) !== MAGIC) bad(`bad magic 0x${v.getUint32(0).toString(16).padStart(8, '0')} (expected 0x514649fb, "QFI\\xfb")`);
  const version = v.getUint32(4);
  if (version !== 2 && version !== 3) bad(`unsupported version ${version} (only 2 and 3 exist)`);
  const clusterBits = v.getUint32(20);
  // The spec allows 9..21 (512 bytes to 2 MiB).
  if (clusterBits < 9 || clusterBits > 21) bad(`cluster_bits ${clusterBits} outside 9..21`);
  const cs = 2 ** clusterBits;
  const size = u64(v, 24, path, 'virtual size');
  if (v.getUint32(32) !== 0) bad(`encrypted images (crypt_method ${v.getUint32(32)}) are not supported`);
  const l1Size = v.getUint32(36);
  const l1Offset = u64(v, 40, path, 'L1 table offset');
  const refTableOffset = u64(v, 48, path, 'refcount table offset');
  const refTableClusters = v.getUint32(56);
  const nbSnapshots = v.getUint32(60);
  let refOrder = 4, headerLength = 72;
  if (version === 3) {
    if (fileSize < 104) bad('file is shorter than a version 3 header');
    const incompat = u64(v, 72, path, 'incompatible features');
    refOrder = v.getUint32(96);
    headerLength = v.getUint32(100);
    if (headerLength < 104 || headerLength % 8 || headerLength > cs) bad(`header_length ${headerLength} invalid (must be >= 104, a multiple of 8, within cluster 0)`);
    const compression = headerLength > 104 ? first[104] : 0;
    let unknown = incompat & ~(INCOMPAT_DIRTY | INCOMPAT_CORRUPT | INCOMPAT_COMPRESSION);
    if (incompat & INCOMPAT_COMPRESSION && compression !== 0) bad(`compression type ${compression} (zstd) is not supported`);
    for (const bit of [INCOMPAT_DATA_FILE, INCOMPAT_EXTL2]) if (unknown & bit) bad(`incompatible feature "${INCOMPAT_NAMES[bit]}" is not supported`);
    unknown &= ~(INCOMPAT_DATA_FILE | INCOMPAT_EXTL2);
    if (unknown) bad(`unknown incompatible feature bits 0x${unknown.toString(16)}`);
    if (incompat & INCOMPAT_CORRUPT && !readOnly) bad('the image is marked corrupt; repair it with qemu-img check -r all');
    // The dirty bit means refcounts may be stale (lazy refcounts); writing would trust them.
    if (incompat & INCOMPAT_DIRTY && !readOnly) bad('the image is marked dirty (lazy refcounts were not written back); repair it with qemu-img check -r all');
    if (refOrder > 6) bad(`refcount_order ${refOrder} is more than 6`);
  }
  if (nbSnapshots > 0 && !readOnly) bad(`the image has ${nbSnapshots} internal snapshot(s); only read-only use is supported`);

  const header = new Uint8Array(Math.min(cs, fileSize));
  preadFull(fd, header, 0);
  const hv = new DataView(header.buffer);

  // Backing file name (spec: bytes 8-19; the name is not NUL terminated and must lie in cluster 0).
  const bfo = u64(v, 8, path, 'backing file offset'), bfs = v.getUint32(16);
  let backingFile: string | null = null;
  if (bfo !== 0) {
    if (bfs === 0 || bfs > 1023) bad(`backing file name length ${bfs} outside 1..1023`);
    if (bfo + bfs > header.length) bad(`backing file name at ${bfo}+${bfs} lies outside the first cluster`);
    backingFile = new TextDecoder().decode(header.subarray(bfo, bfo + bfs));
    if (/^[a-z0-9+]+:/i.test(backingFile) && !/^[a-z]:[\\/]/i.test(backingFile)) bad(`backing file "${backingFile}" uses a protocol or json: syntax, which is not supported`);
  }

  // Header extensions follow the header up to an end marker (spec, "Header extensions").
  let backingFormat: ImageFormat | null = null;
  for (let p = headerLength; p + 8 <= header.length;) {
    const type = hv.getUint32(p), len = hv.getUint32(p + 4);
    if (type === EXT_END) break;
    if (p + 8 + len > header.length) bad(`header extension 0x${type.toString(16)} runs past the first cluster`);
    if (type === EXT_BACKING_FORMAT) {
      const f = new TextDecoder().decode(header.subarray(p + 8, p + 8 + len));
      if (f !== 'raw' && f !== 'qcow2') bad(`backing file format "${f}" is not supported (raw or qcow2)`);
      backingFormat = f as ImageFormat;
    } else if (type !== EXT_FEATURE_TABLE) {
      // Other extensions (bitmaps, encryption, data file) only matter with features refused above or are
      // optional (bitmaps are protected by the autoclear bit, which a writer that ignores them must clear).
    }
    p += 8 + Math.ceil(len / 8) * 8;
  }
  if (version === 3 && !readOnly) {
    // Autoclear features (bytes 88-95): a writer that does not understand them must clear them (spec).
    const autoclear = u64(v, 88, path, 'autoclear features');
    if (autoclear !== 0) pwriteFull(fd, new Uint8Array(8), 88);
  }

  // Tables: aligned, inside the file, large enough, and not overlapping each other or the header.
  const l2Cover = cs * (cs / 8);
  const needL1 = Math.ceil(size / l2Cover);
  if (l1Size < needL1) bad(`L1 table has ${l1Size} entries, the ${size}-byte disk needs ${needL1}`);
  if (l1Size > 0x2000000) bad(`L1 table size ${l1Size} is too large`);
  if (l1Offset % cs) bad(`L1 table offset 0x${l1Offset.toString(16)} is not cluster aligned`);
  if (l1Size > 0 && l1Offset + l1Size * 8 > fileSize) bad(`L1 table (0x${l1Offset.toString(16)}, ${l1Size} entries) extends past the end of the file`);
  if (refTableOffset % cs) bad(`refcount table offset 0x${refTableOffset.toString(16)} is not cluster aligned`);
  if (refTableClusters === 0) bad('refcount table has zero clusters');
  if (refTableClusters > 0x800000 / (cs / 8) + 8) bad(`refcount table of ${refTableClusters} clusters is too large`);
  if (refTableOffset + refTableClusters * cs > fileSize) bad(`refcount table (0x${refTableOffset.toString(16)}, ${refTableClusters} clusters) extends past the end of the file`);
  if (refTableOffset < cs) bad('refcount table overlaps the header');
  if (l1Size > 0 && l1Offset < cs) bad('L1 table overlaps the header');
  const l1End = l1Offset + Math.ceil(l1Size * 8 / cs) * cs, rtEnd = refTableOffset + refTableClusters * cs;
  if (l1Size > 0 && l1Offset < rtEnd && refTableOffset < l1End) bad('L1 table and refcount table overlap');

  const l1 = new Uint8Array(l1Size * 8);
  preadFull(fd, l1, l1Offset);
  const lv = new DataView(l1.buffer);
  for (let i = 0; i < l1Size; i++) {
    const off = entryOffset(lv.getUint32(i * 8), lv.getUint32(i * 8 + 4));
    if (off === 0) continue;
    if (off % cs || off + cs > fileSize + cs - 1 || off < cs) bad(`L1 entry ${i} points to 0x${off.toString(16)}, not a cluster inside the file`);
    if ((off < l1End && off >= l1Offset) || (off < rtEnd && off >= refTableOffset)) bad(`L1 entry ${i} points into the L1 or refcount table`);
  }
  const refTable = new Uint8Array(refTableClusters * cs);
  preadFull(fd, refTable, refTableOffset);
  const rv = new DataView(refTable.buffer);
  for (let i = 0; i < refTable.length / 8; i++) {
    const off = entryOffset(rv.getUint32(i * 8), rv.getUint32(i * 8 + 4));
    if (off === 0) continue;
    if (off % cs || off >= fileSize || off < cs) bad(`refcount table entry ${i} points to 0x${off.toString(16)}, not a cluster inside the file`);
  }
  return { version, clusterBits, size, l1Offset, l1, refTableOffset, refTable, refOrder, backingFile, backingFormat, fileSize };
}

// --- Creating ---------------------------------------------------------------------------------------------------

/**
 * Writes a new, empty qcow2 image: header (with the backing file name and format), refcount table,
 * refcount blocks and a zeroed L1 table — laid out like qemu-img's: header, refcount table, refcount
 * block(s), L1 table. Overwrites `path` unless another process has it locked.
 */
export function createQcow2(path: string, opts: Qcow2CreateOptions): void {
  const version = opts.version ?? 3;
  const cb = opts.clusterBits ?? 16;
  if (!Number.isInteger(cb) || cb < 9 || cb > 21) throw new ImageError(`cluster size must be a power of two from 512 bytes to 2 MiB`);
  const cs = 2 ** cb;
  let size = opts.size;
  let backingFormat = opts.backingFormat;
  if (opts.backingFile) {
    const bpath = isAbsolute(opts.backingFile) ? opts.backingFile : resolve(dirname(path), opts.backingFile);
    try {
      backingFormat ??= probeFormat(bpath);
      const b = openImage(bpath, { format: backingFormat, readOnly: true });
      size ??= b.size;
      b.close();
    } catch (e) {
      throw new ImageError(`backing file ${opts.backingFile} of ${path}: ${(e as Error).message}`);
    }
  }
  if (size === undefined) throw new ImageError('a size is needed (or a backing file to take it from)');
  if (size < 0 || !Number.isSafeInteger(size)) throw new ImageError(`bad size ${size}`);
  size = Math.ceil(size / 512) * 512;

  const enc = new TextEncoder();
  const name = opts.backingFile ? enc.encode(opts.backingFile) : null;
  if (name && name.length > 1023) throw new ImageError('backing file name longer than 1023 bytes');
  const hdrLen = version === 3 ? 112 : 72;
  // Cluster 0: header, extensions, then the backing file name.
  const header = new Uint8Array(cs);
  const hv = new DataView(header.buffer);
  let p = hdrLen;
  if (backingFormat && name) {
    const f = enc.encode(backingFormat);
    hv.setUint32(p, EXT_BACKING_FORMAT); hv.setUint32(p + 4, f.length); header.set(f, p + 8);
    p += 8 + Math.ceil(f.length / 8) * 8;
  }
  p += 8; // end-of-extensions marker (type 0, length 0)
  const bfo = name ? p : 0;
  if (name) { if (p + name.length > cs) throw new ImageError('backing file name does not fit in the first cluster'); header.set(name, p); }

  const l1Size = Math.ceil(size / (cs * (cs / 8)));
  const l1Clusters = Math.max(1, Math.ceil(l1Size * 8 / cs));
  const E = cs * 8 / 16; // refcount_order 4
  // Enough refcount blocks and table clusters to count every metadata cluster, themselves included.
  let T = 1, R = 1;
  for (;;) {
    const total = 1 + T + R + l1Clusters;
    const r = Math.ceil(total / E), t = Math.ceil(r * 8 / cs);
    if (r === R && t === T) break;
    R = r; T = t;
  }
  const rtOff = cs, rbOff = cs * (1 + T), l1Off = cs * (1 + T + R);
  const total = 1 + T + R + l1Clusters;

  hv.setUint32(0, MAGIC); hv.setUint32(4, version);
  hv.setUint32(8, Math.floor(bfo / TWO32)); hv.setUint32(12, bfo % TWO32); hv.setUint32(16, name?.length ?? 0);
  hv.setUint32(20, cb);
  hv.setUint32(24, Math.floor(size / TWO32)); hv.setUint32(28, size % TWO32);
  hv.setUint32(36, l1Size);
  hv.setUint32(40, Math.floor(l1Off / TWO32)); hv.setUint32(44, l1Off % TWO32);
  hv.setUint32(48, Math.floor(rtOff / TWO32)); hv.setUint32(52, rtOff % TWO32);
  hv.setUint32(56, T);
  if (version === 3) { hv.setUint32(96, 4); hv.setUint32(100, hdrLen); }

  const rt = new Uint8Array(T * cs), rtv = new DataView(rt.buffer);
  for (let k = 0; k < R; k++) { const o = rbOff + k * cs; rtv.setUint32(k * 8, Math.floor(o / TWO32)); rtv.setUint32(k * 8 + 4, o % TWO32); }
  const rb = new Uint8Array(R * cs);
  for (let c = 0; c < total; c++) setRef(rb, c, 4, 1);

  const lock = lockImage(path, false);
  let fd: number;
  try { fd = openSync(path, 'w'); } catch (e) {
    lock.release();
    throw new ImageError(`cannot create ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  try {
    pwriteFull(fd, header, 0);
    pwriteFull(fd, rt, rtOff);
    pwriteFull(fd, rb, rbOff);
    pwriteFull(fd, new Uint8Array(l1Clusters * cs), l1Off);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
    lock.release();
  }
}
