// A private, i386-only apt under the cache: it reuses the host's configured Debian archive (URIs, suites,
// components, keyrings) but keeps its own configuration, package lists, cache and an empty dpkg status, so the
// host's apt state and dpkg architectures are never touched.
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../cli/errors.ts';
import { ensureDir, writeFileAtomic, type Log } from './cache.ts';
import { haveCommand, run } from './exec.ts';

/** One `deb` source, in the shape of a deb822 stanza. */
export interface AptSource {
  uris: string[];
  suites: string[];
  components: string[];
  /** A keyring path, or an inline armoured key (deb822 continuation lines joined with "\n"). */
  signedBy?: string;
  /** The architectures the source is restricted to, when it says so. */
  architectures?: string[];
  /** The host file it came from, for messages. */
  origin: string;
}

/** The archive could not be reached or gave no usable index: callers (tests) may treat this as "offline". */
export class ArchiveUnreachable extends UserError {
  readonly archiveUnreachable = true;
}

/** Parses a deb822 `.sources` file, keeping only enabled `deb` (binary) stanzas. */
export function parseDeb822Sources(text: string, origin: string): AptSource[] {
  const out: AptSource[] = [];
  const stanzas: Map<string, string>[] = [];
  let cur = new Map<string, string>();
  let lastKey: string | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.replace(/\r$/, '');
    if (line.startsWith('#')) continue;
    if (line.trim() === '') {
      if (cur.size) stanzas.push(cur);
      cur = new Map();
      lastKey = undefined;
      continue;
    }
    if (/^[ \t]/.test(line) && lastKey) {
      // Continuation (used for inline Signed-By keys); " ." stands for an empty line.
      const cont = line.trim() === '.' ? '' : line.trim();
      cur.set(lastKey, `${cur.get(lastKey)}\n${cont}`);
      continue;
    }
    const m = /^([A-Za-z0-9-]+):\s*(.*)$/.exec(line);
    if (!m) continue;
    lastKey = m[1].toLowerCase();
    cur.set(lastKey, m[2].trim());
  }
  if (cur.size) stanzas.push(cur);
  for (const s of stanzas) {
    const words = (k: string): string[] => (s.get(k) ?? '').split(/\s+/).filter(Boolean);
    if (!words('types').includes('deb')) continue;
    if (/^(no|false|0)$/i.test(s.get('enabled') ?? 'yes')) continue;
    const arch = words('architectures');
    out.push({
      uris: words('uris'),
      suites: words('suites'),
      components: words('components'),
      signedBy: s.get('signed-by') || undefined,
      architectures: arch.length ? arch : undefined,
      origin,
    });
  }
  return out;
}

/** Parses a one-line-style `.list` file: `deb [opt=val ...] URI SUITE [COMPONENT...]`. */
export function parseListSources(text: string, origin: string): AptSource[] {
  const out: AptSource[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*$/, '').trim();
    if (!line) continue;
    const m = /^(\S+)\s+(?:\[([^\]]*)\]\s+)?(\S+)\s+(\S+)((?:\s+\S+)*)$/.exec(line);
    if (!m || m[1] !== 'deb') continue;
    const opts = new Map<string, string>();
    for (const kv of (m[2] ?? '').trim().split(/\s+/).filter(Boolean)) {
      const i = kv.indexOf('=');
      if (i > 0) opts.set(kv.slice(0, i).toLowerCase(), kv.slice(i + 1));
    }
    const arch = opts.get('arch');
    out.push({
      uris: [m[3]],
      suites: [m[4]],
      components: m[5].trim().split(/\s+/).filter(Boolean),
      signedBy: opts.get('signed-by'),
      architectures: arch ? arch.split(',') : undefined,
      origin,
    });
  }
  return out;
}

/** True for a source that is Debian's own archive (or a mirror or snapshot of it), as opposed to a third-party
 *  repository: its URI has a `debian…` path component, or it is signed with Debian's archive keyring. */
export function isDebianSource(s: AptSource): boolean {
  const byUri = s.uris.some((u) => {
    try {
      return new URL(u).pathname.split('/').some((c) => /^debian(-security|-ports|-debug)?$/.test(c));
    } catch {
      return false;
    }
  });
  return byUri || /debian-archive/.test(s.signedBy ?? '');
}

/** The host's enabled Debian binary sources that can serve `arch`. */
export function hostDebianSources(etcApt = '/etc/apt', arch = 'i386'): AptSource[] {
  const found: AptSource[] = [];
  const main = join(etcApt, 'sources.list');
  if (existsSync(main)) found.push(...parseListSources(readFileSync(main, 'utf8'), main));
  const dir = join(etcApt, 'sources.list.d');
  if (existsSync(dir)) {
    for (const name of readdirSync(dir).sort()) {
      const p = join(dir, name);
      if (name.endsWith('.sources')) found.push(...parseDeb822Sources(readFileSync(p, 'utf8'), p));
      else if (name.endsWith('.list')) found.push(...parseListSources(readFileSync(p, 'utf8'), p));
    }
  }
  return found.filter((s) => isDebianSource(s) && (!s.architectures || s.architectures.includes(arch)));
}

/** Renders sources as one deb822 file for the private apt. Architectures are left to the private config. */
export function renderDeb822(sources: AptSource[]): string {
  return sources
    .map((s) => {
      const lines = [
        `# from ${s.origin}`,
        'Types: deb',
        `URIs: ${s.uris.join(' ')}`,
        `Suites: ${s.suites.join(' ')}`,
      ];
      if (s.components.length) lines.push(`Components: ${s.components.join(' ')}`);
      if (s.signedBy) lines.push(`Signed-By: ${s.signedBy.split('\n').map((l, i) => (i === 0 ? l : ` ${l || '.'}`)).join('\n')}`);
      return lines.join('\n') + '\n';
    })
    .join('\n');
}

/** The candidate version of one package, as the private apt sees it. */
export interface PackageInfo {
  package: string;
  version: string;
  architecture: string;
  depends: string[];
  size: number;
  sha256?: string;
}

/** The name `apt-get download` gives a package's file: the epoch's colon is URL-escaped. */
export function debFileName(p: PackageInfo): string {
  return `${p.package}_${p.version.replace(/:/g, '%3a')}_${p.architecture}.deb`;
}

/** The first alternative of each `Depends` clause, without version constraints or architecture qualifiers. */
export function parseDepends(field: string): string[] {
  return field
    .split(',')
    .map((clause) => clause.split('|')[0].replace(/\(.*?\)|\[.*?\]|<.*?>/g, '').trim().replace(/:\S+$/, ''))
    .filter(Boolean);
}

/** Parses the first stanza of `apt-cache show` output. */
function parseControl(text: string): Map<string, string> {
  const fields = new Map<string, string>();
  let last: string | undefined;
  for (const line of text.split('\n')) {
    if (line === '') {
      if (fields.size) break;
      continue;
    }
    if (/^\s/.test(line) && last) {
      fields.set(last, `${fields.get(last)}\n${line.trim()}`);
      continue;
    }
    const i = line.indexOf(':');
    if (i <= 0) continue;
    last = line.slice(0, i).toLowerCase();
    fields.set(last, line.slice(i + 1).trim());
  }
  return fields;
}

/** Configuration values worth taking from the host's apt: how it reaches the network (proxies) and whether it
 *  checks Release dates (turned off where the archive is a dated snapshot or the clock is off). Nothing else of
 *  the host's configuration is read, so its hooks (cache cleaners, appstream refreshes) never run. */
async function hostAcquireSettings(): Promise<string[]> {
  const r = await run('apt-config', ['dump']);
  if (r.code !== 0) return [];
  const keep = /^(Acquire::(https?|ftp)::Proxy(::\S+)?|Acquire::Check-Valid-Until|Acquire::Check-Date|Acquire::Retries|Acquire::ForceIPv4|Acquire::ForceIPv6) "/;
  return r.stdout.split('\n').filter((l) => keep.test(l));
}

export class PrivateApt {
  readonly root: string;
  readonly arch: string;
  private readonly log: Log;

  constructor(root: string, log: Log, arch = 'i386') {
    this.root = root;
    this.log = log;
    this.arch = arch;
  }

  get configFile(): string { return join(this.root, 'apt.conf'); }
  private get listsDir(): string { return join(this.root, 'state', 'lists'); }

  /** Writes the private configuration and sources. Cheap; done on every run so host source changes are seen. */
  async prepare(etcApt = '/etc/apt'): Promise<void> {
    for (const tool of ['apt-get', 'apt-cache']) {
      if (!haveCommand(tool)) {
        throw new UserError(`${tool} not found: fetching the Debian guest needs a Debian (or Debian-based) host with apt; install apt or use a Debian machine`);
      }
    }
    const sources = hostDebianSources(etcApt, this.arch);
    if (!sources.length) {
      throw new UserError(`no Debian archive configured in ${etcApt}/sources.list or ${etcApt}/sources.list.d/: add Debian 12's archive (suite bookworm, component main) there`);
    }
    const r = this.root;
    if (/["\n]/.test(r)) throw new UserError(`cache directory ${JSON.stringify(r)} contains a quote or newline; pick a plainer path`);
    for (const d of ['etc/apt.conf.d', 'etc/preferences.d', 'etc/sources.list.d', 'state/lists/partial', 'cache/archives/partial', 'log']) {
      ensureDir(join(r, d));
    }
    writeFileAtomic(join(r, 'etc', 'sources.list'), '');
    writeFileAtomic(join(r, 'etc', 'sources.list.d', 'debian.sources'), renderDeb822(sources));
    // An empty dpkg status: nothing counts as installed, so nothing of the host's package set leaks in.
    if (!existsSync(join(r, 'state', 'status'))) writeFileAtomic(join(r, 'state', 'status'), '');
    const conf = [
      '// Private apt for Trapeze guest packages; generated, do not edit.',
      `Dir::Etc "${r}/etc/";`,
      'Dir::Etc::main "apt.conf";',
      'Dir::Etc::parts "apt.conf.d/";',
      'Dir::Etc::sourcelist "sources.list";',
      'Dir::Etc::sourceparts "sources.list.d/";',
      'Dir::Etc::preferences "preferences";',
      'Dir::Etc::preferencesparts "preferences.d/";',
      // Keys stay the host's: sources without Signed-By are verified against the host's trusted keyrings.
      'Dir::Etc::trusted "/etc/apt/trusted.gpg";',
      'Dir::Etc::trustedparts "/etc/apt/trusted.gpg.d/";',
      `Dir::State "${r}/state/";`,
      'Dir::State::lists "lists/";',
      `Dir::State::status "${r}/state/status";`,
      `Dir::Cache "${r}/cache/";`,
      'Dir::Cache::archives "archives/";',
      `Dir::Log "${r}/log/";`,
      `APT::Architecture "${this.arch}";`,
      `APT::Architectures { "${this.arch}"; };`,
      // The cache is root's (or the user's) own directory, which the unprivileged `_apt` sandbox user cannot write.
      'APT::Sandbox::User "root";',
      'Acquire::Languages "none";',
      ...(await hostAcquireSettings()),
      '',
    ].join('\n');
    writeFileAtomic(this.configFile, conf);
  }

  private env(): NodeJS.ProcessEnv {
    // APT_CONFIG is read before /etc/apt/apt.conf.d, and our file moves Dir::Etc, so the host config is never read.
    return { ...process.env, APT_CONFIG: this.configFile, LC_ALL: 'C', DEBIAN_FRONTEND: 'noninteractive' };
  }

  /** The option set repeated on the command line, so the intent is visible in `ps` and in error messages. */
  private opts(): string[] {
    return ['-o', `APT::Architectures::=${this.arch}`, '-o', `APT::Architecture=${this.arch}`];
  }

  /** True once an update has left at least one package index. */
  hasLists(): boolean {
    if (!existsSync(this.listsDir)) return false;
    return readdirSync(this.listsDir).some((n) => /_Packages(\.[a-z0-9]+)?$/.test(n));
  }

  /** Age of the newest package index in milliseconds, or Infinity when there is none. */
  listsAge(): number {
    if (!existsSync(this.listsDir)) return Infinity;
    let newest = 0;
    for (const n of readdirSync(this.listsDir)) {
      if (/_Packages(\.[a-z0-9]+)?$/.test(n)) newest = Math.max(newest, statSync(join(this.listsDir, n)).mtimeMs);
    }
    return newest ? Date.now() - newest : Infinity;
  }

  async update(): Promise<void> {
    this.log(`apt: updating private ${this.arch} package lists in ${this.root}`);
    const r = await run('apt-get', [...this.opts(), '-q', 'update'], { env: this.env(), log: (l) => this.log(redactHosts(l)), prefix: '  apt: ' });
    // apt-get reports a failure for any one index; one unreachable suite (say a security mirror mid-sync) is no
    // reason to stop when the main archive answered, so success is judged by the indexes that arrived.
    if (!this.hasLists()) {
      const why = lastError(r.stderr) ?? `apt-get update exited ${r.code}`;
      throw new ArchiveUnreachable(`cannot reach the Debian package archive (${why}); check the network and /etc/apt/sources.list*, then retry`);
    }
    if (r.code !== 0 || /^(E|W):/m.test(r.stderr)) this.log('apt: some indexes failed; continuing with those that arrived');
  }

  /** The candidate version of `pkg`, or undefined when the lists do not know it. */
  async show(pkg: string): Promise<PackageInfo | undefined> {
    const r = await run('apt-cache', [...this.opts(), '-o', 'APT::Cache::AllVersions=false', 'show', pkg], { env: this.env() });
    if (r.code !== 0 || !r.stdout.trim()) return undefined;
    const f = parseControl(r.stdout);
    const version = f.get('version');
    if (!version) return undefined;
    return {
      package: f.get('package') ?? pkg,
      version,
      architecture: f.get('architecture') ?? this.arch,
      depends: parseDepends(f.get('depends') ?? ''),
      size: Number(f.get('size') ?? 0),
      sha256: f.get('sha256'),
    };
  }

  /** Downloads the candidate versions of `pkgs` into `dir` (the current directory of `apt-get download`). */
  async download(pkgs: string[], dir: string): Promise<void> {
    ensureDir(dir);
    this.log(`apt: downloading ${pkgs.join(' ')} (${this.arch}) into ${dir}`);
    const r = await run('apt-get', [...this.opts(), '-q', 'download', ...pkgs], { env: this.env(), cwd: dir, log: (l) => this.log(redactHosts(l)), prefix: '  apt: ' });
    if (r.code !== 0) {
      const why = lastError(r.stderr) ?? `apt-get download exited ${r.code}`;
      throw new ArchiveUnreachable(`cannot download ${pkgs.join(', ')} from the Debian archive (${why}); check the network, or run \`trapeze guest fetch --refresh\``);
    }
  }
}

/** The most telling line of apt's complaints: the first failed fetch (it names the cause), else the last error. */
function lastError(stderr: string): string | undefined {
  const lines = stderr.split('\n');
  const pick = lines.find((l) => /^[EW]: Failed to fetch/.test(l)) ?? lines.filter((l) => /^E: /.test(l)).pop();
  return pick ? redactHosts(pick.slice(3).trim().replace(/\s+/g, ' ')) : undefined;
}

/** Archive host names stay out of Trapeze's own output (the sources files name them for whoever needs them);
 *  the path, suite and cause are what tell a user what went wrong. */
export function redactHosts(line: string): string {
  return line.replace(/\b([a-z][a-z0-9+.-]*):\/\/[^/\s]+/gi, '$1://<archive>').replace(/resolving '[^']*'/g, "resolving '<archive>'");
}
