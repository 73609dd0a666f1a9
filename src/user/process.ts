// A Linux i386 process on the vCPU, like qemu-i386's user mode: load a static ELF executable, build the
// initial stack the kernel would (i386 SysV psABI §3.4.1 "Process Initialization", and the auxiliary vector
// of Linux's fs/binfmt_elf.c create_elf_tables), run at CPL 3 and emulate `int 0x80` system calls.

import { readFileSync, writeSync } from 'node:fs';
import { randomFillSync } from 'node:crypto';
import { resolve } from 'node:path';
import { CPU } from '../cpu/cpu.ts';
import { attachJit, type Jit } from '../jit/jit.ts';
import { CS, DS, ES, FS, GS, SS, CR0_PE, CR4_OSFXSR, CR4_OSXMMEXCPT } from '../cpu/constants.ts';
import { leaf1Edx } from '../cpu/cpuid.ts';
import { loadSegment } from '../cpu/system.ts';
import { parseElf32, ElfError, PT_LOAD, PT_PHDR, ET_DYN, type Elf32 } from './elf.ts';
import { AddressSpace, LOW_GUARD, pageUp } from './memory.ts';
import { FdTable } from './fds.ts';
import { syscall } from './syscalls.ts';

export { ElfError };

// Linux's i386 GDT layout (arch/x86/include/asm/segment.h): TLS entries 6..8, user code 14, user data 15,
// so selectors match what programs see on real hardware (CS 0x73, DS/SS 0x7b, TLS %gs 0x33).
export const GDT_ENTRY_TLS_MIN = 6;
export const GDT_ENTRY_TLS_ENTRIES = 3;
const GDT_USER_CS = 14;
const GDT_USER_DS = 15;
const GDT_ENTRIES = 32;
export const USER_CS = (GDT_USER_CS << 3) | 3;
export const USER_DS = (GDT_USER_DS << 3) | 3;

// Auxiliary vector types (include/uapi/linux/auxvec.h, arch/x86/include/uapi/asm/auxvec.h).
const AT_NULL = 0, AT_PHDR = 3, AT_PHENT = 4, AT_PHNUM = 5, AT_PAGESZ = 6, AT_BASE = 7, AT_FLAGS = 8, AT_ENTRY = 9,
  AT_UID = 11, AT_EUID = 12, AT_GID = 13, AT_EGID = 14, AT_PLATFORM = 15, AT_HWCAP = 16, AT_CLKTCK = 17,
  AT_SECURE = 23, AT_RANDOM = 25, AT_HWCAP2 = 26, AT_EXECFN = 31;

/** Where a static-pie (ET_DYN) executable is placed; Linux uses ELF_ET_DYN_BASE, we pick a fixed low base. */
const ET_DYN_BASE = 0x00400000;

export interface UserOptions {
  /** Host path of the executable. */
  path: string;
  /** argv as the guest sees it (argv[0] included). */
  argv: string[];
  /** Environment strings, "NAME=value". */
  env: string[];
  /** Host fds that become the guest's fds 0, 1, 2. */
  stdio?: [number, number, number];
  /** Bytes of process memory (default 1 GiB). */
  memBytes?: number;
  /** Trace every system call to `log` (TRAPEZE_STRACE=1 in the CLI). */
  strace?: boolean;
  /** Where runner messages (signals, strace, unknown syscalls) go. */
  log?: (line: string) => void;
  /** vCPU engine: the interpreter (default) or the binary translator. */
  cpu?: 'interp' | 'jit';
  /** With the translator: block-start executions before translation (tests use a low value to translate nearly everything). */
  hot?: number;
  /** Runs after which a unit may be translated again along its hot path (default: the JIT's). */
  reviewRuns?: number;
  /** Runs after which a unit becomes the entry of a group (default: the JIT's). */
  groupRuns?: number;
  cwd?: string;
}

export interface UserResult {
  /** Exit status as a shell reports it: the program's status, or 128+signal. */
  status: number;
  /** The fatal signal, when the program was killed by one. */
  signal?: number;
  instructions: number;
  seconds: number;
  /** The translator's statistics (`Jit.report()`), when it ran. */
  jitReport?: string;
}

const SIGNAL_NAMES: Record<number, string> = {
  4: 'Illegal instruction', 5: 'Trace/breakpoint trap', 6: 'Aborted', 7: 'Bus error', 13: 'Broken pipe', 8: 'Floating point exception', 11: 'Segmentation fault',
};

/** Which signal Linux sends for a CPU exception (arch/x86/kernel/traps.c). */
function signalForVector(v: number): number {
  switch (v) {
    case 0: case 7: case 16: case 19: return 8; // #DE, #NM (no FPU), #MF, #XM → SIGFPE
    case 6: return 4; // #UD → SIGILL
    case 1: case 3: return 5; // #DB, #BP → SIGTRAP
    case 17: return 7; // #AC → SIGBUS
    default: return 11; // #GP, #PF, #SS, #NP, #TS, INTO, BOUND → SIGSEGV
  }
}

export class UserProcess {
  readonly as: AddressSpace;
  readonly cpu: CPU;
  /** The binary translator running the program, with `cpu: 'jit'`. */
  readonly jit: Jit | null;
  readonly fds: FdTable;
  readonly elf: Elf32;
  readonly exePath: string;
  readonly strace: boolean;
  readonly log: (line: string) => void;
  cwd: string;
  umask = 0o022;
  exitStatus: number | undefined;
  signal: number | undefined;
  readonly pid = process.pid;
  readonly ppid = process.ppid;
  /** rt_sigaction state: recorded and reported back, never delivered. */
  readonly sigactions = new Map<number, Uint8Array>();
  sigmask = 0n;
  clearChildTid = 0;

  constructor(opts: UserOptions) {
    this.exePath = resolve(opts.cwd ?? process.cwd(), opts.path);
    this.cwd = resolve(opts.cwd ?? process.cwd());
    this.strace = opts.strace ?? false;
    // Synchronous, so messages interleave correctly with the guest's own (synchronous) writes to fd 2.
    this.log = opts.log ?? ((l) => { writeSync(2, l + '\n'); });
    const file = readFileSync(this.exePath);
    this.elf = parseElf32(file);
    if (this.elf.interp) throw new ElfError(`${opts.path} is dynamically linked (interpreter ${this.elf.interp}); only static executables are supported (build with -static)`);
    this.as = new AddressSpace(opts.memBytes ?? 1 << 30);
    this.cpu = new CPU(this.as.mem);
    this.jit = opts.cpu === 'jit' ? attachJit(this.cpu, { hot: opts.hot, reviewRuns: opts.reviewRuns, groupRuns: opts.groupRuns }) : null;
    this.fds = new FdTable(opts.stdio ?? [0, 1, 2]);
    const bias = this.elf.type === ET_DYN ? ET_DYN_BASE : 0;
    this.loadSegments(file, bias);
    this.setupCpu();
    this.buildStack(opts.argv, opts.env, bias);
    this.cpu.eip = (this.elf.entry + bias) | 0;
    this.cpu.hooks.softInt = (v) => this.onSoftInt(v);
    this.cpu.hooks.exception = (v, code) => this.onException(v, code);
  }

  private loadSegments(file: Uint8Array, bias: number): void {
    let end = 0;
    for (const ph of this.elf.phdrs) {
      if (ph.type !== PT_LOAD) continue;
      const va = ph.vaddr + bias;
      if (va < LOW_GUARD || va + ph.memsz > this.as.mmapTop) {
        throw new ElfError(`PT_LOAD at 0x${va.toString(16)}+0x${ph.memsz.toString(16)} does not fit the process memory (${this.as.ramSize >>> 20} MiB)`);
      }
      this.as.write(va, file.subarray(ph.offset, ph.offset + ph.filesz));
      // The rest up to p_memsz is .bss: fresh memory is zero already.
      end = Math.max(end, va + ph.memsz);
    }
    this.as.brkStart = this.as.brkCur = pageUp(end);
  }

  /** Flat protected mode at CPL 3 with a real GDT, so segment loads (the TLS %gs) go through descriptors. */
  private setupCpu(): void {
    const c = this.cpu;
    const gdt = this.as.gdtBase;
    // Flat 4 GiB, G=1 D=1 P=1 DPL=3: code type 0xB (execute/read, accessed), data type 0x3 (read/write, accessed).
    this.writeDescriptor(GDT_USER_CS, 0x0000ffff, 0x00cffb00);
    this.writeDescriptor(GDT_USER_DS, 0x0000ffff, 0x00cff300);
    c.gdtBase = gdt;
    c.gdtLimit = GDT_ENTRIES * 8 - 1;
    c.cr0 |= CR0_PE;
    c.cr4 |= CR4_OSFXSR | CR4_OSXMMEXCPT;
    c.cpl = 3;
    c.sreg[CS] = USER_CS;
    c.segBase[CS] = 0;
    c.segLimit[CS] = 0xffffffff;
    c.segAr[CS] = 0xc0fb;
    c.updateModes();
    for (const s of [SS, DS, ES]) loadSegment(c, s, USER_DS);
    for (const s of [FS, GS]) loadSegment(c, s, 0);
    c.updateModes();
    c.flushTlb(true);
    // The kernel starts a new image with all general registers zero (ELF_PLAT_INIT); EDX = 0 also tells libc
    // there is no rtld finalizer to register.
    c.r32.fill(0);
    c.setEflags(0x202);
  }

  writeDescriptor(index: number, lo: number, hi: number): void {
    this.as.mem.write32(this.as.gdtBase + index * 8, lo);
    this.as.mem.write32(this.as.gdtBase + index * 8 + 4, hi);
  }

  readDescriptorHigh(index: number): number { return this.as.mem.read32(this.as.gdtBase + index * 8 + 4); }

  /** Reloads segment registers that select GDT entry `index` after it changed (as Linux's set_tls_desc does). */
  reloadSegmentsUsing(index: number): void {
    for (const s of [DS, ES, FS, GS]) {
      const sel = this.cpu.sreg[s];
      if ((sel >> 3) === index && !(sel & 4)) loadSegment(this.cpu, s, (this.readDescriptorHigh(index) & 0x8000) ? sel : 0);
    }
  }

  private buildStack(argv: string[], env: string[], bias: number): void {
    const as = this.as;
    let sp = as.stackTop;
    const pushBytes = (b: Uint8Array): number => { sp -= b.length; as.write(sp, b); return sp; };
    const pushString = (s: string): number => pushBytes(Buffer.concat([Buffer.from(s, 'utf8'), Buffer.from([0])]));
    // Strings at the top, as binfmt_elf does: execfn, env, argv, then platform and AT_RANDOM's bytes below.
    const execfn = pushString(argv[0] ?? this.exePath);
    const envPtrs = env.map(pushString);
    const argPtrs: number[] = [];
    for (let i = argv.length - 1; i >= 0; i--) argPtrs.unshift(pushString(argv[i]));
    const platform = pushString('i686');
    sp &= ~15;
    const random = pushBytes(randomFillSync(new Uint8Array(16)));

    // AT_PHDR: where the program headers are in memory (PT_PHDR, or inside the first segment mapping e_phoff).
    let phdr = 0;
    for (const ph of this.elf.phdrs) if (ph.type === PT_PHDR) phdr = ph.vaddr + bias;
    if (!phdr) {
      for (const ph of this.elf.phdrs) {
        if (ph.type === PT_LOAD && this.elf.phoff >= ph.offset && this.elf.phoff < ph.offset + ph.filesz) {
          phdr = ph.vaddr + bias + (this.elf.phoff - ph.offset);
          break;
        }
      }
    }
    const uid = process.getuid?.() ?? 0, gid = process.getgid?.() ?? 0;
    const euid = process.geteuid?.() ?? uid, egid = process.getegid?.() ?? gid;
    const auxv: [number, number][] = [
      [AT_HWCAP, leaf1Edx(this.cpu)], [AT_PAGESZ, 4096], [AT_CLKTCK, 100],
      [AT_PHDR, phdr], [AT_PHENT, 32], [AT_PHNUM, this.elf.phnum], [AT_BASE, 0], [AT_FLAGS, 0],
      [AT_ENTRY, this.elf.entry + bias], [AT_UID, uid], [AT_EUID, euid], [AT_GID, gid], [AT_EGID, egid],
      [AT_SECURE, 0], [AT_RANDOM, random], [AT_HWCAP2, 0], [AT_EXECFN, execfn], [AT_PLATFORM, platform],
      [AT_NULL, 0],
    ];
    const words = [argv.length, ...argPtrs, 0, ...envPtrs, 0, ...auxv.flat()];
    // The psABI wants %esp 16-byte aligned at process entry, pointing at argc.
    sp = (sp - words.length * 4) & ~15;
    const buf = Buffer.alloc(words.length * 4);
    words.forEach((w, i) => buf.writeUInt32LE(w >>> 0, i * 4));
    as.write(sp, buf);
    this.cpu.r32[4] = sp;
  }

  private onSoftInt(v: number): boolean {
    if (v === 0x80) {
      const r = this.cpu.r32;
      r[0] = syscall(this, r[0] >>> 0, r[3], r[1], r[2], r[6], r[7], r[5]);
      if (this.exitStatus !== undefined) this.cpu.stopSlice = true;
      return true;
    }
    // INT3 raises SIGTRAP; any other INT n hits a DPL-0 gate in Linux's IDT and becomes #GP → SIGSEGV.
    this.kill(v === 3 ? 5 : 11, `int 0x${v.toString(16)}`);
    return true;
  }

  private onException(v: number, code: number): boolean {
    let detail = `vector ${v}, error code 0x${code.toString(16)}`;
    if (v === 14) detail += `, address 0x${this.as.lastFaultAddr.toString(16)}`;
    if (v === 6) {
      const eip = this.cpu.eip >>> 0;
      try { detail += `, bytes ${Buffer.from(this.as.read(eip, 8)).toString('hex').replace(/(..)/g, '$1 ').trim()}`; } catch { /* eip unmapped */ }
    }
    this.kill(signalForVector(v), detail);
    return true;
  }

  /** Terminates the process with a fatal signal, reporting it in one line as qemu-user does. */
  kill(sig: number, detail: string): void {
    // SIGPIPE is the normal end of a producer in a pipeline (`yes | head`): shells stay silent about it, so do we.
    if (sig !== 13) this.log(`trapeze: uncaught target signal ${sig} (${SIGNAL_NAMES[sig] ?? 'signal'}) at eip 0x${(this.cpu.eip >>> 0).toString(16)} (${detail})`);
    this.signal = sig;
    this.exitStatus = 128 + sig;
    this.cpu.stopSlice = true;
  }

  /** Runs until the program exits or dies; returns its status. */
  run(): UserResult {
    const t0 = performance.now();
    const c = this.cpu;
    while (this.exitStatus === undefined) {
      c.run(1 << 22);
      if (c.halted && this.exitStatus === undefined) this.kill(11, 'HLT at CPL 3'); // HLT at CPL 3 is #GP on hardware
    }
    return { status: this.exitStatus, signal: this.signal, instructions: c.instructions, seconds: (performance.now() - t0) / 1000, jitReport: this.jit?.report() };
  }
}

/** Loads and runs a static i386 executable to completion. */
export function runUser(opts: UserOptions): UserResult {
  return new UserProcess(opts).run();
}
