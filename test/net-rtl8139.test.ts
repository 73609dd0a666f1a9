// The RTL8139 model driven the way Linux's 8139too drives it: chip reset, read_eeprom's 93C46 bit-banging
// (including its 8-bit-address probe), the receive ring with CAPR/CBR and RxNoWrap, the four transmit
// descriptors, RCR filtering with the MAR hash, link state and the malformed cases.

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
