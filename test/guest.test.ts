// Guest tooling: apt source handling and module metadata offline, then the real fetch of Debian 12's i386
// kernel and busybox (skipped when the archive cannot be reached) and checks of the initramfs built from them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import {
  debFileName, hostDebianSources, isDebianSource, parseDeb822Sources, parseDepends, parseListSources, renderDeb822,
} from '../src/guest/apt.ts';
import { defaultCacheDir, silentLog } from '../src/guest/cache.ts';
import { parseCpio, S_IFCHR, S_IFLNK } from '../src/guest/cpio.ts';
import { isBzImage, prepareDefaultGuest, type PreparedGuest } from '../src/guest/fetch.ts';
import { DEFAULT_MODULES } from '../src/guest/initramfs.ts';
import { moduleNameOfPath, readModinfo, renderModulesDep, type ModuleInfo } from '../src/guest/kmod.ts';
import { i386Command, i386Hint, i386Prefix } from '../src/guest/i386-host.mjs';

const root = process.getuid?.() === 0;

test('deb822 sources: Debian stanzas kept, disabled, source-only and foreign-arch ones dropped', () => {
  const text = [
    'Types: deb deb-src',
    '# a comment inside a stanza',
    'URIs: http://mirror.example/debian',
    'Suites: bookworm bookworm-updates',
    'Components: main contrib',
    'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg',
    '',
    'Types: deb-src',
    'URIs: http://mirror.example/debian',
    'Suites: bookworm',
    'Components: main',
    '',
    'Types: deb',
    'URIs: http://mirror.example/debian',
    'Suites: trixie',
    'Components: main',
    'Enabled: no',
    '',
    'Types: deb',
    'URIs: https://thirdparty.example/node_20.x',
    'Suites: nodistro',
    'Components: main',
    'Architectures: amd64',
    'Signed-By:',
    ' -----BEGIN PGP PUBLIC KEY BLOCK-----',
    ' .',
    ' abc',
    '',
  ].join('\n');
  const all = parseDeb822Sources(text, 'x.sources');
  assert.equal(all.length, 2);
  assert.deepEqual(all[0].suites, ['bookworm', 'bookworm-updates']);
  assert.deepEqual(all[0].components, ['main', 'contrib']);
  assert.equal(all[1].signedBy, '\n-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nabc');
  assert.equal(isDebianSource(all[0]), true);
  assert.equal(isDebianSource(all[1]), false);
  // Rendering keeps an inline key's empty line as " ." and re-parses to the same source.
  const again = parseDeb822Sources(renderDeb822(all), 'y');
  assert.deepEqual(again.map((s) => [s.uris, s.suites, s.components, s.signedBy]), all.map((s) => [s.uris, s.suites, s.components, s.signedBy]));
});

test('one-line sources with options; snapshot URIs count as Debian', () => {
  const s = parseListSources([
    'deb [arch=amd64,i386 signed-by=/k.gpg] http://snap.example/archive/debian/20250520T000000Z/ bookworm main non-free # tail',
    'deb-src http://mirror.example/debian bookworm main',
    '# deb http://mirror.example/debian sid main',
    'deb http://apt.example/repo stable main',
  ].join('\n'), 'x.list');
  assert.equal(s.length, 2);
  assert.deepEqual(s[0].architectures, ['amd64', 'i386']);
  assert.equal(s[0].signedBy, '/k.gpg');
  assert.deepEqual(s[0].components, ['main', 'non-free']);
  assert.equal(isDebianSource(s[0]), true);
  assert.equal(isDebianSource(s[1]), false);
});

test('host sources are read from sources.list and sources.list.d, keeping Debian ones that serve i386', () => {
  const etc = mkdtempSync(join(tmpdir(), 'trapeze-etcapt-'));
  try {
    mkdirSync(join(etc, 'sources.list.d'));
    writeFileSync(join(etc, 'sources.list'), 'deb http://m.example/debian bookworm main\n');
    writeFileSync(join(etc, 'sources.list.d', 'a.sources'), 'Types: deb\nURIs: http://m.example/debian-security\nSuites: bookworm-security\nComponents: main\n');
    writeFileSync(join(etc, 'sources.list.d', 'b.list'), 'deb [arch=amd64] http://m.example/debian bookworm-backports main\n');
    writeFileSync(join(etc, 'sources.list.d', 'c.list.disabled'), 'deb http://m.example/debian sid main\n');
    const got = hostDebianSources(etc, 'i386');
    assert.deepEqual(got.map((s) => s.suites[0]), ['bookworm', 'bookworm-security']);
  } finally {
    rmSync(etc, { recursive: true, force: true });
  }
});

test('Depends parsing and apt-get download file names', () => {
  assert.deepEqual(parseDepends('linux-image-6.1.0-50-686 (= 6.1.176-1), kmod | foo, libc6:i386 (>= 2.36) [i386]'), ['linux-image-6.1.0-50-686', 'kmod', 'libc6']);
  assert.equal(debFileName({ package: 'busybox-static', version: '1:1.35.0-4', architecture: 'i386', depends: [], size: 0 }), 'busybox-static_1%3a1.35.0-4_i386.deb');
});

/** A minimal ELF32 relocatable with a .modinfo section, laid out by hand: header, section data, section table. */
function elfWithModinfo(strings: string[]): Buffer {
  const modinfo = Buffer.from(strings.map((s) => s + '\0').join(''));
  const shstr = Buffer.from('\0.modinfo\0.shstrtab\0');
  const dataOff = 52;
  const shstrOff = dataOff + modinfo.length;
  const shoff = (shstrOff + shstr.length + 3) & ~3;
  const buf = Buffer.alloc(shoff + 3 * 40);
  buf.writeUInt32BE(0x7f454c46, 0);
  buf[4] = 1; // ELFCLASS32
  buf[5] = 1; // little-endian
  buf[6] = 1;
  buf.writeUInt16LE(1, 16); // ET_REL
  buf.writeUInt16LE(3, 18); // EM_386
  buf.writeUInt32LE(shoff, 0x20);
  buf.writeUInt16LE(52, 0x28);
  buf.writeUInt16LE(40, 0x2e);
  buf.writeUInt16LE(3, 0x30);
  buf.writeUInt16LE(2, 0x32);
  modinfo.copy(buf, dataOff);
  shstr.copy(buf, shstrOff);
  const sh = (i: number, name: number, type: number, off: number, size: number) => {
    const h = shoff + i * 40;
    buf.writeUInt32LE(name, h);
    buf.writeUInt32LE(type, h + 4);
    buf.writeUInt32LE(off, h + 0x10);
    buf.writeUInt32LE(size, h + 0x14);
  };
  sh(1, 1, 1, dataOff, modinfo.length);
  sh(2, 10, 3, shstrOff, shstr.length);
  return buf;
}

test('module metadata from .modinfo and modules.dep in load-from-the-end order', () => {
  const mi = readModinfo(elfWithModinfo(['license=GPL', 'depends=virtio,virtio_ring', 'alias=virtio:d00000002v*', 'alias=pci:v1*', 'softdep=pre: crc32c']));
  assert.deepEqual(mi.get('depends'), ['virtio,virtio_ring']);
  assert.deepEqual(mi.get('alias'), ['virtio:d00000002v*', 'pci:v1*']);
  assert.equal(moduleNameOfPath('kernel/drivers/net/ethernet/8390/ne2k-pci.ko.xz'), 'ne2k_pci');
  const m = (name: string, depends: string[]): ModuleInfo => ({ name, path: `k/${name}.ko`, source: '', depends, aliases: [], softPre: [] });
  // c needs b needs a: loading c's list from its end must load a, then b.
  const dep = renderModulesDep([m('a', []), m('b', ['a']), m('c', ['b'])]);
  assert.equal(dep, 'k/a.ko:\nk/b.ko: k/a.ko\nk/c.ko: k/b.ko k/a.ko\n');
});

// The real fetch. It shares the default cache with the tests that boot the guest later.
let guest: PreparedGuest | undefined;
let skipWhy: string | undefined;
async function getGuest(): Promise<PreparedGuest | undefined> {
  if (guest || skipWhy) return guest;
  try {
    guest = await prepareDefaultGuest({ cache: defaultCacheDir(), log: silentLog });
  } catch (e) {
    if ((e as { archiveUnreachable?: boolean }).archiveUnreachable) skipWhy = `Debian archive unreachable: ${(e as Error).message}`;
    else throw e;
  }
  return guest;
}

test('fetch: linux-image-686 resolves to a concrete i386 kernel, a bzImage, with its modules and busybox', async (t) => {
  const g = await getGuest();
  if (!g) return t.skip(skipWhy);
  assert.match(g.kernelVersion, /^\d+\.\d+\.\d+-\d+-686$/);
  assert.ok(isBzImage(g.kernel), `${g.kernel} has no HdrS at 0x202`);
  // The setup header's protocol version (0x206) must allow a 32-bit boot with an initrd: 2.02 or newer.
  const hdr = readFileSync(g.kernel).subarray(0, 0x210);
  assert.ok(hdr.readUInt16LE(0x206) >= 0x202);
  assert.ok(existsSync(join(g.modulesDir, 'kernel')));
  const x = i386Command(g.busybox, ['echo', 'hi']);
  const r = spawnSync(x.cmd, x.args, { encoding: 'utf8' });
  assert.equal(r.stdout, 'hi\n');
});

test('initramfs: busybox runs, applets, devices, modules, /init', async (t) => {
  const g = await getGuest();
  if (!g) return t.skip(skipWhy);
  const files = parseCpio(gunzipSync(readFileSync(g.initrd)));
  const by = new Map(files.map((f) => [f.name, f]));
  const con = by.get('dev/console')!;
  assert.deepEqual([con.mode & 0o170000, con.rdevMajor, con.rdevMinor], [S_IFCHR, 5, 1]);
  assert.equal(by.get('init')!.mode & 0o777, 0o755);
  const init = by.get('init')!.data.toString();
  assert.match(init, /^#!\/bin\/sh\n/);
  assert.match(init, /mount -t devtmpfs devtmpfs \/dev/);
  assert.match(init, /Trapeze guest: Debian \$\(uname -r\) \(busybox\) — type poweroff to quit/);
  assert.match(init, /setsid cttyhack sh/);
  assert.match(by.get('sbin/poweroff')!.data.toString(), /busybox poweroff -f/);
  assert.match(by.get('sbin/reboot')!.data.toString(), /busybox reboot -f/);
  const sh = by.get('bin/sh')!;
  assert.equal(sh.mode & 0o170000, S_IFLNK);
  assert.equal(sh.data.toString(), '/bin/busybox');
  for (const a of ['bin/mount', 'sbin/modprobe', 'bin/setsid', 'bin/cttyhack']) assert.ok(by.has(a) || by.has(`usr/${a}`), `${a} missing`);

  const modRoot = `lib/modules/${g.kernelVersion}`;
  const dep = by.get(`${modRoot}/modules.dep`)!.data.toString();
  const depNames = dep.trim().split('\n').map((l) => moduleNameOfPath(l.slice(0, l.indexOf(':'))));
  for (const m of DEFAULT_MODULES) assert.ok(depNames.includes(m.replace(/-/g, '_')), `${m} not in modules.dep`);
  // Every dependency named in modules.dep is itself in the image.
  for (const line of dep.trim().split('\n')) {
    for (const p of line.split(/:?\s+/)) if (p) assert.ok(by.has(`${modRoot}/${p.replace(/:$/, '')}`), `${p} missing from the image`);
  }
  assert.match(by.get(`${modRoot}/modules.alias`)!.data.toString(), /^alias pci:v00001AF4d\S* virtio_pci$/m);

  const dir = mkdtempSync(join(tmpdir(), 'trapeze-initrd-'));
  try {
    const bb = join(dir, 'busybox');
    writeFileSync(bb, by.get('bin/busybox')!.data);
    chmodSync(bb, 0o755);
    const x = i386Command(bb, ['echo', 'hi']);
    const r = spawnSync(x.cmd, x.args, { encoding: 'utf8' });
    assert.equal(r.stdout, 'hi\n', r.stderr);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("initramfs: the guest's own modprobe resolves device aliases to the right modules", { skip: !root && 'needs root (chroot)' }, async (t) => {
  const g = await getGuest();
  if (!g) return t.skip(skipWhy);
  const dir = mkdtempSync(join(tmpdir(), 'trapeze-initrd-'));
  try {
    const x = spawnSync('sh', ['-c', `gzip -dc "$1" | (cd "$2" && cpio -id --quiet)`, 'sh', g.initrd, dir], { encoding: 'utf8' });
    if (x.status !== 0) return t.skip(`cannot unpack with host cpio: ${x.stderr.trim()}`);
    // busybox modprobe looks under /lib/modules/$(uname -r), which is the host's release here.
    const hostRelease = spawnSync('uname', ['-r'], { encoding: 'utf8' }).stdout.trim();
    if (hostRelease !== g.kernelVersion) symlinkSync(g.kernelVersion, join(dir, 'lib/modules', hostRelease));
    // Without IA32 emulation the static qemu-i386 runs busybox inside the chroot.
    const prefix = i386Prefix();
    if (!prefix) throw new Error(i386Hint);
    if (prefix.length) copyFileSync(prefix[0], join(dir, 'qemu-i386'));
    const inRoot = prefix.length ? ['/qemu-i386'] : [];
    // -D only prints the insmod sequence: nothing is loaded into the host kernel.
    const deps = (alias: string) => spawnSync('chroot', [dir, ...inRoot, '/bin/busybox', 'modprobe', '-D', alias], { encoding: 'utf8' }).stdout
      .split('\n').filter(Boolean).map((l) => moduleNameOfPath(l.trim().split(/\s+/).pop()!));
    assert.deepEqual(deps('pci:v00001AF4d00001000sv00001AF4sd00000001bc02sc00i00').slice(-1), ['virtio_pci']);
    const blk = deps('virtio:d00000002v00001AF4');
    assert.deepEqual(blk.slice(-1), ['virtio_blk']);
    assert.ok(blk.includes('virtio') && blk.includes('virtio_ring'));
    // Both RTL8139 drivers match the alias and both load: each refuses the PCI revisions the other drives.
    assert.deepEqual([...new Set(deps('pci:v000010ECd00008139sv00000000sd00000000bc02sc00i00'))].sort(), ['8139cp', '8139too', 'mii']);
    const ext4 = deps('ext4');
    assert.equal(ext4.at(-1), 'ext4');
    assert.ok(ext4.includes('jbd2') && ext4.includes('mbcache'));
    assert.deepEqual(deps('crypto-crc32c'), ['crc32c_generic']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a second run reuses the cache: no network, initrd not rebuilt', { skip: !root && 'needs root (a network namespace)' }, async (t) => {
  const g = await getGuest();
  if (!g) return t.skip(skipWhy);
  // A fresh network namespace has no route anywhere, so any download attempt would fail.
  const script = `import { prepareDefaultGuest } from ${JSON.stringify(new URL('../src/guest/fetch.ts', import.meta.url).href)};
const g = await prepareDefaultGuest({ cache: ${JSON.stringify(defaultCacheDir())}, log: () => {} });
process.stdout.write(JSON.stringify({ kernel: g.kernel, initrd: g.initrd, rebuilt: g.initramfs.rebuilt }));`;
  const t0 = Date.now();
  const r = spawnSync('unshare', ['-n', process.execPath, '--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8', cwd: new URL('..', import.meta.url).pathname });
  if (r.error) return t.skip(`unshare unavailable: ${r.error.message}`);
  // unshare's own failure (no permission for namespaces in this container) says nothing about the cache.
  if (r.status !== 0 && /^unshare: /m.test(r.stderr)) return t.skip(`cannot make a network namespace: ${r.stderr.trim()}`);
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), { kernel: g.kernel, initrd: g.initrd, rebuilt: false });
  assert.ok(Date.now() - t0 < 30_000);
});
