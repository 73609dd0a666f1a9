// `trapeze img`: creates and describes disk images (qcow2 and raw), with qemu-img's vocabulary.

import { closeSync, existsSync, openSync, statSync, ftruncateSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { Command } from './commands.ts';
import { UserError } from './errors.ts';
import { createQcow2, openImage, Qcow2Image } from '../backends/disk/qcow2.ts';
import { parseSize, probeFormat, type ImageFormat } from '../backends/disk/image.ts';
import { lockHolders, lockImage } from '../backends/disk/lock.ts';

const USAGE = `usage: trapeze img create -f qcow2|raw [-b BASE [-F FMT]] FILE [SIZE]
       trapeze img info FILE

create   writes a new empty image. SIZE takes K, M, G, T suffixes (binary units: 4G, 512M).
         -b BASE makes a copy-on-write overlay of BASE (qcow2 only); SIZE then defaults to BASE's
         size and -F names BASE's format (probed when absent). A relative BASE is relative to FILE's folder.
         -o cluster_size=N (qcow2; 512 bytes to 2M, default 64K), -o compat=0.10|1.1 (version 2 or 3).
info     prints format, sizes, cluster size, backing file and who has the image open.
`;

function fmtSize(n: number): string {
  const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n, u = 0;
  while (v >= 1024 && u < units.length - 1) { v /= 1024; u++; }
  return u === 0 ? `${n} bytes` : `${Number.isInteger(v) ? v : v.toFixed(2)} ${units[u]} (${n} bytes)`;
}

function format(s: string | undefined, flag: string): ImageFormat | undefined {
  if (s === undefined) return undefined;
  if (s !== 'qcow2' && s !== 'raw') throw new UserError(`${flag} ${s}: supported formats are qcow2 and raw`);
  return s;
}

function create(args: string[]): number {
  let p;
  try {
    p = parseArgs({
      args, allowPositionals: true, strict: true,
      options: { f: { type: 'string', short: 'f' }, b: { type: 'string', short: 'b' }, F: { type: 'string', short: 'F' }, o: { type: 'string', short: 'o', multiple: true }, help: { type: 'boolean', short: 'h' } },
    });
  } catch (e) { throw new UserError(`${(e as Error).message.split('\n')[0]}; see \`trapeze img --help\``); }
  if (p.values.help) { process.stdout.write(USAGE); return 0; }
  const fmt = format(p.values.f ?? 'raw', '-f')!;
  const [file, sizeArg, extra] = p.positionals;
  if (!file || extra !== undefined) throw new UserError('img create needs FILE and SIZE (SIZE may be left out with -b); see `trapeze img --help`');
  const size = sizeArg === undefined ? undefined : parseSize(sizeArg);
  let clusterBits: number | undefined, version: 2 | 3 | undefined;
  for (const o of (p.values.o ?? []).flatMap((s) => s.split(','))) {
    const [k, v = ''] = o.split('=');
    if (k === 'cluster_size') {
      const n = parseSize(v);
      if (!Number.isInteger(Math.log2(n))) throw new UserError(`-o cluster_size=${v}: must be a power of two`);
      clusterBits = Math.log2(n);
    } else if (k === 'compat') {
      if (v !== '0.10' && v !== '1.1' && v !== 'v2' && v !== 'v3') throw new UserError(`-o compat=${v}: use 0.10 (version 2) or 1.1 (version 3)`);
      version = v === '0.10' || v === 'v2' ? 2 : 3;
    } else throw new UserError(`-o ${k}: unknown option (cluster_size, compat)`);
  }
  if (fmt === 'raw') {
    if (p.values.b) throw new UserError('a raw image cannot have a backing file; use -f qcow2');
    if (size === undefined) throw new UserError('img create -f raw needs a SIZE');
    const lock = lockImage(file, false);
    try {
      const fd = openSync(file, 'w');
      // A sparse file: the host allocates blocks only as the guest writes them.
      try { ftruncateSync(fd, size); } finally { closeSync(fd); }
    } finally { lock.release(); }
  } else {
    if (p.values.F && !p.values.b) throw new UserError('-F names the format of a backing file; it needs -b');
    createQcow2(file, { size, backingFile: p.values.b, backingFormat: format(p.values.F, '-F'), clusterBits, version });
  }
  const img = openImage(file, { format: fmt, readOnly: true, lock: false });
  process.stdout.write(`Formatting '${file}', fmt=${fmt} size=${img.size}${p.values.b ? ` backing_file=${p.values.b}` : ''}\n`);
  img.close();
  return 0;
}

function info(args: string[]): number {
  if (args.includes('--help') || args.includes('-h')) { process.stdout.write(USAGE); return 0; }
  const [file, extra] = args;
  if (!file || extra !== undefined) throw new UserError('img info needs one FILE; see `trapeze img --help`');
  if (!existsSync(file)) throw new UserError(`${file}: no such file`);
  const fmt = probeFormat(file);
  const img = openImage(file, { format: fmt, readOnly: true, lock: false });
  try {
    const lines = [`image: ${file}`, `file format: ${fmt}`, `virtual size: ${fmtSize(img.size)}`, `disk size: ${fmtSize(statSync(file).blocks * 512)}`];
    if (img instanceof Qcow2Image) {
      lines.push(`cluster_size: ${img.clusterSize}`, `qcow2 version: ${img.version}${img.version === 3 ? ' (compat 1.1)' : ' (compat 0.10)'}`);
      if (img.backingFile) lines.push(`backing file: ${img.backingFile}`, `backing file format: ${img.backingFormat ?? `${img.backing instanceof Qcow2Image ? 'qcow2' : 'raw'} (probed)`}`);
    }
    const holders = lockHolders(file);
    lines.push(`in use: ${holders.length ? holders.map((h) => `pid ${h.pid} (${h.readOnly ? 'read-only' : 'read-write'})`).join(', ') : 'no'}`);
    process.stdout.write(lines.join('\n') + '\n');
  } finally { img.close(); }
  return 0;
}

export const imgCommand: Command = {
  name: 'img',
  summary: 'create and inspect disk images (qcow2, raw)',
  async run(args: string[]): Promise<number> {
    const [sub, ...rest] = args;
    try {
      switch (sub) {
        case 'create': return create(rest);
        case 'info': return info(rest);
        case undefined: case '--help': case '-h': case 'help': process.stdout.write(USAGE); return sub === undefined ? 2 : 0;
        default: throw new UserError(`unknown img sub-command '${sub}' (create, info)`);
      }
    } catch (e) {
      if (e instanceof Error && (e as { userError?: boolean }).userError && !(e instanceof UserError)) throw new UserError(e.message);
      throw e;
    }
  },
};
