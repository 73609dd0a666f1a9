// qcow2 against QEMU's own tools as the oracle: images qemu-img makes are read and written by Trapeze and
// must stay clean under `qemu-img check` and convert to the expected bytes; images Trapeze makes must pass
// check and convert; overlays leave their base alone; corrupt headers are refused; locks hold across
// processes; and a writer killed with SIGKILL at random moments never leaves a corrupt image.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runWriterUntilKilled, writerScript } from './writer-harness.ts';
import { Qcow2Image, createQcow2, openImage } from '../src/backends/disk/qcow2.ts';
import { RawImage } from '../src/backends/disk/raw.ts';
import { ImageLockedError } from '../src/backends/disk/lock.ts';

const dir = mkdtempSync(join(tmpdir(), 'trapeze-qcow2-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
const MiB = 1 << 20;
const hasQemuImg = spawnSync('qemu-img', ['--version']).status === 0;
const needQemu = { skip: hasQemuImg ? false : 'qemu-img not installed (apt-get install qemu-utils)' } as const;

function qemuImg(...args: string[]): string { return execFileSync('qemu-img', args, { encoding: 'utf8' }); }

/** `qemu-img check`: exit 0 clean, 3 leaks only, 2 corruptions. */
function check(path: string): { status: number; out: string } {
  const r = spawnSync('qemu-img', ['check', path], { encoding: 'utf8' });
  return { status: r.status ?? -1, out: r.stdout + r.stderr };
}

function toRaw(path: string): Buffer {
  const out = join(dir, `conv-${randomBytes(4).toString('hex')}.raw`);
  qemuImg('convert', '-O', 'raw', path, out);
  const b = readFileSync(out);
  rmSync(out);
  return b;
}

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/** Random writes of random lengths (sector granular, some spanning clusters) applied to both image and reference. */
function scribble(img: { write(o: number, d: Uint8Array): void }, ref: Buffer, n: number, maxLen: number): void {
  for (let i = 0; i < n; i++) {
    const len = 512 * (1 + Math.floor(Math.random() * (maxLen / 512)));
    const off = 512 * Math.floor(Math.random() * ((ref.length - len) / 512 + 1));
    const data = randomBytes(len);
    img.write(off, data);
    data.copy(ref, off);
  }
}

for (const variant of [
  { name: 'version 3, 64 KiB clusters', opts: [] as string[] },
  { name: 'version 2 (compat 0.10)', opts: ['-o', 'compat=0.10'] },
  { name: '512-byte clusters (refcount table must grow)', opts: ['-o', 'cluster_size=512'] },
  { name: '1-bit refcounts, 4 KiB clusters', opts: ['-o', 'refcount_bits=1,cluster_size=4096'] },
  { name: '64-bit refcounts', opts: ['-o', 'refcount_bits=64'] },
]) {
  test(`qemu-img create (${variant.name}) → Trapeze writes → qemu-img check clean and convert matches`, needQemu, () => {
    const path = join(dir, `qi-${variant.opts.join('')}.qcow2`);
    const size = 24 * MiB;
    qemuImg('create', '-q', '-f', 'qcow2', ...variant.opts, path, String(size));
    const ref = Buffer.alloc(size);
    let img = Qcow2Image.open(path);
    scribble(img, ref, 300, 160 * 1024);
    // Sequential fill of 6 MiB, which allocates many tables and refcount blocks in a row.
    const seq = randomBytes(6 * MiB);
    img.write(9 * MiB, seq); seq.copy(ref, 9 * MiB);
    img.flush(); img.close();
    img = Qcow2Image.open(path, { readOnly: true });
    const back = Buffer.alloc(size);
    img.read(0, back);
    img.close();
    assert.equal(sha(back), sha(ref), 'Trapeze reads back what it wrote after reopening');
    const c = check(path);
    assert.equal(c.status, 0, c.out);
    assert.equal(sha(toRaw(path)), sha(ref), 'qemu-img sees the same bytes');
  });
}

test('Trapeze-created images pass qemu-img check, convert to what was written, and qemu-img info agrees', needQemu, () => {
  for (const [name, o] of [['v3', {}], ['v2', { version: 2 as const }], ['c512', { clusterBits: 9 }], ['c2m', { clusterBits: 21 }]] as const) {
    const path = join(dir, `tz-${name}.qcow2`);
    createQcow2(path, { size: 20 * MiB, ...o });
    let c = check(path);
    assert.equal(c.status, 0, `${name} fresh: ${c.out}`);
    const info = JSON.parse(qemuImg('info', '--output=json', path));
    assert.equal(info['virtual-size'], 20 * MiB);
    assert.equal(info['cluster-size'], 2 ** (('clusterBits' in o ? o.clusterBits : undefined) ?? 16));
    const img = Qcow2Image.open(path);
    const ref = Buffer.alloc(20 * MiB);
    scribble(img, ref, 150, 300 * 1024);
    img.close();
    c = check(path);
    assert.equal(c.status, 0, `${name} written: ${c.out}`);
    assert.equal(sha(toRaw(path)), sha(ref), name);
  }
});

test('overlays: reads fall through to the base, writes copy up, the base never changes (qcow2 and raw bases)', needQemu, () => {
  const size = 8 * MiB;
  const baseQ = join(dir, 'base.qcow2'), baseR = join(dir, 'base.raw');
  qemuImg('create', '-q', '-f', 'qcow2', baseQ, String(size));
  const ref = Buffer.alloc(size);
  let b = Qcow2Image.open(baseQ);
  scribble(b, ref, 100, 200 * 1024);
  b.close();
  writeFileSync(baseR, ref);
  const baseQSha = sha(readFileSync(baseQ)), baseRSha = sha(readFileSync(baseR));
  for (const [base, fmt, maker] of [[baseQ, 'qcow2', 'qemu'], [baseR, 'raw', 'qemu'], [baseQ, 'qcow2', 'trapeze'], [baseR, 'raw', 'trapeze']] as const) {
    const ov = join(dir, `ov-${fmt}-${maker}.qcow2`);
    if (maker === 'qemu') qemuImg('create', '-q', '-f', 'qcow2', '-b', base, '-F', fmt, ov);
    else createQcow2(ov, { backingFile: base.slice(dir.length + 1), backingFormat: fmt });
    const info = JSON.parse(qemuImg('info', '--output=json', ov));
    assert.equal(info['backing-filename'].endsWith(`base.${fmt === 'qcow2' ? 'qcow2' : 'raw'}`), true);
    assert.equal(info['backing-filename-format'], fmt);
    const img = Qcow2Image.open(ov);
    assert.equal(img.size, size);
    const all = Buffer.alloc(size);
    img.read(0, all);
    assert.equal(sha(all), sha(ref), `${fmt}/${maker}: an empty overlay reads as its base`);
    const expect = Buffer.from(ref);
    scribble(img, expect, 80, 100 * 1024); // mostly partial clusters: copy-up merges base bytes
    img.writeZeroes(2 * MiB, 256 * 1024);  // whole clusters: zero flag, not the base
    expect.fill(0, 2 * MiB, 2 * MiB + 256 * 1024);
    img.read(0, all);
    assert.equal(sha(all), sha(expect), `${fmt}/${maker}: overlay reads merge base and new data`);
    img.close();
    const c = check(ov);
    assert.equal(c.status, 0, c.out);
    assert.equal(sha(toRaw(ov)), sha(expect), `${fmt}/${maker}: qemu-img agrees on the overlay's contents`);
  }
  assert.equal(sha(readFileSync(baseQ)), baseQSha, 'qcow2 base unchanged');
  assert.equal(sha(readFileSync(baseR)), baseRSha, 'raw base unchanged');
  // Chains: an overlay of an overlay.
  const top = join(dir, 'top.qcow2');
  qemuImg('create', '-q', '-f', 'qcow2', '-b', 'ov-qcow2-qemu.qcow2', '-F', 'qcow2', top);
  const t = Qcow2Image.open(top);
  const all = Buffer.alloc(size);
  t.read(0, all);
  t.close();
  assert.equal(sha(all), sha(toRaw(join(dir, 'ov-qcow2-qemu.qcow2'))));
});

test('compressed clusters (qemu-img convert -c) read correctly and are rewritten on write; qemu-io zero clusters read as zeros', needQemu, () => {
  const size = 4 * MiB;
  const raw = join(dir, 'comp-src.raw'), q = join(dir, 'comp.qcow2');
  // Compressible but not trivial: random words repeated with variations.
  const src = Buffer.alloc(size);
  for (let i = 0; i < size; i += 64) randomBytes(8).copy(src, i + (i % 56));
  writeFileSync(raw, src);
  qemuImg('convert', '-c', '-O', 'qcow2', raw, q);
  const info = qemuImg('check', q);
  assert.match(info, /compressed clusters/);
  const img = Qcow2Image.open(q);
  const all = Buffer.alloc(size);
  img.read(0, all);
  assert.equal(sha(all), sha(src), 'decompressed contents');
  scribble(img, src, 40, 20000);
  img.read(0, all);
  assert.equal(sha(all), sha(src));
  img.close();
  const c = check(q);
  assert.equal(c.status, 0, c.out);
  assert.equal(sha(toRaw(q)), sha(src));

  const z = join(dir, 'zero.qcow2');
  qemuImg('create', '-q', '-f', 'qcow2', z, String(size));
  execFileSync('qemu-io', ['-c', 'write -P 0x55 0 1M', '-c', 'write -z 256k 128k', z]);
  const zi = Qcow2Image.open(z);
  const part = Buffer.alloc(1 * MiB);
  zi.read(0, part);
  const want = Buffer.alloc(1 * MiB, 0x55); want.fill(0, 256 * 1024, 384 * 1024);
  assert.equal(sha(part), sha(want));
  zi.write(300 * 1024, Buffer.alloc(1024, 0xaa)); // into a preallocated zero cluster
  want.fill(0xaa, 300 * 1024, 301 * 1024);
  zi.read(0, part);
  assert.equal(sha(part), sha(want));
  zi.close();
  assert.equal(check(z).status, 0, check(z).out);
  assert.equal(sha(toRaw(z).subarray(0, MiB)), sha(want));
});

test('corrupt or unsupported headers and tables are refused at open with one line naming the problem', needQemu, () => {
  const good = join(dir, 'good.qcow2');
  qemuImg('create', '-q', '-f', 'qcow2', good, '64M');
  const cases: [string, (b: Buffer) => void, RegExp][] = [
    ['magic', (b) => b.writeUInt32BE(0x12345678, 0), /bad magic 0x12345678/],
    ['version', (b) => b.writeUInt32BE(4, 4), /unsupported version 4/],
    ['cluster bits', (b) => b.writeUInt32BE(30, 20), /cluster_bits 30/],
    ['encryption', (b) => b.writeUInt32BE(1, 32), /encrypted/],
    ['L1 beyond the file', (b) => b.writeUInt32BE(0x7000000, 44), /L1 table .* past the end of the file/],
    ['L1 misaligned', (b) => b.writeUInt32BE(0x30200, 44), /L1 table offset 0x30200 is not cluster aligned/],
    ['tables overlap', (b) => b.writeUInt32BE(b.readUInt32BE(52), 44), /L1 table and refcount table overlap/],
    ['refcount table beyond the file', (b) => b.writeUInt32BE(0x100, 56), /refcount table .* past the end of the file/],
    ['L1 too small', (b) => b.writeUInt32BE(0, 36), /L1 table has 0 entries/],
    ['unknown incompatible feature', (b) => b.writeUInt32BE(0x100, 76), /unknown incompatible feature bits 0x100/],
    ['external data file', (b) => b.writeUInt32BE(4, 76), /external data file/],
    ['marked corrupt', (b) => b.writeUInt32BE(2, 76), /marked corrupt/],
    ['truncated', (b) => b.fill(0, 50), /bad magic|shorter|refcount/],
  ];
  for (const [name, mutate, re] of cases) {
    const p = join(dir, `bad-${name.replace(/\W/g, '_')}.qcow2`);
    const b = readFileSync(good);
    mutate(b);
    writeFileSync(p, name === 'truncated' ? b.subarray(0, 40) : b);
    assert.throws(() => Qcow2Image.open(p), (e: Error) => {
      assert.match(e.message, re, name);
      assert.ok(!e.message.includes('\n'), `${name}: one line`);
      assert.ok(e.message.startsWith(p), `${name}: names the file`);
      return true;
    });
  }
  // A corrupt L1 entry (pointing outside the file).
  const p = join(dir, 'bad-l1entry.qcow2');
  const img = Qcow2Image.open(good); img.write(0, Buffer.alloc(512, 1)); img.close();
  const b = readFileSync(good);
  const l1 = Number(b.readBigUInt64BE(40));
  b.writeBigUInt64BE(0x8000000000000000n | 0x40000000n, l1);
  writeFileSync(p, b);
  assert.throws(() => Qcow2Image.open(p), /L1 entry 0 points to 0x40000000/);
});

test('locking: a second read-write user is refused, readers share, stale locks of killed processes are ignored', async () => {
  const p = join(dir, 'locked.qcow2');
  createQcow2(p, { size: 16 * MiB });
  const a = Qcow2Image.open(p);
  assert.throws(() => Qcow2Image.open(p), (e: Error) => e instanceof ImageLockedError && /in use by this process \(read-write\); refusing/.test(e.message));
  assert.throws(() => Qcow2Image.open(p, { readOnly: true }), ImageLockedError, 'a writer excludes readers too');
  a.close();
  const r1 = Qcow2Image.open(p, { readOnly: true }), r2 = openImage(p, { readOnly: true });
  assert.throws(() => Qcow2Image.open(p), /in use by this process \(read-only\)/);
  r1.close(); r2.close();
  // Two overlays may share a base; the base cannot then be opened for writing.
  const o1 = join(dir, 'lo1.qcow2'), o2 = join(dir, 'lo2.qcow2');
  createQcow2(o1, { backingFile: 'locked.qcow2' }); createQcow2(o2, { backingFile: 'locked.qcow2' });
  const i1 = Qcow2Image.open(o1), i2 = Qcow2Image.open(o2);
  assert.throws(() => Qcow2Image.open(p), ImageLockedError);
  i1.close(); i2.close();
  // Raw images are locked the same way.
  const raw = join(dir, 'locked.raw');
  writeFileSync(raw, Buffer.alloc(MiB));
  const ra = RawImage.open(raw);
  assert.throws(() => RawImage.open(raw), ImageLockedError);
  ra.close();

  // Another process holds the lock: refused with its PID; after SIGKILL the stale lock is ignored.
  const child = spawn(process.execPath, ['--import', 'tsx', '-e',
    `const { Qcow2Image } = await import(${JSON.stringify(join(import.meta.dirname, '..', 'src/backends/disk/qcow2.ts'))}); Qcow2Image.open(${JSON.stringify(p)}); console.log('locked'); setInterval(() => {}, 1000);`],
  { cwd: join(import.meta.dirname, '..'), stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((res) => child.stdout.on('data', (d) => { if (String(d).includes('locked')) res(); }));
  assert.throws(() => Qcow2Image.open(p), new RegExp(`in use by process ${child.pid}`));
  child.kill('SIGKILL');
  await new Promise((res) => child.on('exit', res));
  Qcow2Image.open(p).close();
});

/** The crash test's writer: random writes with a journal entry before each and a flush mark after each flush. */
const CHILD = (qcow2: string, img: string, journal: string) => writerScript(qcow2, img, journal, `
  const len = 512 * (1 + Math.floor(Math.random() * 24));
  const off = 512 * Math.floor(Math.random() * ((img.size - len) / 512 + 1));
  // A cheap pattern unique to this write, so the process spends its time in the image code, not here.
  const tag = Buffer.alloc(8); tag.writeUInt32LE(seq, 0); tag.writeUInt32LE((seq * 2654435761) >>> 0, 4);
  const data = Buffer.alloc(len, tag);
  writeSync(j, 'w ' + seq + ' ' + off + ' ' + len + '\\n');
  img.write(off, data);
`);

function pattern(seq: number, len: number): Uint8Array {
  const tag = Buffer.alloc(8); tag.writeUInt32LE(seq, 0); tag.writeUInt32LE((seq * 2654435761) >>> 0, 4);
  return Buffer.alloc(len, tag);
}

test('crash safety: a writer killed with SIGKILL 20 times leaves check-clean images holding every flushed write', { ...needQemu, timeout: 300_000 }, async (t) => {
  const root = join(import.meta.dirname, '..');
  // Large enough that writes keep allocating clusters, tables and refcount blocks in every round.
  for (const [name, opts, size] of [['64k', [], 128 * MiB], ['512', ['-o', 'cluster_size=512'], 8 * MiB]] as const) {
    const img = join(dir, `crash-${name}.qcow2`), journal = join(dir, `crash-${name}.journal`), script = join(dir, `crash-${name}.mjs`);
    qemuImg('create', '-q', '-f', 'qcow2', ...opts, img, String(size));
    writeFileSync(script, CHILD(join(root, 'src/backends/disk/qcow2.ts'), img, journal));
    let ref: Buffer = Buffer.alloc(size);
    let seq = 0, leaks = 0, growth = 0;
    for (let round = 0; round < (name === '64k' ? 12 : 8); round++) {
      writeFileSync(journal, '');
      await runWriterUntilKilled(script, seq, root, 100, 900);
      const c = check(img);
      assert.ok(c.status === 0 || c.status === 3, `round ${round}: qemu-img check found corruption:\n${c.out}`);
      assert.doesNotMatch(c.out, /ERROR/);
      if (c.status === 3) leaks++;
      // Writes up to the last flush mark must be there, except where a later (unflushed) write may have landed.
      const text = readFileSync(journal, 'utf8').split('\n');
      const lastFlush = Math.max(-1, ...text.filter((l) => l.startsWith('f ')).map((l) => Number(l.split(' ')[1])));
      const writes = text.filter((l) => l.startsWith('w ')).map((l) => l.split(' ').slice(1).map(Number));
      const dontCare = new Uint8Array(size);
      for (const [s, off, len] of writes) {
        if (s <= lastFlush) ref.set(pattern(s, len), off);
        else dontCare.fill(1, off, off + len);
      }
      const actual = toRaw(img);
      let bad = 0;
      for (let i = 0; i < size; i++) if (!dontCare[i] && actual[i] !== ref[i]) bad++;
      assert.equal(bad, 0, `round ${round}: ${bad} bytes of flushed data differ (last flush ${lastFlush}, ${writes.length} writes)`);
      ref = actual;
      seq = (writes.at(-1)?.[0] ?? seq) + 1;
      growth = Number(readFileSync(img).readUInt32BE(56));
    }
    t.diagnostic(`${name}: ${seq} writes, ${leaks} rounds with leaked clusters, refcount table now ${growth} cluster(s)`);
  }
});
