// `--drive` parsing (QEMU's -drive vocabulary) and its one-line errors, in-process and through the CLI.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDrives, parseDrive } from '../src/cli/drive.ts';
import { UserError } from '../src/cli/errors.ts';

const dir = mkdtempSync(join(tmpdir(), 'trapeze-drive-'));

test('parses QEMU-style drive specs', () => {
  assert.deepEqual(parseDrive('file=a.img,format=raw,if=virtio'), { file: 'a.img', format: 'raw', interface: 'virtio', readOnly: false });
  assert.deepEqual(parseDrive('file=a.img,readonly=on'), { file: 'a.img', format: undefined, interface: 'virtio', readOnly: true }, 'no format: guessed at open');
  assert.equal(parseDrive('file=a,,b.img').file, 'a,b.img', '",," is a literal comma');
  assert.equal(parseDrive('file=x=y.img').file, 'x=y.img');
});

test('bad specs are user errors naming the problem', () => {
  const bad: [string, RegExp][] = [
    ['file=a.img,format=vmdk', /unknown format 'vmdk' \(supported: raw/],
    ['file=a.img,if=scsi', /unknown interface if=scsi \(supported: virtio/],
    ['file=a.img,cache=none', /unknown key 'cache'/],
    ['format=raw', /needs file=PATH/],
    ['file=a.img,readonly=maybe', /readonly=maybe must be on or off/],
    ['file=a.img,file=b.img', /'file' given twice/],
    ['a.img', /'a.img' is not key=value/],
  ];
  for (const [spec, re] of bad) assert.throws(() => parseDrive(spec), (e: Error) => e instanceof UserError && re.test(e.message), spec);
  assert.throws(() => openDrives([`file=${join(dir, 'missing.img')}`]), (e: Error) => e instanceof UserError && /missing\.img.*ENOENT/.test(e.message));
  const tiny = join(dir, 'tiny.img');
  writeFileSync(tiny, Buffer.alloc(100));
  assert.throws(() => openDrives([`file=${tiny}`]), /smaller than one 512-byte sector/);
});

test('the CLI refuses a bad drive with one line and status 2', () => {
  const r = spawnSync(process.execPath, [join(import.meta.dirname, '..', 'bin', 'trapeze'), 'run', '--drive', 'file=x.img,format=qcow9'], { encoding: 'utf8', input: '', timeout: 60_000 });
  assert.equal(r.status, 2, r.stderr);
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  assert.match(r.stderr, /unknown format 'qcow9'/);
});

test('without format= the format is guessed; a guessed raw disk may not be given a qcow2 header', async () => {
  const { createQcow2 } = await import('../src/backends/disk/qcow2.ts');
  const { RawImage } = await import('../src/backends/disk/raw.ts');
  const q = join(dir, 'guess.qcow2');
  createQcow2(q, { size: 1 << 20 });
  const r = join(dir, 'guess.raw');
  writeFileSync(r, Buffer.alloc(1 << 20));
  const opened = openDrives([`file=${q}`, `file=${r}`]);
  opened.close();

  const magic = Buffer.from([0x51, 0x46, 0x49, 0xfb]);
  const probed = RawImage.open(r, { probed: true });
  assert.throws(() => probed.write(0, Buffer.concat([magic, Buffer.alloc(508)])), /qcow2 header/);
  probed.write(0, magic.subarray(0, 2));
  assert.throws(() => probed.write(2, Buffer.from([0x49, 0xfb])), /qcow2 header/, 'assembled from two writes');
  probed.write(0, Buffer.alloc(512, 7));
  probed.write(512, magic);
  probed.close();
  const given = RawImage.open(r);
  given.write(0, magic);
  given.close();
});
