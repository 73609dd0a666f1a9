// Positioned whole-buffer file I/O: the syscalls may return short counts, the callers want all or an error.

import { readSync, writeSync } from 'node:fs';

/** Reads `buf.length` bytes at `pos`; what lies past the end of the file reads as zeros. */
export function preadFull(fd: number, buf: Uint8Array, pos: number): void {
  let done = 0;
  while (done < buf.length) {
    const n = readSync(fd, buf, done, buf.length - done, pos + done);
    if (n === 0) { buf.fill(0, done); return; }
    done += n;
  }
}

export function pwriteFull(fd: number, data: Uint8Array, pos: number): void {
  let done = 0;
  while (done < data.length) done += writeSync(fd, data, done, data.length - done, pos + done);
}
