// How this host runs i386 Linux programs: the differential tests' oracle is the real CPU, and the guest
// tooling runs Debian's (busybox's applet list, debootstrap's chroot). An x86-64 Linux kernel runs them
// natively when it has IA32 emulation enabled; some do not (built without it, `ia32_emulation=0`, or a
// hypervisor that cannot run 32-bit user code), and there QEMU's user-mode emulator does
// (`qemu-i386-static`, Debian package qemu-user-static: static, so it also runs inside a chroot of an i386
// tree).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A complete static i386 ELF executable (one PT_LOAD segment, System V gABI and the i386 psABI) whose code is
 *  `mov eax, 1; mov ebx, 42; int 0x80`: exit(42). */
function exit42Elf() {
  const b = Buffer.alloc(96);
  const code = [0xb8, 1, 0, 0, 0, 0xbb, 42, 0, 0, 0, 0xcd, 0x80];
  b.set([0x7f, 0x45, 0x4c, 0x46, 1, 1, 1], 0); // ELFCLASS32, ELFDATA2LSB, EV_CURRENT
  b.writeUInt16LE(2, 16); // ET_EXEC
  b.writeUInt16LE(3, 18); // EM_386
  b.writeUInt32LE(1, 20);
  b.writeUInt32LE(0x08048000 + 84, 24); // e_entry: the code after the headers
  b.writeUInt32LE(52, 28); // e_phoff
  b.writeUInt16LE(52, 40); // e_ehsize
  b.writeUInt16LE(32, 42); // e_phentsize
  b.writeUInt16LE(1, 44); // e_phnum
  b.writeUInt32LE(1, 52); // PT_LOAD of the whole file at 0x08048000, R+X
  b.writeUInt32LE(0x08048000, 60);
  b.writeUInt32LE(0x08048000, 64);
  b.writeUInt32LE(b.length, 68);
  b.writeUInt32LE(b.length, 72);
  b.writeUInt32LE(5, 76);
  b.writeUInt32LE(0x1000, 80);
  b.set(code, 84);
  return b;
}

let native;
/** Whether the host kernel runs i386 programs itself (probed once per process). */
export function hostRunsI386() {
  if (native === undefined) {
    const dir = mkdtempSync(join(tmpdir(), 'trapeze-i386-'));
    try {
      const exe = join(dir, 'exit42');
      writeFileSync(exe, exit42Elf(), { mode: 0o755 });
      native = spawnSync(exe, [], { stdio: 'ignore' }).status === 42;
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  return native;
}

export const QEMU_I386 = '/usr/bin/qemu-i386-static';
export const i386Hint = 'this host does not run i386 programs natively (no IA32 emulation in its kernel); install QEMU\'s user-mode emulator: apt-get install qemu-user-static';

/** The argv prefix that runs an i386 program here: [] natively, [qemu-i386-static] otherwise, or null when
 *  neither works (then `i386Hint` says what to install). */
let prefix;
export function i386Prefix() {
  if (prefix === undefined) {
    if (hostRunsI386()) prefix = [];
    else prefix = spawnSync(QEMU_I386, ['--version'], { stdio: 'ignore' }).status === 0 ? [QEMU_I386] : null;
  }
  return prefix;
}

/** The command and arguments that run the i386 program `exe` with `args` here; throws with `i386Hint` when
 *  nothing can. */
export function i386Command(exe, args) {
  const prefix = i386Prefix();
  if (!prefix) throw new Error(i386Hint);
  const argv = [...prefix, exe, ...args];
  return { cmd: argv[0], args: argv.slice(1) };
}

/** Why a differential test is skipped here: '' where the host CPU runs i386 code itself, else the reason, for
 *  tests whose oracle must be the real CPU (`what` says why QEMU's emulation cannot stand in for it). */
export function nativeOnly(what) {
  return hostRunsI386() ? '' : `this host runs no i386 code natively (its kernel has no IA32 emulation, so no 32-bit code segment either), and QEMU is no oracle for ${what}`;
}

/** '' when i386 programs run natively; else the reason a test comparing against a program's output under
 *  qemu-i386 is skipped, where QEMU itself is known to differ from the hardware (`deviation`). */
export function qemuDiffers(deviation) {
  return hostRunsI386() ? '' : `the oracle here is qemu-i386 (this host runs no i386 code natively), and QEMU ${deviation}`;
}
