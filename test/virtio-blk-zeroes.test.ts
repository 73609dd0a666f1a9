// virtio-blk DISCARD and WRITE_ZEROES (virtio 1.2 §5.2) driven through the real device model and a
// virtqueue, as a guest driver would, over raw and qcow2 images (v2 and v3, with and without backing
// files, compressed clusters). Afterwards the images are checked with QEMU's own tools: `qemu-img check`
// must find nothing wrong, `qemu-img compare` / `map` must see the expected contents and allocation, and a
// writer killed with SIGKILL in the middle of zeroing and discarding must leave a consistent image.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runWriterUntilKilled, writerScript } from './writer-harness.ts';
import { GuestMemory } from '../src/memory/guest-memory.ts';
import { IoBus } from '../src/machine/io-bus.ts';
import { PciBus } from '../src/machine/pci.ts';
import { VirtioPci } from '../src/devices/virtio/pci-transport.ts';
import { VirtioBlk, S_IOERR, S_OK, S_UNSUPP } from '../src/devices/virtio/blk.ts';
import { RawImage } from '../src/backends/disk/raw.ts';
import { Qcow2Image, createQcow2 } from '../src/backends/disk/qcow2.ts';
import type { BlockBackend } from '../src/devices/block-backend.ts';

const dir = mkdtempSync(join(tmpdir(), 'trapeze-blkz-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
const KiB = 1024, MiB = 1 << 20;
const hasQemuImg = spawnSync('qemu-img', ['--version']).status === 0;
const needQemu = { skip: hasQemuImg ? false : 'qemu-img not installed (apt-get install qemu-utils)' } as const;
let nfile = 0;
const tmp = (ext: string) => join(dir, `f${nfile++}.${ext}`);

// Virtio feature bits and blk request types (§5.2.3, §5.2.6).
const F_VERSION_1 = 32, F_RO = 5, F_DISCARD = 13, F_WRITE_ZEROES = 14;
const T_IN = 0, T_OUT = 1, T_DISCARD = 11, T_WRITE_ZEROES = 13;
const UNMAP = 1;

const RAM = 8 << 20;
const DESC = 0x10000, AVAIL = 0x11000, USED = 0x12000, HDR = 0x20000, STATUS = 0x20080, DATA = 0x100000, QSIZE = 16;
const NEXT = 1, WRITE = 2;

type Seg = { sector: number; count: number; flags?: number };

/** A minimal virtio-pci driver for one virtio-blk function, with the feature bits `features` negotiated. */
function driver(backend: BlockBackend, features = [F_VERSION_1, F_DISCARD, F_WRITE_ZEROES]) {
  const mem = new GuestMemory(RAM);
  const bus = new PciBus({ io: new IoBus(), mem });
  const logs: string[] = [];
  const dev = new VirtioPci('vblk', new VirtioBlk(backend), { mem, msi: () => {}, log: (m) => logs.push(m) });
  bus.add(dev, 3);
  bus.assignResources({ ioBase: 0xc000, ioEnd: 0x10000, memBase: 0xe0000000, memEnd: 0xfec00000 });
  const bar = dev.barAddress(0);
  const w8 = (o: number, v: number) => mem.write8(bar + o, v), w16 = (o: number, v: number) => mem.write16(bar + o, v);
  const w32 = (o: number, v: number) => mem.write32(bar + o, v);
  const offered = (bit: number) => { w32(0x00, bit >> 5); return ((mem.read32(bar + 0x04) >>> (bit & 31)) & 1) === 1; };
  const offeredBits = [F_RO, F_DISCARD, F_WRITE_ZEROES].filter(offered);
  // Status: reset, ACKNOWLEDGE, DRIVER, features, FEATURES_OK, queue 0, DRIVER_OK (§3.1.1).
  w8(0x14, 0); w8(0x14, 1); w8(0x14, 3);
  const words = [0, 0];
  for (const f of features) if (f === F_VERSION_1 || offered(f)) words[f >> 5] |= 1 << (f & 31);
  w32(0x08, 0); w32(0x0c, words[0]); w32(0x08, 1); w32(0x0c, words[1]);
  w8(0x14, 0xb);
  assert.ok(mem.read8(bar + 0x14) & 8, 'FEATURES_OK');
  w16(0x16, 0); w16(0x18, QSIZE);
  w32(0x20, DESC); w32(0x24, 0); w32(0x28, AVAIL); w32(0x2c, 0); w32(0x30, USED); w32(0x34, 0);
  w16(0x1c, 1);
  w8(0x14, 0xf);
  let submitted = 0;
  const desc = (i: number, addr: number, len: number, flags: number, next = 0) => {
    const e = DESC + 16 * i;
    mem.write32(e, addr); mem.write32(e + 4, 0); mem.write32(e + 8, len); mem.write16(e + 12, flags); mem.write16(e + 14, next);
  };
  /** Submits one request (header, optional device-readable data, optional device-writable data, status). */
  const request = (type: number, sector: number, out: Uint8Array | null, inLen = 0): number => {
    mem.write32(HDR, type); mem.write32(HDR + 4, 0); mem.write32(HDR + 8, sector % 2 ** 32); mem.write32(HDR + 12, Math.floor(sector / 2 ** 32));
    mem.write8(STATUS, 0xff);
    const chain: [number, number, number][] = [[HDR, 16, 0]];
    if (out) { mem.writeBytes(DATA, out); chain.push([DATA, out.length, 0]); }
    if (inLen) chain.push([DATA, inLen, WRITE]);
    chain.push([STATUS, 1, WRITE]);
    chain.forEach(([a, l, f], i) => desc(i, a, l, f | (i < chain.length - 1 ? NEXT : 0), i + 1));
    mem.write16(AVAIL + 4 + 2 * (submitted % QSIZE), 0);
    mem.write16(AVAIL + 2, ++submitted);
    mem.write16(bar + 0x3000, 0);
    assert.equal(mem.read16(USED + 2), submitted & 0xffff, 'request completed');
    return mem.read8(STATUS);
  };
  const segments = (segs: Seg[]) => {
    const b = new Uint8Array(16 * segs.length), v = new DataView(b.buffer);
    segs.forEach((s, i) => {
      v.setUint32(16 * i, s.sector % 2 ** 32, true); v.setUint32(16 * i + 4, Math.floor(s.sector / 2 ** 32), true);
      v.setUint32(16 * i + 8, s.count, true); v.setUint32(16 * i + 12, s.flags ?? 0, true);
    });
    return b;
  };
  return {
    mem, logs, offeredBits,
    config32: (off: number) => mem.read32(bar + 0x2000 + off) >>> 0,
    config8: (off: number) => mem.read8(bar + 0x2000 + off),
    request,
    discard: (...segs: Seg[]) => request(T_DISCARD, 0, segments(segs)),
    zeroes: (...segs: Seg[]) => request(T_WRITE_ZEROES, 0, segments(segs)),
    /** Writes `data` at byte offset `off` (sector aligned) in pieces of at most 1 MiB. */
    write(off: number, data: Uint8Array) {
      for (let p = 0; p < data.length; p += MiB) assert.equal(request(T_OUT, (off + p) / 512, data.subarray(p, p + MiB)), S_OK);
    },
    read(off: number, len: number): Buffer {
      const out = Buffer.alloc(len);
      for (let p = 0; p < len; p += MiB) {
        const n = Math.min(MiB, len - p);
        assert.equal(request(T_IN, (off + p) / 512, null, n), S_OK);
        out.set(mem.readBytes(DATA, n), p);
      }
      return out;
    },
  };
}

/** `qemu-img check --output=json`: exit status (0 clean, 3 leaks, 2 corrupt) and the parsed report. */
function check(path: string): { status: number; out: string; report: { 'allocated-clusters'?: number; leaks?: number; corruptions?: number } } {
  const r = spawnSync('qemu-img', ['check', '--output=json', path], { encoding: 'utf8' });
  let report = {};
  try { report = JSON.parse(r.stdout); } catch { /* the status and text say what went wrong */ }
  return { status: r.status ?? -1, out: r.stdout + r.stderr, report };
}

function assertClean(path: string, what: string): number {
  const c = check(path);
  assert.equal(c.status, 0, `${what}: qemu-img check: ${c.out}`);
  return c.report['allocated-clusters'] ?? -1;
}

/** `qemu-img compare` of an image against the expected bytes (exit 0: identical contents). */
function assertSameAs(path: string, expect: Uint8Array, what: string): void {
  const ref = tmp('raw');
  writeFileSync(ref, expect);
  const r = spawnSync('qemu-img', ['compare', '-q', '-F', 'raw', path, ref], { encoding: 'utf8' });
  rmSync(ref);
  assert.equal(r.status, 0, `${what}: qemu-img compare: ${r.stdout}${r.stderr}`);
}

/** qemu-img map: the guest ranges (in bytes) that are allocated in the top image without data ("zero" clusters). */
function map(path: string): { start: number; length: number; zero: boolean; data: boolean; depth: number; offset?: number }[] {
  return JSON.parse(execFileSync('qemu-img', ['map', '--output=json', path], { encoding: 'utf8' }));
}

test('features and configuration: offered only for writable drives whose backend can, with the backend\'s limits (§5.2.3, §5.2.4)', () => {
  const rawPath = tmp('raw');
  writeFileSync(rawPath, Buffer.alloc(2 * MiB));
  const raw = driver(RawImage.open(rawPath, { lock: false }));
  assert.deepEqual(raw.offeredBits, [F_DISCARD, F_WRITE_ZEROES]);
  assert.equal(raw.config32(36), 16384, 'max_discard_sectors');
  assert.equal(raw.config32(40), 16, 'max_discard_seg');
  assert.equal(raw.config32(44), 1, 'discard_sector_alignment: raw discards per sector');
  assert.equal(raw.config32(48), 16384, 'max_write_zeroes_sectors');
  assert.equal(raw.config32(52), 1, 'max_write_zeroes_seg');
  assert.equal(raw.config8(56), 0, 'write_zeroes_may_unmap: raw never deallocates');

  const qPath = tmp('qcow2');
  createQcow2(qPath, { size: 4 * MiB });
  const q = driver(Qcow2Image.open(qPath, { lock: false }));
  assert.deepEqual(q.offeredBits, [F_DISCARD, F_WRITE_ZEROES]);
  assert.equal(q.config32(44), 128, 'discard_sector_alignment: one 64 KiB cluster');
  assert.equal(q.config8(56), 1, 'write_zeroes_may_unmap: qcow2 frees clusters');

  // Read-only drives offer RO and neither command.
  const ro = driver(RawImage.open(rawPath, { readOnly: true, lock: false }), [F_VERSION_1, F_RO]);
  assert.deepEqual(ro.offeredBits, [F_RO]);

  // A backend without the operations: not offered, and the requests are unsupported.
  const plain = RawImage.open(rawPath, { lock: false });
  const bare: BlockBackend = { size: plain.size, readOnly: false, read: (o, b) => plain.read(o, b), write: (o, d) => plain.write(o, d), flush: () => plain.flush(), close: () => plain.close() };
  const b = driver(bare);
  assert.deepEqual(b.offeredBits, []);
  assert.equal(b.discard({ sector: 0, count: 1 }), S_UNSUPP);
  assert.equal(b.zeroes({ sector: 0, count: 1 }), S_UNSUPP);
  // Offered but not negotiated: unsupported as well, and nothing is changed.
  const notNeg = driver(RawImage.open(rawPath, { lock: false }), [F_VERSION_1]);
  notNeg.write(0, Buffer.alloc(512, 0x77));
  assert.equal(notNeg.zeroes({ sector: 0, count: 1 }), S_UNSUPP);
  assert.equal(notNeg.read(0, 512)[0], 0x77);
});

test('raw: write-zeroes zeros exactly its segments; discard succeeds and leaves data; sparse files stay sparse', () => {
  const path = tmp('raw');
  const size = 16 * MiB;
  // A sparse file: only the first 2 MiB are written.
  const fd = openSync(path, 'w');
  writeSync(fd, Buffer.alloc(1), 0, 1, size - 1);
  closeSync(fd);
  const img = RawImage.open(path, { lock: false });
  const d = driver(img);
  const ref = Buffer.alloc(size);
  const data = randomBytes(2 * MiB);
  d.write(0, data); data.copy(ref, 0);
  assert.equal(d.zeroes({ sector: 3, count: 5 }), S_OK);
  ref.fill(0, 3 * 512, 8 * 512);
  assert.equal(d.zeroes({ sector: 1000, count: 1000, flags: UNMAP }), S_OK, 'unmap allowed on write-zeroes');
  ref.fill(0, 1000 * 512, 2000 * 512);
  assert.equal(d.zeroes({ sector: 2040, count: 16384 }), S_OK, 'a maximal 8 MiB segment, partly over written data');
  ref.fill(0, 2040 * 512, (2040 + 16384) * 512);
  assert.equal(d.zeroes({ sector: 100, count: 0 }), S_OK, 'an empty segment is a no-op');
  // Discard is a hint a raw file cannot act on (see RawImage.discard): OK, contents as before.
  assert.equal(d.discard({ sector: 10, count: 20 }, { sector: 3000, count: 64 }), S_OK);
  assert.deepEqual(d.read(0, size).equals(ref), true, 'device reads the expected bytes');
  img.flush(); img.close();
  assert.ok(readFileSync(path).equals(ref), 'the file holds the expected bytes');
  // The never-written tail (8 MiB beyond 2 MiB + 8 MiB zeroed) did not get blocks allocated by zeroing.
  const blocks = statSync(path).blocks * 512;
  assert.ok(blocks < 4 * MiB, `zeroing never-written ranges keeps the file sparse (${blocks} bytes allocated)`);
  assert.deepEqual(d.logs, []);
});

test('validation (§5.2.6.1, §5.2.6.2): flags, segment counts and sizes, ranges past the end, read-only drives', () => {
  const path = tmp('raw');
  const size = 4 * MiB, sectors = size / 512;
  writeFileSync(path, Buffer.alloc(size, 0x5a));
  const d = driver(RawImage.open(path, { lock: false }));
  const untouched = () => d.read(0, size).every((b) => b === 0x5a);
  // Unknown flag bits: UNSUPP (MUST), for both commands; the unmap flag on discard: UNSUPP (MUST).
  assert.equal(d.zeroes({ sector: 0, count: 8, flags: 2 }), S_UNSUPP, 'write-zeroes reserved flag bit 1');
  assert.equal(d.zeroes({ sector: 0, count: 8, flags: 0x80000001 }), S_UNSUPP, 'write-zeroes reserved flag bit 31');
  assert.equal(d.discard({ sector: 0, count: 8, flags: UNMAP }), S_UNSUPP, 'discard with unmap');
  assert.equal(d.discard({ sector: 0, count: 8, flags: 4 }), S_UNSUPP, 'discard reserved flag');
  // More segments than max_*_seg: UNSUPP, and none of them is carried out.
  assert.equal(d.zeroes({ sector: 0, count: 8 }, { sector: 16, count: 8 }), S_UNSUPP, 'two write-zeroes segments (max 1)');
  assert.equal(d.discard(...Array.from({ length: 17 }, (_, i) => ({ sector: i * 8, count: 8 }))), S_UNSUPP, '17 discard segments (max 16)');
  assert.equal(d.discard(...Array.from({ length: 16 }, (_, i) => ({ sector: i * 8, count: 8 }))), S_OK, '16 discard segments');
  // Oversized segments and ranges beyond capacity: IOERR.
  assert.equal(d.zeroes({ sector: 0, count: 16385 }), S_IOERR, 'beyond max_write_zeroes_sectors');
  assert.equal(d.discard({ sector: 0, count: 16385 }), S_IOERR, 'beyond max_discard_sectors');
  assert.equal(d.zeroes({ sector: sectors - 4, count: 8 }), S_IOERR, 'runs past the end');
  assert.equal(d.zeroes({ sector: sectors, count: 1 }), S_IOERR, 'starts at the end');
  assert.equal(d.zeroes({ sector: 2 ** 53, count: 1 }), S_IOERR, 'a 64-bit sector far beyond');
  assert.equal(d.discard({ sector: 0, count: 8 }, { sector: sectors - 1, count: 2 }), S_IOERR, 'second segment past the end');
  // UNSUPP for a bad flag wins over IOERR for a bad range in another segment (the flag rule is a MUST).
  assert.equal(d.discard({ sector: sectors, count: 8 }, { sector: 0, count: 8, flags: UNMAP }), S_UNSUPP);
  // Data that is not a whole number of 16-byte segments, or none at all: a driver error.
  assert.equal(d.request(T_WRITE_ZEROES, 0, new Uint8Array(20)), S_IOERR, '20 bytes of segments');
  assert.equal(d.request(T_WRITE_ZEROES, 0, null), S_IOERR, 'no segment');
  assert.equal(d.request(T_DISCARD, 0, null, 16), S_IOERR, 'the segment in a device-writable buffer');
  assert.ok(untouched(), 'no refused request changed anything');
  // A request where one segment is fine and the next is not changes nothing either (checked before doing).
  const z = driver(RawImage.open(path, { lock: false }), [F_VERSION_1, F_WRITE_ZEROES]);
  assert.equal(z.zeroes({ sector: sectors - 1, count: 1 }), S_OK);
  assert.equal(z.read(size - 512, 512).every((b) => b === 0), true);
  assert.equal(z.zeroes({ sector: sectors - 1, count: 1 }), S_OK, 'the last sector exactly');
  assert.deepEqual(d.logs, []);

  // Read-only drive: any write request fails with IOERR and writes nothing (§5.2.6.2), discard included.
  const roPath = tmp('raw');
  writeFileSync(roPath, Buffer.alloc(MiB, 0x33));
  const ro = driver(RawImage.open(roPath, { readOnly: true, lock: false }), [F_VERSION_1, F_RO]);
  assert.equal(ro.zeroes({ sector: 0, count: 8 }), S_IOERR);
  assert.equal(ro.discard({ sector: 0, count: 8 }), S_IOERR);
  assert.equal(ro.zeroes({ sector: 0, count: 8, flags: 2 }), S_IOERR, 'read-only is checked first');
  assert.ok(readFileSync(roPath).every((b) => b === 0x33), 'read-only image unchanged');
  const qro = tmp('qcow2');
  createQcow2(qro, { size: MiB });
  const q = driver(Qcow2Image.open(qro, { readOnly: true, lock: false }), [F_VERSION_1, F_RO]);
  assert.equal(q.zeroes({ sector: 0, count: 128 }), S_IOERR);
  assert.equal(q.discard({ sector: 0, count: 128 }), S_IOERR);
});

/**
 * What reads back after an operation, as this implementation defines it: write-zeroes always zeros;
 * discard deallocates whole clusters only, which then read as zeros on version 3 and as the backing file
 * (zeros without one) on version 2, and leaves partial clusters alone.
 */
function model(ref: Buffer, base: Buffer | null, v: 2 | 3, cluster: number, op: 'z' | 'd', off: number, len: number): void {
  if (op === 'z') { ref.fill(0, off, off + len); return; }
  const first = Math.ceil(off / cluster) * cluster, end = Math.floor((off + len) / cluster) * cluster;
  for (let c = first; c < end; c += cluster) {
    if (v === 3 || !base) ref.fill(0, c, c + cluster);
    else base.copy(ref, c, c, c + cluster);
  }
}

for (const v of [3, 2] as const) {
  test(`qcow2 v${v} without a backing file: zero flags, preallocated zero clusters, freed clusters; check and compare clean`, needQemu, () => {
    const path = tmp('qcow2');
    const size = 8 * MiB, cs = 64 * KiB;
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-o', `compat=${v === 3 ? '1.1' : '0.10'}`, path, String(size)]);
    let img = Qcow2Image.open(path);
    let d = driver(img);
    const ref = Buffer.alloc(size);
    const data = randomBytes(4 * MiB);
    d.write(0, data); data.copy(ref, 0);
    img.flush();
    const allocated0 = assertClean(path, 'after writing 4 MiB');

    // Whole clusters 2..3 zeroed without unmap: v3 keeps them allocated with the zero flag.
    assert.equal(d.zeroes({ sector: 2 * cs / 512, count: 2 * cs / 512 }), S_OK);
    model(ref, null, v, cs, 'z', 2 * cs, 2 * cs);
    // Clusters 8..11 zeroed with unmap, plus partial edges (half of cluster 7 and a sector of cluster 12).
    assert.equal(d.zeroes({ sector: (8 * cs - cs / 2) / 512, count: (4 * cs + cs / 2 + 512) / 512, flags: UNMAP }), S_OK);
    model(ref, null, v, cs, 'z', 8 * cs - cs / 2, 4 * cs + cs / 2 + 512);
    // Discard of clusters 20..29 plus partial edges (which stay as they are).
    assert.equal(d.discard({ sector: (20 * cs - 4096) / 512, count: (10 * cs + 8192) / 512 }), S_OK);
    model(ref, null, v, cs, 'd', 20 * cs - 4096, 10 * cs + 8192);
    // Zeroing and discarding ranges that were never written allocates nothing.
    assert.equal(d.zeroes({ sector: 6 * MiB / 512, count: (MiB + 4096) / 512 }), S_OK);
    assert.equal(d.discard({ sector: 5 * MiB / 512, count: MiB / 512 }), S_OK);
    assert.ok(d.read(0, size).equals(ref), 'the device reads the expected bytes');
    img.close();

    const allocated1 = assertClean(path, 'after zeroing and discarding');
    assert.equal(allocated1, allocated0 - 4 - 10, 'four unmapped and ten discarded clusters were freed, nothing else changed');
    assertSameAs(path, ref, 'qemu-img sees the expected bytes');
    if (v === 3) {
      const m = map(path);
      const at = (off: number) => m.find((e) => e.start <= off && off < e.start + e.length)!;
      for (const c of [2, 3]) assert.ok(at(c * cs).zero && !at(c * cs).data && at(c * cs).offset !== undefined, `cluster ${c}: a preallocated zero cluster (${JSON.stringify(at(c * cs))})`);
      for (const c of [8, 11, 20, 29]) assert.ok(at(c * cs).zero && at(c * cs).depth === 0 && at(c * cs).offset === undefined, `cluster ${c}: zero flag, unallocated (${JSON.stringify(at(c * cs))})`);
      assert.ok(at(7 * cs).data && at(12 * cs).data && at(19 * cs).data && at(30 * cs).data, 'partial clusters keep their data');
    }
    // Writing into zeroed clusters brings data back; unmapped clusters get new host clusters.
    img = Qcow2Image.open(path);
    d = driver(img);
    const more = randomBytes(3 * cs);
    d.write(2 * cs + 512, more); more.copy(ref, 2 * cs + 512);
    d.write(9 * cs, more.subarray(0, 4096)); more.copy(ref, 9 * cs, 0, 4096);
    assert.ok(d.read(0, size).equals(ref));
    img.close();
    assertClean(path, 'after rewriting zeroed clusters');
    assertSameAs(path, ref, 'after rewriting zeroed clusters');
  });

  test(`qcow2 v${v} over a backing file: zeroed ranges read zeros, not the base; the base never changes`, needQemu, () => {
    const base = tmp('raw'), path = tmp('qcow2');
    const size = 4 * MiB, cs = 64 * KiB;
    const baseData = randomBytes(size);
    writeFileSync(base, baseData);
    if (v === 3) createQcow2(path, { backingFile: base, backingFormat: 'raw' });
    else createQcow2(path, { backingFile: base, backingFormat: 'raw', version: 2 });
    const img = Qcow2Image.open(path);
    const d = driver(img);
    const ref = Buffer.from(baseData);
    const data = randomBytes(MiB);
    d.write(MiB, data); data.copy(ref, MiB);
    const ops: ['z' | 'd', number, number, number][] = [
      ['z', 0, 3 * cs, 0],                          // whole clusters never written: base must not show
      ['z', 5 * cs + 512, 2 * cs, UNMAP],           // partial edges over the base
      ['z', MiB + cs, 2 * cs, UNMAP],               // whole written clusters, unmapped
      ['z', MiB + 4 * cs, 2 * cs, 0],               // whole written clusters, kept
      ['d', 2 * MiB, 4 * cs, 0],                    // discard of unwritten whole clusters
      ['d', MiB + 8 * cs - 1024, 3 * cs + 2048, 0], // discard of written clusters, partial edges
    ];
    for (const [op, off, len, flags] of ops) {
      const seg = { sector: off / 512, count: len / 512, flags };
      assert.equal(op === 'z' ? d.zeroes(seg) : d.discard(seg), S_OK, `${op} ${off}+${len}`);
      model(ref, baseData, v, cs, op, off, len);
    }
    assert.ok(d.read(0, size).equals(ref), 'the device reads the expected bytes');
    assert.ok(ref.subarray(0, 3 * cs).every((b) => b === 0), 'the model itself has zeros where the base was');
    img.close();
    assertClean(path, 'overlay');
    assertSameAs(path, ref, 'overlay contents');
    assert.ok(readFileSync(base).equals(baseData), 'the base is unchanged');
  });
}

test('qcow2: compressed clusters are freed by write-zeroes and discard (shared host clusters counted right)', needQemu, () => {
  const src = tmp('raw'), path = tmp('qcow2');
  const size = 2 * MiB, cs = 64 * KiB;
  // Compressible data, so several compressed clusters share host clusters.
  const ref = Buffer.alloc(size);
  for (let i = 0; i < size; i += 64) randomBytes(8).copy(ref, i + (i % 56));
  writeFileSync(src, ref);
  execFileSync('qemu-img', ['convert', '-q', '-c', '-O', 'qcow2', src, path]);
  const img = Qcow2Image.open(path);
  const d = driver(img);
  assert.equal(d.zeroes({ sector: 0, count: 2 * cs / 512 }), S_OK, 'whole compressed clusters, no unmap');
  model(ref, null, 3, cs, 'z', 0, 2 * cs);
  assert.equal(d.zeroes({ sector: (4 * cs + 100 * 512) / 512, count: 8 }), S_OK, 'partial: rewritten uncompressed');
  model(ref, null, 3, cs, 'z', 4 * cs + 100 * 512, 4096);
  assert.equal(d.discard({ sector: 10 * cs / 512, count: 6 * cs / 512 }), S_OK);
  model(ref, null, 3, cs, 'd', 10 * cs, 6 * cs);
  assert.ok(d.read(0, size).equals(ref));
  img.close();
  assertClean(path, 'compressed');
  assertSameAs(path, ref, 'compressed');
});

test('qcow2 random differential: writes, write-zeroes and discards against a model, several formats; check and compare clean', needQemu, () => {
  for (const [name, opts, backed] of [
    ['v3 64k', ['-o', 'compat=1.1'], false], ['v3 64k over base', ['-o', 'compat=1.1'], true],
    ['v3 512-byte clusters', ['-o', 'cluster_size=512'], false], ['v3 4k clusters 1-bit refcounts over base', ['-o', 'cluster_size=4096,refcount_bits=1'], true],
    ['v2 over base', ['-o', 'compat=0.10'], true], ['v2', ['-o', 'compat=0.10'], false],
  ] as const) {
    const size = 6 * MiB, path = tmp('qcow2');
    const cs = opts[1].includes('cluster_size=512') ? 512 : opts[1].includes('cluster_size=4096') ? 4096 : 64 * KiB;
    const v = opts[1].includes('compat=0.10') ? 2 : 3;
    let base: Buffer | null = null;
    if (backed) {
      base = randomBytes(size);
      const bp = tmp('raw');
      writeFileSync(bp, base);
      execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', ...opts, '-b', bp, '-F', 'raw', path]);
    } else execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', ...opts, path, String(size)]);
    const img = Qcow2Image.open(path);
    const d = driver(img);
    const ref = base ? Buffer.from(base) : Buffer.alloc(size);
    for (let i = 0; i < 400; i++) {
      const r = Math.random();
      const len = 512 * (1 + Math.floor(Math.random() * (Math.random() < 0.5 ? 16 : 1024)));
      const off = 512 * Math.floor(Math.random() * ((size - len) / 512 + 1));
      if (r < 0.45) {
        const data = randomBytes(len);
        d.write(off, data); data.copy(ref, off);
      } else if (r < 0.8) {
        assert.equal(d.zeroes({ sector: off / 512, count: len / 512, flags: Math.random() < 0.5 ? UNMAP : 0 }), S_OK);
        model(ref, base, v, cs, 'z', off, len);
      } else {
        assert.equal(d.discard({ sector: off / 512, count: len / 512 }), S_OK);
        model(ref, base, v, cs, 'd', off, len);
      }
    }
    assert.ok(d.read(0, size).equals(ref), `${name}: the device reads what the model says`);
    img.close();
    assertClean(path, name);
    assertSameAs(path, ref, name);
    assert.deepEqual(d.logs, [], name);
  }
});

/** The crash test's child: random writes, write-zeroes and discards, each journaled first, with flush marks. */
const CHILD = (qcow2: string, img: string, journal: string) => writerScript(qcow2, img, journal, `
  const len = 512 * (1 + Math.floor(Math.random() * 512));
  const off = 512 * Math.floor(Math.random() * ((img.size - len) / 512 + 1));
  const r = Math.random(), op = r < 0.5 ? 'w' : r < 0.65 ? 'z' : r < 0.8 ? 'u' : 'd';
  writeSync(j, op + ' ' + seq + ' ' + off + ' ' + len + '\\n');
  if (op === 'w') { const tag = Buffer.alloc(4); tag.writeUInt32LE(seq); img.write(off, Buffer.alloc(len, tag)); }
  else if (op === 'd') img.discard(off, len);
  else img.writeZeroes(off, len, op === 'u');
`);

test('crash safety: killed with SIGKILL while zeroing and discarding, the image stays check-clean and keeps every flushed change', { ...needQemu, timeout: 240_000 }, async (t) => {
  const root = join(import.meta.dirname, '..');
  const size = 32 * MiB, cs = 64 * KiB;
  const img = tmp('qcow2'), journal = tmp('journal'), script = join(dir, 'crash-child.mjs');
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', img, String(size)]);
  writeFileSync(script, CHILD(join(root, 'src/backends/disk/qcow2.ts'), img, journal));
  let ref = Buffer.alloc(size);
  let seq = 0, leaks = 0;
  for (let round = 0; round < 8; round++) {
    writeFileSync(journal, '');
    await runWriterUntilKilled(script, seq, root, 200, 800);
    const c = check(img);
    assert.ok(c.status === 0 || c.status === 3, `round ${round}: qemu-img check found corruption:\n${c.out}`);
    if (c.status === 3) leaks++;
    const lines = readFileSync(journal, 'utf8').split('\n');
    const lastFlush = Math.max(-1, ...lines.filter((l) => l.startsWith('f ')).map((l) => Number(l.split(' ')[1])));
    const ops = lines.filter((l) => /^[wzud] /.test(l)).map((l) => { const [op, s, off, len] = l.split(' '); return { op, s: Number(s), off: Number(off), len: Number(len) }; });
    const dontCare = new Uint8Array(size);
    for (const o of ops) {
      if (o.s > lastFlush) { dontCare.fill(1, o.off, o.off + o.len); continue; }
      if (o.op === 'w') { const tag = Buffer.alloc(4); tag.writeUInt32LE(o.s); ref.fill(tag, o.off, o.off + o.len); }
      else model(ref, null, 3, cs, o.op === 'd' ? 'd' : 'z', o.off, o.len);
    }
    const out = tmp('raw');
    execFileSync('qemu-img', ['convert', '-O', 'raw', img, out]);
    const actual = readFileSync(out);
    rmSync(out);
    let bad = 0;
    for (let i = 0; i < size; i++) if (!dontCare[i] && actual[i] !== ref[i]) bad++;
    assert.equal(bad, 0, `round ${round}: ${bad} bytes of flushed changes differ (last flush ${lastFlush}, ${ops.length} operations)`);
    ref = actual;
    seq = (ops.at(-1)?.s ?? seq) + 1;
  }
  t.diagnostic(`${seq} operations, ${leaks} rounds with leaked clusters`);
});
