// Kernel modules: reading their metadata and writing the index files busybox `modprobe` reads.
//
// Debian's kernel package ships no modules.dep (its postinst runs depmod), so the dependency graph is rebuilt
// here from each module's `.modinfo` ELF section: NUL-separated `key=value` strings such as
// `depends=virtio,virtio_ring`, `alias=pci:v00001AF4d*…` and `softdep=pre: crc32c`.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { UserError } from '../cli/errors.ts';

/** Module names treat '-' and '_' alike; the kernel and modprobe use the '_' spelling. */
export function canonicalModuleName(name: string): string {
  return name.replace(/-/g, '_');
}

const MODULE_SUFFIX = /\.ko(\.xz|\.zst|\.gz)?$/;

/** `kernel/drivers/net/ethernet/8390/ne2k-pci.ko.xz` → `ne2k_pci`. */
export function moduleNameOfPath(path: string): string {
  return canonicalModuleName(path.slice(path.lastIndexOf('/') + 1).replace(MODULE_SUFFIX, ''));
}

/** The strings of an ELF file's `.modinfo` section, as key → values (a key such as `alias` repeats). */
export function readModinfo(elf: Buffer): Map<string, string[]> {
  if (elf.length < 52 || elf.readUInt32BE(0) !== 0x7f454c46) throw new Error('not an ELF file');
  const is64 = elf[4] === 2;
  const le = elf[5] === 1;
  const u16 = (o: number): number => (le ? elf.readUInt16LE(o) : elf.readUInt16BE(o));
  const u32 = (o: number): number => (le ? elf.readUInt32LE(o) : elf.readUInt32BE(o));
  const word = (o: number): number => (is64 ? Number(le ? elf.readBigUInt64LE(o) : elf.readBigUInt64BE(o)) : u32(o));
  const shoff = word(is64 ? 0x28 : 0x20);
  const shentsize = u16(is64 ? 0x3a : 0x2e);
  const shnum = u16(is64 ? 0x3c : 0x30);
  const shstrndx = u16(is64 ? 0x3e : 0x32);
  // Offsets of sh_offset and sh_size inside a section header, which differ between the 32- and 64-bit layouts.
  const section = (i: number): { name: number; offset: number; size: number } => {
    const h = shoff + i * shentsize;
    return is64
      ? { name: u32(h), offset: word(h + 0x18), size: word(h + 0x20) }
      : { name: u32(h), offset: u32(h + 0x10), size: u32(h + 0x14) };
  };
  const strtab = section(shstrndx);
  const out = new Map<string, string[]>();
  for (let i = 0; i < shnum; i++) {
    const s = section(i);
    const nameEnd = elf.indexOf(0, strtab.offset + s.name);
    if (elf.toString('latin1', strtab.offset + s.name, nameEnd) !== '.modinfo') continue;
    for (const str of elf.toString('utf8', s.offset, s.offset + s.size).split('\0')) {
      const eq = str.indexOf('=');
      if (eq <= 0) continue;
      const k = str.slice(0, eq);
      const list = out.get(k) ?? [];
      list.push(str.slice(eq + 1));
      out.set(k, list);
    }
  }
  return out;
}

export interface ModuleInfo {
  name: string;
  /** Path relative to the modules directory, as modules.dep spells it, always ending in `.ko` (decompressed). */
  path: string;
  /** Where the (possibly compressed) file is on the host. */
  source: string;
  depends: string[];
  aliases: string[];
  /** `softdep=pre:` modules: not hard dependencies, but loaded first by kmod (ext4 wants crc32c this way). */
  softPre: string[];
}

/** Reads a module file, decompressing .ko.xz / .ko.zst / .ko.gz so the initramfs only holds plain .ko files,
 *  which every busybox `insmod` build can load whatever compression support it was configured with. */
export function readModuleFile(path: string): Buffer {
  if (path.endsWith('.gz')) return gunzipSync(readFileSync(path));
  const tool = path.endsWith('.xz') ? 'xz' : path.endsWith('.zst') ? 'zstd' : undefined;
  if (!tool) return readFileSync(path);
  const r = spawnSync(tool, ['-dc', path], { maxBuffer: 1 << 30 });
  if (r.error || r.status !== 0) {
    throw new UserError(`cannot decompress ${path} with ${tool}: ${r.error?.message ?? r.stderr.toString().trim()}; install the \`${tool === 'xz' ? 'xz-utils' : 'zstd'}\` package`);
  }
  return r.stdout;
}

/** One kernel's `lib/modules/<version>` tree. Module metadata is read lazily: only the modules asked for and
 *  their dependencies are opened. */
export class ModuleTree {
  readonly dir: string;
  private readonly files = new Map<string, string>();
  private readonly infos = new Map<string, ModuleInfo>();

  constructor(dir: string) {
    this.dir = dir;
    if (!existsSync(dir)) throw new Error(`no kernel modules directory at ${dir}`);
    const walk = (d: string): void => {
      for (const ent of readdirSync(d, { withFileTypes: true })) {
        const p = join(d, ent.name);
        if (ent.isDirectory()) walk(p);
        else if (MODULE_SUFFIX.test(ent.name)) this.files.set(moduleNameOfPath(ent.name), p);
      }
    };
    walk(dir);
  }

  get size(): number { return this.files.size; }

  has(name: string): boolean { return this.files.has(canonicalModuleName(name)); }

  info(name: string): ModuleInfo {
    const n = canonicalModuleName(name);
    const cached = this.infos.get(n);
    if (cached) return cached;
    const source = this.files.get(n);
    if (!source) throw new Error(`kernel module ${name} not found under ${this.dir}`);
    const mi = readModinfo(readModuleFile(source));
    const list = (k: string): string[] => (mi.get(k) ?? []).flatMap((v) => v.split(',')).map((s) => s.trim()).filter(Boolean);
    const softPre: string[] = [];
    for (const sd of mi.get('softdep') ?? []) {
      // "pre: a b post: c" — only the pre part matters for loading order.
      const m = /pre:\s*([^:]*?)(?:\s+post:.*)?$/.exec(sd);
      if (m) softPre.push(...m[1].split(/\s+/).filter(Boolean));
    }
    const info: ModuleInfo = {
      name: n,
      path: relative(this.dir, source).replace(MODULE_SUFFIX, '.ko'),
      source,
      depends: list('depends').map(canonicalModuleName),
      aliases: mi.get('alias') ?? [],
      softPre,
    };
    this.infos.set(n, info);
    return info;
  }

  /** `wanted` plus everything they need, dependencies before dependents. Names that are not modules in this
   *  kernel (built in, or absent) are returned in `missing` rather than failing: the caller decides. Soft
   *  dependencies are followed when they name a module here (by name, else by alias). */
  closure(wanted: string[]): { modules: ModuleInfo[]; missing: string[] } {
    const order: ModuleInfo[] = [];
    const state = new Map<string, 'visiting' | 'done'>();
    const missing: string[] = [];
    const visit = (name: string): void => {
      const n = canonicalModuleName(name);
      if (state.has(n)) return; // a cycle would be a kernel bug; visiting twice is harmless here
      state.set(n, 'visiting');
      const info = this.info(n);
      for (const d of info.depends) visit(d);
      for (const s of info.softPre) {
        const target = this.has(s) ? s : this.resolveAlias(s);
        if (target) visit(target);
      }
      state.set(n, 'done');
      order.push(info);
    };
    for (const w of wanted) {
      if (this.has(w)) visit(w);
      else missing.push(w);
    }
    return { modules: order, missing };
  }

  /** Finds the module providing `alias` among likely candidates (those whose name contains it), since reading
   *  every module's metadata to match one alias would cost a second per kernel. */
  private resolveAlias(alias: string): string | undefined {
    const stem = canonicalModuleName(alias).replace(/^crypto_/, '');
    // Generic C implementations first: they need no particular CPU feature, unlike e.g. crc32c_intel (SSE4.2).
    const candidates = [...this.files.keys()].filter((n) => n.includes(stem)).sort((x, y) => Number(y.endsWith('_generic')) - Number(x.endsWith('_generic')) || (x < y ? -1 : 1));
    for (const name of candidates) {
      if (this.info(name).aliases.some((x) => x === alias || x === `crypto-${alias}`)) return name;
    }
    return undefined;
  }
}

/** modules.dep in depmod's format: each module's full dependency list, ordered so that loading from the end of
 *  the list backwards loads every module after what it needs (the order kmod and busybox modprobe expect). */
export function renderModulesDep(modules: ModuleInfo[]): string {
  const byName = new Map(modules.map((m) => [m.name, m]));
  const lines: string[] = [];
  for (const m of modules) {
    const post: ModuleInfo[] = [];
    const seen = new Set<string>();
    const visit = (n: string): void => {
      if (seen.has(n)) return;
      seen.add(n);
      const d = byName.get(n);
      if (!d) return;
      for (const x of d.depends) visit(x);
      post.push(d);
    };
    for (const d of m.depends) visit(d);
    lines.push(`${m.path}:${post.reverse().map((d) => ` ${d.path}`).join('')}`);
  }
  return lines.join('\n') + '\n';
}

/** modules.alias: `alias <pattern> <module>` lines, which modprobe matches against a device's modalias. */
export function renderModulesAlias(modules: ModuleInfo[]): string {
  const lines = ['# Aliases extracted from modules themselves.'];
  for (const m of modules) for (const a of m.aliases) lines.push(`alias ${a} ${m.name}`);
  return lines.join('\n') + '\n';
}
