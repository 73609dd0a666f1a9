// `trapeze guest debian` pieces that run in seconds: choosing debootstrap's archive from apt sources, the
// initramfs /init's root= handling (run under the host's POSIX shell and, when fetched, the guest's busybox),
// and raw → qcow2 conversion. The full debootstrap + boot is `npm run debian-boot` (minutes).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readdirSync, rmSync, statSync, truncateSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseDeb822Sources, parseListSources } from '../src/guest/apt.ts';
import { debootstrapSource, fstab, imageFormatFor, rawToQcow2 } from '../src/guest/debian.ts';
import { initScript, ROOT_HANDOFF } from '../src/guest/initramfs.ts';
import { defaultCacheDir } from '../src/guest/cache.ts';
import { Qcow2Image } from '../src/backends/disk/qcow2.ts';
import { i386Prefix } from '../src/guest/i386-host.mjs';

test('debootstrap uses the host source that serves bookworm itself, with its keyring file', () => {
  const sources = parseDeb822Sources([
    'Types: deb',
    'URIs: http://mirror.example/debian-security',
    'Suites: bookworm-security',
    'Components: main',
    'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg',
    '',
    'Types: deb',
    'URIs: http://mirror.example/debian http://other.example/debian',
    'Suites: bookworm bookworm-updates',
    'Components: main contrib',
    'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg',
    '',
  ].join('\n'), 'x.sources');
  assert.deepEqual(debootstrapSource(sources), {
    uri: 'http://mirror.example/debian', keyring: '/usr/share/keyrings/debian-archive-keyring.gpg', components: ['main', 'contrib'],
  });
  // One-line style, and an inline key, which is no file debootstrap could be given.
  const list = parseListSources('deb http://snap.example/archive/debian/20250520T000000Z/ bookworm main\n', 'x.list');
  assert.deepEqual(debootstrapSource(list), { uri: 'http://snap.example/archive/debian/20250520T000000Z/', keyring: undefined, components: ['main'] });
  const inline = parseDeb822Sources('Types: deb\nURIs: http://m.example/debian\nSuites: bookworm\nComponents: main\nSigned-By:\n -----BEGIN PGP PUBLIC KEY BLOCK-----\n abc\n', 'y');
  assert.equal(debootstrapSource(inline)?.keyring, undefined);
  assert.equal(debootstrapSource(parseListSources('deb http://m.example/debian trixie main\n', 'z')), undefined);
});

test('image format follows the extension; fstab mounts /dev/vda as ext4 root', () => {
  assert.equal(imageFormatFor('/x/debian.qcow2'), 'qcow2');
  assert.equal(imageFormatFor('/x/Debian.QCOW2'), 'qcow2');
  assert.equal(imageFormatFor('/x/debian.img'), 'raw');
  assert.match(fstab(), /^\/dev\/vda \/ ext4 \S+ 0 1$/m);
});

/** Runs `parse_cmdline CMDLINE` under `shell` and reports the variables it set. */
function parse(shell: string[], cmdline: string): Record<string, string> {
  const script = `${ROOT_HANDOFF}\nset -f\nparse_cmdline "$1"\necho "root=$root fstype=$rootfstype flags=$rootflags mode=$rootmode delay=$rootdelay wait=$rootwait init=$rootinit"\n`;
  const r = spawnSync(shell[0], [...shell.slice(1), '-c', script, 'sh', cmdline], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return Object.fromEntries(r.stdout.trim().split(' ').map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
}

function shells(): { name: string; argv: string[] }[] {
  const out = [{ name: '/bin/sh', argv: ['/bin/sh'] }];
  // The guest's own busybox, when a previous fetch left it in the cache (i386: natively or under qemu-i386, src/guest/i386-host.mjs).
  const pkgs = join(defaultCacheDir(), 'pkgs');
  if (existsSync(pkgs)) {
    for (const d of readdirSync(pkgs).filter((n) => n.startsWith('busybox-static_'))) {
      const bb = join(pkgs, d, 'bin', 'busybox');
      const argv = [...(i386Prefix() ?? []), bb];
      if (existsSync(bb) && spawnSync(argv[0], [...argv.slice(1), 'true']).status === 0) { out.push({ name: 'guest busybox', argv: [...argv, 'sh'] }); break; }
    }
  }
  return out;
}

test('/init reads root=, rootfstype=, rootflags=, ro/rw, rootdelay=, rootwait and init= as the kernel does', () => {
  for (const { name, argv } of shells()) {
    const base = 'console=ttyS0 reboot=acpi panic=-1 tsc=reliable cryptomgr.notests';
    const none = parse(argv, base);
    assert.equal(none.root, '', `${name}: no root= means the busybox guest`);
    assert.equal(none.mode, 'ro', `${name}: read-only by default, like the kernel`);
    assert.equal(none.init, '/sbin/init');
    assert.equal(none.delay, '30');
    const full = parse(argv, `${base} root=/dev/vda rootfstype=ext4 rootflags=noatime,data=ordered rw rootdelay=7 init=/bin/bash`);
    assert.deepEqual(
      [full.root, full.fstype, full.flags, full.mode, full.delay, full.init, full.wait],
      ['/dev/vda', 'ext4', 'noatime,data=ordered', 'rw', '7', '/bin/bash', ''], name,
    );
    // The last ro/rw wins; a glob-like or malformed value is taken literally, a bad delay falls back to 30.
    const odd = parse(argv, `root=LABEL=trapeze-root rw ro rootdelay=x* rootwait`);
    assert.deepEqual([odd.root, odd.mode, odd.delay, odd.wait], ['LABEL=trapeze-root', 'ro', '30', '1'], name);
  }
});

test('/init: root handling sits between module loading and the busybox shell, and is valid shell', () => {
  const init = initScript(['crc32c_generic', 'ext4']);
  const load = init.indexOf('for m in crc32c_generic ext4');
  const hand = init.indexOf('[ -n "$root" ] && mount_root_and_switch');
  const dhcp = init.indexOf('udhcpc');
  assert.ok(load > 0 && hand > load && dhcp > hand, 'modules load before the root hand-off, DHCP and the shell after it');
  assert.match(init, /exec switch_root -c \/dev\/console \/newroot "\$rootinit"/);
  for (const d of ['dev', 'proc', 'sys']) assert.ok(init.includes('for d in dev proc sys'), d);
  for (const { name, argv } of shells()) {
    const r = spawnSync(argv[0], [...argv.slice(1), '-n'], { input: init, encoding: 'utf8' });
    assert.equal(r.status, 0, `${name} -n: ${r.stderr}`);
  }
});

test('raw → qcow2 copies data clusters only and reads back identical', () => {
  const dir = mkdtempSync(join(tmpdir(), 'trapeze-debian-'));
  try {
    const raw = join(dir, 'fs.raw');
    const size = 40 * 2 ** 20 + 512; // not a whole number of clusters
    closeSync(openSync(raw, 'w'));
    truncateSync(raw, size);
    const fd = openSync(raw, 'r+');
    // Data at the start, straddling a 4 MiB chunk boundary, a lone byte, and in the last partial cluster.
    const pieces: [number, Buffer][] = [
      [0, Buffer.alloc(3000, 0x11)],
      [4 * 2 ** 20 - 100, Buffer.alloc(70_000, 0x22)],
      [17 * 2 ** 20 + 12345, Buffer.from([0x33])],
      [size - 10, Buffer.alloc(10, 0x44)],
    ];
    for (const [off, b] of pieces) writeSync(fd, b, 0, b.length, off);
    closeSync(fd);
    const q = join(dir, 'fs.qcow2');
    const written = rawToQcow2(raw, q);
    // Clusters touched: 1 + 3 (the 70,000-byte run crosses two boundaries) + 1 + 1, 64 KiB each.
    assert.equal(written, 5 * 65536 + (size % 65536 || 65536));
    assert.ok(statSync(q).size < 2 * 2 ** 20, `qcow2 stays small (${statSync(q).size} bytes)`);
    const img = Qcow2Image.open(q, { readOnly: true });
    try {
      assert.equal(img.size, size);
      const got = Buffer.alloc(size);
      for (let off = 0; off < size; off += 2 ** 20) img.read(off, got.subarray(off, Math.min(off + 2 ** 20, size)));
      const want = Buffer.alloc(size);
      for (const [off, b] of pieces) b.copy(want, off);
      assert.ok(got.equals(want), 'contents match');
    } finally {
      img.close();
    }
    const check = spawnSync('qemu-img', ['check', q], { encoding: 'utf8' });
    if (!check.error) assert.equal(check.status, 0, check.stdout + check.stderr);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
