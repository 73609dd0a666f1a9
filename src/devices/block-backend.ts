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
  /**
   * A hint that the range's contents are no longer needed: the image may deallocate it, after which it reads
   * as zeros or as anything else (virtio 1.2 §5.2.6.2: the driver must assume nothing about discarded data).
   * Parts smaller than `discardGranularity` may be left as they were. Absent when the image cannot discard.
   */
  discard?(offset: number, length: number): void;
  /** Bytes discard works in (qcow2: a cluster); the device reports it to the guest as an alignment hint. */
  readonly discardGranularity?: number;
  /**
   * Makes the range read as zeros without the caller sending them. With `mayUnmap` the image may also
   * deallocate the range, as discard would; the zeros are guaranteed either way. Absent when unsupported.
   */
  writeZeroes?(offset: number, length: number, mayUnmap?: boolean): void;
  /** Whether writeZeroes with mayUnmap can actually deallocate anything (virtio's write_zeroes_may_unmap). */
  readonly zeroesMayUnmap?: boolean;
  close(): void;
}

/** Raised by a backend for a request it cannot do (read-only image, range beyond the end). */
export class BlockError extends Error {}
