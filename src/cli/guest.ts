// `trapeze guest`: fetch and prepare guest images.
import { resolve } from 'node:path';
import type { Command } from './commands.ts';
import { UserError } from './errors.ts';
import { defaultCacheDir, stderrLog } from '../guest/cache.ts';
import { prepareDefaultGuest } from '../guest/fetch.ts';
import { buildDebianImage, DEBIAN_ROOT_PASSWORD } from '../guest/debian.ts';
import { parseSize } from '../backends/disk/image.ts';

const HELP = `usage: trapeze guest fetch [--cache DIR] [--refresh]
       trapeze guest debian [--size 4G] [--out FILE] [--cache DIR] [--rebuild]

fetch    Fetches Debian 12's i386 kernel (linux-image-686) and busybox-static with a private apt under the
         cache, and builds the default guest's initramfs. Later runs reuse the cache without the network.
debian   Builds a Debian 12 i386 root filesystem with debootstrap (as root; installs debootstrap when missing)
         into an ext4 disk image: systemd, a serial getty, DHCP on every NIC, the guest kernel's modules.
         Log in as root, password "${DEBIAN_ROOT_PASSWORD}". The debootstrap tree is cached, so a rebuild takes
         seconds; the image at FILE is replaced (never while a VM uses it). Boot it with
           trapeze run --memory 512 --drive file=FILE,format=qcow2,if=virtio --append "root=/dev/vda"

options:
  --cache DIR   cache directory (default: $TRAPEZE_CACHE or ~/.cache/trapeze)
  --refresh     (fetch) re-read the archive's package lists, to pick up a newer kernel
  --size SIZE   (debian) virtual disk size, e.g. 4G (default), 2G, 8G
  --out FILE    (debian) the image; .qcow2 makes qcow2, any other name raw (default: CACHE/debian.qcow2)
  --rebuild     (debian) run debootstrap again instead of reusing the cached tree
`;

export const guestCommand: Command = {
  name: 'guest',
  summary: 'fetch the default Debian guest; build a Debian root filesystem image',
  async run(args: string[]): Promise<number> {
    const [sub, ...rest] = args;
    if (sub === undefined || sub === '--help' || sub === '-h' || sub === 'help') {
      process.stdout.write(HELP);
      return sub === undefined ? 2 : 0;
    }
    if (sub !== 'fetch' && sub !== 'debian') throw new UserError(`unknown guest sub-command '${sub}'; run \`trapeze guest --help\``);
    let cache: string | undefined;
    let refresh = false;
    let rebuild = false;
    let size: number | undefined;
    let out: string | undefined;
    const value = (i: number, flag: string): string => {
      const v = rest[i];
      if (!v) throw new UserError(`${flag} needs a value`);
      return v;
    };
    for (let i = 0; i < rest.length; i++) {
      const a = rest[i];
      if (a === '--help' || a === '-h') {
        process.stdout.write(HELP);
        return 0;
      } else if (a === '--cache') {
        const v = rest[++i];
        if (!v) throw new UserError('--cache needs a directory');
        cache = resolve(v);
      } else if (a.startsWith('--cache=')) {
        cache = resolve(a.slice('--cache='.length));
      } else if (a === '--refresh' && sub === 'fetch') {
        refresh = true;
      } else if (a === '--rebuild' && sub === 'debian') {
        rebuild = true;
      } else if ((a === '--size' || a.startsWith('--size=')) && sub === 'debian') {
        const v = a === '--size' ? value(++i, a) : a.slice('--size='.length);
        try { size = parseSize(v); } catch (e) { throw new UserError((e as Error).message); }
      } else if ((a === '--out' || a.startsWith('--out=')) && sub === 'debian') {
        out = resolve(a === '--out' ? value(++i, a) : a.slice('--out='.length));
      } else {
        throw new UserError(`unknown option '${a}' for \`trapeze guest ${sub}\`; run \`trapeze guest --help\``);
      }
    }
    if (sub === 'debian') {
      const t0 = Date.now();
      const img = await buildDebianImage({ cache: cache ?? defaultCacheDir(), out, size, rebuild, log: stderrLog });
      stderrLog(`debian: done in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
      // stdout: `key: value` lines for scripts, then how to use the image.
      process.stdout.write(
        `image: ${img.path}\n` +
        `format: ${img.format}\n` +
        `size: ${img.size}\n` +
        `kernel-version: ${img.kernelVersion}\n` +
        `login: root\n` +
        `password: ${DEBIAN_ROOT_PASSWORD}\n` +
        `boot: trapeze run --memory 512 --drive file=${img.path},format=${img.format},if=virtio --append "root=/dev/vda"\n`,
      );
      return 0;
    }
    const g = await prepareDefaultGuest({ cache: cache ?? defaultCacheDir(), log: stderrLog, refresh });
    // stdout carries only the results, one `key: path` per line, so scripts can read them.
    process.stdout.write(
      `kernel: ${g.kernel}\n` +
      `initrd: ${g.initrd}\n` +
      `kernel-version: ${g.kernelVersion}\n` +
      `modules: ${g.modulesDir}\n` +
      `busybox: ${g.busybox}\n`,
    );
    return 0;
  },
};
