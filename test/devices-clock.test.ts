// The machine clock under host stalls: steal-time accounting may withhold host time the guest has not
// seen, but must never move any guest clock (TSC, local APIC count, ACPI PM timer) backwards.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Clock } from '../src/machine/clock.ts';
import { CPU } from '../src/cpu/cpu.ts';
import { GuestMemory } from '../src/memory/guest-memory.ts';
import { IoBus } from '../src/machine/io-bus.ts';
import { IrqLine } from '../src/machine/irq.ts';
import { ApicBus } from '../src/devices/apic/apic-bus.ts';
import { Lapic } from '../src/devices/apic/lapic.ts';
import { Piix4Pm, PM_TIMER_HZ } from '../src/devices/acpi/piix4-pm.ts';

const MS = 1e6;

/** A real-time Clock whose host time the test moves, so a descheduled VM can be modelled exactly. */
function hostClock() {
  const host = { ns: 5_000 * MS };
  const clock = new Clock({ hostNs: () => host.ns });
  return { host, clock };
}

test('steal withholds only time the guest has not read', () => {
  const { host, clock } = hostClock();
  host.ns += 3 * MS;
  assert.equal(clock.now(), 3 * MS);
  // The slice is descheduled for 200 ms and the guest reads the clock after it resumes.
  host.ns += 200 * MS;
  const seen = clock.now();
  host.ns += 1 * MS;
  // The VMM then accounts the slice's 190 ms excess: all but the last (unread) millisecond was seen.
  assert.equal(clock.steal(190 * MS), 1 * MS);
  assert.equal(clock.stolenNs, 1 * MS);
  assert.equal(clock.now(), seen);
  host.ns += 2 * MS;
  assert.equal(clock.now(), seen + 2 * MS);
  // A stall nobody read (a yield to the host) is withheld in full.
  host.ns += 50 * MS;
  assert.equal(clock.steal(40 * MS), 40 * MS);
  assert.equal(clock.now(), seen + 12 * MS);
});

test('guest clocks stay monotonic and consistent across a stall and steal (Linux LAPIC calibration)', () => {
  // calibrate_APIC_clock in Linux 6.1: the APIC timer counts down from 0xffffffff (divide by 16) while a
  // loop paced by the TSC waits out LAPIC_CAL_LOOPS jiffies, sampling TMCCT, the TSC and the PM timer at
  // each; the window's TSC test is an unsigned difference, so a TSC that steps back ends it at once.
  const { host, clock } = hostClock();
  const cpu = new CPU(new GuestMemory(1 << 20), new IoBus());
  cpu.clockNs = () => clock.now();
  const lapic = new Lapic({ id: 0, bus: new ApicBus(), clock, bsp: true, onIntrChange: () => {} });
  const pm = new Piix4Pm({ io: new IoBus(), clock, sci: new IrqLine([]), onPowerOff: () => {} });
  lapic.writeReg(0xf0, 0x1ff); // software enable
  lapic.writeReg(0x3e0, 0x3); // divide by 16
  lapic.writeReg(0x320, 0x100ef); // one-shot, masked
  lapic.writeReg(0x380, 0xffffffff);

  const HZ = 250, LOOPS = HZ / 10;
  const tscPerJiffy = 1_000_000_000n / BigInt(HZ); // the guest TSC runs at 1 GHz
  // Guest execution in slices of STEPS loop iterations (about 1 us each); at the end of each, the VMM
  // withholds what the slice took beyond 10 ms, as PcMachine.runSlice does.
  const STEPS = 200;
  let steps = 0, sliceStart = host.ns, stalled = false;
  const step = (n = 1): void => {
    for (let i = 0; i < n; i++) {
      host.ns += 1_000;
      if (++steps % STEPS) continue;
      const took = host.ns - sliceStart;
      if (took > 10 * MS) clock.steal(took - 10 * MS);
      sliceStart = host.ns;
    }
  };
  const sample = () => { step(50); return { apic: lapic.readReg(0x390), tsc: cpu.readTsc(), pm: pm.timerValue() }; };
  let tscStart = cpu.readTsc();
  let first = sample(), last = first;
  for (let loop = 0; loop <= LOOPS; loop++) {
    for (;;) {
      step();
      // The host deschedules the VM for 300 ms inside a slice, just before the guest reads the TSC: the
      // remaining jiffies of the window all end at once, within the next few slices.
      if (loop === 1 && !stalled) { host.ns += 300 * MS; stalled = true; }
      const now = cpu.readTsc();
      if (BigInt.asUintN(64, now - tscStart) >= tscPerJiffy) { tscStart += tscPerJiffy; break; }
    }
    const s = sample();
    assert.ok(s.tsc >= last.tsc, `TSC went backwards at jiffy ${loop}`);
    assert.ok(s.apic <= last.apic, `APIC current count went up in one-shot mode at jiffy ${loop}`);
    last = s;
    if (loop === 0) first = s;
  }
  const tscNs = Number(last.tsc - first.tsc);
  const apicNs = (first.apic - last.apic) * 16;
  const pmNs = (((last.pm - first.pm) & 0xffffff) * 1e9) / PM_TIMER_HZ;
  // The window spans at least LOOPS jiffies of TSC time, and all three clocks agree on its length (Linux
  // derives the APIC timer's rate from these deltas and cross-checks it against the PM timer).
  assert.ok(tscNs >= (LOOPS * 1e9) / HZ, `TSC window ${tscNs} ns`);
  assert.ok(Math.abs(apicNs - tscNs) <= 16, `APIC delta ${apicNs} ns vs TSC ${tscNs} ns`);
  assert.ok(Math.abs(pmNs - tscNs) <= 1000, `PM timer delta ${pmNs} ns vs TSC ${tscNs} ns`);
});
