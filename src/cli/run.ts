// `trapeze run`: boots a Linux kernel on a virtual PC with the terminal as its serial console.
// Flags follow QEMU's vocabulary (-kernel, -initrd, -append, -m, -no-reboot).

import { parseArgs } from 'node:util';
import { readFileSync, statSync } from 'node:fs';
import { totalmem } from 'node:os';
import type { Command } from './commands.ts';
import { UserError } from './errors.ts';
import { tuneV8ForJit } from './v8-tuning.ts';
import { Vm } from '../vmm/vm.ts';
import type { PcMachine } from '../vmm/pc.ts';
import { attachConsole } from '../backends/console.ts';
import { BootError, parseBzImage } from '../machine/linux-boot.ts';
import { prepareDefaultGuest } from '../guest/fetch.ts';
import { defaultCacheDir, stderrLog } from '../guest/cache.ts';
import { attachVirtio, openDrives, parseDrive } from './drive.ts';
import { VirtioConsole } from '../devices/virtio/console.ts';
import { VirtioRng } from '../devices/virtio/rng.ts';
import { NicSetup } from './nic.ts';
import { statsReport } from '../vmm/stats.ts';
import { getHeapSpaceStatistics } from 'node:v8';

const USAGE = `usage: trapeze run [options]

Boots a Linux kernel with the terminal as its serial console (ttyS0).
With no --kernel, runs the default Debian guest, fetching it first if needed.

options:
  --kernel FILE     bzImage to boot
  --initrd FILE     initial ramdisk
  --append "ARGS"   extra kernel command line (after "${'console=ttyS0 …'}")
  --memory MIB      guest RAM in MiB (default 256, at least 32)
  --no-reboot       exit when the guest reboots instead of restarting it
  --drive SPEC      a disk, QEMU style: file=PATH[,format=raw|qcow2 (default: guessed)][,if=virtio|ide][,readonly=on]
                    (repeatable; virtio disks are /dev/vda, /dev/vdb, … in the guest)
  --virtio-console  a virtio console (hvc0) on this terminal too; with --append console=hvc0
                    it becomes the guest's console and receives the keyboard input
  --virtio-rng      a virtio entropy device (/dev/hwrng) fed by the host's CSPRNG
  --nic SPEC        a network card, QEMU style (repeatable):
                    user[,net=10.0.N.0/24][,hostfwd=tcp::HOSTPORT-:GUESTPORT] | switch=NAME | tap=IFNAME | vde=URL
                    [,model=e1000|rtl8139|rtl8139cp|ne2k_pci|virtio][,mac=52:54:00:12:34:56]
  --cache DIR       cache for the default guest (default $TRAPEZE_CACHE or ~/.cache/trapeze)
  --cpu ENGINE      vCPU engine: jit (binary translation, default) or interp (the interpreter)
  --stats           print execution statistics at exit: instructions, and per device the guest's
                    register accesses (port I/O and MMIO) and the interrupts it raised
  --help            this text

In the console: Ctrl-A x quits, Ctrl-A h lists the console keys.
Sending SIGUSR2 to the process prints the same statistics so far on stderr (with or without --stats).
Exit status: 0 on guest power-off, 1 if the VM stopped on a fault, 2 for bad input.
`;

/**
 * `tsc=reliable`: the guest TSC is the machine's own monotonic clock (the same one every timer device
 * reads), so it never drifts. Linux's clocksource watchdog would otherwise check it against jiffies, which
 * an interpreter delivers late whenever the guest runs long stretches with interrupts disabled, and then
 * falsely declare the TSC unstable (VMware guests get the same treatment through CPUID).
 *
 * `cryptomgr.notests`: the kernel's boot-time self-tests of its own crypto code (crypto_algapi_init runs
 * every registered algorithm against test vectors, RSA/DH included) test the kernel, not the machine; on
 * the interpreter they were 57 s of a 77 s boot to /init (`initcall_debug`). Every engine in
 * `npm run bench` boots with this same command line.
 */
export const BASE_CMDLINE = 'console=ttyS0 reboot=acpi panic=-1 tsc=reliable cryptomgr.notests';
const MAX_MEMORY_MIB = 3072;

function readInput(path: string, what: string): Uint8Array {
  try {
    if (!statSync(path).isFile()) throw new UserError(`${what} ${path} is not a file`);
    return readFileSync(path);
  } catch (e) {
    if (e instanceof UserError) throw e;
    throw new UserError(`cannot read ${what} ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}; check the path`);
  }
}

export const runCommand: Command = {
  name: 'run',
  summary: 'boot a Linux guest with the terminal as its console',
  async run(args: string[]): Promise<number> {
    let v;
    try {
      v = parseArgs({
        args,
        options: {
          kernel: { type: 'string' }, initrd: { type: 'string' }, append: { type: 'string' },
          memory: { type: 'string', short: 'm' }, 'no-reboot': { type: 'boolean' }, cache: { type: 'string' },
          stats: { type: 'boolean' }, help: { type: 'boolean', short: 'h' }, cpu: { type: 'string' },
          drive: { type: 'string', multiple: true }, 'virtio-console': { type: 'boolean' }, 'virtio-rng': { type: 'boolean' },
          nic: { type: 'string', multiple: true },
        },
        strict: true, allowPositionals: false,
      }).values;
    } catch (e) {
      throw new UserError(`${(e as Error).message.split('\n')[0]}; see \`trapeze run --help\``);
    }
    if (v.help) { process.stdout.write(USAGE); return 0; }

    const cpuEngine = v.cpu ?? 'jit';
    if (cpuEngine !== 'interp' && cpuEngine !== 'jit') throw new UserError(`--cpu must be interp or jit, not '${v.cpu}'`);
    if (cpuEngine === 'jit') tuneV8ForJit();
    const memoryMiB = v.memory === undefined ? 256 : Number(v.memory);
    if (!Number.isInteger(memoryMiB)) throw new UserError(`--memory must be a whole number of MiB, not '${v.memory}'`);
    if (memoryMiB < 32) throw new UserError(`--memory ${memoryMiB} is too small: Linux needs at least 32 MiB`);
    const hostMiB = Math.floor(totalmem() / 1048576);
    if (memoryMiB > Math.min(MAX_MEMORY_MIB, hostMiB)) {
      throw new UserError(`--memory ${memoryMiB} is more than this host allows (at most ${Math.min(MAX_MEMORY_MIB, hostMiB)} MiB)`);
    }

    for (const spec of v.drive ?? []) parseDrive(spec); // a mistyped --drive fails before any download
    let kernelPath = v.kernel, initrdPath = v.initrd;
    if (!kernelPath) {
      if (initrdPath) throw new UserError('--initrd needs --kernel');
      const g = await prepareDefaultGuest({ cache: v.cache ?? defaultCacheDir(), log: stderrLog });
      kernelPath = g.kernel;
      initrdPath = g.initrd;
    }
    const kernel = readInput(kernelPath, 'kernel');
    try { parseBzImage(kernel); } catch (e) {
      if (e instanceof BootError) throw new UserError(`${kernelPath}: ${e.message}`);
      throw e;
    }
    const initrd = initrdPath ? readInput(initrdPath, 'initrd') : undefined;
    if (initrd && initrd.length >= memoryMiB * 1048576 / 2) {
      throw new UserError(`initrd ${initrdPath} (${Math.ceil(initrd.length / 1048576)} MiB) does not fit in ${memoryMiB} MiB of guest memory; raise --memory`);
    }
    const cmdline = v.append ? `${BASE_CMDLINE} ${v.append}` : BASE_CMDLINE;
    const drives = openDrives(v.drive ?? []);
    const devices = [...drives.devices];
    const nics = new NicSetup(v.nic ?? [], v.cache ?? defaultCacheDir(), stderrLog);
    devices.push(...nics.devices);
    if (v['virtio-rng']) devices.push(attachVirtio('virtio-rng', () => new VirtioRng()));
    // Linux's /dev/console is the last console= on the command line.
    const hvcIsConsole = [...cmdline.matchAll(/(?:^|\s)console=([^\s,]+)/g)].at(-1)?.[1] === 'hvc0';
    const extraConsole = v['virtio-console'] ? {
      input: hvcIsConsole,
      attach: (m: PcMachine, output: (d: Uint8Array) => void) => {
        const con = new VirtioConsole(output);
        attachVirtio('virtio-console', () => con)(m);
        return con;
      },
    } : undefined;

    let vm: Vm;
    try {
      vm = new Vm({
        config: { memoryMiB, kernel, initrd, cmdline, devices, cpu: cpuEngine },
        extraConsole,
        noReboot: v['no-reboot'] === true,
        onConsoleOutput: (d) => process.stdout.write(d),
        host: {
          sleep: nics.sleep, // cut short when a frame arrives
          yield: () => new Promise((r) => setImmediate(r)),
        },
      });
    } catch (e) {
      drives.close();
      nics.close();
      if (e instanceof BootError) throw new UserError(e.message);
      throw e;
    }
    const console = attachConsole(vm, process.stdin, process.stdout);
    const report = (): string => statsReport(vm) + nics.statsLines().map((l) => `${l}\n`).join('') + hostMemoryLine();
    // SIGUSR2: the statistics so far, e.g. before and after a workload to measure its share (npm run bench
    // does). The handler runs on the event loop, which the VM yields to between slices, so the counts are
    // consistent; one write keeps the table in one piece on stderr.
    const onUsr2 = (): void => { process.stderr.write(`trapeze: statistics so far (SIGUSR2)\n${report()}trapeze: end of statistics\n`); };
    process.on('SIGUSR2', onUsr2);
    let reason;
    try {
      reason = await vm.run();
    } finally {
      process.off('SIGUSR2', onUsr2);
      console.close();
      drives.close();
      nics.close();
    }
    if (v.stats) process.stderr.write(report());
    switch (reason.kind) {
      case 'poweroff': return 0;
      case 'quit': return 0;
      case 'reset': return 0; // only with --no-reboot
      case 'triple-fault': process.stderr.write(`trapeze: VM stopped: ${reason.message}\n`); return 1;
      case 'hung': process.stderr.write(`trapeze: VM stopped: ${reason.message}\n`); return 1;
    }
  },
};

/** The host process's memory: RSS and its peak, and V8's heap by space (translated code lives in code_space). */
function hostMemoryLine(): string {
  const MB = (b: number) => (b / 1048576).toFixed(0);
  const spaces = new Map(getHeapSpaceStatistics().map((x) => [x.space_name, x.space_used_size]));
  const space = (n: string) => MB(spaces.get(n) ?? 0);
  const used = [...spaces.values()].reduce((a, b) => a + b, 0);
  const m = process.memoryUsage();
  return `host: rss ${MB(m.rss)} MB (peak ${MB(process.resourceUsage().maxRSS * 1024)} MB); V8 heap ${MB(used)} MB used (old ${space('old_space')}, code ${space('code_space')}, young ${space('new_space')}, large ${space('large_object_space')}), array buffers ${MB(m.arrayBuffers)} MB\n`;
}
