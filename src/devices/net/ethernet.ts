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

// --- IPv4 checksum and segmentation offload ----------------------------------------------------------------
// What NICs with "task offload" do to a frame the driver handed over with the checksums left for the hardware
// (RTL8139C+ IPCS/TCPCS/UDPCS and LGSEN, 82540EM IXSM/TXSM): the IPv4 header checksum (RFC 791 §3.1), the
// TCP (RFC 793 §3.1) and UDP (RFC 768) checksums over the pseudo-header, TCP segmentation, and the receive
// side's verification.

/** Offset of the IPv4 header in an Ethernet frame (after one optional 802.1Q tag), or -1 when it is not a
 *  complete IPv4 header. */
export function ipv4Offset(f: Uint8Array): number {
  let ip = ETH_HLEN, type = (f[12] << 8) | f[13];
  if (type === 0x8100 && f.length >= ETH_HLEN + 4) { type = (f[16] << 8) | f[17]; ip += 4; }
  if (type !== 0x0800 || f.length < ip + 20 || (f[ip] >> 4) !== 4) return -1;
  const ihl = (f[ip] & 0xf) * 4;
  return ihl >= 20 && ip + ihl <= f.length ? ip : -1;
}

export interface Ipv4Info {
  ip: number; ihl: number; proto: number;
  /** End of the IP datagram in the frame (total length, bounded by the frame). */
  end: number;
  /** A fragment (MF set or a non-zero offset): its transport header and checksum cover other frames too. */
  fragment: boolean;
}

export function ipv4Info(f: Uint8Array): Ipv4Info | null {
  const ip = ipv4Offset(f);
  if (ip < 0) return null;
  const ihl = (f[ip] & 0xf) * 4, total = (f[ip + 2] << 8) | f[ip + 3];
  const fragment = (((f[ip + 6] << 8) | f[ip + 7]) & 0x3fff) !== 0;
  return { ip, ihl, proto: f[ip + 9], end: Math.min(f.length, ip + Math.max(total, ihl)), fragment };
}

function put16(f: Uint8Array, at: number, v: number): void { f[at] = (v >> 8) & 0xff; f[at + 1] = v & 0xff; }

/** Fills in the IPv4 header checksum. */
export function fillIpv4Checksum(f: Uint8Array, i: Ipv4Info): void {
  put16(f, i.ip + 10, 0);
  put16(f, i.ip + 10, ~foldSum(onesSum(f, i.ip, i.ip + i.ihl)) & 0xffff);
}

/** Ones'-complement sum of the TCP/UDP segment and its IPv4 pseudo-header (addresses, protocol, length). */
function l4Sum(f: Uint8Array, i: Ipv4Info): number {
  const l4 = i.ip + i.ihl;
  return onesSum(f, l4, i.end, onesSum(f, i.ip + 12, i.ip + 20) + i.proto + (i.end - l4));
}

/** Where the TCP or UDP checksum field sits, or -1 when the segment is too short to hold its header. */
function l4CsumAt(i: Ipv4Info): number {
  const l4 = i.ip + i.ihl;
  if (i.proto === 6) return l4 + 20 <= i.end ? l4 + 16 : -1;
  if (i.proto === 17) return l4 + 8 <= i.end ? l4 + 6 : -1;
  return -1;
}

/** Fills in the TCP or UDP checksum of an unfragmented datagram; false when there is none to fill. A UDP
 *  checksum that computes to zero is sent as all ones (RFC 768: zero means "no checksum"). */
export function fillL4Checksum(f: Uint8Array, i: Ipv4Info): boolean {
  const at = l4CsumAt(i);
  if (at < 0 || i.fragment) return false;
  put16(f, at, 0);
  let c = ~foldSum(l4Sum(f, i)) & 0xffff;
  if (c === 0 && i.proto === 17) c = 0xffff;
  put16(f, at, c);
  return true;
}

/** Receive-side verification: whether the IPv4 header checksum holds, and the TCP/UDP one (null when it
 *  cannot be checked: other protocols, fragments, truncated headers, UDP sent without a checksum). */
export function checkIpv4(f: Uint8Array, i: Ipv4Info): { ipOk: boolean; l4Ok: boolean | null } {
  const ipOk = foldSum(onesSum(f, i.ip, i.ip + i.ihl)) === 0xffff;
  const at = l4CsumAt(i);
  if (at < 0 || i.fragment || (i.proto === 17 && f[at] === 0 && f[at + 1] === 0)) return { ipOk, l4Ok: null };
  return { ipOk, l4Ok: foldSum(l4Sum(f, i)) === 0xffff };
}

/**
 * TCP segmentation of one IPv4/TCP frame (RFC 793 header, payload up to the IP total length) into frames of
 * at most `mss` payload bytes: each repeats the Ethernet, IP and TCP headers with the IP total length and
 * identification, the TCP sequence number and both checksums redone; FIN and PSH stay on the last segment
 * and CWR on the first (RFC 3168 §6.1.2). Null when the frame is not TCP over unfragmented IPv4 or mss is 0.
 */
export function segmentTcpIpv4(f: Uint8Array, mss: number): Uint8Array[] | null {
  const i = ipv4Info(f);
  if (!i || i.proto !== 6 || i.fragment || mss <= 0) return null;
  const tcp = i.ip + i.ihl;
  if (tcp + 20 > i.end) return null;
  const hdr = tcp + (f[tcp + 12] >> 4) * 4;
  if (hdr < tcp + 20 || hdr > i.end) return null;
  const payload = i.end - hdr;
  const seq0 = ((f[tcp + 4] << 24) | (f[tcp + 5] << 16) | (f[tcp + 6] << 8) | f[tcp + 7]) >>> 0;
  const id0 = (f[i.ip + 4] << 8) | f[i.ip + 5];
  const out: Uint8Array[] = [];
  for (let off = 0, n = 0; off < payload || n === 0; off += mss, n++) {
    const len = Math.min(mss, payload - off), last = off + len >= payload;
    const s = new Uint8Array(hdr + len);
    s.set(f.subarray(0, hdr)); s.set(f.subarray(hdr + off, hdr + off + len), hdr);
    put16(s, i.ip + 2, hdr - i.ip + len);
    put16(s, i.ip + 4, (id0 + n) & 0xffff);
    const seq = (seq0 + off) >>> 0;
    put16(s, tcp + 4, seq >>> 16); put16(s, tcp + 6, seq & 0xffff);
    if (!last) s[tcp + 13] &= ~0x09; // FIN, PSH
    if (n > 0) s[tcp + 13] &= ~0x80; // CWR
    const si: Ipv4Info = { ...i, end: s.length };
    fillIpv4Checksum(s, si);
    fillL4Checksum(s, si);
    out.push(s);
    if (last) break;
  }
  return out;
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
