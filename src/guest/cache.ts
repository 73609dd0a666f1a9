// Where fetched and built guest material lives. Nothing here is ever committed: it is re-fetchable from Debian.
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';

/** Progress sink: one human-readable line per call. The CLI points it at stderr so stdout stays machine-usable. */
export type Log = (line: string) => void;

export const stderrLog: Log = (line) => { process.stderr.write(`${line}\n`); };
export const silentLog: Log = () => {};

/** `$TRAPEZE_CACHE`, else `~/.cache/trapeze` (XDG's default cache root; `$XDG_CACHE_HOME` honoured when set). */
export function defaultCacheDir(): string {
  const env = process.env.TRAPEZE_CACHE;
  if (env) return resolve(env);
  const xdg = process.env.XDG_CACHE_HOME;
  return join(xdg ? resolve(xdg) : join(homedir(), '.cache'), 'trapeze');
}

export function ensureDir(dir: string): string {
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** Writes via a temporary name and rename, so an interrupted run never leaves a half-written file that a later
 *  run would mistake for a finished one. */
export function writeFileAtomic(path: string, data: string | Uint8Array): void {
  const tmp = `${path}.tmp-${process.pid}`;
  try {
    writeFileSync(tmp, data);
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}

/** Runs `fn` holding an exclusive lock on `lockDir` (a directory: mkdir is atomic). Test files run in parallel
 *  and several of them prepare the same guest; without this two apt runs would collide on the private apt's
 *  own locks and two extractions on the same tree. A lock whose owner process has died is taken over. */
export async function withLock<T>(lockDir: string, log: Log, fn: () => Promise<T>): Promise<T> {
  const owner = join(lockDir, 'pid');
  let waited = false;
  for (;;) {
    try {
      mkdirSync(lockDir);
      writeFileSync(owner, String(process.pid));
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      let pid = NaN;
      try { pid = Number(readFileSync(owner, 'utf8')); } catch { /* owner not written yet */ }
      if (Number.isInteger(pid) && pid > 0 && !processAlive(pid)) {
        rmSync(lockDir, { recursive: true, force: true });
        continue;
      }
      if (!waited) log(`cache: waiting for another Trapeze process using ${lockDir}`);
      waited = true;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  try {
    return await fn();
  } finally {
    rmSync(lockDir, { recursive: true, force: true });
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
