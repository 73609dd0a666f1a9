// Builds the native oracle (test/native/diff) into os.tmpdir(), cached by a
// hash of its sources, and runs batches of cases through it.

import { createHash } from 'node:crypto';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { i386Command } from '../../src/guest/i386-host.mjs';

const SRC = join(dirname(fileURLToPath(import.meta.url)), '..', 'native', 'diff');
const SOURCES = ['harness.c', 'trampoline.asm'];
const CFLAGS = ['-m32', '-O2', '-static', '-Wall', '-Wextra'];
const DEBIAN_HINT = 'install the Debian packages gcc-multilib and nasm (apt-get install gcc-multilib nasm)';

function sh(cmd: string, args: string[], what: string): void {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.error) throw new Error(`${what}: cannot run ${cmd} (${r.error.message}); ${DEBIAN_HINT}`);
  if (r.status !== 0) throw new Error(`${what} failed (${cmd} ${args.join(' ')}):\n${r.stderr}\n${DEBIAN_HINT}`);
}

/** Path of the built harness (built on first use). */
export function buildHarness(): string {
  const h = createHash('sha256');
  for (const f of SOURCES) h.update(f).update(readFileSync(join(SRC, f)));
  h.update(CFLAGS.join(' '));
  const dir = join(tmpdir(), `trapeze-diff-${h.digest('hex').slice(0, 16)}`);
  const exe = join(dir, 'harness');
  if (existsSync(exe)) return exe;
  mkdirSync(dir, { recursive: true });
  const tmp = `${exe}.${process.pid}`;
  sh('nasm', ['-f', 'elf32', '-o', `${tmp}.o`, join(SRC, 'trampoline.asm')], 'assembling the diff harness');
  sh('gcc', [...CFLAGS, '-o', tmp, join(SRC, 'harness.c'), `${tmp}.o`], 'compiling the diff harness with gcc -m32');
  rmSync(`${tmp}.o`);
  renameSync(tmp, exe); // atomic: a concurrent run sees either nothing or the whole binary
  return exe;
}

let seq = 0;

/** Runs one batch; resolves with the raw results file. */
export function runNative(exe: string, input: Uint8Array): Promise<Uint8Array> {
  const base = join(dirname(exe), `batch-${process.pid}-${seq++}`);
  writeFileSync(`${base}.in`, input);
  return new Promise((resolve, reject) => {
    const { cmd, args } = i386Command(exe, [`${base}.in`, `${base}.out`]);
    const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    child.on('error', reject);
    child.on('close', (code, sig) => {
      try {
        if (code !== 0) throw new Error(`native harness failed (${code ?? sig}): ${err}`);
        resolve(readFileSync(`${base}.out`));
      } catch (e) {
        reject(e);
      } finally {
        rmSync(`${base}.in`, { force: true });
        rmSync(`${base}.out`, { force: true });
      }
    });
  });
}
