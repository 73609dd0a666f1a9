// What every NIC model shares: Ethernet frame checks and CRCs, the counters `trapeze run --stats` prints, and
// `NicPort`, the glue between a NetBackend and a device's receive path. A NIC has only a small on-chip
// receive FIFO: when the guest has posted no buffer, a frame waits there, and when that FIFO is full the
// frame is lost and counted as missed, exactly as on the wire. The backlog is therefore bounded.

import type { NetBackend } from './backend.ts';
import type { GuestMemory } from '../../memory/guest-memory.ts';
import type { Clock } from '../../machine/clock.ts';

export const ETH_HLEN = 14;
/** Shortest frame on the wire without its FCS (IEEE 802.3 §3.2.8: 64 bytes with FCS). */
export const ETH_ZLEN = 60;
/** Longest untagged frame without FCS (1500-byte payload), and with one 802.1Q tag. */
export const ETH_FRAME_MAX = 1514;
export const ETH_FRAME_MAX_VLAN = 1518;

/** Counters of one NIC (host-side telemetry, not guest-visible state). */
export interface NicStats {
  rxPackets: number; rxBytes: number; txPackets: number; txBytes: number;
  /** Frames the address filter rejected (normal on a shared segment). */
  rxFiltered: number;
  /** Frames lost because the guest had no buffer free and the FIFO was full, or the receiver was off. */
  rxMissed: number;
  /** Frames from the network shorter than a header or longer than the MTU allows. */
  rxMalformed: number;
  /** Transmit requests the datasheet says are dropped (bad length, bad descriptor). */
  txMalformed: number;
  /** DMA aimed outside guest RAM. */
  dmaFaults: number;
  regReads: number; regWrites: number;
  /** Accesses to reserved/unimplemented registers (ignored, reads return 0). */
  badRegAccesses: number;
  /** Interrupt assertions (rising edges of the INTx output). */
  interrupts: number;
}

export function newNicStats(): NicStats {
  return { rxPackets: 0, rxBytes: 0, txPackets: 0, txBytes: 0, rxFiltered: 0, rxMissed: 0, rxMalformed: 0, txMalformed: 0, dmaFaults: 0, regReads: 0, regWrites: 0, badRegAccesses: 0, interrupts: 0 };
}

export function formatNicStats(name: string, s: NicStats): string {
  return `${name}: rx ${s.rxPackets} pkts/${s.rxBytes} B, tx ${s.txPackets} pkts/${s.txBytes} B, filtered ${s.rxFiltered}, missed ${s.rxMissed}, ` +
    `malformed rx ${s.rxMalformed} tx ${s.txMalformed}, dma faults ${s.dmaFaults}, reg r/w ${s.regReads}/${s.regWrites} (bad ${s.badRegAccesses}), irqs ${s.interrupts}`;
}

let crcTable: Uint32Array | null = null;

/** The IEEE 802.3 frame check sequence (reflected CRC-32, §3.2.9), as stored after the frame (little-endian). */
export function ethernetFcs(data: Uint8Array, start = 0, end = data.length): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let c = 0xffffffff;
  for (let i = start; i < end; i++) c = crcTable[(c ^ data[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** Frame plus its 4 FCS bytes, as a MAC that does not strip the CRC hands it to memory. */
export function withFcs(frame: Uint8Array): Uint8Array {
  const out = new Uint8Array(frame.length + 4);
  out.set(frame);
  const fcs = ethernetFcs(frame);
  out[frame.length] = fcs; out[frame.length + 1] = fcs >>> 8; out[frame.length + 2] = fcs >>> 16; out[frame.length + 3] = fcs >>> 24;
  return out;
}

/**
 * The CRC-32 of a destination address computed MSB-first without final inversion: the 8390 and RTL8139
 * multicast filters index their 64-bit hash table with its top 6 bits (DP8390 datasheet "Multicast Address
 * Registers"; RTL8139 datasheet MAR0-7).
 */
export function multicastHash6(addr: Uint8Array, off = 0): number {
  let crc = 0xffffffff;
  for (let i = 0; i < 6; i++) {
    let b = addr[off + i];
    for (let k = 0; k < 8; k++, b >>= 1) {
      const top = (crc >>> 31) ^ (b & 1);
      crc = (crc << 1) >>> 0;
      if (top) crc = (crc ^ 0x04c11db7) >>> 0;
    }
  }
  return crc >>> 26;
}

export const isMulticast = (f: Uint8Array): boolean => (f[0] & 1) === 1;
export const isBroadcast = (f: Uint8Array): boolean => f[0] === 0xff && f[1] === 0xff && f[2] === 0xff && f[3] === 0xff && f[4] === 0xff && f[5] === 0xff;
export function macEquals(f: Uint8Array, off: number, mac: ArrayLike<number>): boolean {
  for (let i = 0; i < 6; i++) if (f[off + i] !== mac[i]) return false;
  return true;
}

/** 16-bit ones'-complement sum (RFC 1071) of data[start, end), added to `sum`; not folded, not inverted. */
export function onesSum(data: Uint8Array, start: number, end: number, sum = 0): number {
  let i = start;
  for (; i + 1 < end; i += 2) sum += (data[i] << 8) | data[i + 1];
  if (i < end) sum += data[i] << 8;
  return sum;
}
export function foldSum(sum: number): number {
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 0x10000);
  return sum;
}

/** Whether [addr, addr+len) is guest RAM a device may DMA to (not MMIO, not beyond the installed memory). */
export function dmaOk(mem: GuestMemory, addr: number, len: number): boolean {
  return Number.isFinite(addr) && addr >= 0 && len >= 0 && addr + len <= mem.ramSize;
}

export type StoreResult = 'ok' | 'full' | 'off';

export interface NicPortHooks {
  /** The device's address filter as programmed by the guest. */
  accepts(frame: Uint8Array): boolean;
  /** Writes a frame into the guest's receive buffers. 'full': no buffer now, 'off': receiver disabled. */
  store(frame: Uint8Array): StoreResult;
  /** Called when a frame that passed the filter is lost for lack of room (devices count it in a register). */
  missed(): void;
  /** The backend's link changed; the device updates its PHY status and interrupts. */
  linkChanged(up: boolean): void;
}

export interface NicPortOptions {
  /** Longest frame (no FCS) the device can take at all; longer ones are dropped as malformed. */
  maxFrame: number;
  /** Frames held while the guest has no buffer (the on-chip FIFO). */
  fifoFrames?: number;
  /** Called after a frame was stored, so a sleeping VM loop wakes up to take the interrupt. */
  wake?: () => void;
}

export class NicPort {
  readonly stats = newNicStats();
  private readonly fifo: Uint8Array[] = [];
  private readonly fifoFrames: number;

  constructor(readonly backend: NetBackend | null, private readonly hooks: NicPortHooks, private readonly opts: NicPortOptions) {
    this.fifoFrames = opts.fifoFrames ?? 16;
    backend?.onReceive((f) => this.receive(f));
    backend?.onLinkChange((up) => { hooks.linkChanged(up); opts.wake?.(); });
  }

  get linkUp(): boolean { return this.backend ? this.backend.linkUp : false; }
  get fifoDepth(): number { return this.fifo.length; }

  /** A frame from the network. Runts are padded to the minimum size as the sender's MAC would have done. */
  receive(frame: Uint8Array): void {
    if (frame.length < ETH_HLEN || frame.length > this.opts.maxFrame) { this.stats.rxMalformed++; return; }
    if (frame.length < ETH_ZLEN) { const p = new Uint8Array(ETH_ZLEN); p.set(frame); frame = p; }
    if (!this.hooks.accepts(frame)) { this.stats.rxFiltered++; return; }
    if (this.fifo.length === 0) {
      const r = this.hooks.store(frame);
      if (r === 'ok') { this.delivered(frame); return; }
      if (r === 'off') { this.stats.rxMissed++; return; }
    }
    if (this.fifo.length >= this.fifoFrames) { this.stats.rxMissed++; this.hooks.missed(); return; }
    this.fifo.push(frame);
  }

  /** Moves waiting frames into guest buffers; devices call it when the guest posts buffers. */
  drain(): void {
    while (this.fifo.length) {
      const r = this.hooks.store(this.fifo[0]);
      if (r === 'full') return;
      const f = this.fifo.shift()!;
      if (r === 'ok') this.delivered(f); else this.stats.rxMissed++;
    }
  }

  /** Empties the FIFO (device reset). */
  flush(): void { this.fifo.length = 0; }

  private delivered(frame: Uint8Array): void {
    this.stats.rxPackets++; this.stats.rxBytes += frame.length;
    this.opts.wake?.();
  }

  /** A frame the guest transmitted. */
  transmit(frame: Uint8Array): void {
    this.stats.txPackets++; this.stats.txBytes += frame.length;
    this.backend?.send(frame);
  }
}

/** What every NIC model is built from: guest memory for DMA, the machine clock for its timers, the host
 *  backend (null = cable unplugged), its MAC, a callback that wakes a halted vCPU on receive, a name. */
export interface NicOptions {
  mem: GuestMemory;
  clock: Clock;
  backend: NetBackend | null;
  mac?: ArrayLike<number>;
  wake?: () => void;
  name?: string;
}
