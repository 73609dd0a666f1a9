// The crash tests' common step: start a writer script (it prints `ready` once its image is open), let it
// run for a random while, then SIGKILL it. Shared by test/qcow2.test.ts and test/virtio-blk-zeroes.test.ts.

import { spawn } from 'node:child_process';

/** Runs `node --import tsx SCRIPT FIRST_SEQ` in `cwd` and kills it with SIGKILL `minMs`..`minMs + spanMs` after it is ready. */
export async function runWriterUntilKilled(script: string, firstSeq: number, cwd: string, minMs: number, spanMs: number): Promise<void> {
  const child = spawn(process.execPath, ['--import', 'tsx', script, String(firstSeq)], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr.on('data', (d) => { err += d; });
  await new Promise<void>((res, rej) => {
    child.stdout.on('data', (d) => { if (String(d).includes('ready')) res(); });
    child.on('exit', () => rej(new Error(`writer exited early: ${err}`)));
  });
  await new Promise((res) => setTimeout(res, minMs + Math.random() * spanMs));
  child.kill('SIGKILL');
  await new Promise((res) => child.on('exit', res));
}

/**
 * A writer script for runWriterUntilKilled: opens the qcow2 image and a journal, prints `ready`, then runs
 * `step` (JavaScript with `img`, `j` (the journal's fd), `writeSync` and `seq` in scope) forever, flushing
 * the image and journaling `f SEQ` after every 16th step. Each step journals its operation before doing it.
 */
export function writerScript(qcow2Module: string, img: string, journal: string, step: string): string {
  return `
const { Qcow2Image } = await import(${JSON.stringify(qcow2Module)});
const { openSync, writeSync } = await import('node:fs');
const img = Qcow2Image.open(${JSON.stringify(img)});
const j = openSync(${JSON.stringify(journal)}, 'a');
let seq = Number(process.argv.at(-1));
console.log('ready');
for (;;) {
${step}
  if (seq % 16 === 15) { img.flush(); writeSync(j, 'f ' + seq + '\\n'); }
  seq++;
}
`;
}
