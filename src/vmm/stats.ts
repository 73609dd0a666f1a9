// Execution statistics of a running VM, as text: what `trapeze run --stats` prints at exit and what it
// prints on SIGUSR2 while the guest runs (the signal hookup is the CLI's; this file uses no Node APIs).
// The per-device table counts since the machine was built (a guest reboot builds a new machine and starts
// the counts again); `parseCountsTable` reads it back, which is how `npm run bench` takes a workload's share.

import type { Vm } from './vm.ts';
import { formatCountsTable } from '../machine/device-counters.ts';

const PREFIX = 'trapeze: ';

/** Instructions, MIPS, per-device register accesses and interrupts, and the translator's report. */
export function statsReport(vm: Vm, now = performance.now()): string {
  const secs = (now - vm.startedAt) / 1000;
  const m = vm.machine;
  // Called between slices (from the host's event loop), so every count is that of the last completed slice.
  let s = `${PREFIX}${vm.instructions} instructions in ${secs.toFixed(1)} s (${(vm.instructions / secs / 1e6).toFixed(1)} MIPS)\n`;
  s += formatCountsTable(m.counters.snapshot(), PREFIX);
  s += `${PREFIX}MSI messages delivered to the APIC bus: ${m.apicBus.msis}\n`;
  if (m.jit) s += m.jit.report();
  return s;
}
