// The newc cpio writer, checked against the host's GNU cpio (an independent reader) and against its own parser.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { lstatSync, mkdtempSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { buildCpio, buildCpioGz, parseCpio, S_IFCHR, S_IFDIR, S_IFLNK, S_IFREG, type CpioEntry } from '../src/guest/cpio.ts';

const haveCpio = spawnSync('sh', ['-c', 'command -v cpio'], { stdio: 'ignore' }).status === 0;
const isRoot = process.getuid?.() === 0;

// Payload sizes 0..9 cover every padding remainder of both the name and the data.
const payload = (n: number): Buffer => Buffer.from(Array.from({ length: n }, (_, i) => (i * 37 + n) & 0xff));

function sample(): CpioEntry[] {
  const entries: CpioEntry[] = [
    { type: 'dir', path: 'bin' },
    { type: 'dir', path: '/etc/', mode: 0o750 },
    { type: 'dir', path: 'dev' },
    { type: 'dir', path: 'tmp', mode: 0o1777 },
    { type: 'file', path: 'bin/tool', data: Buffer.from('#!/bin/sh\necho tool\n'), mode: 0o755 },
    { type: 'file', path: 'etc/secret', data: Buffer.from('s3cret\n'), mode: 0o600 },
    { type: 'symlink', path: 'bin/sh', target: '/bin/tool' },
    { type: 'symlink', path: 'bin/rel', target: 'tool' },
    { type: 'char', path: 'dev/console', major: 5, minor: 1, mode: 0o600 },
    { type: 'char', path: 'dev/null', major: 1, minor: 3, mode: 0o666 },
    { type: 'char', path: 'dev/ttyS0', major: 4, minor: 64, mode: 0o660 },
    { type: 'block', path: 'dev/vda', major: 254, minor: 0, mode: 0o660 },
  ];
  for (let n = 0; n < 10; n++) entries.push({ type: 'file', path: `etc/f${'x'.repeat(n)}`, data: payload(n) });
  return entries;
}

test('newc layout: magic, 4-byte alignment of every header, trailer last', () => {
  const buf = buildCpio(sample(), { mtime: 1700000000 });
  assert.equal(buf.length % 4, 0);
  // Walk the headers by hand, independently of parseCpio.
  let off = 0;
  const names: string[] = [];
  for (;;) {
    assert.equal(off % 4, 0, `header at ${off} misaligned`);
    assert.equal(buf.toString('ascii', off, off + 6), '070701');
    const field = (i: number) => parseInt(buf.toString('ascii', off + 6 + 8 * i, off + 14 + 8 * i), 16);
    const namesize = field(11);
    const name = buf.toString('utf8', off + 110, off + 110 + namesize - 1);
    assert.equal(buf[off + 110 + namesize - 1], 0, 'name is NUL-terminated');
    names.push(name);
    let p = off + 110 + namesize;
    p = (p + 3) & ~3;
    p += field(6);
    p = (p + 3) & ~3;
    if (name === 'TRAILER!!!') {
      assert.equal(p, buf.length, 'nothing after the trailer');
      break;
    }
    assert.equal(field(5), 1700000000);
    off = p;
  }
  assert.equal(names.length, sample().length + 1);
  assert.equal(names[1], 'etc', 'leading and trailing slashes are stripped');
});

test('parseCpio reads back types, modes, devices and data', () => {
  const list = parseCpio(gunzipSync(buildCpioGz(sample())));
  const by = new Map(list.map((e) => [e.name, e]));
  assert.equal(by.get('bin')!.mode, S_IFDIR | 0o755);
  assert.equal(by.get('tmp')!.mode, S_IFDIR | 0o1777);
  assert.equal(by.get('bin/tool')!.mode, S_IFREG | 0o755);
  assert.equal(by.get('etc/secret')!.mode, S_IFREG | 0o600);
  assert.equal(by.get('bin/sh')!.mode, S_IFLNK | 0o777);
  assert.equal(by.get('bin/sh')!.data.toString(), '/bin/tool');
  const con = by.get('dev/console')!;
  assert.deepEqual([con.mode, con.rdevMajor, con.rdevMinor], [S_IFCHR | 0o600, 5, 1]);
  for (let n = 0; n < 10; n++) assert.deepEqual(by.get(`etc/f${'x'.repeat(n)}`)!.data, payload(n));
});

test('equal inputs give byte-identical gzip images', () => {
  assert.deepEqual(buildCpioGz(sample()), buildCpioGz(sample()));
});

test('rejects duplicate names and paths escaping the root', () => {
  assert.throws(() => buildCpio([{ type: 'dir', path: 'a' }, { type: 'dir', path: '/a' }]), /duplicate/);
  assert.throws(() => buildCpio([{ type: 'dir', path: 'a/../../etc' }]), /bad cpio path/);
  assert.throws(() => buildCpio([{ type: 'dir', path: '/' }]), /bad cpio path/);
});

test('host GNU cpio lists and extracts the archive with the right contents and modes', { skip: !haveCpio && 'the host has no `cpio` (Debian package cpio)' }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'trapeze-cpio-'));
  try {
    const img = join(dir, 'img.cpio');
    writeFileSync(img, buildCpio(sample()));
    const listed = spawnSync('cpio', ['-t', '--quiet', '-F', img], { encoding: 'utf8' });
    assert.equal(listed.status, 0, listed.stderr);
    assert.deepEqual(listed.stdout.trim().split('\n'), sample().map((e) => e.path.replace(/^\/|\/$/g, '')));

    const verbose = spawnSync('cpio', ['-tv', '--quiet', '-F', img], { encoding: 'utf8' });
    assert.match(verbose.stdout, /^crw------- .* 5,\s+1 .* dev\/console$/m);
    assert.match(verbose.stdout, /^brw-rw---- .* 254,\s+0 .* dev\/vda$/m);
    assert.match(verbose.stdout, /^lrwxrwxrwx .* bin\/sh -> \/bin\/tool$/m);
    assert.match(verbose.stdout, /^drwxrwxrwt .* tmp$/m);

    const root = join(dir, 'root');
    // Device nodes can only be made by root; elsewhere check everything else.
    const args = ['-i', '-d', '--quiet', '--no-absolute-filenames', '-D', root, '-F', img];
    if (!isRoot) args.push('--nonmatching', 'dev/*');
    spawnSync('mkdir', ['-p', root]);
    const ex = spawnSync('cpio', args, { encoding: 'utf8' });
    assert.equal(ex.status, 0, ex.stderr);
    const mode = (p: string) => lstatSync(join(root, p)).mode & 0o7777;
    assert.equal(mode('bin/tool'), 0o755);
    assert.equal(mode('etc/secret'), 0o600);
    assert.equal(mode('etc'), 0o750);
    assert.equal(mode('tmp'), 0o1777);
    assert.equal(readFileSync(join(root, 'bin/tool'), 'utf8'), '#!/bin/sh\necho tool\n');
    assert.equal(readlinkSync(join(root, 'bin/rel')), 'tool');
    for (let n = 0; n < 10; n++) assert.deepEqual(readFileSync(join(root, `etc/f${'x'.repeat(n)}`)), payload(n));
    assert.equal(readlinkSync(join(root, 'bin/sh')), '/bin/tool');
    if (isRoot) {
      const st = lstatSync(join(root, 'dev/ttyS0'));
      assert.ok(st.isCharacterDevice());
      // Linux encodes rdev as (major << 8) | minor for small numbers.
      assert.equal(st.rdev, (4 << 8) | 64);
      assert.ok(lstatSync(join(root, 'dev/vda')).isBlockDevice());
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
