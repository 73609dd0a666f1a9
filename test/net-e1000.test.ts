// The 82540EM model driven the way Linux's e1000 driver drives it: EEPROM by bit-banging EECD and by EERD,
// PHY through MDIC, transmit and receive rings, offloads, interrupt causes and moderation, and the
// malformed cases a buggy or hostile driver can produce.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GuestMemory } from '../src/memory/guest-memory.ts';
import { Clock } from '../src/machine/clock.ts';
import { E1000 } from '../src/devices/net/e1000.ts';
import { LoopbackBackend } from '../src/devices/net/backend.ts';
import { ethernetFcs, foldSum, onesSum } from '../src/devices/net/ethernet.ts';

const MAC = [0x52, 0x54, 0x00, 0xaa, 0xbb, 0xcc];
const TXR = 0x10000, RXR = 0x11000, TXBUF = 0x20000, RXBUF = 0x40000;

function setup() {
  const mem = new GuestMemory(4 << 20);
  const clock = new Clock({ manual: true });
  const be = new LoopbackBackend();
  const nic = new E1000({ mem, clock, backend: be, mac: MAC });
  nic.writeConfig(0x04, 2, 0x0007); // I/O, memory, bus master
  const bar = nic.bars[0]!;
  const rd = (o: number) => bar.read(o, 4) >>> 0;
  const wr = (o: number, v: number) => bar.write(o, 4, v >>> 0);
  return { mem, clock, be, nic, rd, wr };
}

/** e1000_shift_out_ee_bits / e1000_shift_in_ee_bits for a Microwire part, word by word. */
function eepromReadBitBang(rd: (o: number) => number, wr: (o: number, v: number) => void, addr: number): number {
  const EECD = 0x10, SK = 1, CS = 2, DI = 4, DO = 8, REQ = 0x40, GNT = 0x80;
  let e = rd(EECD) | REQ;
  wr(EECD, e);
  assert.ok(rd(EECD) & GNT, 'EEPROM access granted');
  e = (e & ~(DI | SK)) | CS;
  wr(EECD, e);
  const out = (data: number, count: number) => {
    for (let mask = 1 << (count - 1); mask; mask >>= 1) {
      e = (e & ~DI) | (data & mask ? DI : 0);
      wr(EECD, e); wr(EECD, e | SK); wr(EECD, e);
    }
  };
  out(0b110, 3); // READ opcode with start bit
  out(addr, 6);
  let v = 0;
  for (let i = 0; i < 16; i++) {
    wr(EECD, e | SK);
    v = (v << 1) | (rd(EECD) & DO ? 1 : 0);
    wr(EECD, e);
  }
  wr(EECD, e & ~CS);
  wr(EECD, (e & ~(CS | REQ)));
  return v;
}

function frame(dst: number[], src: number[], type: number, payload: number[]): Uint8Array {
  return Uint8Array.from([...dst, ...src, type >> 8, type & 0xff, ...payload]);
}

function ipv4Udp(dst: number[], payloadLen: number): Uint8Array {
  const f = new Uint8Array(14 + 20 + 8 + payloadLen);
  f.set(dst, 0); f.set(MAC, 6); f[12] = 0x08; f[13] = 0x00;
  const ip = 14;
  f[ip] = 0x45; const tot = 20 + 8 + payloadLen; f[ip + 2] = tot >> 8; f[ip + 3] = tot & 0xff; f[ip + 8] = 64; f[ip + 9] = 17;
  f.set([10, 0, 2, 15], ip + 12); f.set([10, 0, 2, 2], ip + 16);
  const c = ~foldSum(onesSum(f, ip, ip + 20)) & 0xffff; f[ip + 10] = c >> 8; f[ip + 11] = c & 0xff;
  const u = ip + 20; f[u] = 0x30; f[u + 1] = 0x39; f[u + 2] = 0x00; f[u + 3] = 0x35; f[u + 4] = (8 + payloadLen) >> 8; f[u + 5] = (8 + payloadLen) & 0xff;
  for (let i = 0; i < payloadLen; i++) f[u + 8 + i] = i * 7;
  return f;
}

function l4Valid(f: Uint8Array): boolean {
  const ip = 14, ihl = (f[ip] & 15) * 4, tot = (f[ip + 2] << 8) | f[ip + 3];
  const sum = onesSum(f, ip + 12, ip + 20) + f[ip + 9] + (tot - ihl);
  return foldSum(onesSum(f, ip + ihl, ip + tot, sum)) === 0xffff;
}

function txRing(s: ReturnType<typeof setup>, n = 8) {
  s.wr(0x3800, TXR); s.wr(0x3804, 0); s.wr(0x3808, n * 16); s.wr(0x3810, 0); s.wr(0x3818, 0);
  s.wr(0x0400, (1 << 1) | (1 << 3)); // TCTL.EN | PSP
}

function rxRing(s: ReturnType<typeof setup>, n = 8, rctl = (1 << 1) | (1 << 15)) {
  for (let i = 0; i < n; i++) { s.mem.write32(RXR + 16 * i, RXBUF + 2048 * i); s.mem.write32(RXR + 16 * i + 4, 0); s.mem.write32(RXR + 16 * i + 8, 0); s.mem.write32(RXR + 16 * i + 12, 0); }
  s.wr(0x2800, RXR); s.wr(0x2804, 0); s.wr(0x2808, n * 16); s.wr(0x2810, 0); s.wr(0x2818, n - 1);
  s.wr(0x0100, rctl);
}

test('EEPROM: the MAC and a 0xBABA checksum read by bit-banging EECD and through EERD', () => {
  const s = setup();
  const words: number[] = [];
  for (let a = 0; a < 64; a++) words.push(eepromReadBitBang(s.rd, s.wr, a));
  assert.equal(words.reduce((x, y) => x + y, 0) & 0xffff, 0xbaba);
  assert.deepEqual([words[0] & 0xff, words[0] >> 8, words[1] & 0xff, words[1] >> 8, words[2] & 0xff, words[2] >> 8], MAC);
  s.wr(0x14, (1 << 8) | 1); // EERD word 1
  const eerd = s.rd(0x14);
  assert.ok(eerd & 0x10, 'DONE');
  assert.equal(eerd >>> 16, MAC[2] | (MAC[3] << 8));
  assert.deepEqual(s.nic.mac, MAC, 'RAL0/RAH0 loaded from the EEPROM');
});

test('reset, STATUS link, PHY identity and link through MDIC', () => {
  const s = setup();
  s.wr(0x00, 1 << 26); // CTRL.RST
  assert.equal(s.rd(0x00) & (1 << 26), 0, 'RST self-clears');
  assert.ok(s.rd(0x08) & 2, 'STATUS.LU');
  const mdicRead = (reg: number) => { s.wr(0x20, (2 << 26) | (1 << 21) | (reg << 16)); const v = s.rd(0x20); assert.ok(v & (1 << 28), 'ready'); return v & 0xffff; };
  assert.equal(mdicRead(2), 0x0141); assert.equal(mdicRead(3), 0x0c20);
  assert.ok(mdicRead(1) & 4, 'PHY link status');
  s.wr(0x20, (2 << 26) | (2 << 21) | (1 << 16)); // wrong PHY address
  assert.ok(s.rd(0x20) & (1 << 30), 'MDIC error for PHY address 2');
  s.wr(0xd0, 1 << 2); // IMS.LSC
  s.be.setLink(false);
  assert.equal(s.rd(0x08) & 2, 0, 'link down in STATUS');
  assert.equal(mdicRead(1) & 4, 0, 'link down in the PHY');
  assert.ok(s.nic.state.intx, 'LSC interrupt');
  assert.ok(s.rd(0xc0) & 4, 'ICR.LSC');
  assert.ok(!s.nic.state.intx, 'reading ICR deasserts');
});

test('transmit: legacy descriptor reaches the backend, DD written back, TXDW interrupt', () => {
  const s = setup();
  txRing(s);
  s.wr(0xd0, 0x1); // IMS.TXDW
  const f = frame([0xff, 0xff, 0xff, 0xff, 0xff, 0xff], MAC, 0x0806, new Array(28).fill(1));
  s.mem.writeBytes(TXBUF, f);
  s.mem.write32(TXR, TXBUF); s.mem.write32(TXR + 4, 0);
  s.mem.write32(TXR + 8, f.length | ((1 | 2 | 8) << 24)); // EOP | IFCS | RS
  s.mem.write32(TXR + 12, 0);
  s.wr(0x3818, 1);
  assert.equal(s.be.sent.length, 1);
  assert.equal(s.be.sent[0].length, 60, 'padded to 60 bytes (TCTL.PSP)');
  assert.deepEqual([...s.be.sent[0].subarray(0, f.length)], [...f]);
  assert.equal(s.mem.read8(TXR + 12) & 1, 1, 'DD');
  assert.equal(s.rd(0x3810), 1, 'TDH advanced');
  assert.ok(s.nic.state.intx);
  assert.ok(s.rd(0xc0) & 1, 'TXDW');
  assert.equal(s.rd(0x4080), 1, 'GPTC counts the packet (clear on read)');
  assert.equal(s.rd(0x4080), 0);
});

test('transmit: context descriptor + data descriptor insert the UDP checksum; TSO splits TCP into MSS segments', () => {
  const s = setup();
  txRing(s, 16);
  const pkt = ipv4Udp([0x52, 0x54, 0, 1, 2, 3], 100);
  const u = 34;
  // As Linux does for CHECKSUM_PARTIAL: the pseudo-header sum is left in the checksum field.
  const pseudo = foldSum(onesSum(pkt, 26, 34) + 17 + 108);
  pkt[u + 6] = pseudo >> 8; pkt[u + 7] = pseudo & 0xff;
  s.mem.writeBytes(TXBUF, pkt);
  // Context: TUCSS=34, TUCSO=40, TUCSE=0.
  s.mem.write32(TXR, 0); s.mem.write32(TXR + 4, (u + 6) << 8 | u); s.mem.write32(TXR + 8, (1 << 29)); s.mem.write32(TXR + 12, 0);
  s.mem.write32(TXR + 16, TXBUF); s.mem.write32(TXR + 20, 0);
  s.mem.write32(TXR + 24, pkt.length | (1 << 20) | ((1 | 8 | 32) << 24)); s.mem.write32(TXR + 28, 2 << 8); // TXSM
  s.wr(0x3818, 2);
  assert.equal(s.be.sent.length, 1);
  assert.ok(l4Valid(s.be.sent[0]), 'UDP checksum valid');

  // TSO: a TCP/IPv4 packet with 350 payload bytes, MSS 100, header 54 bytes.
  const hdr = 54, pay = 350;
  const t = new Uint8Array(hdr + pay);
  t.set([0x52, 0x54, 0, 1, 2, 3], 0); t.set(MAC, 6); t[12] = 8; t[13] = 0;
  t[14] = 0x45; t[14 + 8] = 64; t[14 + 9] = 6; t.set([10, 0, 2, 15], 26); t.set([10, 0, 2, 2], 30); t[18] = 0x12; t[19] = 0x34;
  t[34] = 0x04; t[35] = 0x00; t[36] = 0x00; t[37] = 80; t.set([0, 0, 0x10, 0], 38); t[46] = 0x50; t[47] = 0x18 | 0x01; t[48] = 0xff; // PSH|ACK|FIN
  for (let i = 0; i < pay; i++) t[hdr + i] = (i * 13) & 0xff;
  const ps = foldSum(onesSum(t, 26, 34) + 6); t[50] = ps >> 8; t[51] = ps & 0xff; // pseudo-header without length
  s.mem.writeBytes(TXBUF + 0x1000, t);
  const c = TXR + 32;
  s.mem.write32(c, (33 << 16) | (24 << 8) | 14); // IPCSS 14, IPCSO 24, IPCSE 33 (as Linux sets it)
  s.mem.write32(c + 4, (50 << 8) | 34); // TUCSS 34, TUCSO 50
  s.mem.write32(c + 8, pay | ((1 | 2 | 4 | 32) << 24)); // PAYLEN, TUCMD TCP|IP|TSE|DEXT
  s.mem.write32(c + 12, (100 << 16) | (hdr << 8));
  const d = TXR + 48;
  s.mem.write32(d, TXBUF + 0x1000); s.mem.write32(d + 4, 0);
  s.mem.write32(d + 8, t.length | (1 << 20) | ((1 | 4 | 8 | 32) << 24)); s.mem.write32(d + 12, 3 << 8); // EOP TSE RS DEXT, IXSM|TXSM
  s.wr(0x3818, 4);
  const segs = s.be.sent.slice(1);
  assert.equal(segs.length, 4);
  let reassembled: number[] = [];
  segs.forEach((g, i) => {
    assert.equal(foldSum(onesSum(g, 14, 34)), 0xffff, `IP header checksum of segment ${i}`);
    assert.ok(l4Valid(g), `TCP checksum of segment ${i}`);
    assert.equal((g[18] << 8) | g[19], 0x1234 + i, 'IP ID increments');
    const seq = (g[38] << 24 | g[39] << 16 | g[40] << 8 | g[41]) >>> 0;
    assert.equal(seq, 0x1000 + 100 * i);
    assert.equal(g[47] & 0x09, i === 3 ? 0x09 : 0, 'FIN/PSH only on the last segment');
    reassembled = reassembled.concat([...g.subarray(hdr)]);
  });
  assert.deepEqual(reassembled, [...t.subarray(hdr)]);
});

test('receive: frame lands in guest memory with FCS, DD|EOP, RXT0 interrupt; filters as programmed', () => {
  const s = setup();
  rxRing(s);
  s.wr(0xd0, 0x80); // IMS.RXT0
  const f = ipv4Udp(MAC, 64);
  s.be.inject(f);
  assert.equal(s.mem.read16(RXR + 8), f.length + 4, 'length includes the FCS');
  assert.deepEqual([...s.mem.readBytes(RXBUF, f.length)], [...f]);
  assert.equal(s.mem.read32(RXBUF + f.length) >>> 0, ethernetFcs(f), 'FCS appended');
  assert.equal(s.mem.read8(RXR + 12) & 3, 3, 'DD | EOP');
  assert.equal(s.rd(0x2810), 1, 'RDH advanced');
  assert.ok(s.nic.state.intx);
  assert.ok(s.rd(0xc0) & 0x80);

  s.be.inject(ipv4Udp([0x52, 0x54, 0, 9, 9, 9], 10));
  assert.equal(s.nic.stats.rxFiltered, 1, 'other unicast filtered');
  const mc = [0x01, 0x00, 0x5e, 0x00, 0x00, 0xfb];
  s.be.inject(ipv4Udp(mc, 10));
  assert.equal(s.nic.stats.rxFiltered, 2, 'multicast without its MTA bit filtered');
  const hash = ((mc[4] >> 4) | (mc[5] << 4)) & 0xfff; // RCTL.MO = 0
  s.wr(0x5200 + 4 * (hash >> 5), 1 << (hash & 31));
  s.be.inject(ipv4Udp(mc, 10));
  assert.equal(s.rd(0x2810), 2, 'multicast accepted through the MTA');
  s.wr(0x0100, s.rd(0x0100) | (1 << 3)); // UPE
  s.be.inject(ipv4Udp([0x52, 0x54, 0, 9, 9, 9], 10));
  assert.equal(s.rd(0x2810), 3, 'promiscuous unicast');
  s.be.inject(frame([0xff, 0xff, 0xff, 0xff, 0xff, 0xff], [2, 0, 0, 0, 0, 1], 0x0806, [1, 2]));
  assert.equal(s.rd(0x2810), 4, 'short broadcast padded and accepted');
  assert.equal(s.mem.read16(RXR + 3 * 16 + 8), 64);
});

test('receive: checksum offload reports IPCS/TCPCS and flags a bad UDP checksum', () => {
  const s = setup();
  rxRing(s);
  s.wr(0x5000, (1 << 8) | (1 << 9)); // RXCSUM IPOFL | TUOFL
  const good = ipv4Udp(MAC, 20);
  const ps = onesSum(good, 26, 34) + 17 + 28;
  const cs = ~foldSum(onesSum(good, 34, good.length, ps)) & 0xffff;
  good[40] = cs >> 8; good[41] = cs & 0xff;
  s.be.inject(good);
  assert.equal(s.mem.read8(RXR + 12) & 0x60, 0x60, 'IPCS | TCPCS');
  assert.equal(s.mem.read8(RXR + 13), 0, 'no errors');
  good[41] ^= 0xff;
  s.be.inject(good);
  assert.equal(s.mem.read8(RXR + 16 + 13) & 0x20, 0x20, 'TCPE');
});

test('interrupt moderation: ITR spaces interrupts at least ITR x 256 ns apart', () => {
  const s = setup();
  s.wr(0xc4, 1000); // 256 us
  s.wr(0xd0, 0x10); // IMS.RXDMT0 (any cause works)
  s.wr(0xc8, 0x10); // ICS
  assert.ok(s.nic.state.intx, 'first interrupt at once');
  s.rd(0xc0);
  s.clock.advance(100_000);
  s.wr(0xc8, 0x10);
  assert.ok(!s.nic.state.intx, 'held back inside the interval');
  s.clock.advance(160_000);
  assert.ok(s.nic.state.intx, 'delivered when the interval expires');
  assert.equal(s.nic.stats.interrupts, 2);
});

test('malformed: runts and giants, rings outside memory, bad indexes, reserved registers, bounded backlog', () => {
  const s = setup();
  s.be.inject(new Uint8Array(10));
  s.be.inject(new Uint8Array(20000));
  assert.equal(s.nic.stats.rxMalformed, 2);
  // Receive ring pointing past guest RAM: the frame is dropped and counted, nothing is written.
  rxRing(s);
  s.wr(0x2800, 0x7ff00000);
  s.be.inject(ipv4Udp(MAC, 10));
  assert.equal(s.nic.stats.dmaFaults, 1);
  // No descriptors at all (RDLEN 0): frames wait in the bounded FIFO, then are missed and counted in MPC.
  s.wr(0x2808, 0);
  for (let i = 0; i < 100; i++) s.be.inject(ipv4Udp(MAC, 10));
  assert.ok(s.nic.port.fifoDepth <= 16, 'backlog bounded');
  assert.ok(s.nic.stats.rxMissed >= 84);
  assert.ok(s.rd(0x4010) >= 84, 'MPC');
  // Posting buffers drains the FIFO into the ring.
  s.wr(0x2800, RXR); s.wr(0x2808, 8 * 16); s.wr(0x2810, 0); s.wr(0x2818, 7);
  assert.equal(s.rd(0x2810), 7, 'seven waiting frames delivered');
  // Transmit tail beyond the ring and a data descriptor pointing outside memory.
  txRing(s, 8);
  s.wr(0x3818, 50);
  assert.equal(s.nic.stats.txMalformed, 1);
  s.wr(0x3818, 0);
  s.mem.write32(TXR, 0xfff00000); s.mem.write32(TXR + 4, 0); s.mem.write32(TXR + 8, 100 | ((1 | 8) << 24));
  s.wr(0x3818, 1);
  assert.equal(s.nic.stats.dmaFaults, 2);
  assert.equal(s.nic.stats.txMalformed, 2, 'the packet is dropped');
  assert.equal(s.mem.read8(TXR + 12) & 1, 1, 'faulting descriptor still completed (no hang)');
  assert.equal(s.be.sent.length, 0);
  // Reserved register: ignored, reads 0, counted.
  const badBefore = s.nic.stats.badRegAccesses;
  s.wr(0x0004, 0x1234);
  assert.equal(s.rd(0x0004), 0);
  assert.equal(s.nic.stats.badRegAccesses - badBefore, 2, `reserved accesses counted (before: ${badBefore})`);
  // A frame smaller than a header in the transmit path.
  s.mem.write32(TXR + 16, TXBUF); s.mem.write32(TXR + 20, 0); s.mem.write32(TXR + 24, 6 | ((1 | 8) << 24));
  s.wr(0x0400, 1 << 1); // no padding
  s.wr(0x3818, 2);
  assert.equal(s.nic.stats.txMalformed, 3);
  assert.equal(s.be.sent.length, 0);
});
