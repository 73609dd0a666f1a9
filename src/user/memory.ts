// The address space of one user-mode process. Paging is off, so a linear address is a guest-physical
// address into one GuestMemory of `ramSize` bytes; host frames are committed lazily on first touch.
//
// Layout (low to high):
//   [0, LOW_GUARD)                  unmapped: accesses fault (catches NULL-pointer dereferences)
//   ELF segments (0x08048000 for a classic non-PIE i386 executable), then the brk heap growing up
//   mmap area, allocated top-down below the stack
//   stack (STACK_SIZE, RLIMIT_STACK's default 8 MiB), growing down from stackTop
//   one page holding the GDT
//   [ramSize, 4 GiB)                unmapped: accesses fault
//
// Without paging there are no page permissions: mprotect is accepted and ignored, and only the two
// unmapped ranges raise faults. They are MMIO regions whose handlers throw #PF, which the runner turns
// into SIGSEGV like the kernel would.

import { CpuFault } from '../cpu/cpu.ts';
import { GuestMemory, PAGE_SIZE } from '../memory/guest-memory.ts';

export const LOW_GUARD = 0x10000; // Linux's default vm.mmap_min_addr is 65536 as well
export const STACK_SIZE = 8 << 20;
const PAGE_MASK = PAGE_SIZE - 1;
const EXC_PF = 14;

export const pageUp = (x: number): number => (x + PAGE_MASK) & ~PAGE_MASK;

/** A guest pointer outside the process's memory: system calls return -EFAULT. */
export class BadAddress extends Error {}

interface Region { start: number; end: number }

export class AddressSpace {
  readonly mem: GuestMemory;
  readonly ramSize: number;
  readonly gdtBase: number;
  readonly stackTop: number;
  readonly mmapTop: number;
  brkStart = 0;
  brkCur = 0;
  /** mmap'ed ranges, sorted by start, never overlapping. */
  private regions: Region[] = [];
  /** Set by the fault handlers before they throw, so the runner can report the faulting address. */
  lastFaultAddr = 0;
  private readonly scratch = new Uint8Array(PAGE_SIZE);

  constructor(ramSize: number, onFault?: (addr: number) => void) {
    if (ramSize < 64 << 20 || ramSize > 0xc0000000 || ramSize % PAGE_SIZE) throw new RangeError('process memory must be 64 MiB .. 3 GiB, page aligned');
    this.mem = new GuestMemory(ramSize);
    this.ramSize = ramSize;
    this.gdtBase = ramSize - PAGE_SIZE;
    this.stackTop = this.gdtBase;
    this.mmapTop = this.stackTop - STACK_SIZE - 0x10000;
    const fault = (addr: number): never => {
      this.lastFaultAddr = addr >>> 0;
      onFault?.(addr >>> 0);
      // Error code: user-mode access to a not-present page (SDM vol. 3A §4.7: bit 2 U/S).
      throw new CpuFault(EXC_PF, 4);
    };
    const guard = { read: (a: number) => fault(a), write: (a: number) => { fault(a); } };
    this.mem.mapMmio(0, LOW_GUARD, guard, 'null-guard');
    if (ramSize < 0x100000000) this.mem.mapMmio(ramSize, 0x100000000 - ramSize, guard, 'above-ram');
  }

  /** Throws BadAddress unless [addr, addr+len) is inside the process's RAM. */
  check(addr: number, len: number): void {
    addr >>>= 0;
    if (addr < LOW_GUARD || addr + len > this.ramSize || len < 0) throw new BadAddress(`bad address 0x${addr.toString(16)}`);
  }

  read(addr: number, len: number): Uint8Array {
    this.check(addr, len);
    return this.mem.readBytes(addr >>> 0, len);
  }

  write(addr: number, data: Uint8Array): void {
    this.check(addr, data.length);
    this.mem.writeBytes(addr >>> 0, data);
  }

  u32(addr: number): number { this.check(addr, 4); return this.mem.read32(addr >>> 0) >>> 0; }
  i32(addr: number): number { this.check(addr, 4); return this.mem.read32(addr >>> 0); }
  u16(addr: number): number { this.check(addr, 2); return this.mem.read16(addr >>> 0); }
  setU32(addr: number, v: number): void { this.check(addr, 4); this.mem.write32(addr >>> 0, v); }
  setU64(addr: number, v: bigint | number): void {
    const b = BigInt.asUintN(64, BigInt(v));
    this.setU32(addr, Number(b & 0xffffffffn));
    this.setU32(addr + 4, Number(b >> 32n));
  }

  /** A NUL-terminated string (at most `max` bytes) as raw bytes. */
  cstringBytes(addr: number, max = 4096): Uint8Array {
    const out: number[] = [];
    for (let a = addr >>> 0; out.length < max; a++) {
      this.check(a, 1);
      const b = this.mem.read8(a);
      if (b === 0) return Uint8Array.from(out);
      out.push(b);
    }
    throw new BadAddress('string too long');
  }

  /** Paths and names: Linux passes bytes; the host API wants strings, so decode as UTF-8 (lossless for UTF-8 names). */
  cstring(addr: number, max = 4096): string { return Buffer.from(this.cstringBytes(addr, max)).toString('utf8'); }

  /** Zeroes [start, end), touching only frames that already have host memory (untouched ones read as zero). */
  zero(start: number, end: number): void {
    start >>>= 0; end >>>= 0;
    const mem = this.mem;
    for (let a = start; a < end;) {
      const pageEnd = Math.min(end, (a & ~PAGE_MASK) + PAGE_SIZE);
      const gfn = Math.floor(a / PAGE_SIZE);
      if (mem.isAllocated(gfn)) {
        const host = mem.frameOffset(gfn);
        if (host >= 0) mem.pool.fill(0, host + (a & PAGE_MASK), host + (a & PAGE_MASK) + (pageEnd - a));
      }
      a = pageEnd;
    }
  }

  /** Copies [src, src+len) to dst page by page (used by mremap when a mapping moves). */
  copy(dst: number, src: number, len: number): void {
    for (let o = 0; o < len; o += PAGE_SIZE) {
      const n = Math.min(PAGE_SIZE, len - o);
      if (this.mem.isAllocated(Math.floor((src + o) / PAGE_SIZE))) {
        this.mem.readBytes(src + o, n, this.scratch);
        this.mem.writeBytes(dst + o, this.scratch.subarray(0, n));
      } else {
        this.zero(dst + o, dst + o + n);
      }
    }
  }

  // --- brk (brk(2)): the heap just above the executable's bss. ---

  setBrk(addr: number): number {
    addr >>>= 0;
    if (addr < this.brkStart) return this.brkCur;
    // The heap may grow up to the first mapping above it (MAP_FIXED mappings below the heap don't limit it).
    const above = this.regions.find((r) => r.start >= this.brkStart);
    const limit = above ? above.start : this.mmapTop;
    if (pageUp(addr) > limit) return this.brkCur; // would collide with a mapping: the kernel leaves brk unchanged
    // Memory returned by a shrink and handed out again by a grow must read as zero (it is fresh anonymous memory).
    if (addr > this.brkCur) this.zero(this.brkCur, pageUp(addr));
    this.brkCur = addr;
    return addr;
  }

  // --- mmap area ---

  private overlaps(start: number, end: number): boolean {
    return this.regions.some((r) => r.start < end && start < r.end);
  }

  /** Finds the highest free gap of `len` bytes below mmapTop and above the heap; -1 when none. */
  findFree(len: number): number {
    let top = this.mmapTop;
    for (let i = this.regions.length - 1; i >= 0; i--) {
      const r = this.regions[i];
      if (r.start >= top) continue;
      if (top - r.end >= len) break;
      top = r.start;
    }
    const start = top - len;
    return start >= pageUp(this.brkCur) + PAGE_SIZE ? start : -1;
  }

  /** Records [start, end) as mapped (after unmapping anything there) and zeroes it. */
  map(start: number, end: number): void {
    this.unmap(start, end);
    this.regions.push({ start, end });
    this.regions.sort((a, b) => a.start - b.start);
    this.zero(start, end);
  }

  unmap(start: number, end: number): void {
    const out: Region[] = [];
    for (const r of this.regions) {
      if (r.end <= start || r.start >= end) { out.push(r); continue; }
      if (r.start < start) out.push({ start: r.start, end: start });
      if (r.end > end) out.push({ start: end, end: r.end });
    }
    this.regions = out;
  }

  /** Whether [start, end) may be newly mapped without touching the stack, GDT, or other mappings. */
  isFree(start: number, end: number): boolean {
    return start >= LOW_GUARD && end <= this.mmapTop && !this.overlaps(start, end);
  }

  /** Whether [start, end) lies in the range MAP_FIXED may use (anywhere below the stack's reserve). */
  fixedAllowed(start: number, end: number): boolean {
    return start >= LOW_GUARD && end <= this.mmapTop;
  }
}
