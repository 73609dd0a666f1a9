// The virtio-pci transport, split virtqueues and the blk/console/rng device models, driven like a guest
// driver would: registers through the mapped BARs, rings and buffers built in guest memory, a raw image
// file as the disk. Includes every kind of malformed ring a hostile driver can build.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GuestMemory } from '../src/memory/guest-memory.ts';
import { IoBus } from '../src/machine/io-bus.ts';
import { PciBus } from '../src/machine/pci.ts';
import { VirtioPci, type VirtioDeviceModel } from '../src/devices/virtio/pci-transport.ts';
import { VirtioBlk } from '../src/devices/virtio/blk.ts';
import { VirtioConsole } from '../src/devices/virtio/console.ts';
import { VirtioRng } from '../src/devices/virtio/rng.ts';
import { RawImage } from '../src/backends/disk/raw.ts';
import type { BlockBackend } from '../src/devices/block-backend.ts';
import { restoreState, saveState } from '../src/devices/state.ts';

const dir = mkdtempSync(join(tmpdir(), 'trapeze-vq-'));
let nimg = 0;
function image(bytes: number, fill?: (b: Buffer) => void): string {
  const p = join(dir, `disk${nimg++}.img`);
  const b = Buffer.alloc(bytes);
  fill?.(b);
  writeFileSync(p, b);
  return p;
}

const RAM = 4 << 20;
const DESC = 0x10000, AVAIL = 0x11000, USED = 0x12000, BUF = 0x20000, IND = 0x18000;
const F_VERSION_1 = 32, F_INDIRECT = 28, F_EVENT_IDX = 29;

/** A minimal guest driver for one virtio-pci function. */
function setup(model: VirtioDeviceModel) {
  const mem = new GuestMemory(RAM);
  const bus = new PciBus({ io: new IoBus(), mem });
  const msis: [number, number][] = [];
  const logs: string[] = [];
  const dev = new VirtioPci('vt', model, { mem, msi: (a, d) => msis.push([a, d]), log: (m) => logs.push(m) });
  bus.add(dev, 3);
  bus.assignResources({ ioBase: 0xc000, ioEnd: 0x10000, memBase: 0xe0000000, memEnd: 0xfec00000 });
  const bar = dev.barAddress(0), msix = dev.barAddress(1);
  const common = (off: number) => bar + off;
  const d = {
    mem, dev, msis, logs, bar, msix,
    r8: (o: number) => mem.read8(common(o)), r16: (o: number) => mem.read16(common(o)), r32: (o: number) => mem.read32(common(o)) >>> 0,
    w8: (o: number, v: number) => mem.write8(common(o), v), w16: (o: number, v: number) => mem.write16(common(o), v), w32: (o: number, v: number) => mem.write32(common(o), v),
    size: 0,
    /** Negotiates `features` (bit numbers); returns whether FEATURES_OK stuck. */
    negotiate(features: number[]): boolean {
      d.w8(0x14, 0); d.w8(0x14, 1); d.w8(0x14, 3);
      const words = [0, 0];
      for (const f of features) words[f >> 5] |= 1 << (f & 31);
      d.w32(0x08, 0); d.w32(0x0c, words[0]); d.w32(0x08, 1); d.w32(0x0c, words[1]);
      d.w8(0x14, 0xb);
      return (d.r8(0x14) & 8) !== 0;
    },
    queue(q: number, size: number, at = { desc: DESC, avail: AVAIL, used: USED }) {
      d.w16(0x16, q); d.w16(0x18, size);
      d.w32(0x20, at.desc); d.w32(0x24, 0); d.w32(0x28, at.avail); d.w32(0x2c, 0); d.w32(0x30, at.used); d.w32(0x34, 0);
      d.w16(0x1c, 1);
      d.size = size;
    },
    start(features = [F_VERSION_1, F_INDIRECT, F_EVENT_IDX], size = 16, queues = [0]) {
      assert.ok(d.negotiate(features), 'FEATURES_OK');
      for (const q of queues) d.queue(q, size, { desc: DESC + q * 0x4000, avail: AVAIL + q * 0x4000, used: USED + q * 0x4000 });
      d.w8(0x14, 0xf);
    },
    desc(i: number, addr: number, len: number, flags: number, next = 0, table = DESC) {
      const e = table + 16 * i;
      mem.write32(e, addr); mem.write32(e + 4, 0); mem.write32(e + 8, len); mem.write16(e + 12, flags); mem.write16(e + 14, next);
    },
    avail(head: number, q = 0) {
      const a = AVAIL + q * 0x4000, idx = mem.read16(a + 2);
      mem.write16(a + 4 + 2 * (idx % d.size), head);
      mem.write16(a + 2, idx + 1);
    },
    notify(q = 0) { mem.write16(bar + 0x3000 + 4 * q, q); },
    usedIdx: (q = 0) => mem.read16(USED + q * 0x4000 + 2),
    used: (n: number, q = 0) => ({ id: mem.read32(USED + q * 0x4000 + 4 + 8 * (n % d.size)), len: mem.read32(USED + q * 0x4000 + 8 + 8 * (n % d.size)) }),
    needsReset: () => (d.r8(0x14) & 0x40) !== 0,
  };
  return d;
}

const NEXT = 1, WRITE = 2, INDIRECT = 4;

/** Lays out a blk request as header / data / status descriptors 0..2 and submits it. */
function blkRequest(d: ReturnType<typeof setup>, type: number, sector: number, dataLen: number, data?: Uint8Array) {
  const mem = d.mem;
  mem.write32(BUF, type); mem.write32(BUF + 4, 0); mem.write32(BUF + 8, sector); mem.write32(BUF + 12, 0);
  if (data) mem.writeBytes(BUF + 0x100, data);
  mem.write8(BUF + 0x80, 0xff);
  const dataWritable = type === 0 || type === 8;
  if (dataLen) {
    d.desc(0, BUF, 16, NEXT, 1);
    d.desc(1, BUF + 0x100, dataLen, NEXT | (dataWritable ? WRITE : 0), 2);
    d.desc(2, BUF + 0x80, 1, WRITE);
  } else {
    d.desc(0, BUF, 16, NEXT, 2);
    d.desc(2, BUF + 0x80, 1, WRITE);
  }
  d.avail(0);
  d.notify();
  return mem.read8(BUF + 0x80);
}

test('identity, capabilities and feature negotiation (§4.1.2, §4.1.4, §3.1.1)', () => {
  const d = setup(new VirtioBlk(RawImage.open(image(1 << 20), { lock: false })));
  assert.equal(d.dev.readConfig(0, 4), 0x10421af4);
  assert.ok(d.dev.readConfig(8, 1) >= 1, 'revision >= 1');
  // Walk the capability list: common, notify, ISR, device, pci-cfg vendor caps and MSI-X.
  const types: number[] = [];
  for (let p = d.dev.readConfig(0x34, 1); p; p = d.dev.readConfig(p + 1, 1)) {
    types.push(d.dev.readConfig(p, 1) === 9 ? d.dev.readConfig(p + 3, 1) : 0x100 | d.dev.readConfig(p, 1));
  }
  assert.deepEqual(types, [1, 2, 3, 4, 5, 0x111]);
  d.w32(0, 1);
  assert.equal(d.r32(4) & 1, 1, 'VERSION_1 offered in feature word 1');
  assert.equal(d.negotiate([]), false, 'FEATURES_OK refused without VERSION_1');
  assert.equal(d.negotiate([F_VERSION_1, 60]), false, 'FEATURES_OK refused for a feature not offered');
  assert.equal(d.negotiate([F_VERSION_1, 9]), true);
  assert.equal(d.r16(0x12), 1, 'num_queues');
  d.w16(0x16, 0);
  assert.equal(d.r16(0x18), 256, 'queue_size max');
  // The PCI-configuration access window reads common config (device_status) through config space.
  let cfg = 0;
  for (let p = d.dev.readConfig(0x34, 1); p; p = d.dev.readConfig(p + 1, 1)) if (d.dev.readConfig(p + 3, 1) === 5 && d.dev.readConfig(p, 1) === 9) cfg = p;
  d.dev.writeConfig(cfg + 4, 1, 0); d.dev.writeConfig(cfg + 8, 4, 0x14); d.dev.writeConfig(cfg + 12, 4, 1);
  assert.equal(d.dev.readConfig(cfg + 16, 4), 0xb);
});

test('virtio-blk: write, read back, flush after fsync, get-id, capacity, errors', () => {
  const path = image(1 << 20);
  let flushed = 0;
  const raw = RawImage.open(path, { lock: false });
  const d = setup(new VirtioBlk({
    get size() { return raw.size; }, readOnly: false,
    read: (o, b) => raw.read(o, b), write: (o, b) => raw.write(o, b), close: () => raw.close(),
    writeZeroes: (o, l, u) => raw.writeZeroes(o, l, u),
    flush() { assert.equal(d.usedIdx(), usedBefore, 'flush completes only after the backend flushed'); raw.flush(); flushed++; },
  } satisfies BlockBackend, { serial: 'SERIAL-1' }));
  let usedBefore = 0;
  d.start([F_VERSION_1, F_INDIRECT, F_EVENT_IDX, 14]);
  assert.equal(d.mem.read32(d.bar + 0x2000), 2048, 'capacity in sectors');
  assert.equal(d.mem.read32(d.bar + 0x2000 + 20), 512, 'blk_size');
  const data = Uint8Array.from({ length: 1024 }, (_, i) => (i * 7) & 0xff);
  assert.equal(blkRequest(d, 1, 5, 1024, data), 0, 'write OK');
  assert.deepEqual(d.used(0), { id: 0, len: 1 });
  assert.deepEqual(new Uint8Array(readFileSync(path).subarray(5 * 512, 7 * 512)), data, 'image holds the data');
  d.mem.writeBytes(BUF + 0x100, new Uint8Array(1024));
  assert.equal(blkRequest(d, 0, 5, 1024), 0, 'read OK');
  assert.deepEqual(d.mem.readBytes(BUF + 0x100, 1024), data);
  assert.deepEqual(d.used(1), { id: 0, len: 1025 });
  usedBefore = d.usedIdx();
  assert.equal(blkRequest(d, 4, 0, 0), 0, 'flush OK');
  assert.equal(flushed, 1);
  assert.equal(blkRequest(d, 8, 0, 20), 0, 'get-id OK');
  assert.equal(new TextDecoder().decode(d.mem.readBytes(BUF + 0x100, 8)), 'SERIAL-1');
  assert.equal(blkRequest(d, 0, 2047, 1024), 1, 'read past the end: IOERR');
  assert.equal(blkRequest(d, 0, 0, 100), 1, 'read of a partial sector: IOERR');
  assert.equal(blkRequest(d, 99, 0, 0), 2, 'unknown type: UNSUPP');
  // Write-zeroes of 2 sectors at 5 (one segment): the data reads back as zeros (more in virtio-blk-zeroes.test.ts).
  d.mem.write32(BUF, 13);
  d.mem.write32(BUF + 0x100, 5); d.mem.write32(BUF + 0x104, 0); d.mem.write32(BUF + 0x108, 2); d.mem.write32(BUF + 0x10c, 0);
  d.desc(0, BUF, 16, NEXT, 1); d.desc(1, BUF + 0x100, 16, NEXT, 2); d.desc(2, BUF + 0x80, 1, WRITE);
  d.avail(0); d.notify();
  assert.equal(d.mem.read8(BUF + 0x80), 0, 'write-zeroes OK');
  assert.ok(readFileSync(path).subarray(5 * 512, 7 * 512).every((b) => b === 0));
  assert.equal(d.logs.length, 0);
});

test('virtio-blk read-only: RO feature offered, writes fail with IOERR, reads work', () => {
  const path = image(64 * 1024, (b) => b.fill(0x5a));
  const d = setup(new VirtioBlk(RawImage.open(path, { readOnly: true, lock: false })));
  d.w32(0, 0);
  assert.ok(d.r32(4) & (1 << 5), 'VIRTIO_BLK_F_RO');
  d.start([F_VERSION_1, 5]);
  assert.equal(blkRequest(d, 1, 0, 512, new Uint8Array(512)), 1);
  assert.ok(readFileSync(path).every((b) => b === 0x5a), 'image unchanged');
  assert.equal(blkRequest(d, 0, 0, 512), 0);
  assert.equal(d.mem.read8(BUF + 0x100), 0x5a);
});

test('indirect descriptors (§2.7.5.3) and a request split over odd descriptor boundaries (§2.7.4)', () => {
  const path = image(64 * 1024, (b) => { for (let i = 0; i < b.length; i++) b[i] = i % 251; });
  const d = setup(new VirtioBlk(RawImage.open(path, { lock: false })));
  d.start();
  // Header in two pieces (10 + 6 bytes), data 512 in 3 pieces, status shares the last writable piece.
  d.mem.write32(BUF, 0); d.mem.write32(BUF + 4, 0); d.mem.write32(BUF + 8, 3); d.mem.write32(BUF + 12, 0);
  const t = IND;
  d.desc(0, BUF, 10, NEXT, 1, t);
  d.desc(1, BUF + 10, 6, NEXT, 2, t);
  d.desc(2, BUF + 0x100, 100, NEXT | WRITE, 3, t);
  d.desc(3, BUF + 0x200, 300, NEXT | WRITE, 4, t);
  d.desc(4, BUF + 0x400, 113, WRITE, 0, t);
  d.desc(0, IND, 5 * 16, INDIRECT);
  d.avail(0); d.notify();
  assert.deepEqual(d.used(0), { id: 0, len: 513 });
  const got = [...d.mem.readBytes(BUF + 0x100, 100), ...d.mem.readBytes(BUF + 0x200, 300), ...d.mem.readBytes(BUF + 0x400, 112)];
  assert.deepEqual(got, [...readFileSync(path).subarray(3 * 512, 4 * 512)]);
  assert.equal(d.mem.read8(BUF + 0x400 + 112), 0, 'status byte at the very end');
});

test('interrupts: MSI-X vectors, masking and pending bits; INTx with ISR; EVENT_IDX and NO_INTERRUPT suppression', () => {
  const d = setup(new VirtioRng());
  // INTx first: MSI-X disabled.
  d.start([F_VERSION_1]);
  d.desc(0, BUF, 32, WRITE); d.avail(0); d.notify();
  assert.equal(d.dev.state.intx, true, 'INTx asserted');
  assert.equal(d.mem.read8(d.bar + 0x1000), 1, 'ISR queue bit');
  assert.equal(d.dev.state.intx, false, 'reading ISR de-asserts');
  // NO_INTERRUPT in avail.flags suppresses it.
  d.mem.write16(AVAIL, 1);
  d.avail(0); d.notify();
  assert.equal(d.usedIdx(), 2);
  assert.equal(d.dev.state.intx, false);
  d.mem.write16(AVAIL, 0);

  // MSI-X: enable, program vector 1 for queue 0; entry masked → pending, unmask → delivered.
  const cap = (() => { for (let p = d.dev.readConfig(0x34, 1); p; p = d.dev.readConfig(p + 1, 1)) if (d.dev.readConfig(p, 1) === 0x11) return p; return 0; })();
  assert.equal(d.dev.readConfig(cap + 2, 2) & 0x7ff, 1, 'two vectors: config + one queue');
  d.dev.writeConfig(cap + 2, 2, 0x8000);
  d.mem.write32(d.msix + 16, 0xfee01000); d.mem.write32(d.msix + 20, 0); d.mem.write32(d.msix + 24, 0x41);
  d.w8(0x14, 0);
  d.mem.write16(AVAIL + 2, 0);
  d.start([F_VERSION_1, F_EVENT_IDX]);
  d.w16(0x16, 0); d.w16(0x1a, 1);
  assert.equal(d.r16(0x1a), 1);
  d.w16(0x1a, 7);
  assert.equal(d.r16(0x1a), 0xffff, 'a vector beyond the table reads back NO_VECTOR');
  d.w16(0x1a, 1);
  d.mem.write16(AVAIL + 4 + 2 * 16, 0); // used_event = 0: interrupt when used idx passes 0
  d.desc(0, BUF, 32, WRITE); d.avail(0); d.notify();
  assert.equal(d.msis.length, 0, 'masked entry');
  assert.equal(d.mem.read32(d.msix + 0x800), 2, 'pending bit for vector 1');
  d.mem.write32(d.msix + 28, 0);
  assert.deepEqual(d.msis, [[0xfee01000, 0x41]], 'delivered on unmask');
  assert.equal(d.mem.read32(d.msix + 0x800), 0);
  assert.equal(d.dev.state.intx, false, 'no INTx with MSI-X');
  // EVENT_IDX: avail_event published; used_event far ahead suppresses the interrupt.
  assert.equal(d.mem.read16(USED + 4 + 8 * 16), 1, 'avail_event = next avail index');
  d.mem.write16(AVAIL + 4 + 2 * 16, 5);
  d.avail(0); d.notify(); d.avail(0); d.notify();
  assert.equal(d.msis.length, 1, 'used idx 2, 3 do not pass used_event 5');
  for (let i = 0; i < 3; i++) { d.avail(0); d.notify(); }
  assert.equal(d.usedIdx(), 6);
  assert.equal(d.msis.length, 2, 'crossing used_event 5 interrupts once');
  assert.ok(!d.mem.readBytes(BUF, 32).every((b) => b === 0), 'rng filled the buffer');
});

test('virtio-console: transmit to the host, receive host input into posted buffers', () => {
  const out: number[] = [];
  const con = new VirtioConsole((b) => out.push(...b));
  const d = setup(con);
  d.start([F_VERSION_1], 16, [0, 1]);
  assert.equal(con.receive(Uint8Array.of(1, 2)), 0, 'no buffers yet');
  d.mem.writeBytes(BUF, new TextEncoder().encode('hello'));
  d.mem.write32(DESC + 0x4000, BUF); d.mem.write32(DESC + 0x4000 + 8, 5); d.mem.write16(DESC + 0x4000 + 12, 0);
  d.avail(0, 1); d.notify(1);
  assert.equal(new TextDecoder().decode(Uint8Array.from(out)), 'hello');
  d.desc(0, BUF + 0x100, 4, WRITE); d.avail(0, 0); d.notify(0);
  assert.equal(con.receive(new TextEncoder().encode('abcdef')), 4);
  assert.equal(new TextDecoder().decode(d.mem.readBytes(BUF + 0x100, 4)), 'abcd');
  assert.deepEqual(d.used(0, 0), { id: 0, len: 4 });
});

test('virtio-console MULTIPORT handshake: input waits for the driver to open port 0 (§5.3.6.2)', () => {
  const con = new VirtioConsole(() => {});
  const d = setup(con);
  d.start([F_VERSION_1, 1], 16, [0, 1, 2, 3]);
  const q = (n: number) => n * 0x4000;
  // Receive buffers for port 0 and the control receive queue.
  d.mem.write32(DESC + q(0), BUF + 0x100); d.mem.write32(DESC + q(0) + 8, 64); d.mem.write16(DESC + q(0) + 12, WRITE);
  d.avail(0, 0); d.notify(0);
  for (let i = 0; i < 4; i++) {
    const e = DESC + q(2) + 16 * i;
    d.mem.write32(e, BUF + 0x200 + 16 * i); d.mem.write32(e + 8, 8); d.mem.write16(e + 12, WRITE);
    d.avail(i, 2);
  }
  d.notify(2);
  assert.equal(con.receive(Uint8Array.of(0x41)), 0, 'port not open yet');
  const sendCtrl = (id: number, event: number, value: number) => {
    const at = BUF + 0x300;
    d.mem.write32(at, id); d.mem.write16(at + 4, event); d.mem.write16(at + 6, value);
    d.mem.write32(DESC + q(3), at); d.mem.write32(DESC + q(3) + 8, 8); d.mem.write16(DESC + q(3) + 12, 0);
    d.avail(0, 3); d.notify(3);
  };
  const ctrl = (i: number) => [d.mem.read32(BUF + 0x200 + 16 * i), d.mem.read16(BUF + 0x204 + 16 * i), d.mem.read16(BUF + 0x206 + 16 * i)];
  sendCtrl(0, 0, 1); // DEVICE_READY
  assert.deepEqual(ctrl(0), [0, 1, 0], 'DEVICE_ADD port 0');
  sendCtrl(0, 3, 1); // PORT_READY
  assert.deepEqual(ctrl(1), [0, 4, 1], 'CONSOLE_PORT');
  assert.deepEqual(ctrl(2), [0, 6, 1], 'PORT_OPEN from the host side');
  assert.equal(d.usedIdx(2), 3);
  assert.equal(con.receive(Uint8Array.of(0x41)), 0, 'still waiting for the driver');
  sendCtrl(0, 6, 1); // the driver opened the port
  assert.equal(con.receive(Uint8Array.of(0x41, 0x42)), 2);
  assert.equal(d.mem.read16(BUF + 0x100), 0x4241);
});

/** Every way a driver can break a ring: one log line, DEVICE_NEEDS_RESET, a config interrupt, and recovery by reset. */
test('malformed rings set DEVICE_NEEDS_RESET (§2.1.2) and never throw or hang', () => {
  const cases: [string, (d: ReturnType<typeof setup>) => void][] = [
    ['descriptor loop', (d) => { d.desc(0, BUF, 16, NEXT, 1); d.desc(1, BUF, 16, NEXT, 0); d.avail(0); }],
    ['self loop', (d) => { d.desc(0, BUF, 16, NEXT, 0); d.avail(0); }],
    ['next beyond the ring', (d) => { d.desc(0, BUF, 16, NEXT, 999); d.avail(0); }],
    ['head beyond the ring', (d) => { d.avail(40); }],
    ['avail index jumps past the queue size', (d) => { d.mem.write16(AVAIL + 2, 1000); }],
    ['indirect loop', (d) => { d.desc(0, BUF, 16, NEXT, 1, IND); d.desc(1, BUF, 16, NEXT, 0, IND); d.desc(0, IND, 32, INDIRECT); d.avail(0); }],
    ['nested indirect', (d) => { d.desc(0, IND + 0x100, 16, INDIRECT, 0, IND); d.desc(0, IND, 16, INDIRECT); d.avail(0); }],
    ['indirect with NEXT', (d) => { d.desc(0, IND, 16, INDIRECT | NEXT, 1); d.avail(0); }],
    ['indirect table of 0 bytes', (d) => { d.desc(0, IND, 0, INDIRECT); d.avail(0); }],
    ['indirect table not a multiple of 16', (d) => { d.desc(0, IND, 20, INDIRECT); d.avail(0); }],
    ['huge indirect table', (d) => { d.desc(0, IND, 0xfffffff0, INDIRECT); d.avail(0); }],
    ['indirect table outside RAM', (d) => { d.desc(0, RAM - 16, 32, INDIRECT); d.avail(0); }],
    ['indirect next beyond its table', (d) => { d.desc(0, BUF, 16, NEXT, 5, IND); d.desc(0, IND, 32, INDIRECT); d.avail(0); }],
  ];
  for (const [name, build] of cases) {
    const d = setup(new VirtioBlk(RawImage.open(image(64 * 1024), { lock: false })));
    d.start();
    build(d);
    d.notify();
    assert.ok(d.needsReset(), `${name}: DEVICE_NEEDS_RESET`);
    assert.equal(d.logs.length, 1, `${name}: one log line, got ${d.logs.join(' | ')}`);
    assert.equal(d.mem.read8(d.bar + 0x1000), 2, `${name}: configuration change interrupt`);
    d.notify();
    assert.equal(d.logs.length, 1, `${name}: no more lines while broken`);
    // The driver resets and starts over: the device works again.
    d.w8(0x14, 0);
    assert.ok(!d.needsReset());
    d.mem.write16(AVAIL + 2, 0);
    d.start();
    assert.equal(blkRequest(d, 4, 0, 0), 0, `${name}: works after reset`);
  }
  // The indirect feature not negotiated: an indirect descriptor is a broken ring.
  const d = setup(new VirtioBlk(RawImage.open(image(64 * 1024), { lock: false })));
  d.start([F_VERSION_1]);
  d.desc(0, IND, 32, INDIRECT); d.avail(0); d.notify();
  assert.ok(d.needsReset());
  // Enabling a queue whose rings are outside RAM or misaligned.
  for (const at of [{ desc: RAM - 16, avail: AVAIL, used: USED }, { desc: DESC + 8, avail: AVAIL, used: USED }]) {
    const e = setup(new VirtioRng());
    assert.ok(e.negotiate([F_VERSION_1]));
    e.queue(0, 16, at);
    assert.ok(e.needsReset());
    assert.equal(e.r16(0x1c), 0, 'queue not enabled');
  }
});

test('bad buffers complete with an error status instead of breaking the device', () => {
  const path = image(64 * 1024, (b) => b.fill(0x11));
  const d = setup(new VirtioBlk(RawImage.open(path, { lock: false })));
  d.start();
  const status = (descs: [number, number, number][]) => {
    d.mem.write32(BUF, 0); d.mem.write32(BUF + 8, 0); d.mem.write32(BUF + 12, 0);
    d.mem.write8(BUF + 0x80, 0xff);
    descs.forEach(([a, l, f], i) => d.desc(i, a, l, f | (i < descs.length - 1 ? NEXT : 0), i + 1));
    const before = d.usedIdx();
    d.avail(0); d.notify();
    assert.equal(d.usedIdx(), before + 1, 'completed');
    return d.mem.read8(BUF + 0x80);
  };
  assert.equal(status([[BUF, 16, 0], [RAM - 256, 512, WRITE], [BUF + 0x80, 1, WRITE]]), 1, 'data buffer past the end of RAM');
  assert.equal(status([[BUF, 16, 0], [0xe0000000, 512, WRITE], [BUF + 0x80, 1, WRITE]]), 1, 'data buffer on MMIO');
  assert.equal(status([[BUF, 16, 0], [BUF + 0x100, 0xffffffff, WRITE], [BUF + 0x80, 1, WRITE]]), 1, 'a 4 GiB buffer');
  assert.equal(status([[BUF, 16, 0], [BUF + 0x100, 0, WRITE], [BUF + 0x80, 1, WRITE]]), 0, 'zero-length data: a 0-byte read');
  assert.equal(status([[BUF, 8, 0], [BUF + 0x80, 1, WRITE]]), 1, 'short header');
  assert.equal(status([[BUF + 0x80, 1, WRITE], [BUF, 16, 0]]), 1, 'readable after writable');
  // 16 descriptors (the whole ring) each naming the same 1 MiB: longer than RAM in total → IOERR, no huge allocation.
  const descs: [number, number, number][] = [[BUF, 16, 0]];
  for (let i = 0; i < 14; i++) descs.push([0x100000, 1 << 20, WRITE]);
  descs.push([BUF + 0x80, 1, WRITE]);
  assert.equal(status(descs), 1, 'request larger than RAM');
  // A chain with no writable byte: returned with length 0 and a log line.
  d.desc(0, BUF, 16, 0); d.avail(0); d.notify();
  assert.equal(d.used(d.usedIdx() - 1).len, 0);
  assert.ok(!d.needsReset());
  assert.ok(readFileSync(path).every((b) => b === 0x11), 'nothing written');
});

test('transport state is data: save and restore mid-stream keeps the queue running', () => {
  const d = setup(new VirtioRng());
  d.start([F_VERSION_1]);
  d.desc(0, BUF, 8, WRITE); d.avail(0); d.notify();
  const saved = saveState(d.dev);
  d.w8(0x14, 0);
  restoreState(d.dev, saved);
  assert.equal(d.r8(0x14), 0xf);
  d.avail(0); d.notify();
  assert.equal(d.usedIdx(), 2);
});
