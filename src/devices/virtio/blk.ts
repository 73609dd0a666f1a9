// virtio-blk (virtio 1.2 §5.2) over a BlockBackend. Requests are a 16-byte header, data, and a status
// byte at the very end of the writable part; the spec forbids assuming how they are split over descriptors
// (§2.7.4), so everything is read and written through gather/scatter at byte offsets. Data moves in chunks
// of at most CHUNK bytes, so a request never makes the host allocate more than that however large it is.

import type { BlockBackend } from '../block-backend.ts';
import { gather, scatter, type Chain, type Virtqueue } from './virtqueue.ts';
import type { VirtioDeviceModel, VirtioPci } from './pci-transport.ts';

// Feature bits (§5.2.3).
const F_SIZE_MAX = 1, F_SEG_MAX = 2, F_RO = 5, F_BLK_SIZE = 6, F_FLUSH = 9, F_DISCARD = 13, F_WRITE_ZEROES = 14;
// Request types and status values (§5.2.6).
const T_IN = 0, T_OUT = 1, T_FLUSH = 4, T_GET_ID = 8, T_DISCARD = 11, T_WRITE_ZEROES = 13;
export const S_OK = 0, S_IOERR = 1, S_UNSUPP = 2;

const SECTOR = 512;
const QUEUE_SIZE = 256;
/** seg_max leaves room for the header and status descriptors within one queue's worth (§5.2.4). */
const SEG_MAX = QUEUE_SIZE - 2;
const SIZE_MAX = 1 << 20;
const CHUNK = 1 << 20;
/**
 * Discard / write-zeroes limits (§5.2.4 max_discard_sectors, max_write_zeroes_sectors: per segment). 8 MiB
 * per segment and a few segments per request keep one request's work bounded: the vCPU waits for it.
 * Linux merges discards into multi-segment requests; write-zeroes requests always carry one segment.
 */
const MAX_RANGE_SECTORS = 16384;
const MAX_DISCARD_SEG = 16, MAX_WRITE_ZEROES_SEG = 1;
/** struct virtio_blk_discard_write_zeroes: le64 sector, le32 num_sectors, le32 flags (§5.2.6). */
const SEG_BYTES = 16;
const FLAG_UNMAP = 1;
const ID_BYTES = 20;

export interface VirtioBlkOptions {
  /** Up to 20 bytes the guest reads with VIRTIO_BLK_T_GET_ID (/sys/block/vda/serial). */
  serial?: string;
}

export class VirtioBlk implements VirtioDeviceModel {
  readonly deviceId = 2;
  readonly classCode = 0x018000; // mass storage, other
  readonly queueSizes = [QUEUE_SIZE];
  readonly configSize = 60;
  readonly features: bigint;
  private transport!: VirtioPci;
  private readonly config = new Uint8Array(60);

  constructor(readonly backend: BlockBackend, readonly opts: VirtioBlkOptions = {}) {
    let f = (1n << BigInt(F_SIZE_MAX)) | (1n << BigInt(F_SEG_MAX)) | (1n << BigInt(F_BLK_SIZE)) | (1n << BigInt(F_FLUSH));
    if (backend.readOnly) f |= 1n << BigInt(F_RO);
    else {
      if (backend.discard) f |= 1n << BigInt(F_DISCARD);
      if (backend.writeZeroes) f |= 1n << BigInt(F_WRITE_ZEROES);
    }
    this.features = f;
    // Device configuration layout (§5.2.4). Capacity is in 512-byte sectors whatever blk_size says.
    const v = new DataView(this.config.buffer);
    const sectors = Math.floor(backend.size / SECTOR);
    v.setUint32(0, sectors % 2 ** 32, true);
    v.setUint32(4, Math.floor(sectors / 2 ** 32), true);
    v.setUint32(8, SIZE_MAX, true);
    v.setUint32(12, SEG_MAX, true);
    v.setUint32(20, SECTOR, true);
    v.setUint16(34, 1, true); // num_queues
    v.setUint32(36, MAX_RANGE_SECTORS, true); // max_discard_sectors
    v.setUint32(40, MAX_DISCARD_SEG, true); // max_discard_seg
    // discard_sector_alignment: the backend's unit (a qcow2 cluster), which Linux uses as discard_granularity.
    v.setUint32(44, Math.max(1, Math.floor((backend.discardGranularity ?? SECTOR) / SECTOR)), true);
    v.setUint32(48, MAX_RANGE_SECTORS, true); // max_write_zeroes_sectors
    v.setUint32(52, MAX_WRITE_ZEROES_SEG, true); // max_write_zeroes_seg
    // write_zeroes_may_unmap: set only if an unmapping write-zeroes can deallocate anything (§5.2.6.2).
    v.setUint8(56, backend.zeroesMayUnmap ? 1 : 0);
  }

  attach(t: VirtioPci): void { this.transport = t; }

  get sectors(): number { return Math.floor(this.backend.size / SECTOR); }

  readConfig(off: number, size: 1 | 2 | 4): number {
    let v = 0;
    for (let i = 0; i < size; i++) v |= (this.config[off + i] ?? 0) << (8 * i);
    return v >>> 0;
  }

  process(q: Virtqueue): void {
    const mem = this.transport.mem;
    for (let c = q.pop(); c; c = q.pop()) {
      // Without a writable byte there is nowhere to put a status: hand the chain back untouched.
      if (c.writeLen < 1) { this.transport.log(`virtio-blk: request without a status byte`); q.push(c.head, 0); continue; }
      const { status, written } = this.request(c);
      scatter(mem, c.writable, c.writeLen - 1, Uint8Array.of(status));
      q.push(c.head, written + 1);
    }
  }

  /** Runs one request; returns its status and how many data bytes it wrote into the guest's buffers. */
  private request(c: Chain): { status: number; written: number } {
    if (c.error || c.readLen < 16) return { status: S_IOERR, written: 0 };
    const mem = this.transport.mem, b = this.backend;
    const hdr = new DataView(gather(mem, c.readable, 0, 16).buffer);
    const type = hdr.getUint32(0, true);
    const sector = hdr.getUint32(8, true) + hdr.getUint32(12, true) * 2 ** 32;
    const inLen = c.writeLen - 1, outLen = c.readLen - 16;
    try {
      switch (type) {
        case T_IN: {
          // §5.2.6.1: data length is a multiple of 512 and the range lies within capacity.
          if (inLen % SECTOR || !this.inRange(sector, inLen)) return { status: S_IOERR, written: 0 };
          const buf = new Uint8Array(Math.min(CHUNK, inLen));
          for (let done = 0; done < inLen;) {
            const n = Math.min(CHUNK, inLen - done);
            b.read(sector * SECTOR + done, buf.subarray(0, n));
            scatter(mem, c.writable, done, buf.subarray(0, n));
            done += n;
          }
          return { status: S_OK, written: inLen };
        }
        case T_OUT: {
          if (b.readOnly) return { status: S_IOERR, written: 0 };
          if (outLen % SECTOR || !this.inRange(sector, outLen)) return { status: S_IOERR, written: 0 };
          for (let done = 0; done < outLen;) {
            const n = Math.min(CHUNK, outLen - done);
            b.write(sector * SECTOR + done, gather(mem, c.readable, 16 + done, n));
            done += n;
          }
          return { status: S_OK, written: 0 };
        }
        case T_FLUSH:
          // §5.2.6.2: completion means the data written before is durable, so complete after the backend's flush.
          b.flush();
          return { status: S_OK, written: 0 };
        case T_GET_ID: {
          const id = new Uint8Array(ID_BYTES);
          id.set(new TextEncoder().encode(this.opts.serial ?? '').subarray(0, ID_BYTES));
          return { status: S_OK, written: scatter(mem, c.writable, 0, id.subarray(0, Math.min(ID_BYTES, inLen))) };
        }
        case T_DISCARD: case T_WRITE_ZEROES:
          return { status: this.rangeRequest(c, type === T_WRITE_ZEROES), written: 0 };
        default:
          return { status: S_UNSUPP, written: 0 };
      }
    } catch (e) {
      this.transport.log(`virtio-blk: ${(e as Error).message}`);
      return { status: S_IOERR, written: 0 };
    }
  }

  /**
   * VIRTIO_BLK_T_DISCARD / VIRTIO_BLK_T_WRITE_ZEROES: `data` is a list of segments (§5.2.6). Every segment
   * is validated before any is carried out, so a request refused with UNSUPP or for a driver error has
   * changed nothing (after an IOERR from the backend the spec leaves each segment's outcome open).
   */
  private rangeRequest(c: Chain, zeroes: boolean): number {
    const b = this.backend;
    // §5.2.6.2 (device): on a device that offered VIRTIO_BLK_F_RO a write request fails with IOERR and
    // writes nothing. Both commands change what the disk reads back, so they count as writes.
    if (b.readOnly) return S_IOERR;
    // A command whose feature was not offered or not negotiated is a request the device does not support.
    if (!(zeroes ? b.writeZeroes : b.discard) || !this.transport.has(BigInt(zeroes ? F_WRITE_ZEROES : F_DISCARD))) return S_UNSUPP;
    // §5.2.6.1 (driver): data is a whole, non-empty number of segments; anything else is a driver error.
    const outLen = c.readLen - 16;
    if (outLen <= 0 || outLen % SEG_BYTES) return S_IOERR;
    // More segments than max_*_seg: the driver broke §5.2.6.1, and this request shape is unsupported (as QEMU answers).
    const n = outLen / SEG_BYTES;
    if (n > (zeroes ? MAX_WRITE_ZEROES_SEG : MAX_DISCARD_SEG)) return S_UNSUPP;
    const data = gather(this.transport.mem, c.readable, 16, outLen);
    const v = new DataView(data.buffer, data.byteOffset, data.byteLength);
    const segs: { start: number; count: number; unmap: boolean }[] = [];
    for (let i = 0; i < n; i++) {
      const at = i * SEG_BYTES;
      const start = v.getUint32(at, true) + v.getUint32(at + 4, true) * 2 ** 32;
      const count = v.getUint32(at + 8, true), flags = v.getUint32(at + 12, true);
      // §5.2.6.2 (device): UNSUPP for any unknown flag, and for discard also for the unmap flag. This rule
      // is absolute, so it is checked for every segment before the range checks below can answer IOERR.
      if (flags & ~(zeroes ? FLAG_UNMAP : 0)) return S_UNSUPP;
      segs.push({ start, count, unmap: (flags & FLAG_UNMAP) !== 0 });
    }
    // Oversized segments (beyond max_*_sectors) and ranges past capacity are driver errors: IOERR, as QEMU.
    for (const s of segs) if (s.count > MAX_RANGE_SECTORS || !this.inRange(s.start, s.count * SECTOR)) return S_IOERR;
    for (const s of segs) {
      if (zeroes) b.writeZeroes!(s.start * SECTOR, s.count * SECTOR, s.unmap);
      else b.discard!(s.start * SECTOR, s.count * SECTOR);
    }
    return S_OK;
  }

  /** Whether `bytes` from sector `start` lie within capacity. */
  private inRange(start: number, bytes: number): boolean { return start <= this.sectors && bytes <= (this.sectors - start) * SECTOR; }
}
