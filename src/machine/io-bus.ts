// The I/O-port bus of the virtual PC: devices claim port ranges; the vCPU sees it as a PortBus.

import type { PortBus } from '../cpu/bus.ts';
import { DeviceCounters, type DeviceCounter } from './device-counters.ts';

/** A device's port-I/O side. `port` is the absolute port; size is 1, 2 or 4 bytes. */
export interface PortDevice {
  ioRead(port: number, size: 1 | 2 | 4): number;
  ioWrite(port: number, size: 1 | 2 | 4, value: number): void;
}

interface Claim { base: number; count: number; dev: PortDevice; name: string; counter: DeviceCounter }

export class IoBus implements PortBus {
  private readonly map: (Claim | undefined)[] = new Array(0x10000);
  /** Ports nobody claimed that the guest touched, reported once each when `logUnclaimed` is set. */
  logUnclaimed: ((port: number) => void) | null = null;
  private readonly seenUnclaimed = new Set<number>();

  /** @param counters where each claim's accesses are counted (the machine's registry; see device-counters.ts) */
  constructor(readonly counters: DeviceCounters = new DeviceCounters()) {}

  /**
   * Claims ports [base, base+count) for `dev`. `name` names the range (in conflict errors); `device` is
   * the device (name, or its counter) its accesses count for, when one device claims several ranges
   * (default: `name`).
   */
  register(base: number, count: number, dev: PortDevice, name: string, device: string | DeviceCounter = name): void {
    const counter = typeof device === 'string' ? this.counters.counter(device) : device;
    const claim = { base, count, dev, name, counter };
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
    c.counter.reads++;
    return c.dev.ioRead(port & 0xffff, size);
  }

  out(port: number, size: 1 | 2 | 4, value: number): void {
    const c = this.map[port & 0xffff];
    if (!c) { this.unclaimed(port); return; }
    c.counter.writes++;
    c.dev.ioWrite(port & 0xffff, size, value);
  }

  private unclaimed(port: number): void {
    if (this.logUnclaimed && !this.seenUnclaimed.has(port)) { this.seenUnclaimed.add(port); this.logUnclaimed(port); }
  }
}
