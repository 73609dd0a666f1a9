// What a disk controller (virtio-blk, IDE) needs from the image behind it. Byte offsets, not sectors, so
// every front end can use its own sector size. The calls are synchronous: the vCPU that issued the request
// waits for it, as it does for any device register access, which keeps the device models free of in-flight
// state (snapshots need none) and works in browsers too (OPFS sync access handles are synchronous).

export interface BlockBackend {
  /** Image size in bytes as the guest sees it. */
  readonly size: number;
  readonly readOnly: boolean;
  /** Fills `buf` from byte `offset`; the caller keeps offset + buf.length <= size. Throws on host I/O errors. */
  read(offset: number, buf: Uint8Array): void;
  write(offset: number, data: Uint8Array): void;
  /** Returns only once everything written so far is on stable storage (fsync for files). */
  flush(): void;
  /** Lets the image forget a range (it may then read as zeros or as before); absent when unsupported. */
  discard?(offset: number, length: number): void;
  /** Makes a range read as zeros without the caller sending the zeros; absent when unsupported. */
  writeZeroes?(offset: number, length: number): void;
  close(): void;
}

/** Raised by a backend for a request it cannot do (read-only image, range beyond the end). */
export class BlockError extends Error {}
