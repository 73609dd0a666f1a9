// The ACPI tables of the virtual PC (ACPI spec 3.0 chapter 5), written into guest memory where the
// caller says — normally in the BIOS area 0xE0000-0xFFFFF, where Linux scans for the RSDP (§5.2.5.1)
// when boot_params.acpi_rsdp_addr is not set. Everything they describe must match the devices:
// the PIIX4 PM block (pmBase, SCI 9, \_S5 = SUS_TYP 0), reset control at 0xCF9, the PIRQ wiring of
// pci.ts/piix3-isa.ts in the _PRT, and the APICs in the MADT.

import * as A from './aml.ts';
import { pciSlotPirq } from './pci.ts';
import { DEFAULT_PIRQ_IRQS, PIRQ_GSI_BASE } from '../devices/pci/piix3-isa.ts';
import { GPE0_STS, PM1_CNT, PM1_STS, PM_BASE_DEFAULT, PM_TMR, SLP_TYP_S5 } from '../devices/acpi/piix4-pm.ts';
import { LAPIC_BASE } from '../devices/apic/apic-bus.ts';
import { IOAPIC_BASE } from '../devices/apic/ioapic.ts';

export interface AcpiOptions {
  /** Guest-physical start of the table area (16-byte aligned). */
  base: number;
  /** End (exclusive) of the area; building fails if the tables do not fit. */
  limit?: number;
  /** Number of CPUs; their local APIC IDs are 0..cpus-1. */
  cpus?: number;
  pmBase?: number;
  sciIrq?: number;
  ioapicId?: number;
  /** ISA IRQ each PIRQ link is routed to in PIC mode (what the PIIX3 PIRQRC registers hold). */
  pirqIrqs?: number[];
  /** PCI memory window of the root bridge: [base, end] inclusive. */
  pciMmio: { base: number; end: number };
  serialPorts?: { base: number; irq: number }[];
  rtc?: boolean;
  /** An 8042 keyboard controller (FADT boot flag, PNP0303 and PNP0F13 devices). */
  i8042?: boolean;
}

export interface AcpiTables {
  rsdp: number;
  /** First byte after the tables. */
  end: number;
  tables: Record<string, { addr: number; length: number }>;
}

const OEM_ID = 'TRAPEZ';
const OEM_TABLE_ID = 'TRAPEZE';
const RESET_PORT = 0xcf9;
/** PIIX3 reset control: SRST | RCPU, a hard reset (piix3-isa.ts). */
const RESET_VALUE = 0x06;

function ascii(out: Uint8Array, off: number, s: string, len: number): void {
  for (let i = 0; i < len; i++) out[off + i] = i < s.length ? s.charCodeAt(i) : 0x20;
}

/** Makes the bytes [off, off+len) sum to zero mod 256 by setting the byte at `at` (§5.2.6). */
function checksum(b: Uint8Array, off: number, len: number, at: number): void {
  b[at] = 0;
  let sum = 0;
  for (let i = off; i < off + len; i++) sum += b[i];
  b[at] = (256 - (sum & 0xff)) & 0xff;
}

/** A table with the standard description header (§5.2.6) in front of `body`. */
function table(sig: string, revision: number, body: Uint8Array): Uint8Array {
  const t = new Uint8Array(36 + body.length);
  const dv = new DataView(t.buffer);
  ascii(t, 0, sig, 4);
  dv.setUint32(4, t.length, true);
  t[8] = revision;
  ascii(t, 10, OEM_ID, 6);
  ascii(t, 16, OEM_TABLE_ID, 8);
  dv.setUint32(24, 1, true);
  ascii(t, 28, 'TRPZ', 4);
  dv.setUint32(32, 1, true);
  t.set(body, 36);
  checksum(t, 0, t.length, 9);
  return t;
}

/** Generic Address Structure for a system I/O register block (§5.2.3.1). */
function gasIo(dv: DataView, off: number, port: number, bytes: number): void {
  dv.setUint8(off, 1);
  dv.setUint8(off + 1, bytes * 8);
  dv.setUint8(off + 2, 0);
  dv.setUint8(off + 3, 0); // access size undefined: the register's natural width
  dv.setUint32(off + 4, port, true);
  dv.setUint32(off + 8, 0, true);
}

/** FADT revision 3 (§5.2.9, Table 5-34); addresses patched in by the caller. */
function buildFadt(o: AcpiOptions, facs: number, dsdt: number): Uint8Array {
  const b = new Uint8Array(244 - 36);
  const dv = new DataView(b.buffer);
  const at = (off: number): number => off - 36; // offsets below are those of Table 5-34
  const pm = o.pmBase ?? PM_BASE_DEFAULT;
  dv.setUint32(at(36), facs, true);
  dv.setUint32(at(40), dsdt, true);
  b[at(45)] = 0; // preferred PM profile: unspecified
  dv.setUint16(at(46), o.sciIrq ?? 9, true);
  // SMI_CMD 0: no ACPI/legacy mode switch, the hardware is always in ACPI mode (§4.7.2.5).
  dv.setUint32(at(56), pm + PM1_STS, true);
  dv.setUint32(at(64), pm + PM1_CNT, true);
  dv.setUint32(at(76), pm + PM_TMR, true);
  dv.setUint32(at(80), pm + GPE0_STS, true);
  b[at(88)] = 4; // PM1_EVT_LEN: status + enable
  b[at(89)] = 2;
  b[at(91)] = 4;
  b[at(92)] = 4; // GPE0: 2 bytes status, 2 bytes enable
  dv.setUint16(at(96), 101, true); // P_LVL2_LAT > 100: C2 not supported
  dv.setUint16(at(98), 1001, true); // P_LVL3_LAT > 1000: C3 not supported
  b[at(108)] = 0x32; // CENTURY: CMOS index of the century byte
  // IAPC_BOOT_ARCH (Table 5-35): LEGACY_DEVICES, and 8042 — Linux skips the i8042 probe without it.
  dv.setUint16(at(109), 1 | (o.i8042 ?? true ? 2 : 0), true);
  // Flags (Table 5-34): WBINVD, PROC_C1, SLP_BUTTON (no fixed sleep button), FIX_RTC (no RTC wake status),
  // RESET_REG_SUP. PWR_BUTTON clear: the fixed power button exists. TMR_VAL_EXT clear: 24-bit PM timer.
  dv.setUint32(at(112), (1 << 0) | (1 << 2) | (1 << 5) | (1 << 6) | (1 << 10), true);
  dv.setUint8(at(116), 1); dv.setUint8(at(117), 8); dv.setUint8(at(119), 1); // RESET_REG: byte I/O
  dv.setUint32(at(120), RESET_PORT, true);
  b[at(128)] = RESET_VALUE;
  dv.setBigUint64(at(132), BigInt(facs), true);
  dv.setBigUint64(at(140), BigInt(dsdt), true);
  gasIo(dv, at(148), pm + PM1_STS, 4);
  gasIo(dv, at(172), pm + PM1_CNT, 2);
  gasIo(dv, at(208), pm + PM_TMR, 4);
  gasIo(dv, at(220), pm + GPE0_STS, 4);
  return table('FACP', 3, b);
}

/** FACS (§5.2.10): no waking vector (no S3), version 1. */
function buildFacs(): Uint8Array {
  const b = new Uint8Array(64);
  ascii(b, 0, 'FACS', 4);
  new DataView(b.buffer).setUint32(4, 64, true);
  b[32] = 1;
  return b;
}

/** MADT (§5.2.11): local APICs, the I/O APIC, ISA overrides, LINT1 as NMI. */
function buildMadt(o: AcpiOptions): Uint8Array {
  const e: number[] = [];
  const u16 = (v: number): number[] => [v & 0xff, v >>> 8];
  const u32 = (v: number): number[] => [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, v >>> 24];
  e.push(...u32(LAPIC_BASE), ...u32(1)); // PCAT_COMPAT: there are 8259s to mask
  for (let i = 0; i < (o.cpus ?? 1); i++) e.push(0, 8, i, i, ...u32(1)); // processor local APIC, enabled
  e.push(1, 12, o.ioapicId ?? 0, 0, ...u32(IOAPIC_BASE), ...u32(0));
  // The PIT's IRQ0 is wired to I/O APIC input 2 on PC boards (ISA bus 0, flags: conforms to the bus).
  e.push(2, 10, 0, 0, ...u32(2), ...u16(0));
  // The SCI is level-triggered active high (piix4-pm.ts drives a level): trigger 11b, polarity 01b.
  const sci = o.sciIrq ?? 9;
  e.push(2, 10, 0, sci, ...u32(sci), ...u16(0x000d));
  e.push(4, 6, 0xff, ...u16(0), 1); // all processors: LINT1 is NMI
  return table('APIC', 2, Uint8Array.from(e));
}

/** The DSDT's AML: sleep states, the interrupt model switch, the PCI root bridge and the ISA devices. */
export function buildDsdtAml(o: AcpiOptions): number[] {
  const pirqIrqs = o.pirqIrqs ?? DEFAULT_PIRQ_IRQS;
  // _PRT entries (§6.2.12): address 0xSSSSFFFF = any function of slot S, pin 0-3, source 0 = a GSI.
  const prt = (apic: boolean): number[] => {
    const entries: number[][] = [];
    for (let slot = 1; slot < 32; slot++) {
      for (let pin = 0; pin < 4; pin++) {
        const pirq = pciSlotPirq(slot, pin + 1);
        const gsi = apic ? PIRQ_GSI_BASE + pirq : pirqIrqs[pirq];
        entries.push(A.pkgOf([A.int(slot * 0x10000 + 0xffff), A.int(pin), A.int(0), A.int(gsi)]));
      }
    }
    return A.pkgOf(entries);
  };
  const isa: number[][] = [A.name('_ADR', A.int(0x00010000))];
  if (o.rtc ?? true) {
    isa.push(A.device('RTC', A.name('_HID', A.eisaId('PNP0B00')),
      A.name('_CRS', A.resourceTemplate(A.io(0x70, 0x70, 1, 2), A.irqNoFlags(8)))));
  }
  (o.serialPorts ?? [{ base: 0x3f8, irq: 4 }]).forEach((p, i) => {
    isa.push(A.device(`COM${i + 1}`, A.name('_HID', A.eisaId('PNP0501')), A.name('_UID', A.int(i + 1)),
      A.name('_CRS', A.resourceTemplate(A.io(p.base, p.base, 8, 8), A.irqNoFlags(p.irq)))));
  });
  if (o.i8042 ?? true) {
    isa.push(A.device('KBD', A.name('_HID', A.eisaId('PNP0303')),
      A.name('_CRS', A.resourceTemplate(A.io(0x60, 0x60, 1, 1), A.io(0x64, 0x64, 1, 1), A.irqNoFlags(1)))));
    isa.push(A.device('MOU', A.name('_HID', A.eisaId('PNP0F13')), A.name('_CRS', A.resourceTemplate(A.irqNoFlags(12)))));
  }
  const pci0 = A.device('PCI0',
    A.name('_HID', A.eisaId('PNP0A03')),
    A.name('_ADR', A.int(0)),
    A.name('_UID', A.int(0)),
    A.name('_CRS', A.resourceTemplate(
      A.wordSpace(2, 0x00, 0xff),
      A.io(0xcf8, 0xcf8, 1, 8),
      A.wordSpace(1, 0x0000, 0x0cf7),
      A.wordSpace(1, 0x0d00, 0xffff),
      A.dwordMemory(0xa0000, 0xbffff), // legacy VGA window
      A.dwordMemory(o.pciMmio.base, o.pciMmio.end),
    )),
    A.name('PRTP', prt(false)),
    A.name('PRTA', prt(true)),
    // The OS reports its interrupt model through \_PIC (§5.8.1); the routing table follows it. PICF
    // is found in the root by the single-segment search rules (§5.3).
    A.method('_PRT', 0, A.ifThen(A.ref('PICF'), A.ret(A.ref('PRTA'))), A.ret(A.ref('PRTP'))),
    A.device('ISA', ...isa),
  );
  return [
    // \_S5: PM1a and PM1b SLP_TYP values for soft off (§7.3.4.5); PIIX4 decodes SUS_TYP 000b as S5.
    ...A.name('\\_S5', A.pkgOf([A.int(SLP_TYP_S5), A.int(SLP_TYP_S5), A.int(0), A.int(0)])),
    ...A.name('PICF', A.int(0)),
    ...A.method('\\_PIC', 1, A.store(A.arg(0), A.ref('PICF'))),
    ...A.scope('\\_SB', pci0),
  ];
}

export function buildDsdt(o: AcpiOptions): Uint8Array {
  // Revision 2: integers are 64 bits wide (§5.2.11.1).
  return table('DSDT', 2, Uint8Array.from(buildDsdtAml(o)));
}

/** Builds every table, writes them at `o.base` onwards, and returns where the RSDP is. */
export function buildAcpiTables(mem: { writeBytes(addr: number, data: Uint8Array): void }, o: AcpiOptions): AcpiTables {
  const tables: AcpiTables['tables'] = {};
  let next = o.base;
  const place = (name: string, len: number, align = 16): number => {
    next = Math.ceil(next / align) * align;
    const addr = next;
    next += len;
    if (next > (o.limit ?? 0x100000)) throw new Error(`ACPI tables do not fit below ${(o.limit ?? 0x100000).toString(16)}`);
    tables[name] = { addr, length: len };
    return addr;
  };
  // Fixed sizes first, so pointers are known before the tables that hold them are built.
  const rsdpAddr = place('RSDP', 36);
  const dsdt = buildDsdt(o);
  const madt = buildMadt(o);
  const facsAddr = place('FACS', 64, 64); // FACS must be 64-byte aligned (§5.2.10)
  const dsdtAddr = place('DSDT', dsdt.length);
  const fadtAddr = place('FACP', 244);
  const madtAddr = place('APIC', madt.length);
  const pointers = [fadtAddr, madtAddr];
  const rsdtAddr = place('RSDT', 36 + 4 * pointers.length);
  const xsdtAddr = place('XSDT', 36 + 8 * pointers.length);

  const rsdtBody = new Uint8Array(4 * pointers.length);
  const xsdtBody = new Uint8Array(8 * pointers.length);
  pointers.forEach((p, i) => {
    new DataView(rsdtBody.buffer).setUint32(4 * i, p, true);
    new DataView(xsdtBody.buffer).setBigUint64(8 * i, BigInt(p), true);
  });

  // RSDP revision 2 (§5.2.5.3): checksum over the first 20 bytes, extended checksum over all 36.
  const rsdp = new Uint8Array(36);
  const rv = new DataView(rsdp.buffer);
  ascii(rsdp, 0, 'RSD PTR ', 8);
  ascii(rsdp, 9, OEM_ID, 6);
  rsdp[15] = 2;
  rv.setUint32(16, rsdtAddr, true);
  rv.setUint32(20, 36, true);
  rv.setBigUint64(24, BigInt(xsdtAddr), true);
  checksum(rsdp, 0, 20, 8);
  checksum(rsdp, 0, 36, 32);

  mem.writeBytes(rsdpAddr, rsdp);
  mem.writeBytes(facsAddr, buildFacs());
  mem.writeBytes(dsdtAddr, dsdt);
  mem.writeBytes(fadtAddr, buildFadt(o, facsAddr, dsdtAddr));
  mem.writeBytes(madtAddr, madt);
  mem.writeBytes(rsdtAddr, table('RSDT', 1, rsdtBody));
  mem.writeBytes(xsdtAddr, table('XSDT', 1, xsdtBody));
  return { rsdp: rsdpAddr, end: next, tables };
}
