// The APIC bus (the system bus in P4/Xeon terms): interrupt messages from I/O APICs and IPIs from local
// APICs, matched against each local APIC's physical ID or logical destination (Intel SDM vol. 3A §10.6.2),
// and the EOI messages local APICs broadcast for level-triggered interrupts (§10.8.5). It also dispatches
// the one local-APIC MMIO page to the APIC of the vCPU that is running (each CPU sees its own there).

import type { GuestMemory, MmioHandler } from '../../memory/guest-memory.ts';

/** Delivery modes (SDM vol. 3A Table 10-x, ICR bits 10:8 and I/O APIC redirection bits 10:8). */
export const DM_FIXED = 0, DM_LOWEST = 1, DM_SMI = 2, DM_NMI = 4, DM_INIT = 5, DM_SIPI = 6, DM_EXTINT = 7;

export interface ApicMessage {
  vector: number;
  deliveryMode: number;
  /** Logical (true) or physical destination mode. */
  logical: boolean;
  /** 8-bit destination (xAPIC: physical ID, or a logical mask). 0xFF broadcasts. */
  dest: number;
  levelTriggered: boolean;
  /** Level bit of an IPI (INIT de-assert has level 0). */
  assert?: boolean;
}

/** What the bus needs from a local APIC. */
export interface ApicTarget {
  readonly apicId: number;
  matchesLogical(dest: number): boolean;
  /** Task priority, for lowest-priority arbitration. */
  readonly priority: number;
  accept(msg: ApicMessage): void;
  readonly mmio: MmioHandler;
}

export interface EoiListener { eoi(vector: number): void }

export const LAPIC_BASE = 0xfee00000;

export class ApicBus {
  readonly lapics: ApicTarget[] = [];
  readonly eoiListeners: EoiListener[] = [];
  /** Index in `lapics` of the vCPU currently running; its APIC answers at the MMIO page. */
  current = 0;
  /** MSI messages delivered, from every source (`--stats`; each source also counts its own). */
  msis = 0;

  /** Maps the local APIC page (4 KiB at `base`, SDM vol. 3A §10.4.1). */
  mapMmio(mem: GuestMemory, base = LAPIC_BASE): void {
    mem.mapMmio(base, 0x1000, {
      read: (a, s) => this.lapics[this.current].mmio.read(a - base, s),
      write: (a, s, v) => this.lapics[this.current].mmio.write(a - base, s, v),
    }, 'lapic');
  }

  /** The local APICs a destination names (SDM vol. 3A §10.6.2.1, §10.6.2.2). */
  targets(msg: ApicMessage): ApicTarget[] {
    if (msg.dest === 0xff) return this.lapics.slice();
    if (!msg.logical) return this.lapics.filter((l) => l.apicId === msg.dest);
    return this.lapics.filter((l) => l.matchesLogical(msg.dest));
  }

  /** Delivers a message; lowest priority goes to the one target with the lowest task priority (§10.6.2.4). */
  deliver(msg: ApicMessage, to: ApicTarget[] = this.targets(msg)): void {
    if (msg.deliveryMode === DM_LOWEST && to.length > 1) {
      to = [to.reduce((a, b) => (b.priority < a.priority ? b : a))];
    }
    for (const l of to) l.accept(msg);
  }

  /**
   * A message-signalled interrupt: a DWORD write of `data` to `address` in the 0xFEExxxxx window
   * (SDM vol. 3A §10.11.1 address: destination ID in bits 19:12, DM in bit 2; §10.11.2 data: vector,
   * delivery mode, level, trigger mode). A write elsewhere reaches no APIC and is dropped.
   * `source` is the sending device's interrupt counter (its DeviceCounter), counted when the message is delivered.
   */
  deliverMsi(address: number, data: number, source?: { irqs: number }): void {
    if ((address >>> 20) !== 0xfee) return;
    this.msis++;
    if (source) source.irqs++;
    this.deliver({
      vector: data & 0xff, deliveryMode: (data >>> 8) & 7, logical: (address & 4) !== 0,
      dest: (address >>> 12) & 0xff, levelTriggered: (data & 0x8000) !== 0, assert: (data & 0x4000) !== 0,
    });
  }

  broadcastEoi(vector: number): void {
    for (const l of this.eoiListeners) l.eoi(vector);
  }
}
