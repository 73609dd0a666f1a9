// `trapeze guest debian`: a full Debian 12 i386 system on a disk image, booted by the default guest's kernel and
// initramfs (whose /init mounts `root=` and hands over to systemd).
//
// Debian's own debootstrap installs the system into a directory (as root: it chroots for the second stage;
// i386 programs run natively on an x86-64 host with IA32 emulation, or through a binfmt_misc interpreter).
// That tree is cached; each build configures it (hostname, fstab, root password, networking, the guest
// kernel's modules) and turns it into an ext4 filesystem with `mkfs.ext4 -d` — no loop mounts — written as
// raw or converted to qcow2 by the project's own qcow2 code.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, cpSync, existsSync, openSync, readFileSync, readdirSync, renameSync, rmSync, statSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { createQcow2, Qcow2Image } from '../backends/disk/qcow2.ts';
import { preadFull } from '../backends/disk/fileio.ts';
import { lockHolders } from '../backends/disk/lock.ts';
import { UserError } from '../cli/errors.ts';
import { hostDebianSources, redactHosts, type AptSource } from './apt.ts';
import { defaultCacheDir, ensureDir, stderrLog, withLock, writeFileAtomic, type Log } from './cache.ts';
import { haveCommand, run } from './exec.ts';
import { hostRunsI386 } from './i386-host.mjs';
import { prepareDefaultGuest, type PreparedGuest } from './fetch.ts';

export const DEBIAN_SUITE = 'bookworm';
/** debootstrap's smallest variant (Priority: required plus apt) and what a systemd machine on a network needs
 *  beyond it: systemd as PID 1, udev to load drivers, kmod for modprobe/depmod, iproute2 and procps to look
 *  around, dbus because systemd-logind (started for every login) talks over it. Networking is systemd-networkd,
 *  which is part of the systemd package. */
export const DEBIAN_VARIANT = 'minbase';
export const DEBIAN_INCLUDE = ['systemd-sysv', 'udev', 'kmod', 'iproute2', 'procps', 'dbus', 'netbase'];
export const DEBIAN_HOSTNAME = 'trapeze-debian';
/** The documented root login of the image (README, `trapeze guest debian` output). */
export const DEBIAN_ROOT_PASSWORD = 'trapeze';
export const DEFAULT_DEBIAN_SIZE = 4 * 2 ** 30;

/** Bumped whenever what debootstrap is asked for changes in a way the inputs below do not capture. */
const TREE_VERSION = 1;

/** Where debootstrap fetches from: the host's own configured Debian archive for `suite`. */
export interface DebootstrapSource {
  uri: string;
  /** A keyring file the host's apt checks this archive with (debootstrap's --keyring), when it names one. */
  keyring?: string;
  components: string[];
}

/** Picks the first host source that serves `suite` itself (not `suite-updates` or `suite-security`: debootstrap
 *  installs from one suite). Inline (armoured) Signed-By keys are not files, so debootstrap's default keyring
 *  (Debian's, from debian-archive-keyring) is used for those. */
export function debootstrapSource(sources: AptSource[], suite = DEBIAN_SUITE): DebootstrapSource | undefined {
  for (const s of sources) {
    if (!s.suites.includes(suite) || !s.uris.length) continue;
    const keyring = s.signedBy && !s.signedBy.includes('\n') && s.signedBy.startsWith('/') ? s.signedBy : undefined;
    return { uri: s.uris[0], keyring, components: s.components.length ? s.components : ['main'] };
  }
  return undefined;
}

/** `.qcow2` (any case) makes a qcow2 image; anything else a raw one. */
export function imageFormatFor(path: string): 'qcow2' | 'raw' {
  return /\.qcow2$/i.test(path) ? 'qcow2' : 'raw';
}

/** systemd-networkd configuration: every Ethernet NIC (the kernel names them eth*; udev may rename to en*)
 *  configured by DHCP, as the busybox guest does with udhcpc. */
export const NETWORK_UNIT = `# Written by trapeze guest debian: DHCP on every Ethernet NIC.
[Match]
Name=en* eth*

[Network]
DHCP=yes
`;

/** systemd manager settings for a guest on an interpreting vCPU, where a boot takes minutes of guest time: with
 *  the default 90 s, the job waiting for /dev/ttyS0 (which serial-getty@ttyS0 binds to) times out before
 *  udevd has even started, and the serial console never gets a login prompt. */
export const SYSTEMD_CONF = `# Written by trapeze guest debian: boots under an interpreter take minutes.
[Manager]
DefaultDeviceTimeoutSec=15min
DefaultTimeoutStartSec=15min
`;

export function fstab(rootDevice = '/dev/vda'): string {
  return `# Written by trapeze guest debian. The root filesystem is the whole disk (no partition table).
# <file system> <mount point> <type> <options> <dump> <pass>
${rootDevice} / ext4 errors=remount-ro 0 1
`;
}

export interface DebianImageOptions {
  cache?: string;
  /** Output image; default `<cache>/debian.qcow2`. Its extension picks the format. */
  out?: string;
  /** Virtual disk size in bytes. */
  size?: number;
  /** Run debootstrap again even if a finished tree is cached. */
  rebuild?: boolean;
  log?: Log;
}

export interface DebianImage {
  path: string;
  format: 'qcow2' | 'raw';
  size: number;
  kernelVersion: string;
  guest: PreparedGuest;
  /** Whether debootstrap ran (false: the cached tree was reused). */
  debootstrapped: boolean;
  /** Bytes of data in the filesystem image (non-zero clusters). */
  dataBytes: number;
}

/** Runs `cmd` and turns failure into a UserError carrying the tool's last words (host names redacted). */
async function mustRun(what: string, cmd: string, args: string[], log: Log, env?: NodeJS.ProcessEnv): Promise<void> {
  const r = await run(cmd, args, { log: (l) => log(redactHosts(l)), prefix: `  ${basename(cmd)}: `, env });
  if (r.code !== 0) {
    const tail = redactHosts((r.stderr.trim() || r.stdout.trim()).split('\n').slice(-3).join(' / '));
    throw new UserError(`${what} failed (${cmd} exited ${r.code}): ${tail}`);
  }
}

/** Runs a program of the guest tree inside it (chroot), with `input` on stdin. */
function inChroot(tree: string, args: string[], input = ''): void {
  const r = spawnSync('chroot', [tree, ...args], { input, encoding: 'utf8', env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LC_ALL: 'C', HOME: '/root' } });
  if (r.error || r.status !== 0) {
    throw new UserError(`in the Debian tree ${tree}: \`${args.join(' ')}\` failed: ${r.error?.message ?? r.stderr.trim()}`);
  }
}

/** Mount points at or under `dir` (deepest first), from /proc/self/mounts, so an interrupted debootstrap's /proc
 *  and /sys mounts inside its target are unmounted before the tree is deleted. */
function mountsUnder(dir: string): string[] {
  let text = '';
  try { text = readFileSync('/proc/self/mounts', 'utf8'); } catch { return []; }
  const unescape = (s: string): string => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
  return text.split('\n').map((l) => unescape(l.split(' ')[1] ?? '')).filter((m) => m === dir || m.startsWith(`${dir}/`)).sort((a, b) => b.length - a.length);
}

function removeTree(dir: string): void {
  for (const m of mountsUnder(dir)) spawnSync('umount', ['-l', m], { stdio: 'ignore' });
  if (mountsUnder(dir).length) throw new UserError(`cannot unmount everything under ${dir}; unmount it by hand and delete it`);
  rmSync(dir, { recursive: true, force: true });
}

/** The host apt's HTTP(S) proxies as the environment variables debootstrap's wget reads, unless already set. */
function proxyEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, LC_ALL: 'C' };
  for (const scheme of ['http', 'https']) {
    const key = `${scheme}_proxy`;
    if (env[key]) continue;
    const r = spawnSync('apt-config', ['shell', 'P', `Acquire::${scheme}::Proxy`], { encoding: 'utf8' });
    const m = /^P='(.*)'$/m.exec(r.stdout ?? '');
    if (m && m[1] && m[1] !== 'DIRECT' && m[1] !== 'false') env[key] = m[1];
  }
  return env;
}

async function ensureDebootstrap(log: Log): Promise<void> {
  if (haveCommand('debootstrap')) return;
  log('debian: debootstrap is not installed; installing it with the host apt');
  await mustRun('installing debootstrap', 'apt-get', ['install', '-y', '-q', 'debootstrap'], log, { ...process.env, DEBIAN_FRONTEND: 'noninteractive' });
  if (!haveCommand('debootstrap')) throw new UserError('apt-get installed debootstrap but it is not on PATH; add /usr/sbin to PATH');
}

/** The debootstrapped tree under the cache, made unless a finished one built from the same request exists. */
async function debootstrapTree(cache: string, rebuild: boolean, log: Log): Promise<{ tree: string; ran: boolean }> {
  const base = ensureDir(join(cache, 'debian'));
  const tree = join(base, `${DEBIAN_SUITE}-i386-root`);
  const stamp = `${tree}.inputs`;
  const key = JSON.stringify({ TREE_VERSION, suite: DEBIAN_SUITE, arch: 'i386', variant: DEBIAN_VARIANT, include: DEBIAN_INCLUDE });
  if (!rebuild && existsSync(tree) && existsSync(stamp) && readFileSync(stamp, 'utf8').trim() === key) {
    log(`debian: using the cached debootstrap tree ${tree}`);
    return { tree, ran: false };
  }
  await ensureDebootstrap(log);
  const src = debootstrapSource(hostDebianSources('/etc/apt', 'i386'));
  if (!src) throw new UserError(`no Debian archive for ${DEBIAN_SUITE} in /etc/apt/sources.list or /etc/apt/sources.list.d/: add Debian 12's archive (suite ${DEBIAN_SUITE}, component main) there`);
  const partial = `${tree}.partial-${process.pid}`;
  for (const n of readdirSync(base)) if (n.startsWith(`${basename(tree)}.partial-`)) removeTree(join(base, n));
  const debs = ensureDir(join(base, 'debs'));
  const args = [
    '--arch=i386', `--variant=${DEBIAN_VARIANT}`, `--include=${DEBIAN_INCLUDE.join(',')}`,
    `--components=${src.components.join(',')}`, `--cache-dir=${debs}`,
    ...(src.keyring ? [`--keyring=${src.keyring}`] : []),
    DEBIAN_SUITE, partial, src.uri,
  ];
  log(`debian: debootstrap ${args.slice(0, -1).join(' ')} <the host's Debian archive>`);
  const t0 = Date.now();
  try {
    await mustRun('debootstrap', 'debootstrap', args, log, proxyEnv());
  } catch (e) {
    const logFile = join(partial, 'debootstrap', 'debootstrap.log');
    if (existsSync(logFile)) {
      const tail = redactHosts(readFileSync(logFile, 'utf8').trim().split('\n').slice(-5).join('\n  '));
      log(`debian: the end of debootstrap's log:\n  ${tail}`);
    }
    removeTree(partial);
    throw e;
  }
  if (mountsUnder(partial).length) {
    removeTree(partial);
    throw new UserError('debootstrap left file systems mounted in its target; run `trapeze guest debian` again');
  }
  removeTree(tree);
  renameSync(partial, tree);
  writeFileAtomic(stamp, key + '\n');
  log(`debian: debootstrap finished in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  return { tree, ran: true };
}

function writeIn(tree: string, rel: string, text: string, mode = 0o644): void {
  const p = join(tree, rel);
  ensureDir(dirname(p));
  rmSync(p, { force: true });
  writeFileSync(p, text, { mode });
}

function linkIn(tree: string, rel: string, target: string): void {
  const p = join(tree, rel);
  ensureDir(dirname(p));
  try { unlinkSync(p); } catch { /* absent */ }
  symlinkSync(target, p);
}

/** Makes the debootstrapped tree a bootable Trapeze guest. Every step overwrites, so running it again on the
 *  same tree gives the same result (apart from the fresh machine ID). */
export function configureTree(tree: string, guest: PreparedGuest, log: Log): void {
  log('debian: configuring hostname, fstab, root login, networking and kernel modules');
  writeIn(tree, 'etc/hostname', `${DEBIAN_HOSTNAME}\n`);
  writeIn(tree, 'etc/hosts', `127.0.0.1\tlocalhost\n127.0.1.1\t${DEBIAN_HOSTNAME}\n::1\tlocalhost ip6-localhost ip6-loopback\n`);
  writeIn(tree, 'etc/fstab', fstab());
  // debootstrap copies the host's resolver configuration; the guest learns its own by DHCP.
  writeIn(tree, 'etc/resolv.conf', '# The guest has no resolver configured; systemd-networkd takes addresses by DHCP.\n');
  // Each image its own machine ID (systemd and D-Bus key state by it); an empty one would make systemd treat the
  // boot as a first boot and run systemd-firstboot, which may prompt on the console.
  writeIn(tree, 'etc/machine-id', `${randomBytes(16).toString('hex')}\n`, 0o444);
  if (existsSync(join(tree, 'var/lib/dbus'))) linkIn(tree, 'var/lib/dbus/machine-id', '/etc/machine-id');
  inChroot(tree, ['chpasswd'], `root:${DEBIAN_ROOT_PASSWORD}\n`);
  writeIn(tree, 'etc/systemd/system.conf.d/50-trapeze.conf', SYSTEMD_CONF);

  // Networking: systemd-networkd on every NIC. Enabled by hand rather than `systemctl enable`, which would also
  // enable systemd-networkd-wait-online: that waits (two minutes) for a network a NIC-less VM never has.
  writeIn(tree, 'etc/systemd/network/20-trapeze-dhcp.network', NETWORK_UNIT);
  linkIn(tree, 'etc/systemd/system/multi-user.target.wants/systemd-networkd.service', '/lib/systemd/system/systemd-networkd.service');
  linkIn(tree, 'etc/systemd/system/sockets.target.wants/systemd-networkd.socket', '/lib/systemd/system/systemd-networkd.socket');
  linkIn(tree, 'etc/systemd/system/dbus-org.freedesktop.network1.service', '/lib/systemd/system/systemd-networkd.service');

  // The guest kernel's modules, so udev in the running system loads drivers (NICs, sound, …) the initramfs did
  // not carry. Debian's kernel package ships them without depmod's indexes; the guest's own depmod writes them.
  const modDest = join(tree, 'lib/modules', guest.kernelVersion);
  for (const other of existsSync(join(tree, 'lib/modules')) ? readdirSync(join(tree, 'lib/modules')) : []) {
    if (other !== guest.kernelVersion) rmSync(join(tree, 'lib/modules', other), { recursive: true, force: true });
  }
  rmSync(modDest, { recursive: true, force: true });
  cpSync(guest.modulesDir, modDest, { recursive: true, preserveTimestamps: true });
  inChroot(tree, ['depmod', '-a', guest.kernelVersion]);

  // Downloaded .debs and apt's binary caches are rebuilt on demand; they only make the image bigger.
  const archives = join(tree, 'var/cache/apt/archives');
  if (existsSync(archives)) for (const n of readdirSync(archives)) if (n.endsWith('.deb')) rmSync(join(archives, n));
  for (const n of ['pkgcache.bin', 'srcpkgcache.bin']) rmSync(join(tree, 'var/cache/apt', n), { force: true });
}

/**
 * Copies a raw image into a new qcow2 image at `out`, writing only clusters that hold a non-zero byte (a fresh
 * filesystem is mostly zeros: those clusters stay unallocated and read as zeros). Returns the bytes written.
 */
export function rawToQcow2(raw: string, out: string): number {
  const size = statSync(raw).size;
  createQcow2(out, { size });
  const img = Qcow2Image.open(out);
  const cs = img.clusterSize;
  const chunk = Math.max(cs, 4 * 2 ** 20);
  const buf = new Uint8Array(chunk);
  const zero = Buffer.alloc(cs);
  let written = 0;
  const fd = openSync(raw, 'r');
  try {
    for (let pos = 0; pos < size; pos += chunk) {
      const n = Math.min(chunk, size - pos);
      const b = buf.subarray(0, n);
      preadFull(fd, b, pos);
      // Runs of non-zero clusters go out as one write; the pass at c >= n (past the last, possibly partial,
      // cluster) ends the final run.
      let runStart = -1;
      for (let c = 0; ; c += cs) {
        const end = Math.min(c + cs, n);
        const isData = c < n && !zero.subarray(0, end - c).equals(b.subarray(c, end));
        if (isData && runStart < 0) runStart = c;
        if (!isData && runStart >= 0) {
          const stop = Math.min(c, n);
          img.write(pos + runStart, b.subarray(runStart, stop));
          written += stop - runStart;
          runStart = -1;
        }
        if (c >= n) break;
      }
    }
    img.flush();
  } finally {
    closeSync(fd);
    img.close();
  }
  return written;
}

/** Builds (or rebuilds) the Debian image. Needs root: debootstrap's second stage and chpasswd/depmod chroot. */
export async function buildDebianImage(opts: DebianImageOptions = {}): Promise<DebianImage> {
  const log = opts.log ?? stderrLog;
  const cache = ensureDir(opts.cache ?? defaultCacheDir());
  const out = opts.out ?? join(cache, 'debian.qcow2');
  const size = opts.size ?? DEFAULT_DEBIAN_SIZE;
  const format = imageFormatFor(out);
  if (process.getuid?.() !== 0) {
    throw new UserError('building the Debian image needs root (debootstrap installs packages inside a chroot, and the files must belong to root); run `sudo trapeze guest debian`');
  }
  if (size < 512 * 2 ** 20) throw new UserError(`--size ${size} bytes is too small for Debian; use at least 512M (default 4G)`);
  if (!haveCommand('mkfs.ext4')) throw new UserError('mkfs.ext4 not found: install the `e2fsprogs` package');
  if (!hostRunsI386()) {
    throw new UserError("this host runs no i386 programs (its kernel has no IA32 emulation), and debootstrap's second stage runs the guest's in a chroot; register QEMU's i386 emulator with binfmt_misc (apt-get install qemu-user-static binfmt-support) or build the image on a host that runs them");
  }
  const users = lockHolders(out);
  if (users.length) throw new UserError(`${out} is in use by process ${users.map((u) => u.pid).join(', ')}; stop that VM first`);
  ensureDir(dirname(out));

  // The kernel and initramfs the image boots with: its modules go into the tree, in the same version.
  const guest = await prepareDefaultGuest({ cache, log });
  return withLock(join(ensureDir(join(cache, 'debian')), '.lock'), log, async () => {
    const { tree, ran } = await debootstrapTree(cache, opts.rebuild === true, log);
    configureTree(tree, guest, log);

    const raw = `${out}.partial-${process.pid}.raw`;
    const tmpOut = `${out}.partial-${process.pid}`;
    try {
      rmSync(raw, { force: true });
      log(`debian: mkfs.ext4 -d (a ${(size / 2 ** 30).toFixed(1)} GiB ext4 filesystem from the tree)`);
      // Sizes in KiB: mke2fs reads a bare number as blocks of the (not yet known) block size.
      await mustRun('mkfs.ext4', 'mkfs.ext4', ['-q', '-F', '-L', 'trapeze-root', '-d', tree, raw, `${Math.floor(size / 1024)}k`], log);
      let dataBytes: number;
      if (format === 'qcow2') {
        log('debian: converting to qcow2 (all-zero clusters left unallocated)');
        dataBytes = rawToQcow2(raw, tmpOut);
        rmSync(raw, { force: true });
      } else {
        renameSync(raw, tmpOut);
        dataBytes = statSync(tmpOut).blocks * 512;
      }
      renameSync(tmpOut, out);
      log(`debian: wrote ${out} (${format}, ${(size / 2 ** 30).toFixed(1)} GiB virtual, ${(dataBytes / 2 ** 20).toFixed(0)} MiB of data)`);
      return { path: out, format, size, kernelVersion: guest.kernelVersion, guest, debootstrapped: ran, dataBytes };
    } finally {
      rmSync(raw, { force: true });
      rmSync(tmpOut, { force: true });
    }
  });
}
