// Unpacking Debian packages. A .deb is an `ar` archive of debian-binary, control.tar.* and data.tar.*; the host's
// dpkg-deb unpacks the data part without installing anything or touching the dpkg database.
import { existsSync, renameSync, rmSync } from 'node:fs';
import { UserError } from '../cli/errors.ts';
import { ensureDir, type Log } from './cache.ts';
import { haveCommand, run } from './exec.ts';
import { dirname } from 'node:path';

/** Extracts `deb`'s files into `dest` unless that was already done. The tree appears atomically (extracted
 *  beside it, then renamed), so a half-extracted tree is never mistaken for a complete one. */
export async function extractDeb(deb: string, dest: string, log: Log): Promise<string> {
  if (existsSync(dest)) return dest;
  if (!haveCommand('dpkg-deb')) {
    throw new UserError('dpkg-deb not found: unpacking the Debian guest needs it; install the `dpkg` package');
  }
  ensureDir(dirname(dest));
  const tmp = `${dest}.partial-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  log(`deb: extracting ${deb}`);
  const r = await run('dpkg-deb', ['-x', deb, tmp]);
  if (r.code !== 0) {
    rmSync(tmp, { recursive: true, force: true });
    throw new UserError(`cannot unpack ${deb}: ${r.stderr.trim().split('\n').pop()}; delete it and fetch again`);
  }
  renameSync(tmp, dest);
  return dest;
}
