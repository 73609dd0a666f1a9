// Running the host tools the guest tooling leans on (apt-get, dpkg-deb, xz, the guest's own busybox).
import { spawn, spawnSync } from 'node:child_process';
import type { Log } from './cache.ts';

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** When set, every output line is also passed here as it arrives, so long downloads show progress. */
  log?: Log;
  /** Prefix for logged lines, to tell which tool is talking. */
  prefix?: string;
}

/** True when `cmd` can be found on PATH. */
export function haveCommand(cmd: string): boolean {
  return spawnSync('sh', ['-c', 'command -v "$1"', 'sh', cmd], { stdio: 'ignore' }).status === 0;
}

/** Runs a command to completion, capturing its output. A missing executable is reported as code 127 with the
 *  error text in stderr, as a shell would, so callers handle every failure in one place. */
export function run(cmd: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolvePromise) => {
    const child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    const forward = (chunks: Buffer[]) => {
      let partial = '';
      return (b: Buffer): void => {
        chunks.push(b);
        if (!opts.log) return;
        partial += b.toString('utf8');
        const lines = partial.split(/\r?\n|\r/);
        partial = lines.pop() ?? '';
        // Indented lines are detail under a message above (apt's hash listings); the message alone is enough.
        for (const l of lines) if (l.trim() && !/^\s/.test(l)) opts.log(`${opts.prefix ?? ''}${l}`);
      };
    };
    child.stdout.on('data', forward(out));
    child.stderr.on('data', forward(err));
    let spawnError: Error | undefined;
    child.on('error', (e) => { spawnError = e; });
    child.on('close', (code, signal) => {
      const stderr = Buffer.concat(err).toString('utf8') + (spawnError ? `${spawnError.message}\n` : '');
      resolvePromise({
        code: spawnError ? 127 : code ?? (signal ? 128 : 1),
        stdout: Buffer.concat(out).toString('utf8'),
        stderr,
      });
    });
  });
}
