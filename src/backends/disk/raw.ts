// A raw disk image: the file's bytes are the disk's bytes.

import { closeSync, fstatSync, fsyncSync, openSync } from 'node:fs';
import { type DiskImage, ImageError } from './image.ts';
import { BlockError } from '../../devices/block-backend.ts';
import { lockImage, type ImageLock } from './lock.ts';
import { preadFull, pwriteFull } from './fileio.ts';

const ZERO_CHUNK = 1 << 20;

function isZero(b: Uint8Array): boolean {
  // Four bytes at a time where the alignment allows it, the tail byte by byte.
  const words = b.byteOffset % 4 === 0 ? new Uint32Array(b.buffer, b.byteOffset, b.length >> 2) : null;
  let i = 0;
  if (words) { for (let k = 0; k < words.length; k++) if (words[k] !== 0) return false; i = words.length * 4; }
  for (; i < b.length; i++) if (b[i] !== 0) return false;
  return true;
}

/** Would the first four bytes of the disk read "QFI\xfb" after writing `data` at `offset` (< 4)? */
function looksLikeImageHeader(data: Uint8Array, offset: number, fd: number): boolean {
  const head = new Uint8Array(4);
  preadFull(fd, head, 0);
  head.set(data.subarray(0, 4 - offset), offset);
  return head[0] === 0x51 && head[1] === 0x46 && head[2] === 0x49 && head[3] === 0xfb;
}

export class RawImage implements DiskImage {
  readonly size: number;
  private closed = false;

  private constructor(private readonly fd: number, readonly path: string, readonly readOnly: boolean, private readonly lock: ImageLock | null,
    private readonly probed: boolean) {
    this.size = fstatSync(fd).size;
  }

  /**
   * `probed`: the format was guessed from the contents, not given. The guest may then not write a qcow2
   * magic into the first bytes: the next guessing open would take the disk for a qcow2 image whose
   * header the guest chose, backing-file name included (a way to read host files; QEMU refuses the same
   * writes to probed raw images).
   */
  static open(path: string, opts: { readOnly?: boolean; lock?: boolean; probed?: boolean } = {}): RawImage {
    const readOnly = opts.readOnly === true;
    const lock = opts.lock === false ? null : lockImage(path, readOnly);
    let fd: number;
    try { fd = openSync(path, readOnly ? 'r' : 'r+'); } catch (e) {
      lock?.release();
      throw new ImageError(`cannot open ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
    return new RawImage(fd, path, readOnly, lock, opts.probed === true);
  }

  private check(offset: number, len: number): void {
    if (this.closed) throw new Error(`${this.path}: image is closed`);
    if (offset < 0 || offset + len > this.size) throw new BlockError(`${this.path}: access [${offset}, ${offset + len}) outside the ${this.size}-byte disk`);
  }

  read(offset: number, buf: Uint8Array): void { this.check(offset, buf.length); preadFull(this.fd, buf, offset); }

  write(offset: number, data: Uint8Array): void {
    if (this.readOnly) throw new BlockError(`${this.path} is open read-only`);
    this.check(offset, data.length);
    if (this.probed && offset < 4 && data.length > 0 && looksLikeImageHeader(data, offset, this.fd)) {
      throw new BlockError(`${this.path}: refused a guest write that would make the first sector look like a qcow2 header (give format=raw to allow it)`);
    }
    pwriteFull(this.fd, data, offset);
  }

  flush(): void { if (!this.readOnly) fsyncSync(this.fd); }

  /**
   * A no-op that succeeds. Deallocating part of a raw file needs hole punching (fallocate PUNCH_HOLE),
   * which Node's fs cannot do, and zero-filling instead would turn a guest's fstrim or mkfs into a write
   * of the whole free space. Discard is only a hint (virtio 1.2 §5.2.6.2: the driver must not assume
   * anything about discarded data), so ignoring it is correct, and it is what QEMU does under its default
   * `-drive discard=ignore` (and with discard=unmap on files it cannot punch holes in).
   */
  discard(offset: number, len: number): void {
    if (this.readOnly) throw new BlockError(`${this.path} is open read-only`);
    this.check(offset, len);
  }

  readonly discardGranularity = 512;
  /** Nothing is ever deallocated (see discard), so write-zeroes never unmaps. */
  readonly zeroesMayUnmap = false;

  /**
   * Writes zeros in chunks of at most ZERO_CHUNK bytes. Each chunk is read first and skipped when it
   * already holds only zeros, so ranges that were never written stay holes in a sparse image file.
   */
  writeZeroes(offset: number, len: number, _mayUnmap = false): void {
    if (this.readOnly) throw new BlockError(`${this.path} is open read-only`);
    this.check(offset, len);
    const buf = new Uint8Array(Math.min(len, ZERO_CHUNK));
    for (let done = 0; done < len;) {
      const chunk = buf.subarray(0, Math.min(buf.length, len - done));
      preadFull(this.fd, chunk, offset + done);
      if (!isZero(chunk)) { chunk.fill(0); pwriteFull(this.fd, chunk, offset + done); }
      done += chunk.length;
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    closeSync(this.fd);
    this.lock?.release();
  }
}
