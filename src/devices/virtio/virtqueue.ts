// Split virtqueues (virtio 1.2 §2.7), the one ring implementation every virtio device here uses. The rings
// live in guest RAM and are written by a guest we do not trust, so every index, address and length is
// checked before use: a ring the driver broke (index jumps, descriptor loops, bad next/indirect entries)
// stops the queue and the transport sets DEVICE_NEEDS_RESET (§2.1.2); a well-formed chain that points
// outside RAM is handed to the device marked bad, so it can complete it with its own error status.
// Nothing here allocates in proportion to a guest-supplied number beyond the queue size.

import type { GuestMemory } from '../../memory/guest-memory.ts';

// Descriptor flags (§2.7.5).
export const VIRTQ_DESC_F_NEXT = 1;
export const VIRTQ_DESC_F_WRITE = 2;
export const VIRTQ_DESC_F_INDIRECT = 4;
/** avail.flags: the driver does not want used-buffer notifications (§2.7.7, without EVENT_IDX). */
export const VIRTQ_AVAIL_F_NO_INTERRUPT = 1;

/** Per-queue state the driver programs through the transport plus the device's ring positions. */
export type QueueState = {
  size: number;
  ready: boolean;
  desc: number;
  driver: number;
  device: number;
  msixVector: number;
  /** Next avail ring entry the device will take (free-running 16-bit). */
  lastAvail: number;
  /** The used index the device last published. */
  usedIdx: number;
  /** used idx at the last interrupt decision, for VIRTIO_F_EVENT_IDX (§2.7.7). */
  signalledUsed: number;
};

export const NO_VECTOR = 0xffff;

export function newQueueState(size: number): QueueState {
  return { size, ready: false, desc: 0, driver: 0, device: 0, msixVector: NO_VECTOR, lastAvail: 0, usedIdx: 0, signalledUsed: 0 };
}

/** One guest buffer: guest-physical address and length. */
export interface Segment { addr: number; len: number }

/** A descriptor chain taken from the avail ring (§2.7.6, §2.7.5): device-readable buffers first, then writable. */
export interface Chain {
  head: number;
  readable: Segment[];
  writable: Segment[];
  readLen: number;
  writeLen: number;
  /** Set when a buffer lies outside guest RAM or the order is wrong; the device completes with an error. */
  error?: string;
}

/** What a queue needs from its transport. */
export interface QueueHost {
  readonly mem: GuestMemory;
  /** Negotiated VIRTIO_F_RING_INDIRECT_DESC / VIRTIO_F_RING_EVENT_IDX. */
  readonly indirect: boolean;
  readonly eventIdx: boolean;
  /** The driver broke a ring: the transport sets DEVICE_NEEDS_RESET and logs once. */
  broken(message: string): void;
  /** DEVICE_NEEDS_RESET is set: no queue is processed until the driver resets the device. */
  readonly needsReset: boolean;
}

/** Indirect tables beyond this are refused as broken; drivers keep chains within the queue size (§2.7.5.3.1). */
const MAX_INDIRECT = 1024;

/** §2.7.7: should the device notify, given the driver's used_event and the used index moving old → now? */
export function vringNeedEvent(event: number, now: number, old: number): boolean {
  return ((now - event - 1) & 0xffff) < ((now - old) & 0xffff);
}

export class Virtqueue {
  constructor(readonly host: QueueHost, readonly index: number, public state: QueueState) {}

  private get mem(): GuestMemory { return this.host.mem; }

  /** Whether [addr, addr+len) is guest RAM (device DMA never targets MMIO). */
  inRam(addr: number, len: number): boolean {
    return Number.isSafeInteger(addr) && addr >= 0 && len >= 0 && addr + len <= this.mem.ramSize;
  }

  /** Checks the three ring areas when the driver enables the queue (§2.7: alignment 16, 2, 4). */
  validate(): string | null {
    const s = this.state;
    if (s.size === 0 || (s.size & (s.size - 1))) return `queue ${this.index}: size ${s.size} is not a power of two`;
    if (s.desc % 16 || s.driver % 2 || s.device % 4) return `queue ${this.index}: misaligned ring address`;
    if (!this.inRam(s.desc, 16 * s.size) || !this.inRam(s.driver, 6 + 2 * s.size) || !this.inRam(s.device, 6 + 8 * s.size)) {
      return `queue ${this.index}: ring outside guest RAM`;
    }
    return null;
  }

  private fail(message: string): null {
    this.host.broken(`queue ${this.index}: ${message}`);
    return null;
  }

  /** Whether the driver has made buffers available that the device has not taken yet. */
  hasAvail(): boolean {
    const s = this.state;
    return s.ready && !this.host.needsReset && this.mem.read16(s.driver + 2) !== s.lastAvail;
  }

  /**
   * Takes the next available chain, or null when there is none (or the ring is broken). With EVENT_IDX,
   * an empty ring publishes avail_event (§2.7.10) = the next index we will look at, asking to be notified for it.
   */
  pop(): Chain | null {
    const s = this.state, mem = this.mem;
    if (!s.ready || this.host.needsReset) return null;
    const availIdx = mem.read16(s.driver + 2);
    const pending = (availIdx - s.lastAvail) & 0xffff;
    if (pending > s.size) return this.fail(`avail index ${availIdx} is ${pending} ahead of ${s.lastAvail}, more than the queue size ${s.size}`);
    if (pending === 0) {
      if (this.host.eventIdx) mem.write16(s.device + 4 + 8 * s.size, s.lastAvail);
      return null;
    }
    const head = mem.read16(s.driver + 4 + 2 * (s.lastAvail % s.size));
    s.lastAvail = (s.lastAvail + 1) & 0xffff;
    if (head >= s.size) return this.fail(`avail ring names descriptor ${head} of ${s.size}`);

    const chain: Chain = { head, readable: [], writable: [], readLen: 0, writeLen: 0 };
    let table = s.desc, tableLen = s.size, i = head, seen = 0, indirect = false;
    for (;;) {
      if (++seen > tableLen) return this.fail(`descriptor chain from ${head} loops or exceeds ${tableLen} entries`);
      const d = table + 16 * i;
      const addr = (mem.read32(d) >>> 0) + (mem.read32(d + 4) >>> 0) * 2 ** 32;
      const len = mem.read32(d + 8) >>> 0;
      const flags = mem.read16(d + 12), next = mem.read16(d + 14);
      if (flags & VIRTQ_DESC_F_INDIRECT) {
        // §2.7.5.3.1: only with the feature, never nested, never together with NEXT, a whole number of entries.
        if (!this.host.indirect) return this.fail('indirect descriptor without VIRTIO_F_RING_INDIRECT_DESC');
        if (indirect) return this.fail('nested indirect descriptor');
        if (flags & VIRTQ_DESC_F_NEXT) return this.fail('indirect descriptor with NEXT set');
        if (len === 0 || len % 16 || len / 16 > MAX_INDIRECT) return this.fail(`indirect table of ${len} bytes`);
        if (!this.inRam(addr, len)) return this.fail('indirect table outside guest RAM');
        table = addr; tableLen = len / 16; i = 0; seen = 0; indirect = true;
        continue;
      }
      if (flags & VIRTQ_DESC_F_WRITE) {
        if (len) { chain.writable.push({ addr, len }); chain.writeLen += len; }
      } else {
        // §2.7.5.2: device-readable descriptors come before device-writable ones.
        if (chain.writable.length) chain.error ??= 'readable descriptor after a writable one';
        if (len) { chain.readable.push({ addr, len }); chain.readLen += len; }
      }
      if (!this.inRam(addr, len)) chain.error ??= `buffer ${addr.toString(16)}+${len} outside guest RAM`;
      // Descriptors may repeat an address, but no real request needs more bytes than the guest has RAM.
      if (chain.readLen > mem.ramSize || chain.writeLen > mem.ramSize) chain.error ??= 'chain longer than guest RAM';
      if (!(flags & VIRTQ_DESC_F_NEXT)) break;
      i = next;
      if (i >= tableLen) return this.fail(`descriptor ${next} beyond the ${indirect ? 'indirect table' : 'ring'} (${tableLen})`);
    }
    return chain;
  }

  /** Returns a chain to the driver with `written` bytes written into its writable buffers (§2.7.8). */
  push(head: number, written: number): void {
    const s = this.state, mem = this.mem;
    if (!s.ready || this.host.needsReset) return;
    const e = s.device + 4 + 8 * (s.usedIdx % s.size);
    mem.write32(e, head);
    mem.write32(e + 4, written);
    s.usedIdx = (s.usedIdx + 1) & 0xffff;
    mem.write16(s.device + 2, s.usedIdx);
  }

  /**
   * Whether the used buffers published since the last call deserve an interrupt: with EVENT_IDX when the
   * used index crossed the driver's used_event (§2.7.7), otherwise unless avail.flags says NO_INTERRUPT.
   */
  shouldInterrupt(): boolean {
    const s = this.state, mem = this.mem;
    if (!s.ready || s.usedIdx === s.signalledUsed) return false;
    const old = s.signalledUsed;
    s.signalledUsed = s.usedIdx;
    if (this.host.eventIdx) return vringNeedEvent(mem.read16(s.driver + 4 + 2 * s.size), s.usedIdx, old);
    return !(mem.read16(s.driver) & VIRTQ_AVAIL_F_NO_INTERRUPT);
  }
}

/** Copies `len` bytes starting `offset` bytes into the chain's readable buffers (gather). */
export function gather(mem: GuestMemory, segs: Segment[], offset: number, len: number): Uint8Array {
  const out = new Uint8Array(len);
  let done = 0;
  for (const s of segs) {
    if (done >= len) break;
    if (offset >= s.len) { offset -= s.len; continue; }
    const n = Math.min(s.len - offset, len - done);
    mem.readBytes(s.addr + offset, n, out, done);
    done += n; offset = 0;
  }
  return out.subarray(0, done);
}

/** Copies `data` into the chain's writable buffers starting `offset` bytes in (scatter); returns bytes copied. */
export function scatter(mem: GuestMemory, segs: Segment[], offset: number, data: Uint8Array): number {
  let done = 0;
  for (const s of segs) {
    if (done >= data.length) break;
    if (offset >= s.len) { offset -= s.len; continue; }
    const n = Math.min(s.len - offset, data.length - done);
    mem.writeBytes(s.addr + offset, data.subarray(done, done + n));
    done += n; offset = 0;
  }
  return done;
}
