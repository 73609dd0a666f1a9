// The PIIX4 power management function at 00:01.3 (Intel 82371AB PIIX4 datasheet, order no. 290562,
// §3.6 "Power management configuration registers" and §7 "Power management I/O registers"): the ACPI
// fixed hardware Linux drives through the FADT — PM1 event/control blocks, the PM timer (ACPI 3.0
// §4.7.3.3) and GPE0 — and the SCI it raises on ISA IRQ 9.
//
// Without a BIOS nobody programs PMBA, so the device comes up the way firmware would leave it: PM I/O
// enabled at `pmBase` (the FADT says the same address) and SCI_EN set, because the FADT gives no
// SMI_CMD port and ACPI 3.0 §4.7.2.5 then requires the system to be in ACPI mode all the time.

import { PciFunction, type PciConfigState } from '../../machine/pci.ts';
import type { IoBus, PortDevice } from '../../machine/io-bus.ts';
import type { IrqLine } from '../../machine/irq.ts';
import type { Clock, Timer } from '../../machine/clock.ts';

/** The PM timer runs from the 14.31818 MHz system clock divided by 4 (ACPI 3.0 §4.7.3.3). */
export const PM_TIMER_HZ = 3579545;
export const PM_BASE_DEFAULT = 0x600;
/** PM I/O block size claimed by PMBA (bits 15:6 decode, §3.6.9). */
export const PM_IO_SIZE = 64;

// Register offsets in the PM I/O block (§7.2) and how the FADT describes them.
export const PM1_STS = 0x00, PM1_EN = 0x02, PM1_CNT = 0x04, PM_TMR = 0x08, GPE0_STS = 0x0c, GPE0_EN = 0x0e;

// PM1 status/enable bits (§7.2.1, §7.2.2; ACPI 3.0 Table 4-12/4-13).
const TMR = 1 << 0, GBL = 1 << 5, PWRBTN = 1 << 8, RTC = 1 << 10, WAK = 1 << 15;
const SCI_EVENTS = TMR | GBL | PWRBTN | RTC;
// PM1 control bits (§7.2.3).
const SCI_EN = 1 << 0, SLP_EN = 1 << 13;
/** PMCNTRL SUS_TYP 000b is soft off, S5 (§7.2.3); the DSDT's \_S5 package carries this value. */
export const SLP_TYP_S5 = 0;

const PMBA = 0x40, PMREGMISC = 0x80;

type State = PciConfigState & { pm1Sts: number; pm1En: number; pm1Cnt: number; gpeSts: number; gpeEn: number };

export interface Piix4PmOptions {
  io: IoBus;
  clock: Clock;
  /** ISA IRQ 9 (level, active high: the MADT override says so). */
  sci: IrqLine;
  onPowerOff: () => void;
  pmBase?: number;
}

export class Piix4Pm extends PciFunction<State> implements PortDevice {
  private readonly io: IoBus;
  private readonly clock: Clock;
  private readonly sci: IrqLine;
  private readonly onPowerOff: () => void;
  private readonly timer: Timer;
  /** Where the PM I/O block is decoded now (derived from PMBA/PMIOSE). */
  private pmAt = -1;

  constructor(opts: Piix4PmOptions) {
    // 8086:7113 revision 03, class 06/80/00 "other bridge" (§3.6.1-3.6.4).
    super('piix4-pm', { vendor: 0x8086, device: 0x7113, classCode: 0x068000, revision: 0x03 },
      { pm1Sts: 0, pm1En: 0, pm1Cnt: SCI_EN, gpeSts: 0, gpeEn: 0 });
    this.io = opts.io; this.clock = opts.clock; this.sci = opts.sci; this.onPowerOff = opts.onPowerOff;
    // PMBA: bit 0 hardwired to 1 (I/O space indicator), bits 15:6 the base (§3.6.9).
    this.setWmask(PMBA, 4, 0xffc0);
    this.put(PMBA, 4, (opts.pmBase ?? PM_BASE_DEFAULT) | 1);
    this.wmask[PMREGMISC] = 0x01;
    this.state.config[PMREGMISC] = 1; // PMIOSE
    // SMBBA (0x90) and the SMBus host config: the SMBus controller is not implemented, the registers read
    // back so Linux's PIIX4 quirk, which reserves the ranges they name, sees them disabled.
    this.setWmask(0x90, 4, 0xfff0); this.put(0x90, 4, 1);
    this.wmask[0xd2] = 0x0f;
    for (let r = 0x44; r <= 0x7f; r++) this.wmask[r] = 0xff; // CNTA/CNTB, GPICTL, DEVRESx, DEVACTx
    this.timer = this.clock.createTimer(() => this.timerOverflow());
    this.armTimer();
    this.updateIoMapping();
  }

  /** The PM I/O base the guest sees (also what the FADT must say). */
  get pmBase(): number { return this.get(PMBA, 4) & 0xffc0; }

  override writeConfig(off: number, size: 1 | 2 | 4, value: number): void {
    super.writeConfig(off, size, value);
    this.updateIoMapping();
  }

  /** Maps the PM block on the I/O bus at PMBA while PMIOSE (PMREGMISC bit 0) is set (§3.6.17). */
  updateIoMapping(): void {
    const at = this.state.config[PMREGMISC] & 1 && this.pmBase ? this.pmBase : -1;
    if (at === this.pmAt) return;
    if (this.pmAt >= 0) this.io.unregister(this);
    this.pmAt = -1;
    if (at >= 0) {
      try { this.io.register(at, PM_IO_SIZE, this, 'piix4-pm'); this.pmAt = at; } catch { this.io.unregister(this); }
    }
  }

  /** 24-bit count of PM timer ticks since the clock started (TMR_VAL_EXT = 0 in the FADT). */
  timerValue(): number {
    return ticksAt(this.clock.now()) & 0xffffff;
  }

  /** The fixed-feature power button (ACPI 3.0 §4.7.2.2.1): Linux answers with an orderly shutdown. */
  pressPowerButton(): void { this.state.pm1Sts |= PWRBTN; this.updateSci(); }

  /** The global lock/BIOS-release event and others come in as GPEs; devices raise GPE0 status bit `n`. */
  raiseGpe(n: number): void { this.state.gpeSts |= 1 << n; this.updateSci(); }

  ioRead(port: number, size: 1 | 2 | 4): number {
    let v = 0;
    for (let i = 0; i < size; i++) v |= this.readByte(port - this.pmAt + i) << (8 * i);
    return v >>> 0;
  }

  ioWrite(port: number, size: 1 | 2 | 4, value: number): void {
    const off = port - this.pmAt;
    // Apply the access to each 16-bit register it touches, with the bytes it covers.
    for (let reg = off & ~1; reg < off + size; reg += 2) {
      let v = 0, mask = 0;
      for (let b = 0; b < 2; b++) {
        const i = reg + b - off;
        if (i >= 0 && i < size) { v |= ((value >>> (8 * i)) & 0xff) << (8 * b); mask |= 0xff << (8 * b); }
      }
      this.writeReg(reg, v, mask);
    }
  }

  private readByte(off: number): number {
    const sh = 8 * (off & 1);
    switch (off & ~1) {
      case PM1_STS: return (this.state.pm1Sts >>> sh) & 0xff;
      case PM1_EN: return (this.state.pm1En >>> sh) & 0xff;
      case PM1_CNT: return (this.state.pm1Cnt >>> sh) & 0xff; // SLP_EN is write-only and reads 0
      case PM_TMR: case PM_TMR + 2: return (this.timerValue() >>> (8 * (off - PM_TMR))) & 0xff;
      case GPE0_STS: return (this.state.gpeSts >>> sh) & 0xff;
      case GPE0_EN: return (this.state.gpeEn >>> sh) & 0xff;
      default: return 0;
    }
  }

  private writeReg(reg: number, v: number, mask: number): void {
    const s = this.state;
    switch (reg) {
      case PM1_STS: s.pm1Sts &= ~(v & mask); break; // write one to clear (§7.2.1)
      case PM1_EN: s.pm1En = (s.pm1En & ~mask) | (v & mask & SCI_EVENTS); break;
      case PM1_CNT: {
        const cnt = (s.pm1Cnt & ~mask) | (v & mask);
        s.pm1Cnt = cnt & ~SLP_EN & 0x1c07;
        if (cnt & SLP_EN) this.sleep((cnt >>> 10) & 7);
        break;
      }
      case GPE0_STS: s.gpeSts &= ~(v & mask); break;
      case GPE0_EN: s.gpeEn = (s.gpeEn & ~mask) | (v & mask); break;
    }
    this.updateSci();
  }

  /** SLP_EN with a sleep type (§7.2.3): soft off powers the machine down; we implement no other state. */
  private sleep(type: number): void {
    if (type === SLP_TYP_S5) { this.onPowerOff(); return; }
    // An unsupported state wakes at once, as if the wake event came immediately (ACPI 3.0 §4.7.3.1.1).
    this.state.pm1Sts |= WAK;
  }

  private updateSci(): void {
    const s = this.state;
    const pending = (s.pm1Sts & s.pm1En & SCI_EVENTS) !== 0 || (s.gpeSts & s.gpeEn) !== 0;
    this.sci.set(pending && (s.pm1Cnt & SCI_EN) !== 0);
  }

  /** TMR_STS is set each time bit 23 of the timer changes (ACPI 3.0 §4.7.3.3). */
  private timerOverflow(): void {
    this.state.pm1Sts |= TMR;
    this.updateSci();
    this.armTimer();
  }

  private armTimer(): void {
    const next = (Math.floor(ticksAt(this.clock.now()) / 2 ** 23) + 1) * 2 ** 23;
    this.timer.deadline = nsAt(next);
  }

  override afterRestore(): void {
    super.afterRestore();
    this.updateIoMapping();
    this.updateSci();
    this.armTimer();
  }
}

// Exact integer conversions between clock nanoseconds and timer ticks, split so no product exceeds 2^53.
function ticksAt(ns: number): number {
  const s = Math.floor(ns / 1e9);
  return s * PM_TIMER_HZ + Math.floor(((ns - s * 1e9) * PM_TIMER_HZ) / 1e9);
}

function nsAt(ticks: number): number {
  const s = Math.floor(ticks / PM_TIMER_HZ);
  return s * 1e9 + Math.ceil(((ticks - s * PM_TIMER_HZ) * 1e9) / PM_TIMER_HZ);
}
