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
  assert.deepEqual(parseDrive('file=a.img,readonly=on'), { file: 'a.img', format: 'raw', interface: 'virtio', readOnly: true });
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
