// Per-device counts of guest register accesses and interrupts, for `trapeze run --stats` and the disk rows
// of `npm run bench`. A register access that reaches a device model (an IN/OUT on a claimed port, a load or
// store to an MMIO region) is what a hardware hypervisor would take a VM exit for, so these are the
// device's "traps"; the interrupts are the rising edges it drives on an interrupt line (ISA IRQ, PCI INTx#)
// plus the MSI messages it writes.
//
// One registry per machine. Each bus region and interrupt source keeps a reference to its device's
// DeviceCounter, taken when it is registered, so counting on the hot path is one property increment on an
// object already at hand; nothing is looked up by name per access.

/** The counts of one device. Regions and interrupt lines of the same device share one counter. */
export class DeviceCounter {
  /** Port I/O reads plus MMIO reads. */
  reads = 0;
  /** Port I/O writes plus MMIO writes. */
  writes = 0;
  /** Interrupt assertions: rising edges on its interrupt lines, and MSI messages delivered. */
  irqs = 0;
  constructor(readonly device: string) {}
}

/** A copy of one device's counts at one moment. */
export interface DeviceCounts { device: string; reads: number; writes: number; irqs: number }

export class DeviceCounters {
  private readonly byDevice = new Map<string, DeviceCounter>();

  /** The counter of `device`, created on first use; the same object on every later call. */
  counter(device: string): DeviceCounter {
    let c = this.byDevice.get(device);
    if (!c) { c = new DeviceCounter(device); this.byDevice.set(device, c); }
    return c;
  }

  /** Copies of every device's counts, in registration order. */
  snapshot(): DeviceCounts[] {
    return [...this.byDevice.values()].map((c) => ({ device: c.device, reads: c.reads, writes: c.writes, irqs: c.irqs }));
  }
}

/** `after - before` per device (a device missing from `before` counts from zero): a workload's share. */
export function countsDelta(after: DeviceCounts[], before: DeviceCounts[]): DeviceCounts[] {
  const b = new Map(before.map((r) => [r.device, r]));
  return after.map((r) => {
    const o = b.get(r.device);
    return { device: r.device, reads: r.reads - (o?.reads ?? 0), writes: r.writes - (o?.writes ?? 0), irqs: r.irqs - (o?.irqs ?? 0) };
  });
}

const TABLE_HEAD = 'device register accesses (port I/O + MMIO) and interrupts raised:';
const COLS = ['device', 'reads', 'writes', 'irqs'];

/**
 * The `--stats` table: one row per device that did anything, busiest first, then the totals. Every line
 * starts with `prefix`; `parseCountsTable` reads it back (the bench does, from a SIGUSR2 dump).
 */
export function formatCountsTable(rows: DeviceCounts[], prefix = ''): string {
  const active = rows.filter((r) => r.reads || r.writes || r.irqs)
    .sort((a, b) => (b.reads + b.writes + b.irqs) - (a.reads + a.writes + a.irqs) || a.device.localeCompare(b.device));
  const total = active.reduce((t, r) => ({ device: 'total', reads: t.reads + r.reads, writes: t.writes + r.writes, irqs: t.irqs + r.irqs }),
    { device: 'total', reads: 0, writes: 0, irqs: 0 });
  const w0 = Math.max(6, ...active.map((r) => r.device.length)) + 2;
  const line = (c: string[]): string => `${prefix}  ${c[0].padEnd(w0)}${c.slice(1).map((x) => x.padStart(12)).join('')}`;
  const cells = (r: DeviceCounts): string[] => [r.device, String(r.reads), String(r.writes), String(r.irqs)];
  return [`${prefix}${TABLE_HEAD}`, line(COLS), ...active.map((r) => line(cells(r))), line(cells(total))].map((l) => `${l}\n`).join('');
}

/**
 * Reads the rows of the last table `formatCountsTable` wrote into `text` (the totals row excluded);
 * null when there is none. Lines may carry any prefix (e.g. `trapeze: `).
 */
export function parseCountsTable(text: string): DeviceCounts[] | null {
  const lines = text.split('\n');
  let start = -1;
  for (let i = 0; i < lines.length; i++) if (lines[i].endsWith(TABLE_HEAD)) start = i;
  if (start < 0) return null;
  const prefix = lines[start].slice(0, -TABLE_HEAD.length);
  const rows: DeviceCounts[] = [];
  // Skip the column header; rows run to the totals line. Device names may contain spaces.
  for (let i = start + 2; i < lines.length; i++) {
    const m = lines[i].startsWith(prefix) ? /^ {2}(.*?\S)\s+(\d+)\s+(\d+)\s+(\d+)\s*$/.exec(lines[i].slice(prefix.length)) : null;
    if (!m) return null; // a table cut short (the dump was still being written)
    if (m[1] === 'total') return rows;
    rows.push({ device: m[1], reads: Number(m[2]), writes: Number(m[3]), irqs: Number(m[4]) });
  }
  return null;
}
