// The default guest: Debian 12's i386 kernel (what `linux-image-686` currently points at) and static busybox,
// fetched with a private apt into the cache, unpacked, and turned into an initramfs.
import { existsSync, openSync, readSync, closeSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../cli/errors.ts';
import { PrivateApt, debFileName, type PackageInfo } from './apt.ts';
import { defaultCacheDir, ensureDir, stderrLog, withLock, type Log } from './cache.ts';
import { extractDeb } from './deb.ts';
import { buildInitramfs, type InitramfsResult } from './initramfs.ts';

export const KERNEL_META_PACKAGE = 'linux-image-686';
export const BUSYBOX_PACKAGE = 'busybox-static';

export interface FetchOptions {
  /** Cache root; defaults to `$TRAPEZE_CACHE` or `~/.cache/trapeze`. */
  cache?: string;
  log?: Log;
  /** Re-read the archive's package lists even when cached ones exist (to pick up a newer kernel). */
  refresh?: boolean;
}

export interface DefaultGuest {
  /** The kernel image (a bzImage). */
  kernel: string;
  /** `lib/modules/<kernelVersion>` of that kernel. */
  modulesDir: string;
  /** The statically linked i386 busybox. */
  busybox: string;
  /** e.g. `6.1.0-50-686`, as `uname -r` reports it in the guest. */
  kernelVersion: string;
  /** The Debian package versions used, for messages and cache keys. */
  packages: { kernel: string; busybox: string };
}

/** True when `path` starts like a Linux x86 boot image: "HdrS" at 0x202 marks the real-mode setup header. */
export function isBzImage(path: string): boolean {
  const fd = openSync(path, 'r');
  try {
    const b = Buffer.alloc(4);
    return readSync(fd, b, 0, 4, 0x202) === 4 && b.toString('latin1') === 'HdrS';
  } finally {
    closeSync(fd);
  }
}

const STALE_LISTS_MS = 60 * 60 * 1000;

/** Downloads (unless cached) and unpacks the default guest's kernel and busybox. A run with everything cached
 *  touches no network: package choice comes from the private apt's cached lists. */
export async function fetchDefaultGuest(opts: FetchOptions = {}): Promise<DefaultGuest> {
  const log = opts.log ?? stderrLog;
  const root = ensureDir(opts.cache ?? defaultCacheDir());
  return withLock(join(root, '.lock'), log, () => fetchUnlocked({ ...opts, cache: root, log }));
}

async function fetchUnlocked(opts: FetchOptions & { cache: string; log: Log }): Promise<DefaultGuest> {
  const { log, cache: root } = opts;
  const apt = new PrivateApt(join(root, 'apt'), log);
  await apt.prepare();
  let updated = false;
  if (opts.refresh || !apt.hasLists()) {
    await apt.update();
    updated = true;
  }

  const resolve = async (): Promise<{ kernel: PackageInfo; busybox: PackageInfo }> => {
    const meta = await apt.show(KERNEL_META_PACKAGE);
    if (!meta) throw new UserError(`the Debian archive has no ${KERNEL_META_PACKAGE} for i386; check that /etc/apt/sources.list* name Debian 12 (bookworm) main`);
    // The meta-package depends on exactly one concrete kernel, e.g. linux-image-6.1.0-50-686.
    const name = meta.depends.find((d) => /^linux-image-\d/.test(d));
    if (!name) throw new UserError(`${KERNEL_META_PACKAGE} ${meta.version} depends on no concrete kernel (${meta.depends.join(', ')}); run \`trapeze guest fetch --refresh\``);
    const kernel = await apt.show(name);
    if (!kernel) throw new UserError(`${name} (wanted by ${KERNEL_META_PACKAGE}) is not in the package lists; run \`trapeze guest fetch --refresh\``);
    const busybox = await apt.show(BUSYBOX_PACKAGE);
    if (!busybox) throw new UserError(`the Debian archive has no ${BUSYBOX_PACKAGE} for i386; check /etc/apt/sources.list*`);
    return { kernel, busybox };
  };

  const debs = ensureDir(join(root, 'debs'));
  const have = (p: PackageInfo): boolean => {
    const f = join(debs, debFileName(p));
    return existsSync(f) && (!p.size || statSync(f).size === p.size);
  };

  let pkgs = await resolve();
  let need = [pkgs.kernel, pkgs.busybox].filter((p) => !have(p));
  if (need.length) {
    try {
      await apt.download(need.map((p) => `${p.package}=${p.version}`), debs);
    } catch (e) {
      // Old lists name versions the archive has since dropped; fresh lists name what it has now.
      if (updated || apt.listsAge() < STALE_LISTS_MS) throw e;
      log('apt: download failed with old package lists; refreshing them and retrying');
      await apt.update();
      pkgs = await resolve();
      need = [pkgs.kernel, pkgs.busybox].filter((p) => !have(p));
      await apt.download(need.map((p) => `${p.package}=${p.version}`), debs);
    }
    for (const p of need) {
      if (!have(p)) throw new UserError(`apt-get download did not produce ${debFileName(p)} in ${debs}; delete ${root}/apt and retry`);
    }
  } else {
    log(`guest: using cached ${debFileName(pkgs.kernel)} and ${debFileName(pkgs.busybox)}`);
  }

  const unpack = (p: PackageInfo): Promise<string> =>
    extractDeb(join(debs, debFileName(p)), join(root, 'pkgs', `${p.package}_${p.version.replace(/:/g, '_')}`), log);
  const kroot = await unpack(pkgs.kernel);
  const broot = await unpack(pkgs.busybox);

  const kernelVersion = pkgs.kernel.package.replace(/^linux-image-/, '');
  const kernel = join(kroot, 'boot', `vmlinuz-${kernelVersion}`);
  const modulesDir = join(kroot, 'lib', 'modules', kernelVersion);
  const busybox = join(broot, 'bin', 'busybox');
  for (const [what, p] of [['kernel', kernel], ['modules', modulesDir], ['busybox', busybox]] as const) {
    if (!existsSync(p)) throw new UserError(`the unpacked package lacks the ${what} at ${p}; delete ${join(root, 'pkgs')} and retry`);
  }
  if (!isBzImage(kernel)) throw new UserError(`${kernel} is not a bzImage (no "HdrS" at 0x202); delete ${join(root, 'pkgs')} and retry`);
  return { kernel, modulesDir, busybox, kernelVersion, packages: { kernel: pkgs.kernel.version, busybox: pkgs.busybox.version } };
}

export interface PreparedGuest extends DefaultGuest {
  initrd: string;
  initramfs: InitramfsResult;
}

/** The default guest ready to boot: kernel plus an initramfs built for it (rebuilt only when inputs changed). */
export async function prepareDefaultGuest(opts: FetchOptions = {}): Promise<PreparedGuest> {
  const log = opts.log ?? stderrLog;
  const root = ensureDir(opts.cache ?? defaultCacheDir());
  return withLock(join(root, '.lock'), log, async () => {
    const guest = await fetchUnlocked({ ...opts, cache: root, log });
    const initramfs = buildInitramfs({
      modulesDir: guest.modulesDir,
      kernelVersion: guest.kernelVersion,
      busybox: guest.busybox,
      out: join(root, 'guest', 'initrd.img'),
      log,
    });
    return { ...guest, initrd: initramfs.path, initramfs };
  });
}
