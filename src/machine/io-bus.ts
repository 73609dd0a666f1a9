// The I/O-port bus of the virtual PC: devices claim port ranges; the vCPU sees it as a PortBus.

import type { PortBus } from '../cpu/bus.ts';

/** A device's port-I/O side. `port` is the absolute port; size is 1, 2 or 4 bytes. */
export interface PortDevice {
  ioRead(port: number, size: 1 | 2 | 4): number;
  ioWrite(port: number, size: 1 | 2 | 4, value: number): void;
}

interface Claim { base: number; count: number; dev: PortDevice; name: string }

export class IoBus implements PortBus {
  private readonly map: (Claim | undefined)[] = new Array(0x10000);
  /** Accesses per device name, for `--stats` (device register traps). */
  readonly counts = new Map<string, number>();
  /** Ports nobody claimed that the guest touched, reported once each when `logUnclaimed` is set. */
  logUnclaimed: ((port: number) => void) | null = null;
  private readonly seenUnclaimed = new Set<number>();

  register(base: number, count: number, dev: PortDevice, name: string): void {
    const claim = { base, count, dev, name };
    for (let p = base; p < base + count; p++) {
      const old = this.map[p];
      if (old) throw new Error(`I/O port ${p.toString(16)} claimed by both ${old.name} and ${name}`);
      this.map[p] = claim;
    }
  }

  unregister(dev: PortDevice): void {
    for (let p = 0; p < 0x10000; p++) if (this.map[p]?.dev === dev) this.map[p] = undefined;
  }

  in(port: number, size: 1 | 2 | 4): number {
    const c = this.map[port & 0xffff];
    if (!c) { this.unclaimed(port); return size === 1 ? 0xff : size === 2 ? 0xffff : 0xffffffff; }
    this.counts.set(c.name, (this.counts.get(c.name) ?? 0) + 1);
    return c.dev.ioRead(port & 0xffff, size);
  }

  out(port: number, size: 1 | 2 | 4, value: number): void {
    const c = this.map[port & 0xffff];
    if (!c) { this.unclaimed(port); return; }
    this.counts.set(c.name, (this.counts.get(c.name) ?? 0) + 1);
    c.dev.ioWrite(port & 0xffff, size, value);
  }

  private unclaimed(port: number): void {
    if (this.logUnclaimed && !this.seenUnclaimed.has(port)) { this.seenUnclaimed.add(port); this.logUnclaimed(port); }
  }
}
