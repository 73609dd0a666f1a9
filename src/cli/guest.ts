// `trapeze guest`: fetch and prepare guest images.
import { resolve } from 'node:path';
import type { Command } from './commands.ts';
import { UserError } from './errors.ts';
import { defaultCacheDir, stderrLog } from '../guest/cache.ts';
import { prepareDefaultGuest } from '../guest/fetch.ts';

const HELP = `usage: trapeze guest fetch [--cache DIR] [--refresh]

Fetches Debian 12's i386 kernel (linux-image-686) and busybox-static with a private apt under the cache,
and builds the default guest's initramfs. Later runs reuse the cache without touching the network.

options:
  --cache DIR   cache directory (default: $TRAPEZE_CACHE or ~/.cache/trapeze)
  --refresh     re-read the archive's package lists, to pick up a newer kernel
`;

export const guestCommand: Command = {
  name: 'guest',
  summary: 'fetch the default Debian guest (kernel + initramfs)',
  async run(args: string[]): Promise<number> {
    const [sub, ...rest] = args;
    if (sub === undefined || sub === '--help' || sub === '-h' || sub === 'help') {
      process.stdout.write(HELP);
      return sub === undefined ? 2 : 0;
    }
    if (sub !== 'fetch') throw new UserError(`unknown guest sub-command '${sub}'; run \`trapeze guest --help\``);
    let cache: string | undefined;
    let refresh = false;
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
      } else if (a === '--refresh') {
        refresh = true;
      } else {
        throw new UserError(`unknown option '${a}' for \`trapeze guest fetch\`; run \`trapeze guest --help\``);
      }
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
