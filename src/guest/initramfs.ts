// The default guest's initramfs: Debian's static busybox, the kernel modules Trapeze's virtual devices need,
// and an /init that brings up a shell with job control on the serial console.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UserError } from '../cli/errors.ts';
import { ensureDir, writeFileAtomic, type Log } from './cache.ts';
import { buildCpioGz, type CpioEntry } from './cpio.ts';
import { runUser } from '../user/process.ts';
import { ModuleTree, readModuleFile, renderModulesAlias, renderModulesDep } from './kmod.ts';

/** Drivers for the devices Trapeze emulates (virtio, NE2000, RTL8139 in C and C+ mode, e1000, PIIX IDE), the SCSI disk driver
 *  that PIIX disks appear through, and ext4 with the CRC32C implementation it asks the crypto API for. */
export const DEFAULT_MODULES = [
  'virtio_pci', 'virtio_blk', 'virtio_net', 'virtio_console', 'virtio_rng',
  'ne2k-pci', '8139too', '8139cp', 'e1000', 'ata_piix', 'sd_mod',
  'crc32c_generic', 'ext4',
];

/** Modules with no device to detect them by, so /init loads them unconditionally. */
const ALWAYS_LOAD = ['crc32c_generic', 'ext4'];

/** Bumped whenever the image layout changes, so cached images from older code are rebuilt. */
const LAYOUT_VERSION = 1;

export interface InitramfsInput {
  /** `lib/modules/<version>` of the kernel the image will boot with. */
  modulesDir: string;
  kernelVersion: string;
  /** A statically linked i386 busybox. */
  busybox: string;
  /** Output path of the gzip'd cpio. */
  out: string;
  modules?: string[];
  log: Log;
}

export interface InitramfsResult {
  path: string;
  rebuilt: boolean;
  modules: string[];
  applets: number;
  bytes: number;
}

/** The applets busybox was built with and where each belongs (`usr/bin/awk`, `sbin/ifconfig`, …), asked of the
 *  binary itself: natively where the host kernel runs i386 programs, else on Trapeze's own vCPU in user mode
 *  (a kernel without IA32 emulation refuses the ELF with ENOEXEC). */
export function busyboxApplets(busybox: string): string[] {
  const r = spawnSync(busybox, ['--list-full'], { encoding: 'utf8' });
  const out = !r.error && r.status === 0 ? r.stdout : listOnVcpu(busybox, r.error?.message ?? r.stderr.trim());
  return out.split('\n').map((l) => l.trim()).filter(Boolean);
}

function listOnVcpu(busybox: string, nativeError: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'trapeze-applets-'));
  const outPath = join(dir, 'out');
  const fds: number[] = [];
  try {
    fds.push(openSync('/dev/null', 'r'), openSync(outPath, 'w'), openSync(join(dir, 'err'), 'w'));
    const res = runUser({ path: busybox, argv: ['busybox', '--list-full'], env: [], stdio: [fds[0], fds[1], fds[2]], log: () => {} });
    if (res.status !== 0) throw new Error(`exit status ${res.status}: ${readFileSync(join(dir, 'err'), 'utf8').trim()}`);
    return readFileSync(outPath, 'utf8');
  } catch (e) {
    throw new UserError(`cannot list the applets of the guest's busybox (${busybox}): natively: ${nativeError}; on the vCPU: ${(e as Error).message}; is the file a Debian i386 busybox-static?`);
  } finally {
    for (const fd of fds) closeSync(fd);
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Shell functions /init uses to boot a real root filesystem, as the kernel itself (init/do_mounts.c) or Debian's
 * initramfs-tools would: `root=` names the device (`/dev/vda`, `/dev/sda1`, or `LABEL=`/`UUID=` found with
 * busybox findfs), `rootfstype=` and `rootflags=` shape the mount, `ro`/`rw` pick its mode (read-only unless
 * `rw`, the kernel's default; systemd remounts it as /etc/fstab says after checking it), `rootwait` waits
 * forever for the device and `rootdelay=N` up to N seconds (default 30: SCSI disks behind ata_piix are found
 * asynchronously), and `init=` names the program to run (default /sbin/init). Kept apart from the rest of
 * /init so a test can run `parse_cmdline` under a host shell.
 */
export const ROOT_HANDOFF = `parse_cmdline() {
  root= rootfstype= rootflags= rootmode=ro rootdelay=30 rootwait= rootinit=/sbin/init
  for arg in $1; do
    case "$arg" in
      root=*) root=\${arg#root=} ;;
      rootfstype=*) rootfstype=\${arg#rootfstype=} ;;
      rootflags=*) rootflags=\${arg#rootflags=} ;;
      rootdelay=*) rootdelay=\${arg#rootdelay=} ;;
      rootwait) rootwait=1 ;;
      init=*) rootinit=\${arg#init=} ;;
      ro) rootmode=ro ;;
      rw) rootmode=rw ;;
    esac
  done
  case "$rootdelay" in ''|*[!0-9]*) rootdelay=30 ;; esac
}

# The device node root= names, once it exists (empty until then).
root_device() {
  case "$root" in
    LABEL=*|UUID=*) findfs "$root" 2>/dev/null ;;
    /dev/*) [ -b "$root" ] && echo "$root" ;;
    *) [ -b "/dev/$root" ] && echo "/dev/$root" ;;
  esac
}

mount_root_and_switch() {
  tries=0
  until dev=$(root_device) && [ -n "$dev" ]; do
    if [ -z "$rootwait" ] && [ "$tries" -ge $((rootdelay * 5)) ]; then
      echo "Trapeze initramfs: root device $root did not appear within $rootdelay s (block devices: $(ls /sys/class/block | tr '\\n' ' '))"
      return 1
    fi
    [ "$tries" = 0 ] && echo "Trapeze initramfs: waiting for root device $root"
    tries=$((tries + 1))
    sleep 0.2
  done
  mkdir -p /newroot
  if ! mount \${rootfstype:+-t "$rootfstype"} -o "$rootmode\${rootflags:+,$rootflags}" "$dev" /newroot; then
    echo "Trapeze initramfs: cannot mount $dev (root=$root) on /newroot"
    return 1
  fi
  # init is usually an absolute symlink (/sbin/init -> /lib/systemd/systemd): test the link, not its target.
  if [ ! -e "/newroot$rootinit" ] && [ ! -L "/newroot$rootinit" ]; then
    echo "Trapeze initramfs: $dev has no $rootinit"
    umount /newroot
    return 1
  fi
  echo "Trapeze initramfs: mounted $dev ($rootmode) as the root filesystem; starting $rootinit"
  # The new init finds /dev, /proc and /sys already mounted (devpts comes along under /dev).
  for d in dev proc sys; do
    mkdir -p "/newroot/$d" 2>/dev/null
    mount -o move "/$d" "/newroot/$d"
  done
  # switch_root empties the initramfs, makes /newroot the root and execs init as PID 1, on the console.
  exec switch_root -c /dev/console /newroot "$rootinit"
}
`;

/** /init, run by the kernel as PID 1. */
export function initScript(alwaysLoad: string[]): string {
  return `#!/bin/sh
# /init of the Trapeze default guest, generated by src/guest/initramfs.ts.
export PATH=/sbin:/usr/sbin:/bin:/usr/bin HOME=/root
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
hostname trapeze

# Drivers for the devices this machine has: modprobe matches each device's modalias against modules.alias.
# Two passes, because virtio devices only appear on the virtio bus once virtio_pci has bound the PCI functions.
# A device that already has a driver, and a modalias already tried, are skipped, and the alias is read by the
# shell: each modprobe and each \$(cat) is a fork and exec, and the 24 devices of the default machine made 96.
tried=' '
for pass in 1 2; do
  for f in /sys/bus/*/devices/*/modalias; do
    [ -e "\${f%/modalias}/driver" ] && continue
    read -r ma < "$f" 2>/dev/null || continue
    case "$tried" in *" $ma "*) continue ;; esac
    tried="$tried$ma "
    modprobe -q "$ma" 2>/dev/null
  done
done
# Filesystems have no device that would pull them in.
for m in ${alwaysLoad.join(' ')}; do modprobe -q "$m" 2>/dev/null; done

${ROOT_HANDOFF}
# With root= on the kernel command line, mount that filesystem and hand PID 1 to its init (systemd); if that
# fails, say why and carry on as the busybox guest below, which is also what happens without root=.
set -f
parse_cmdline "$(cat /proc/cmdline)"
set +f
[ -n "$root" ] && mount_root_and_switch

# Every NIC gets its address by DHCP, in the background so a missing DHCP server does not delay the shell.
ifconfig lo 127.0.0.1 up
for n in /sys/class/net/*; do
  n=\${n##*/}
  [ "$n" = lo ] || udhcpc -b -q -t 5 -i "$n" -s /usr/share/udhcpc/default.script >/dev/null 2>&1
done

echo "Trapeze guest: Debian $(uname -r) (busybox) — type poweroff to quit"

# busybox's shell runs its own applets first, so a plain 'poweroff', 'reboot' or 'halt' signals PID 1 as it
# would busybox init (SIGUSR2, SIGTERM, SIGUSR1). PID 1 is this script: act on those signals. The shell runs
# in the background so that 'wait' (unlike a foreground command) is interrupted by the trapped signal.
trap 'sync; exec poweroff -f' USR2
trap 'sync; exec reboot -f' TERM
trap 'sync; exec halt -f' USR1

# /dev/console can never be a controlling terminal, so a shell there has no job control. cttyhack looks up the
# real device behind it (the kernel's console=, e.g. ttyS0) and starts the shell in a new session on that.
setsid cttyhack sh -l &
wait $!
# PID 1 exiting panics the kernel; leaving the shell ends the machine cleanly instead.
sync
exec poweroff -f
`;
}

/** `poweroff`, `reboot` and `halt` without -f ask PID 1 (busybox init) to do it; our PID 1 is a shell, so these
 *  wrappers act directly, after flushing disks. */
function wrapper(applet: string): string {
  return `#!/bin/sh\n# With no busybox init to signal, act directly.\nsync\nexec /bin/busybox ${applet} -f "$@"\n`;
}

/**
 * busybox udhcpc only reports a lease; this script applies it (address, default route, DNS), as the
 * examples shipped with busybox do. udhcpc calls it with the event in $1 and the lease in variables.
 */
const DHCP_SCRIPT = `#!/bin/sh
case "$1" in
  deconfig) ifconfig "$interface" 0.0.0.0 ;;
  bound|renew)
    ifconfig "$interface" "$ip" netmask "\${subnet:-255.255.255.0}"
    [ -n "$router" ] && { while route del default gw 0.0.0.0 dev "$interface" 2>/dev/null; do :; done; route add default gw "\${router%% *}" dev "$interface"; }
    [ -n "$dns" ] && { : > /etc/resolv.conf; for d in $dns; do echo "nameserver $d" >> /etc/resolv.conf; done; }
    ;;
esac
exit 0
`;

const PROFILE = `# Login shell settings for the Trapeze guest.
export PS1='trapeze:\\w\\$ '
export PATH=/sbin:/usr/sbin:/bin:/usr/bin HOME=/root
[ -n "$TERM" ] || export TERM=vt100
`;

/** Builds the image at `out` unless one built from the same inputs is already there. */
export function buildInitramfs(input: InitramfsInput): InitramfsResult {
  const { modulesDir, kernelVersion, busybox, out, log } = input;
  const wanted = input.modules ?? DEFAULT_MODULES;
  if (!existsSync(busybox)) throw new Error(`busybox not found at ${busybox}`);
  const tree = new ModuleTree(modulesDir);
  const { modules, missing } = tree.closure(wanted);
  if (missing.length) log(`initramfs: not modules of ${kernelVersion} (built in or absent), skipped: ${missing.join(' ')}`);
  const alwaysLoad = ALWAYS_LOAD.filter((m) => tree.has(m));
  const init = initScript(alwaysLoad);

  // The inputs that decide the image's bytes. File identity is path+size+mtime: the trees under the cache are
  // only ever replaced whole (extracted afresh), never edited in place.
  const ident = (p: string): string => { const s = statSync(p); return `${p}\0${s.size}\0${s.mtimeMs}`; };
  const extras = ['modules.builtin', 'modules.order'].map((f) => join(modulesDir, f)).filter(existsSync);
  const hash = createHash('sha256');
  hash.update(JSON.stringify({ LAYOUT_VERSION, kernelVersion, init, busybox: ident(busybox), modules: modules.map((m) => ident(m.source)), extras: extras.map(ident) }));
  const key = hash.digest('hex');
  const stamp = `${out}.inputs`;
  if (existsSync(out) && existsSync(stamp) && readFileSync(stamp, 'utf8').trim() === key) {
    log(`initramfs: up to date: ${out}`);
    return { path: out, rebuilt: false, modules: modules.map((m) => m.name), applets: -1, bytes: statSync(out).size };
  }

  log(`initramfs: building ${out} (${modules.length} modules)`);
  const entries: CpioEntry[] = [];
  const dirs = new Set<string>();
  const dir = (p: string, mode = 0o755): void => {
    const parts = p.split('/');
    for (let i = 1; i <= parts.length; i++) {
      const d = parts.slice(0, i).join('/');
      if (dirs.has(d)) continue;
      dirs.add(d);
      entries.push({ type: 'dir', path: d, mode: d === p ? mode : 0o755 });
    }
  };
  for (const d of ['bin', 'sbin', 'usr/bin', 'usr/sbin', 'etc', 'proc', 'sys', 'dev', 'mnt', 'run', 'var/log', 'lib']) dir(d);
  dir('root', 0o700);
  dir('tmp', 0o1777);

  // Device nodes the kernel and /init need before devtmpfs is mounted over /dev (the kernel opens /dev/console
  // as PID 1's stdin/stdout, and prints "unable to open an initial console" without it).
  const chr = (name: string, major: number, minor: number, mode: number): void => {
    entries.push({ type: 'char', path: `dev/${name}`, major, minor, mode });
  };
  chr('console', 5, 1, 0o600);
  chr('tty', 5, 0, 0o666);
  chr('null', 1, 3, 0o666);
  chr('zero', 1, 5, 0o666);
  chr('random', 1, 8, 0o666);
  chr('urandom', 1, 9, 0o666);
  for (let i = 0; i < 4; i++) chr(`ttyS${i}`, 4, 64 + i, 0o660);
  chr('hvc0', 229, 0, 0o660); // virtio console

  entries.push({ type: 'file', path: 'bin/busybox', data: readFileSync(busybox), mode: 0o755 });
  const wrapped = new Set(['poweroff', 'reboot', 'halt']);
  const applets = busyboxApplets(busybox);
  const used = new Set<string>(['bin/busybox']);
  for (const a of wrapped) {
    entries.push({ type: 'file', path: `sbin/${a}`, data: Buffer.from(wrapper(a)), mode: 0o755 });
    used.add(`sbin/${a}`);
  }
  for (const full of applets) {
    const path = full.replace(/^\/+/, '');
    const name = path.slice(path.lastIndexOf('/') + 1);
    // linuxrc is busybox init under another name, for old initrds; our /init takes its place.
    if (wrapped.has(name) || name === 'linuxrc' || used.has(path)) continue;
    used.add(path);
    const parent = path.includes('/') ? path.slice(0, path.lastIndexOf('/')) : '';
    if (parent) dir(parent);
    entries.push({ type: 'symlink', path, target: '/bin/busybox' });
  }

  const modRoot = `lib/modules/${kernelVersion}`;
  dir(modRoot);
  for (const m of modules) {
    const p = `${modRoot}/${m.path}`;
    dir(p.slice(0, p.lastIndexOf('/')));
    entries.push({ type: 'file', path: p, data: readModuleFile(m.source), mode: 0o644 });
  }
  entries.push({ type: 'file', path: `${modRoot}/modules.dep`, data: Buffer.from(renderModulesDep(modules)) });
  entries.push({ type: 'file', path: `${modRoot}/modules.alias`, data: Buffer.from(renderModulesAlias(modules)) });
  for (const e of extras) {
    // modules.builtin lets modprobe treat built-in drivers as already loaded instead of failing on them.
    entries.push({ type: 'file', path: `${modRoot}/${e.slice(e.lastIndexOf('/') + 1)}`, data: readFileSync(e) });
  }

  entries.push({ type: 'file', path: 'etc/profile', data: Buffer.from(PROFILE) });
  dir('usr/share/udhcpc');
  entries.push({ type: 'file', path: 'usr/share/udhcpc/default.script', data: Buffer.from(DHCP_SCRIPT), mode: 0o755 });
  entries.push({ type: 'file', path: 'etc/passwd', data: Buffer.from('root:x:0:0:root:/root:/bin/sh\n') });
  entries.push({ type: 'file', path: 'etc/group', data: Buffer.from('root:x:0:\n') });
  entries.push({ type: 'file', path: 'etc/hostname', data: Buffer.from('trapeze\n') });
  entries.push({ type: 'file', path: 'init', data: Buffer.from(init), mode: 0o755 });

  const img = buildCpioGz(entries);
  ensureDir(out.slice(0, out.lastIndexOf('/')) || '.');
  writeFileAtomic(out, img);
  writeFileAtomic(stamp, key + '\n');
  log(`initramfs: wrote ${out} (${img.length} bytes, ${applets.length} applets, ${modules.length} modules)`);
  return { path: out, rebuilt: true, modules: modules.map((m) => m.name), applets: applets.length, bytes: img.length };
}
