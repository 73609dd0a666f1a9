// Guest-physical memory: guest page frames mapped through a P2M table onto host frames.
//
// Host frames live in one pool buffer. The pool is an ArrayBuffer (or SharedArrayBuffer, so vCPUs in
// worker threads can share it later) that the host OS commits lazily: a frame costs host memory only once
// written. A guest frame gets its host frame on first touch (`frameOffset`), so nothing outside this file
// assumes that guest-physical address == pool offset; sharing, ballooning and swap later only rewrite p2m.

export const PAGE_SHIFT = 12;
export const PAGE_SIZE = 1 << PAGE_SHIFT;
const NO_FRAME = -1;

/** A handler for a range of guest-physical addresses that is not RAM (device registers). */
export interface MmioHandler {
  read(addr: number, size: 1 | 2 | 4): number;
  write(addr: number, size: 1 | 2 | 4, value: number): void;
}

/** Where a device's register accesses are counted (a DeviceCounter of src/machine/device-counters.ts). */
export interface AccessCounter { reads: number; writes: number }

/** Hands out one AccessCounter per device name (the machine's DeviceCounters registry). */
export interface AccessCounterSource { counter(device: string): AccessCounter }

interface MmioRegion { base: number; end: number; handler: MmioHandler; name: string; counter: AccessCounter }

export interface GuestMemoryOptions {
  /** Back the pool with a SharedArrayBuffer (for vCPUs in worker threads). */
  shared?: boolean;
  /** Counts MMIO accesses per device (`--stats`); without it the counts are kept but not reported. */
  counters?: AccessCounterSource;
}

export class GuestMemory {
  /** Bytes of guest RAM, starting at guest-physical 0. */
  readonly ramSize: number;
  readonly pool: Uint8Array;
  readonly view: DataView;
  /** guest frame number → host frame number, or NO_FRAME while untouched. */
  readonly p2m: Int32Array;
  private nextHostFrame = 0;
  private readonly mmio: MmioRegion[] = [];
  private readonly counters: AccessCounterSource | null;
  /** Bumped whenever the mapping of guest-physical pages changes, so TLBs know to flush. */
  mapGeneration = 0;
  /**
   * [jit hook] Per host frame (pool offset >> 12): nonzero while the frame holds translated code. Null when
   * no binary translator is attached. Every write path into a marked frame calls `codeWritten`.
   */
  codeFrames: Uint8Array | null = null;
  /** [jit hook] Called with the host frame number before a write to a frame marked in `codeFrames`. */
  onCodeWrite: ((hostFrame: number) => void) | null = null;

  codeWritten(hostFrame: number): void { if (this.onCodeWrite !== null) this.onCodeWrite(hostFrame); }

  constructor(ramBytes: number, opts: GuestMemoryOptions = {}) {
    if (ramBytes <= 0 || ramBytes % PAGE_SIZE !== 0) throw new RangeError(`guest RAM size must be a positive multiple of ${PAGE_SIZE}`);
    this.ramSize = ramBytes;
    const buf = opts.shared ? new SharedArrayBuffer(ramBytes) : new ArrayBuffer(ramBytes);
    this.pool = new Uint8Array(buf);
    this.view = new DataView(buf);
    this.p2m = new Int32Array(ramBytes >>> PAGE_SHIFT).fill(NO_FRAME);
    this.counters = opts.counters ?? null;
  }

  /** Frames that have a host frame (the guest touched them). */
  get allocatedFrames(): number { return this.nextHostFrame; }

  /**
   * Claims guest-physical [base, base+size) for a device; MMIO shadows RAM there. `name` names the region
   * (in overlap errors); `device` is the device (name, or its counter) its accesses count for (default: `name`).
   */
  mapMmio(base: number, size: number, handler: MmioHandler, name: string, device: string | AccessCounter = name): void {
    const counter = typeof device !== 'string' ? device : this.counters?.counter(device) ?? { reads: 0, writes: 0 };
    const region = { base: base >>> 0, end: (base >>> 0) + size, handler, name, counter };
    for (const r of this.mmio) {
      if (region.base < r.end && r.base < region.end) throw new Error(`MMIO ${name} overlaps ${r.name}`);
    }
    this.mmio.push(region);
    this.mapGeneration++;
  }

  unmapMmio(handler: MmioHandler): void {
    const i = this.mmio.findIndex((r) => r.handler === handler);
    if (i >= 0) { this.mmio.splice(i, 1); this.mapGeneration++; }
  }

  private findMmio(addr: number): MmioRegion | undefined {
    for (const r of this.mmio) if (addr >= r.base && addr < r.end) return r;
    return undefined;
  }

  /**
   * Pool byte offset of the host frame behind guest frame `gfn`, allocating it on first touch;
   * -1 when the frame is not RAM (MMIO or unbacked), which sends the access down the slow path.
   */
  frameOffset(gfn: number): number {
    if (gfn >= this.p2m.length || gfn < 0) return -1;
    let hf = this.p2m[gfn];
    if (hf === NO_FRAME) {
      if (this.mmio.length && this.findMmio(gfn << PAGE_SHIFT >>> 0)) return -1;
      hf = this.nextHostFrame++;
      this.p2m[gfn] = hf;
    } else if (this.mmio.length && this.findMmio(gfn << PAGE_SHIFT >>> 0)) {
      return -1;
    }
    return hf << PAGE_SHIFT;
  }

  /** Whether a guest frame has a host frame yet (reading an untouched frame does not allocate). */
  isAllocated(gfn: number): boolean { return gfn < this.p2m.length && this.p2m[gfn] !== NO_FRAME; }

  // --- Physical accesses for devices (DMA) and the slow path of the vCPU. ---

  read8(addr: number): number {
    addr >>>= 0;
    const gfn = addr >>> PAGE_SHIFT;
    if (gfn < this.p2m.length && !this.findMmioFast(addr)) {
      const hf = this.p2m[gfn];
      return hf === NO_FRAME ? 0 : this.pool[(hf << PAGE_SHIFT) | (addr & 0xfff)];
    }
    return this.mmioRead(addr, 1);
  }

  read16(addr: number): number {
    addr >>>= 0;
    if ((addr & 0xfff) > 0xffe) return this.read8(addr) | (this.read8(addr + 1) << 8);
    const gfn = addr >>> PAGE_SHIFT;
    if (gfn < this.p2m.length && !this.findMmioFast(addr)) {
      const hf = this.p2m[gfn];
      return hf === NO_FRAME ? 0 : this.view.getUint16((hf << PAGE_SHIFT) | (addr & 0xfff), true);
    }
    return this.mmioRead(addr, 2);
  }

  read32(addr: number): number {
    addr >>>= 0;
    if ((addr & 0xfff) > 0xffc) return (this.read16(addr) | (this.read16(addr + 2) << 16)) | 0;
    const gfn = addr >>> PAGE_SHIFT;
    if (gfn < this.p2m.length && !this.findMmioFast(addr)) {
      const hf = this.p2m[gfn];
      return hf === NO_FRAME ? 0 : this.view.getInt32((hf << PAGE_SHIFT) | (addr & 0xfff), true);
    }
    return this.mmioRead(addr, 4) | 0;
  }

  write8(addr: number, v: number): void {
    addr >>>= 0;
    const off = this.ramOffsetW(addr);
    if (off >= 0) this.pool[off] = v;
    else this.mmioWrite(addr, 1, v & 0xff);
  }

  write16(addr: number, v: number): void {
    addr >>>= 0;
    if ((addr & 0xfff) > 0xffe) { this.write8(addr, v); this.write8(addr + 1, v >>> 8); return; }
    const off = this.ramOffsetW(addr);
    if (off >= 0) this.view.setUint16(off, v, true);
    else this.mmioWrite(addr, 2, v & 0xffff);
  }

  write32(addr: number, v: number): void {
    addr >>>= 0;
    if ((addr & 0xfff) > 0xffc) { this.write16(addr, v); this.write16(addr + 2, v >>> 16); return; }
    const off = this.ramOffsetW(addr);
    if (off >= 0) this.view.setInt32(off, v, true);
    else this.mmioWrite(addr, 4, v | 0);
  }

  /** Copies guest-physical bytes out (DMA read). Unbacked RAM reads as zero, MMIO through its handler. */
  readBytes(addr: number, len: number, out: Uint8Array = new Uint8Array(len), outOff = 0): Uint8Array {
    addr >>>= 0;
    let done = 0;
    while (done < len) {
      const a = (addr + done) >>> 0;
      const chunk = Math.min(len - done, PAGE_SIZE - (a & 0xfff));
      const gfn = a >>> PAGE_SHIFT;
      if (gfn < this.p2m.length && !this.findMmioFast(a)) {
        const hf = this.p2m[gfn];
        if (hf === NO_FRAME) out.fill(0, outOff + done, outOff + done + chunk);
        else out.set(this.pool.subarray((hf << PAGE_SHIFT) | (a & 0xfff), ((hf << PAGE_SHIFT) | (a & 0xfff)) + chunk), outOff + done);
      } else {
        for (let i = 0; i < chunk; i++) out[outOff + done + i] = this.mmioRead(a + i, 1);
      }
      done += chunk;
    }
    return out;
  }

  /** Copies bytes into guest-physical memory (DMA write, loaders). */
  writeBytes(addr: number, data: Uint8Array): void {
    addr >>>= 0;
    let done = 0;
    while (done < data.length) {
      const a = (addr + done) >>> 0;
      const chunk = Math.min(data.length - done, PAGE_SIZE - (a & 0xfff));
      const off = this.ramOffset(a);
      if (off >= 0 && this.codeFrames !== null && this.codeFrames[off >>> PAGE_SHIFT]) this.codeWritten(off >>> PAGE_SHIFT);
      if (off >= 0) this.pool.set(data.subarray(done, done + chunk), off);
      else for (let i = 0; i < chunk; i++) this.mmioWrite(a + i, 1, data[done + i]);
      done += chunk;
    }
  }

  private ramOffset(addr: number): number {
    const gfn = addr >>> PAGE_SHIFT;
    const base = this.frameOffset(gfn);
    return base < 0 ? -1 : base | (addr & 0xfff);
  }

  /** Like ramOffset, for the write8/16/32 paths: also invalidates translated code in the frame. */
  private ramOffsetW(addr: number): number {
    const off = this.ramOffset(addr);
    if (off >= 0 && this.codeFrames !== null && this.codeFrames[off >>> PAGE_SHIFT]) this.codeWritten(off >>> PAGE_SHIFT);
    return off;
  }

  private findMmioFast(addr: number): boolean {
    return this.mmio.length !== 0 && this.findMmio(addr) !== undefined;
  }

  /** Reads of guest-physical addresses with nothing behind them return all ones, as on a PC bus. */
  mmioRead(addr: number, size: 1 | 2 | 4): number {
    const r = this.findMmio(addr >>> 0);
    if (r) { r.counter.reads++; return r.handler.read(addr >>> 0, size); }
    return size === 1 ? 0xff : size === 2 ? 0xffff : -1;
  }

  mmioWrite(addr: number, size: 1 | 2 | 4, value: number): void {
    const r = this.findMmio(addr >>> 0);
    if (r) { r.counter.writes++; r.handler.write(addr >>> 0, size, value); }
  }
}
