// The RTL8139 model driven the way Linux's 8139too drives it: chip reset, read_eeprom's 93C46 bit-banging
// (including its 8-bit-address probe), the receive ring with CAPR/CBR and RxNoWrap, the four transmit
// descriptors, RCR filtering with the MAR hash, link state and the malformed cases. Then C+ mode the way
// 8139cp drives it (cp_init_hw, cp_start_xmit, cp_rx_poll), and the Debian guest's own 8139cp end to end.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GuestMemory } from '../src/memory/guest-memory.ts';
import { Clock } from '../src/machine/clock.ts';
import { Rtl8139 } from '../src/devices/net/rtl8139.ts';
import { LoopbackBackend } from '../src/devices/net/backend.ts';
import { ethernetFcs, multicastHash6 } from '../src/devices/net/ethernet.ts';

const MAC = [0x52, 0x54, 0x00, 0x11, 0x22, 0x33];
const RXBUF = 0x100000, TXBUF = 0x200000;

function setup() {
  const mem = new GuestMemory(4 << 20);
  const be = new LoopbackBackend();
  const nic = new Rtl8139({ mem, clock: new Clock({ manual: true }), backend: be, mac: MAC });
  nic.writeConfig(0x04, 2, 0x0007);
  const bar = nic.bars[0]!;
  return {
    mem, be, nic,
    r8: (o: number) => bar.read(o, 1), r16: (o: number) => bar.read(o, 2), r32: (o: number) => bar.read(o, 4) >>> 0,
    w8: (o: number, v: number) => bar.write(o, 1, v), w16: (o: number, v: number) => bar.write(o, 2, v), w32: (o: number, v: number) => bar.write(o, 4, v >>> 0),
  };
}

/** 8139too's read_eeprom(). */
function readEeprom(s: ReturnType<typeof setup>, location: number, addrLen: number): number {
  const EE_CS = 0x08, EE_SK = 0x04, EE_DI = 0x02, EE_ENB = 0x80 | EE_CS;
  const cmd = location | (6 << addrLen);
  s.w8(0x50, EE_ENB & ~EE_CS);
  s.w8(0x50, EE_ENB);
  for (let i = 4 + addrLen; i >= 0; i--) {
    const d = cmd & (1 << i) ? EE_DI : 0;
    s.w8(0x50, EE_ENB | d); s.w8(0x50, EE_ENB | d | EE_SK);
  }
  s.w8(0x50, EE_ENB);
  let v = 0;
  for (let i = 16; i > 0; i--) {
    s.w8(0x50, EE_ENB | EE_SK);
    v = (v << 1) | (s.r8(0x50) & 1);
    s.w8(0x50, EE_ENB);
  }
  s.w8(0x50, ~EE_CS & 0xff);
  return v;
}

function open(s: ReturnType<typeof setup>) {
  s.w8(0x37, 0x10); // reset
  assert.equal(s.r8(0x37) & 0x10, 0, 'reset done');
  s.w8(0x37, 0x0c); // RE | TE
  // rx_config: 32K ring, RxNoWrap, accept broadcast and own address.
  s.w32(0x44, (2 << 11) | (1 << 7) | (7 << 8) | (7 << 13) | 0x0a);
  s.w32(0x30, RXBUF);
  for (let i = 0; i < 4; i++) s.w32(0x20 + 4 * i, TXBUF + 0x800 * i);
  s.w16(0x3c, 0xe07f); // IMR: everything 8139too enables
}

function ether(dst: number[], len: number): Uint8Array {
  const f = new Uint8Array(len);
  f.set(dst); f.set([2, 0, 0, 0, 0, 9], 6); f[12] = 0x08; f[13] = 0x00;
  for (let i = 14; i < len; i++) f[i] = i & 0xff;
  return f;
}

test('identity: TCR says RTL8139C+, PCI revision below 0x20, MAC from the 93C46 as 8139too reads it', () => {
  const s = setup();
  assert.equal(s.r32(0x40) & 0x7cc00000, 0x74800000);
  assert.ok(s.nic.readConfig(0x08, 1) < 0x20);
  // 8139too first probes with 8 address bits and expects 0x8129 only from a 93C56.
  assert.notEqual(readEeprom(s, 0, 8), 0x8129);
  assert.equal(readEeprom(s, 0, 6), 0x8129);
  const w = [7, 8, 9].map((i) => readEeprom(s, i, 6));
  assert.deepEqual(w.flatMap((x) => [x & 0xff, x >> 8]), MAC);
  assert.deepEqual([0, 1, 2, 3, 4, 5].map((i) => s.r8(i)), MAC, 'IDR0-5 auto-loaded');
  assert.ok(s.r16(0x64) & 4, 'BMSR link');
  assert.equal(s.r8(0x58) & 4, 0, 'MSR LINKB clear = link ok');
});

test('transmit: TSD write sends from TSAD, sets OWN|TOK and TOK interrupt, round-robin descriptors', () => {
  const s = setup();
  open(s);
  for (let i = 0; i < 5; i++) {
    const f = ether([0xff, 0xff, 0xff, 0xff, 0xff, 0xff], 60 + i);
    const d = i & 3;
    s.mem.writeBytes(TXBUF + 0x800 * d, f);
    s.w32(0x10 + 4 * d, f.length | (8 << 16));
    assert.deepEqual([...s.be.sent[i]], [...f]);
    const tsd = s.r32(0x10 + 4 * d);
    assert.ok(tsd & (1 << 13) && tsd & (1 << 15), 'OWN | TOK');
    assert.ok(s.nic.state.intx);
    assert.ok(s.r16(0x3e) & 4);
    s.w16(0x3e, 4);
    assert.ok(!s.nic.state.intx, 'ISR write-one-to-clear deasserts');
  }
  assert.equal(s.r16(0x60) & 0xf000, 0xf000, 'TSAD summary: all TOK');
});

test('receive: header, frame and CRC at CBR; CAPR frees space; BUFE; RxNoWrap continues past the end', () => {
  const s = setup();
  open(s);
  assert.ok(s.r8(0x37) & 1, 'BUFE when empty');
  const f = ether(MAC, 100);
  s.be.inject(f);
  assert.equal(s.r8(0x37) & 1, 0, 'not empty');
  assert.equal(s.mem.read16(RXBUF) & 1, 1, 'ROK');
  assert.ok(s.mem.read16(RXBUF) & (1 << 14), 'PAM');
  assert.equal(s.mem.read16(RXBUF + 2), 104, 'length with CRC');
  assert.deepEqual([...s.mem.readBytes(RXBUF + 4, 100)], [...f]);
  assert.equal(s.mem.read32(RXBUF + 104) >>> 0, ethernetFcs(f));
  assert.equal(s.r16(0x3a), 108, 'CBR');
  assert.ok(s.r16(0x3e) & 1, 'ROK interrupt');
  // Driver consumes: cur_rx = 108, CAPR = cur_rx - 16.
  s.w16(0x38, 108 - 16);
  assert.ok(s.r8(0x37) & 1, 'empty again');
  // Fill to just before the end of the 32K ring so the next packet straddles it.
  let cur = 108;
  const big = ether(MAC, 1514);
  while (cur + 1522 < 32768) { s.be.inject(big); cur = (cur + 4 + 1518 + 3) & ~3; s.w16(0x38, (cur - 16) & 0xffff); }
  s.be.inject(big);
  assert.equal(s.mem.read16(RXBUF + cur + 2), 1518);
  assert.deepEqual([...s.mem.readBytes(RXBUF + cur + 4, 1514)], [...big], 'written linearly past the ring end (WRAP=1)');
  assert.equal(s.r16(0x3a), ((cur + 1522 + 3) & ~3) % 32768, 'CBR wrapped');
});

test('filtering: own address, broadcast, multicast via the MAR hash, promiscuous', () => {
  const s = setup();
  open(s);
  s.be.inject(ether([0x52, 0x54, 0, 9, 9, 9], 60));
  assert.equal(s.nic.stats.rxFiltered, 1);
  const mc = [0x01, 0x00, 0x5e, 0x00, 0x00, 0x01];
  s.w32(0x44, s.r32(0x44) | 4); // AM
  s.be.inject(ether(mc, 60));
  assert.equal(s.nic.stats.rxFiltered, 2, 'hash bit not set');
  const h = multicastHash6(Uint8Array.from(mc));
  s.w8(0x08 + (h >> 3), 1 << (h & 7));
  s.be.inject(ether(mc, 60));
  assert.equal(s.nic.stats.rxPackets, 1);
  assert.ok(s.mem.read16(RXBUF) & (1 << 15), 'MAR status bit');
  s.w32(0x44, s.r32(0x44) | 1); // AAP
  s.be.inject(ether([0x52, 0x54, 0, 9, 9, 9], 60));
  assert.equal(s.nic.stats.rxPackets, 2);
});

test('malformed and overflow: bad TX sizes abort with TER, ring overflow counts MPC and RXOVW, bounded FIFO, link change', () => {
  const s = setup();
  open(s);
  s.w32(0x10, 2000); // > 1792
  assert.ok(s.r32(0x10) & (1 << 30), 'TABT');
  assert.ok(s.r16(0x3e) & 8, 'TER');
  s.w32(0x14, 5);
  assert.equal(s.nic.stats.txMalformed, 2);
  s.w32(0x28, 0xfff00000); // TSAD2 outside memory
  s.w32(0x18, 100);
  assert.equal(s.nic.stats.dmaFaults, 1);
  assert.equal(s.be.sent.length, 0);
  // Nobody reads the ring: it fills, then the FIFO, then frames are missed.
  for (let i = 0; i < 200; i++) s.be.inject(ether(MAC, 1514));
  assert.ok(s.nic.port.fifoDepth <= 16);
  assert.ok(s.r32(0x4c) > 0, 'MPC counts missed packets');
  assert.ok(s.r16(0x3e) & 0x10, 'RXOVW');
  s.be.inject(new Uint8Array(8));
  assert.equal(s.nic.stats.rxMalformed, 1);
  s.w8(0x56, 1); // reserved
  assert.equal(s.nic.stats.badRegAccesses, 1);
  s.w16(0x3e, 0xffff);
  s.be.setLink(false);
  assert.ok(s.r16(0x3e) & 0x20, 'LinkChg');
  assert.equal(s.r16(0x64) & 4, 0, 'BMSR link down');
  assert.ok(s.r8(0x58) & 4, 'MSR LINKB set');
});

// --- C+ mode, driven the way Linux's 8139cp drives it ------------------------------------------------------------

const RING = 0x300000, RXBUFS = 0x310000, TXBUFS = 0x350000, CP_RX = 64, CP_TX = 64, RX_BUF_SZ = 1536;
const OWN = 0x80000000, EOR = 1 << 30, FS = 1 << 29, LS = 1 << 28;

function setupCp() {
  const mem = new GuestMemory(4 << 20);
  const be = new LoopbackBackend();
  const nic = new Rtl8139({ mem, clock: new Clock({ manual: true }), backend: be, mac: MAC, cplus: true });
  nic.writeConfig(0x04, 2, 0x0007);
  const bar = nic.bars[1]!; // 8139cp uses the MMIO BAR
  return {
    mem, be, nic,
    r8: (o: number) => bar.read(o, 1), r16: (o: number) => bar.read(o, 2), r32: (o: number) => bar.read(o, 4) >>> 0,
    w8: (o: number, v: number) => bar.write(o, 1, v), w16: (o: number, v: number) => bar.write(o, 2, v), w32: (o: number, v: number) => bar.write(o, 4, v >>> 0),
  };
}
type Cp = ReturnType<typeof setupCp>;

const rxDesc = (i: number) => RING + 16 * i;
const txDesc = (i: number) => RING + 16 * CP_RX + 16 * i;
const w32 = (s: Cp, a: number, v: number) => s.mem.write32(a, v >>> 0);
const rd32 = (s: Cp, a: number) => s.mem.read32(a) >>> 0;

/** cp_refill_rx for one slot: buffer, opts2 0, OWN (and EOR on the ring's last slot) with the buffer size. */
function armRx(s: Cp, i: number, ringSize = CP_RX) {
  w32(s, rxDesc(i) + 4, 0);
  w32(s, rxDesc(i) + 8, RXBUFS + 2048 * i); w32(s, rxDesc(i) + 12, 0);
  w32(s, rxDesc(i), OWN | (i === ringSize - 1 ? EOR : 0) | RX_BUF_SZ);
}

/** cp_init_one's cp_stop_hw, then cp_open: cp_alloc_rings, cp_init_hw (cp_reset_hw, cp_start_hw, rx mode, …), cp_enable_irq. */
function cpOpen(s: Cp, { rxRing = CP_RX, cpcmd = 0x2b } = {}) {
  // cp_stop_hw
  s.w16(0x3e, ~s.r16(0x3e) & 0xffff); s.w16(0x3c, 0); s.w8(0x37, 0); s.w16(0xe0, 0); s.w16(0x3e, ~s.r16(0x3e) & 0xffff);
  // cp_init_rings: TX ring zeroed with EOR on the last slot; RX ring all armed.
  for (let i = 0; i < CP_TX; i++) { for (let k = 0; k < 16; k += 4) w32(s, txDesc(i) + k, 0); }
  w32(s, txDesc(CP_TX - 1), EOR);
  for (let i = 0; i < rxRing; i++) armRx(s, i, rxRing);
  // cp_init_hw
  s.w8(0x37, 0x10);
  assert.equal(s.r8(0x37) & 0x10, 0, 'reset completes');
  s.w8(0x50, 0xc0);
  s.w32(0x00, MAC[0] | (MAC[1] << 8) | (MAC[2] << 16) | (MAC[3] << 24)); s.w32(0x04, MAC[4] | (MAC[5] << 8));
  // cp_start_hw: CpCmd first, then the ring addresses, then RxOn | TxOn.
  s.w16(0xe0, cpcmd);
  s.w32(0x28, 0); s.w32(0x2c, 0);
  s.w32(0xe4, RING); s.w32(0xe8, 0);
  s.w32(0x20, RING + 16 * CP_RX); s.w32(0x24, 0);
  s.w8(0x37, 0x0c);
  s.w8(0xec, 0x06);
  s.w32(0x44, (5 << 13) | (4 << 8) | 0x08 | 0x02); // __cp_set_rx_mode: broadcast and own address
  s.w32(0x08, 0); s.w32(0x0c, 0);
  s.w32(0x40, (3 << 24) | (6 << 8));
  s.w8(0x52, s.r8(0x52) | 0x21); s.w8(0x59, 0x40); s.w8(0xd8, s.r8(0xd8) & 1); s.w16(0x5c, 0);
  s.w8(0x50, 0x00);
  s.w16(0x3c, 0x80ff); // cp_intr_mask
}

/** cp_start_xmit for one linear skb: opts2, address, then opts1 with OWN last; TxPoll NPQ. */
function xmit(s: Cp, entry: number, frame: Uint8Array, opts1 = 0, opts2 = 0) {
  const buf = TXBUFS + 0x10000 * (entry & 3);
  s.mem.writeBytes(buf, frame);
  w32(s, txDesc(entry) + 4, opts2); w32(s, txDesc(entry) + 8, buf); w32(s, txDesc(entry) + 12, 0);
  w32(s, txDesc(entry), OWN | (entry === CP_TX - 1 ? EOR : 0) | FS | LS | opts1 | frame.length);
  s.w8(0xd9, 0x40);
}

/** RFC 1071 checksum, written out here independently of the model's helpers. */
function csum(b: Uint8Array, start: number, end: number, init = 0): number {
  let sum = init;
  for (let i = start; i < end; i += 2) sum += (b[i] << 8) | (i + 1 < end ? b[i + 1] : 0);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum;
}
function ipOk(f: Uint8Array, ip = 14) { return csum(f, ip, ip + (f[ip] & 15) * 4) === 0xffff; }
function l4Ok(f: Uint8Array, ip = 14) {
  const ihl = (f[ip] & 15) * 4, tot = (f[ip + 2] << 8) | f[ip + 3], proto = f[ip + 9];
  const pseudo = csum(f, ip + 12, ip + 20) + proto + (tot - ihl);
  return csum(f, ip + ihl, ip + tot, pseudo) === 0xffff;
}

/** An IPv4 frame to `dst` with checksums zeroed, as a driver using offload hands it over. proto 6 or 17. */
function ipFrame(dst: number[], proto: number, payload: number, flags = 0x18): Uint8Array {
  const l4 = proto === 6 ? 20 : 8, f = new Uint8Array(14 + 20 + l4 + payload);
  f.set(dst); f.set([2, 0, 0, 0, 0, 9], 6); f[12] = 0x08; f[13] = 0x00;
  const ip = 14, tot = 20 + l4 + payload;
  f.set([0x45, 0, tot >> 8, tot & 0xff, 0x12, 0x34, 0x40, 0, 64, proto, 0, 0, 10, 0, 2, 15, 10, 0, 2, 2], ip);
  const t = ip + 20;
  f.set([0x30, 0x39, 0x00, 0x50], t);
  if (proto === 6) { f.set([0x11, 0x22, 0x33, 0x44, 0, 0, 0, 1, 0x50, flags, 0x20, 0x00], t + 4); }
  else { f[t + 4] = (8 + payload) >> 8; f[t + 5] = (8 + payload) & 0xff; }
  for (let i = 0; i < payload; i++) f[t + l4 + i] = (i * 7 + 3) & 0xff;
  return f;
}

test('C+ identity: revision 0x20 for 8139cp, IntrMitigate and CPCR read back, TxPoll reads 0', () => {
  const s = setupCp();
  assert.equal(s.nic.readConfig(0x08, 1), 0x20);
  cpOpen(s);
  assert.equal(s.r16(0xe0), 0x2b, 'CPCR: MulRW | RxChkSum | CpRxOn | CpTxOn');
  s.w16(0xe0, 0xffff);
  assert.equal(s.r16(0xe0), 0x7b, 'only the defined CPCR bits are writable');
  s.w16(0xe2, 0x1234);
  assert.equal(s.r16(0xe2), 0x1234);
  assert.equal(s.r8(0xd9), 0);
  assert.equal(s.r32(0xe4), RING, 'RDSAR');
  assert.equal(s.r32(0x20), RING + 16 * CP_RX, 'TNPDS');
  s.w8(0x37, 0x10);
  assert.equal(s.r16(0xe0), 0, 'reset leaves C+ mode');
});

test('C+ transmit: descriptors with OWN/FS/LS, checksum offload (IPCS|UDPCS, IPCS|TCPCS), TOK, EOR wrap, VLAN insertion, fragments', () => {
  const s = setupCp();
  cpOpen(s);
  const udp = ipFrame([0xff, 0xff, 0xff, 0xff, 0xff, 0xff], 17, 100);
  xmit(s, 0, udp, (1 << 18) | (1 << 17));
  assert.equal(s.be.sent.length, 1);
  const u = s.be.sent[0];
  assert.ok(ipOk(u) && l4Ok(u), 'IP and UDP checksums filled in');
  assert.deepEqual([...u.subarray(42)], [...udp.subarray(42)], 'payload unchanged');
  const d0 = rd32(s, txDesc(0));
  assert.equal(d0 & OWN, 0, 'OWN returned to the driver');
  assert.equal(d0 & (FS | LS), FS | LS);
  assert.equal(d0 & (1 << 23), 0, 'no TxError');
  assert.ok(s.r16(0x3e) & 4, 'TxOK');
  assert.ok(s.nic.state.intx);
  s.w16(0x3e, 0xffff);

  const tcp = ipFrame(MAC, 6, 333);
  xmit(s, 1, tcp, (1 << 18) | (1 << 16));
  assert.ok(ipOk(s.be.sent[1]) && l4Ok(s.be.sent[1]), 'TCP checksum filled in');
  xmit(s, 2, tcp);
  assert.ok(!ipOk(s.be.sent[2]), 'without IPCS the frame goes out as given');

  // VLAN: opts2 = TxVlanTag | swab16(tci).
  const tci = 0x2005;
  xmit(s, 3, udp, 0, (1 << 17) | ((tci >> 8) | ((tci & 0xff) << 8)));
  const v = s.be.sent[3];
  assert.deepEqual([...v.subarray(12, 16)], [0x81, 0x00, 0x20, 0x05], '802.1Q tag after the source address');
  assert.deepEqual([...v.subarray(16)], [...udp.subarray(12)]);

  // Walk to the ring's end: slot 63 has EOR, the next packet goes to slot 0 again.
  for (let i = 4; i < CP_TX; i++) xmit(s, i, ether(MAC, 60 + i));
  assert.equal(s.be.sent.length, CP_TX);
  assert.ok(rd32(s, txDesc(CP_TX - 1)) & EOR, 'EOR kept in the status');
  xmit(s, 0, ether(MAC, 99));
  assert.equal(s.be.sent.length, CP_TX + 1, 'after EOR the chip continues at slot 0');
  assert.equal(s.be.sent[CP_TX].length, 99);

  // A fragmented skb: fragments first, the FS descriptor last (cp_start_xmit's order), one TxPoll.
  const big = ether(MAC, 1000);
  const parts = [[0, 300], [300, 700], [700, 1000]];
  parts.forEach(([a, b], k) => s.mem.writeBytes(TXBUFS + 0x1000 * k, big.subarray(a, b)));
  for (const k of [2, 1, 0]) {
    const e = 1 + k, [a, b] = parts[k];
    w32(s, txDesc(e) + 4, 0); w32(s, txDesc(e) + 8, TXBUFS + 0x1000 * k); w32(s, txDesc(e) + 12, 0);
    w32(s, txDesc(e), OWN | (k === 0 ? FS : 0) | (k === 2 ? LS : 0) | (b - a));
  }
  s.w8(0xd9, 0x40);
  assert.deepEqual([...s.be.sent[CP_TX + 1]], [...big], 'gathered from FS to LS');
  for (let e = 1; e <= 3; e++) assert.equal(rd32(s, txDesc(e)) & OWN, 0);
});

test('C+ large send (LGSEN + MSS): TCP segments with their own headers, sequence numbers and checksums', () => {
  const s = setupCp();
  cpOpen(s);
  const payload = 2500, mss = 1000;
  const f = ipFrame(MAC, 6, payload, 0x19); // PSH | ACK | FIN
  xmit(s, 0, f, (1 << 27) | (mss << 16));
  assert.equal(s.be.sent.length, 3);
  s.be.sent.forEach((seg, n) => {
    const len = Math.min(mss, payload - n * mss);
    assert.equal(seg.length, 54 + len);
    assert.equal((seg[16] << 8) | seg[17], 40 + len, 'IP total length');
    assert.equal((seg[18] << 8) | seg[19], (0x1234 + n) & 0xffff, 'IP identification increments');
    const seq = ((seg[38] << 24) | (seg[39] << 16) | (seg[40] << 8) | seg[41]) >>> 0;
    assert.equal(seq, 0x11223344 + n * mss);
    assert.equal(seg[47] & 0x09, n === 2 ? 0x09 : 0, 'FIN and PSH only on the last segment');
    assert.ok(ipOk(seg) && l4Ok(seg), `segment ${n} checksums`);
    assert.deepEqual([...seg.subarray(54)], [...f.subarray(54 + n * mss, 54 + n * mss + len)]);
  });
  assert.ok(s.r16(0x3e) & 4);
  // Large send of something that is not TCP/IPv4 cannot be done: TxError.
  xmit(s, 1, ipFrame(MAC, 17, 100), (1 << 27) | (mss << 16));
  assert.equal(s.be.sent.length, 3);
  assert.ok(rd32(s, txDesc(1)) & (1 << 23), 'TES');
  assert.ok(s.r16(0x3e) & 8, 'TxErr');
});

test('C+ receive: descriptors get FS|LS, length with CRC, PAM/BAR, checksum status, VLAN tag; ring wraps at EOR', () => {
  const s = setupCp();
  cpOpen(s, { rxRing: 4, cpcmd: 0x2b | 0x40 }); // a 4-slot ring, with RxVlanOn
  const f = ipFrame(MAC, 17, 200);
  const good = f.slice();
  // fill in correct checksums with the test's own code
  let c = ~csum(good, 14, 34) & 0xffff; good[24] = c >> 8; good[25] = c & 0xff;
  const pseudo = csum(good, 26, 34) + 17 + 208;
  c = ~csum(good, 34, 34 + 208, pseudo) & 0xffff; good[40] = c >> 8; good[41] = c & 0xff;
  assert.ok(ipOk(good) && l4Ok(good));
  s.be.inject(good);
  const st = rd32(s, rxDesc(0));
  assert.equal(st & OWN, 0);
  assert.equal(st & (FS | LS), FS | LS);
  assert.equal(st & 0x1fff, good.length + 4, 'length includes the CRC');
  assert.ok(st & (1 << 25), 'PAM');
  assert.equal((st >>> 16) & 3, 2, 'protocol: UDP/IP');
  assert.equal(st & ((1 << 15) | (1 << 14)), 0, 'IP and UDP checksums good');
  assert.equal(st & (1 << 20), 0, 'no RxError');
  assert.deepEqual([...s.mem.readBytes(RXBUFS, good.length)], [...good]);
  assert.equal(s.mem.read32(RXBUFS + good.length) >>> 0, ethernetFcs(good));
  assert.ok(s.r16(0x3e) & 1, 'RxOK');
  assert.ok(s.nic.state.intx);

  // A corrupted UDP checksum is reported (UDPF), so 8139cp leaves verification to the stack.
  const bad = good.slice(); bad[60] ^= 0xff;
  s.be.inject(bad);
  const st1 = rd32(s, rxDesc(1));
  assert.ok(st1 & (1 << 14), 'UDPF');
  assert.equal(st1 & (1 << 15), 0, 'IP header still fine');

  // Broadcast with an 802.1Q tag: the tag moves to opts2 (TAVA | swab16(tci)) and leaves the frame.
  const tagged = new Uint8Array(64);
  tagged.fill(0xff, 0, 6); tagged.set([2, 0, 0, 0, 0, 9], 6); tagged.set([0x81, 0x00, 0x30, 0x07, 0x08, 0x06], 12);
  s.be.inject(tagged);
  const st2 = rd32(s, rxDesc(2)), o2 = rd32(s, rxDesc(2) + 4);
  assert.ok(st2 & (1 << 24), 'BAR');
  assert.equal(st2 & 0x1fff, 60 + 4);
  assert.ok(o2 & (1 << 16), 'TAVA');
  const tag = o2 & 0xffff;
  assert.equal(((tag & 0xff) << 8) | (tag >> 8), 0x3007);
  assert.deepEqual([...s.mem.readBytes(RXBUFS + 2 * 2048 + 12, 2)], [0x08, 0x06], 'EtherType follows the addresses');

  // Slot 3 has EOR: the fifth frame goes to slot 0 once the driver has re-armed it (cp_rx_poll).
  s.be.inject(ether(MAC, 70));
  assert.equal(rd32(s, rxDesc(3)) & 0x1fff, 74);
  assert.ok(rd32(s, rxDesc(3)) & EOR, 'EOR stays');
  s.w16(0x3e, 0x53); // cp_rx_intr_mask
  armRx(s, 0, 4);
  s.w16(0x3c, 0x80ff);
  s.be.inject(ether(MAC, 80));
  assert.equal(rd32(s, rxDesc(0)) & 0x1fff, 84, 'wrapped to slot 0');
  assert.equal(s.nic.stats.rxPackets, 5);
});

test('C+ RDU: no descriptor owned by the NIC raises RxEmpty, frames wait in the FIFO until the driver refills', () => {
  const s = setupCp();
  cpOpen(s, { rxRing: 2 });
  s.be.inject(ether(MAC, 60)); s.be.inject(ether(MAC, 61));
  s.w16(0x3e, 0xffff);
  s.be.inject(ether(MAC, 62));
  assert.ok(s.r16(0x3e) & 0x10, 'RDU');
  assert.ok(s.nic.state.intx);
  assert.equal(s.nic.port.fifoDepth, 1);
  // cp_rx_poll: ack the RX events, consume and re-arm both slots, unmask.
  s.w16(0x3e, 0x53);
  armRx(s, 0, 2); armRx(s, 1, 2);
  s.w16(0x3c, 0x80ff);
  assert.equal(s.nic.port.fifoDepth, 0, 'the waiting frame was stored');
  assert.equal(rd32(s, rxDesc(0)) & 0x1fff, 66);
  // Never re-armed: the FIFO fills, then frames are missed and counted.
  for (let i = 0; i < 40; i++) s.be.inject(ether(MAC, 100));
  assert.ok(s.nic.port.fifoDepth <= 16);
  assert.ok(s.r32(0x4c) > 0, 'MPC');
  assert.ok(s.nic.stats.rxMissed > 0);
});

test('C+ bad input: rings outside memory, bad lengths, rings the guest never releases; bounded work, no exceptions', () => {
  const s = setupCp();
  cpOpen(s);
  // Transmit buffer outside guest memory: the packet ends with TES | FIFO underrun and TxErr.
  w32(s, txDesc(0) + 8, 0xfff00000); w32(s, txDesc(0) + 12, 0);
  w32(s, txDesc(0), OWN | FS | LS | 100);
  s.w8(0xd9, 0x40);
  assert.equal(rd32(s, txDesc(0)) & (OWN | (1 << 23) | (1 << 25)), (1 << 23) | (1 << 25));
  assert.ok(s.r16(0x3e) & 8);
  assert.equal(s.nic.stats.dmaFaults, 1);
  // Zero-length and oversized (no large send) packets are refused.
  xmit(s, 1, new Uint8Array(0));
  assert.ok(rd32(s, txDesc(1)) & (1 << 23));
  xmit(s, 2, ether(MAC, 6000));
  assert.ok(rd32(s, txDesc(2)) & (1 << 23));
  assert.equal(s.be.sent.length, 0);
  assert.equal(s.nic.stats.txMalformed, 2);
  // A 64-bit buffer address beyond this machine.
  w32(s, txDesc(3) + 8, 0); w32(s, txDesc(3) + 12, 1); w32(s, txDesc(3), OWN | FS | LS | 60);
  s.w8(0xd9, 0x40);
  assert.ok(rd32(s, txDesc(3)) & (1 << 23));
  // A transmit ring nobody terminates: 2048 NIC-owned descriptors without EOR or LS. One TxPoll walks at most
  // 1024 of them and returns.
  s.w8(0x37, 0x00); s.w8(0x37, 0x0c); // restart the transmitter at slot 0
  const runaway = 0x100000;
  for (let i = 0; i < 2048; i++) { w32(s, runaway + 16 * i, OWN | 10); w32(s, runaway + 16 * i + 8, TXBUFS); }
  s.w32(0x20, runaway);
  s.w8(0xd9, 0x40);
  assert.equal(rd32(s, runaway + 16 * 1023) & OWN, 0, 'the 1024th descriptor was handed back');
  assert.ok(rd32(s, runaway + 16 * 1024) & OWN, 'nothing past the poll bound was touched');
  assert.equal(s.be.sent.length, 0);
  // Transmit ring in no memory: the fetch fails with a system error (PciErr).
  s.w16(0x3e, 0xffff);
  s.w32(0x20, 0xffff0000);
  s.w8(0xd9, 0x40);
  assert.ok(s.r16(0x3e) & 0x8000, 'SERR');
  // Receive buffer outside memory: the descriptor comes back with RxError, RxErr raised.
  s.w16(0x3e, 0xffff);
  w32(s, rxDesc(0) + 8, 0xfff00000);
  s.be.inject(ether(MAC, 64));
  assert.ok(rd32(s, rxDesc(0)) & (1 << 20), 'RES');
  assert.equal(rd32(s, rxDesc(0)) & OWN, 0);
  assert.ok(s.r16(0x3e) & 2, 'RxErr');
  // A receive ring of zero-sized buffers holds nothing: the frame is dropped, RxErr, no endless walk.
  for (let i = 0; i < CP_RX; i++) w32(s, rxDesc(i), OWN | (i === CP_RX - 1 ? EOR : 0));
  s.w16(0x3e, 0xffff);
  const missed = s.nic.stats.rxMissed;
  s.be.inject(ether(MAC, 64));
  assert.ok(s.r16(0x3e) & 2);
  assert.equal(s.nic.stats.rxMissed, missed + 1);
  // Receive ring outside memory.
  s.w32(0xe4, 0xfff00000);
  s.be.inject(ether(MAC, 64));
  assert.ok(s.r16(0x3e) & 0x8000);
});

test('C+ TxPoll FSWInt raises SWInt, an empty poll raises TDU, DTCCR dumps the tally counters', () => {
  const s = setupCp();
  cpOpen(s);
  s.w16(0x3c, 0x81ff);
  s.w8(0xd9, 0x01);
  assert.ok(s.r16(0x3e) & 0x100, 'SWInt');
  assert.ok(s.nic.state.intx);
  s.w16(0x3e, 0xffff);
  s.w8(0xd9, 0x40);
  assert.ok(s.r16(0x3e) & 0x80, 'TDU: nothing owned by the NIC');
  s.w16(0x3e, 0xffff);
  // The high-priority ring (THPDS) is polled by HPQ, ahead of the normal ring when both bits are set.
  const HI = 0x3e0000;
  s.mem.writeBytes(TXBUFS + 0x8000, ether(MAC, 77));
  w32(s, HI + 8, TXBUFS + 0x8000); w32(s, HI + 12, 0); w32(s, HI, OWN | EOR | FS | LS | 77);
  s.w32(0x28, HI); s.w32(0x2c, 0);
  xmit(s, 0, ether(MAC, 60)); // also sets NPQ
  assert.deepEqual(s.be.sent.map((f) => f.length), [60]);
  s.w8(0xd9, 0xc0);
  assert.deepEqual(s.be.sent.map((f) => f.length), [60, 77]);
  assert.equal(rd32(s, HI) & OWN, 0);
  s.be.sent.length = 0;
  xmit(s, 1, ether(MAC, 60));
  s.be.inject(ether([0xff, 0xff, 0xff, 0xff, 0xff, 0xff], 60));
  s.be.inject(ether(MAC, 60));
  // cp_get_ethtool_stats: high half, then low half with DumpStats; poll until the bit clears.
  const STATS = 0x3f0000;
  s.w32(0x14, 0); s.w32(0x10, STATS | 8);
  assert.equal(s.r32(0x10) & 8, 0, 'dump complete');
  const d = new DataView(s.mem.readBytes(STATS, 64).buffer);
  assert.equal(d.getUint32(0, true), 3, 'tx_ok');
  assert.equal(d.getUint32(8, true), 2, 'rx_ok');
  assert.equal(d.getUint32(40, true), 1, 'rx_ok_phys');
  assert.equal(d.getUint32(48, true), 1, 'rx_ok_bcast');
  assert.equal(s.be.sent.length, 1, 'DTCCR writes never transmit through the C-mode TSD path');
});

test('C mode still works after C+ mode and a reset (8139too after 8139cp on the same chip)', () => {
  const s = setupCp();
  cpOpen(s);
  s.w8(0x37, 0x10);
  s.w8(0x37, 0x0c);
  s.w32(0x44, (2 << 11) | (1 << 7) | 0x0a);
  s.w32(0x30, RXBUF);
  s.w32(0x20, TXBUF);
  const f = ether(MAC, 100);
  s.be.inject(f);
  assert.equal(s.mem.read16(RXBUF + 2), 104, 'ring-buffer receive');
  s.mem.writeBytes(TXBUF, f);
  s.w32(0x10, f.length);
  assert.deepEqual([...s.be.sent[0]], [...f], 'TSD transmit');
});

// The Debian guest's own 8139cp on `--nic user,model=rtl8139cp` is exercised end to end in test/net-boot.test.ts.
