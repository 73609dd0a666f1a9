// A raw disk image: the file's bytes are the disk's bytes.

import { closeSync, fstatSync, fsyncSync, openSync } from 'node:fs';
import { type DiskImage, ImageError } from './image.ts';
import { BlockError } from '../../devices/block-backend.ts';
import { lockImage, type ImageLock } from './lock.ts';
import { preadFull, pwriteFull } from './fileio.ts';

export class RawImage implements DiskImage {
  readonly size: number;
  private closed = false;

  private constructor(private readonly fd: number, readonly path: string, readonly readOnly: boolean, private readonly lock: ImageLock | null) {
    this.size = fstatSync(fd).size;
  }

  static open(path: string, opts: { readOnly?: boolean; lock?: boolean } = {}): RawImage {
    const readOnly = opts.readOnly === true;
    const lock = opts.lock === false ? null : lockImage(path, readOnly);
    let fd: number;
    try { fd = openSync(path, readOnly ? 'r' : 'r+'); } catch (e) {
      lock?.release();
      throw new ImageError(`cannot open ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
    return new RawImage(fd, path, readOnly, lock);
  }

  private check(offset: number, len: number): void {
    if (this.closed) throw new Error(`${this.path}: image is closed`);
    if (offset < 0 || offset + len > this.size) throw new BlockError(`${this.path}: access [${offset}, ${offset + len}) outside the ${this.size}-byte disk`);
  }

  read(offset: number, buf: Uint8Array): void { this.check(offset, buf.length); preadFull(this.fd, buf, offset); }

  write(offset: number, data: Uint8Array): void {
    if (this.readOnly) throw new BlockError(`${this.path} is open read-only`);
    this.check(offset, data.length);
    pwriteFull(this.fd, data, offset);
  }

  flush(): void { if (!this.readOnly) fsyncSync(this.fd); }

  /** Raw files have no mapping to drop; discarded ranges are zeroed so they read back as zeros. */
  discard(offset: number, len: number): void { this.writeZeroes(offset, len); }

  writeZeroes(offset: number, len: number): void {
    if (this.readOnly) throw new BlockError(`${this.path} is open read-only`);
    this.check(offset, len);
    const zeros = new Uint8Array(Math.min(len, 1 << 20));
    for (let done = 0; done < len; done += zeros.length) pwriteFull(this.fd, zeros.subarray(0, Math.min(zeros.length, len - done)), offset + done);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    closeSync(this.fd);
    this.lock?.release();
  }
}
