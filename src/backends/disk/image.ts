// Disk image helpers shared by the formats: format probing and size parsing.

import { closeSync, openSync, readSync } from 'node:fs';
import type { BlockBackend } from '../../devices/block-backend.ts';

/** A virtual disk as the controllers see it (the device side's interface). */
export type DiskImage = BlockBackend;

export type ImageFormat = 'raw' | 'qcow2';

export class ImageError extends Error {
  readonly userError = true;
  constructor(message: string) { super(message); this.name = 'ImageError'; }
}

/** `qcow2` when the file starts with the qcow2 magic "QFI\xfb", else `raw`. */
export function probeFormat(path: string): ImageFormat {
  let fd: number;
  try { fd = openSync(path, 'r'); } catch (e) {
    throw new ImageError(`cannot open ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  try {
    const b = new Uint8Array(4);
    const n = readSync(fd, b, 0, 4, 0);
    return n === 4 && b[0] === 0x51 && b[1] === 0x46 && b[2] === 0x49 && b[3] === 0xfb ? 'qcow2' : 'raw';
  } finally { closeSync(fd); }
}

/** Parses a size like `4G`, `512M`, `100K`, `1T` or a plain byte count (binary units, as qemu-img). */
export function parseSize(s: string): number {
  const m = /^(\d+(?:\.\d+)?)([kKmMgGtT]?)[bB]?$/.exec(s.trim());
  if (!m) throw new ImageError(`bad size '${s}' (examples: 4G, 512M, 1048576)`);
  const mult = { '': 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40 }[m[2].toLowerCase() as '' | 'k' | 'm' | 'g' | 't'];
  const n = Math.round(Number(m[1]) * mult);
  if (!Number.isSafeInteger(n)) throw new ImageError(`size '${s}' is too large`);
  return n;
}
