// virtio-net (virtio 1.2 §5.1): one receive and one transmit queue, the MAC and link status in the device
// configuration, mergeable receive buffers, and checksum offload in both directions. Frames go to and come
// from a NetBackend like the emulated NICs'. Every buffer starts with struct virtio_net_hdr, 12 bytes with
// VIRTIO_F_VERSION_1 (§5.1.6).

import { gather, scatter, type Chain, type Virtqueue } from './virtqueue.ts';
import type { VirtioDeviceModel, VirtioPci } from './pci-transport.ts';
import type { NetBackend } from '../net/backend.ts';
import { foldSum, onesSum, newNicStats, ETH_HLEN } from '../net/ethernet.ts';

// Feature bits (§5.1.3).
const F_CSUM = 0n, F_GUEST_CSUM = 1n, F_MAC = 5n, F_MRG_RXBUF = 15n, F_STATUS = 16n;
const HDR_LEN = 12;
const HDR_F_NEEDS_CSUM = 1;
const STATUS_LINK_UP = 1;
/** Receive frames held while the driver has posted no buffers (bounded, like a NIC's FIFO). */
const RX_BACKLOG = 64;
const MAX_FRAME = 65535;

export class VirtioNet implements VirtioDeviceModel {
  readonly deviceId = 1;
  readonly classCode = 0x020000;
  readonly features = (1n << F_CSUM) | (1n << F_GUEST_CSUM) | (1n << F_MAC) | (1n << F_MRG_RXBUF) | (1n << F_STATUS);
  readonly queueSizes = [256, 256];
  readonly configSize = 12;
  readonly stats = newNicStats();
  private transport!: VirtioPci;
  private readonly backlog: Uint8Array[] = [];

  constructor(private readonly backend: NetBackend | null, private readonly mac: ArrayLike<number>, private readonly wake?: () => void) {
    backend?.onReceive((f) => this.receive(f));
    backend?.onLinkChange(() => { if (this.transport) this.transport.configChanged(); wake?.(); });
  }

  attach(t: VirtioPci): void { this.transport = t; }

  reset(): void { this.backlog.length = 0; }

  /** struct virtio_net_config: mac[6], status, max_virtqueue_pairs (§5.1.4). */
  readConfig(off: number, size: 1 | 2 | 4): number {
    const b = new Uint8Array(12);
    for (let i = 0; i < 6; i++) b[i] = this.mac[i];
    b[6] = this.backend?.linkUp ? STATUS_LINK_UP : 0;
    b[8] = 1;
    let v = 0;
    for (let i = 0; i < size; i++) v |= (b[off + i] ?? 0) << (8 * i);
    return v >>> 0;
  }

  writeConfig(): void { this.stats.badRegAccesses++; } // §5.1.4: the MAC is read-only without CTRL_MAC_ADDR

  process(q: Virtqueue): void {
    if (q.index === 1) this.transmit(q);
    else this.drain();
  }

  private transmit(q: Virtqueue): void {
    const mem = this.transport.mem;
    for (let c = q.pop(); c; c = q.pop()) {
      if (c.error || c.readLen < HDR_LEN + ETH_HLEN || c.readLen > HDR_LEN + MAX_FRAME) { this.stats.txMalformed++; q.push(c.head, 0); continue; }
      const hdr = gather(mem, c.readable, 0, HDR_LEN);
      const frame = gather(mem, c.readable, HDR_LEN, c.readLen - HDR_LEN).slice();
      if (hdr[0] & HDR_F_NEEDS_CSUM) {
        // §5.1.6.2: checksum from csum_start to the end, stored at csum_start + csum_offset.
        const start = hdr[6] | (hdr[7] << 8), at = start + (hdr[8] | (hdr[9] << 8));
        if (at + 2 <= frame.length && start < frame.length) {
          const c16 = ~foldSum(onesSum(frame, start, frame.length)) & 0xffff;
          frame[at] = c16 >> 8; frame[at + 1] = c16 & 0xff;
        } else this.stats.txMalformed++;
      }
      this.stats.txPackets++; this.stats.txBytes += frame.length;
      if (this.backend?.linkUp) this.backend.send(frame);
      q.push(c.head, 0);
    }
  }

  private receive(frame: Uint8Array): void {
    if (frame.length < ETH_HLEN || frame.length > MAX_FRAME) { this.stats.rxMalformed++; return; }
    if (this.backlog.length >= RX_BACKLOG) { this.stats.rxMissed++; return; }
    this.backlog.push(frame);
    this.drain();
  }

  /**
   * Places waiting frames into receive buffers. With MRG_RXBUF a frame may use several chains and the
   * header's num_buffers says how many (§5.1.6.3.1); without it one chain must hold header and frame.
   */
  private drain(): void {
    const t = this.transport;
    if (!t || !(t.state.status & 4)) return;
    const q = t.queues[0], mem = t.mem;
    const mrg = t.has(F_MRG_RXBUF);
    let delivered = false;
    while (this.backlog.length && q.hasAvail()) {
      const frame = this.backlog[0];
      const data = new Uint8Array(HDR_LEN + frame.length);
      data.set(frame, HDR_LEN);
      const used: { c: Chain; n: number }[] = [];
      let off = 0;
      const saved = q.state.lastAvail;
      while (off < data.length) {
        const c = q.pop();
        if (!c) break;
        if (c.error || c.writeLen === 0) { used.push({ c, n: 0 }); continue; }
        const n = Math.min(c.writeLen, data.length - off);
        used.push({ c, n });
        off += n;
        if (!mrg) break;
      }
      if (off < data.length) {
        if (!mrg && used.length) { this.stats.rxMissed++; this.backlog.shift(); used.forEach((u) => q.push(u.c.head, 0)); continue; }
        q.state.lastAvail = saved; // not enough buffers yet: wait for more
        break;
      }
      const nbufs = used.filter((u) => u.n > 0).length;
      data[10] = nbufs & 0xff; data[11] = nbufs >> 8;
      off = 0;
      for (const u of used) { scatter(mem, u.c.writable, 0, data.subarray(off, off + u.n)); off += u.n; q.push(u.c.head, u.n); }
      this.backlog.shift();
      this.stats.rxPackets++; this.stats.rxBytes += frame.length;
      delivered = true;
    }
    if (delivered) { t.signal(0); this.wake?.(); }
  }
}
