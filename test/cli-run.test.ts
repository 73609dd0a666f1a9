// `trapeze run` refuses bad input with one line that says what is wrong and what to do, exit status 2,
// before any guest code runs.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const bin = join(import.meta.dirname, '..', 'bin', 'trapeze');
const dir = mkdtempSync(join(tmpdir(), 'trapeze-cli-'));

function run(args: string[]) {
  const r = spawnSync(process.execPath, [bin, 'run', ...args], { encoding: 'utf8', input: '', timeout: 60_000 });
  return { status: r.status, stderr: r.stderr, stdout: r.stdout };
}

function expectOneLineError(args: string[], pattern: RegExp) {
  const r = run(args);
  assert.equal(r.status, 2, `exit status for ${args.join(' ')}: ${r.stderr}`);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, `one line of error, got: ${r.stderr}`);
  assert.match(lines[0], pattern);
  assert.doesNotMatch(r.stderr, /at .*\.(ts|js):\d+/, 'no stack trace');
}

test('missing kernel file', () => expectOneLineError(['--kernel', join(dir, 'nope')], /cannot read kernel .*nope.*ENOENT/));

test('a kernel that is not a bzImage', () => {
  const f = join(dir, 'not-a-kernel');
  writeFileSync(f, Buffer.alloc(4096, 0x41));
  expectOneLineError(['--kernel', f], /not a bzImage/);
});

test('memory below 32 MiB and above what the host allows', () => {
  expectOneLineError(['--memory', '16'], /too small/);
  expectOneLineError(['--memory', '99999999'], /more than this host allows/);
  expectOneLineError(['--memory', 'lots'], /whole number/);
});

test('unknown flag', () => expectOneLineError(['--frobnicate'], /Unknown option '--frobnicate'.*--help/));

test('an initrd larger than guest memory', () => {
  const k = join(dir, 'bz');
  // A minimal image that passes the header checks: boot flag, "HdrS", protocol 2.10, loaded high.
  const img = Buffer.alloc(8192);
  img.writeUInt16LE(0xaa55, 0x1fe);
  img.write('HdrS', 0x202, 'latin1');
  img.writeUInt16LE(0x020a, 0x206);
  img[0x1f1] = 4;
  img[0x211] = 1;
  writeFileSync(k, img);
  const big = join(dir, 'big-initrd');
  writeFileSync(big, Buffer.alloc(40 << 20));
  expectOneLineError(['--kernel', k, '--initrd', big, '--memory', '32'], /does not fit in 32 MiB/);
});

test('--help prints usage and exits 0', () => {
  const r = run(['--help']);
  assert.equal(r.status, 0);
  assert.match(r.stdout, /usage: trapeze run/);
  assert.match(r.stdout, /Ctrl-A x/);
});
