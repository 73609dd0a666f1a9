// Image locking: a disk image in use by one VM must not be opened read-write by another (two writers
// corrupt a qcow2's metadata, and a writer under a reader changes a backing file beneath its overlays).
//
// The lock is a directory next to the image, `.<name>.lock/`, holding one entry per user named
// `<pid>.<rw|ro>`. Readers share; a writer excludes everyone else. Entries of processes that no longer
// exist (killed with SIGKILL, a crashed host process) are stale and removed when found, so a lock never
// needs manual cleanup. We announce ourselves first and look for conflicts second: two processes racing
// for a writer lock may both back off, but they can never both win.

import { mkdirSync, readdirSync, rmdirSync, unlinkSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';

export class ImageLockedError extends Error {
  readonly userError = true;
  constructor(message: string) { super(message); this.name = 'ImageLockedError'; }
}

export interface ImageLock {
  readonly path: string;
  readonly readOnly: boolean;
  release(): void;
}

function alive(pid: number): boolean {
  if (pid === process.pid) return true;
  try { process.kill(pid, 0); return true; } catch (e) {
    // EPERM: the process exists but belongs to someone else, so it still holds the lock.
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Where the lock entries of `image` live. */
export function lockDirOf(image: string): string {
  const abs = resolve(image);
  return join(dirname(abs), `.${basename(abs)}.lock`);
}

/** Users of `image` other than this process that are still alive, as `{ pid, readOnly }`. */
export function lockHolders(image: string): { pid: number; readOnly: boolean }[] {
  const dir = lockDirOf(image);
  let names: string[];
  try { names = readdirSync(dir); } catch { return []; }
  const out: { pid: number; readOnly: boolean }[] = [];
  for (const n of names) {
    const m = /^(\d+)(?:-\d+)?\.(rw|ro)$/.exec(n);
    if (!m) continue;
    const pid = Number(m[1]);
    if (!alive(pid)) { try { unlinkSync(join(dir, n)); } catch { /* another process removed it */ } continue; }
    out.push({ pid, readOnly: m[2] === 'ro' });
  }
  return out;
}

let seq = 0;
const held = new Set<string>();
process.on('exit', () => { for (const f of held) { try { unlinkSync(f); } catch { /* already gone */ } } });

/**
 * Locks `image` for this process: shared when `readOnly`, exclusive otherwise. Throws ImageLockedError
 * naming the other process when the image is in use in a conflicting way.
 */
export function lockImage(image: string, readOnly: boolean): ImageLock {
  const dir = lockDirOf(image);
  // One process may open the same image several times (a backing file shared by two overlays), so the
  // entry name carries a sequence number as well as the PID.
  const entry = join(dir, `${process.pid}-${seq++}.${readOnly ? 'ro' : 'rw'}`);
  try {
    mkdirSync(dir, { recursive: true });
    writeFileSync(entry, `${process.pid}\n`);
  } catch (e) {
    // A read-only image on read-only storage cannot be locked, and cannot be written by anyone either.
    if (readOnly) return { path: image, readOnly, release() {} };
    throw new ImageLockedError(`cannot lock ${image} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message} creating ${dir})`);
  }
  held.add(entry);
  const release = () => {
    if (!held.delete(entry)) return;
    try { unlinkSync(entry); } catch { /* already gone */ }
    try { rmdirSync(dir); } catch { /* other users remain */ }
  };
  let names: string[] = [];
  try { names = readdirSync(dir); } catch { /* vanished: only we could have had it */ }
  const mine = basename(entry);
  for (const n of names) {
    if (n === mine) continue;
    const m = /^(\d+)(?:-\d+)?\.(rw|ro)$/.exec(n);
    if (!m) continue;
    const pid = Number(m[1]);
    if (!alive(pid)) { try { unlinkSync(join(dir, n)); } catch { /* raced with another cleaner */ } continue; }
    const otherRo = m[2] === 'ro';
    if (readOnly && otherRo) continue;
    release();
    const who = pid === process.pid ? 'this process' : `process ${pid}`;
    throw new ImageLockedError(readOnly
      ? `${image} is open read-write by ${who}; it cannot be used read-only (as a backing file or drive) at the same time`
      : `${image} is in use by ${who} (${otherRo ? 'read-only' : 'read-write'}); refusing to open it read-write`);
  }
  return { path: image, readOnly, release };
}
