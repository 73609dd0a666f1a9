// The BIOS memory map (INT 15h E820h, ACPI 3.0 §14 "System Address Map Interfaces") that a direct kernel
// boot hands Linux in boot_params.e820_table: conventional memory below the EBDA, the legacy BIOS area
// (where the ACPI tables live), extended memory up to the PCI hole, and the APIC pages reserved.

import { LAPIC_BASE } from '../devices/apic/apic-bus.ts';
import { IOAPIC_BASE } from '../devices/apic/ioapic.ts';

/** Address range types (ACPI 3.0 Table 14-1). */
export const E820_RAM = 1, E820_RESERVED = 2, E820_ACPI = 3, E820_NVS = 4;

export interface E820Entry { addr: number; size: number; type: number }

export interface E820Options {
  /** Bytes of guest RAM starting at 0 (GuestMemory.ramSize). */
  ramSize: number;
  /** Start of the reserved BIOS area holding the ACPI tables (default 0xE0000). */
  biosAreaStart?: number;
  /** Start of the PCI/MMIO hole; RAM above it is not usable (default 0xE0000000). */
  pciHoleStart?: number;
}

/** 639 KiB of base memory, then the extended BIOS data area (as every PC BIOS reports). */
export const EBDA_START = 0x9fc00;

export function buildE820(o: E820Options): E820Entry[] {
  const top = Math.min(o.ramSize, o.pciHoleStart ?? 0xe0000000);
  const bios = o.biosAreaStart ?? 0xe0000;
  if (top <= 0x100000) throw new Error('e820: guest needs more than 1 MiB of RAM');
  return [
    { addr: 0, size: EBDA_START, type: E820_RAM },
    { addr: EBDA_START, size: 0xa0000 - EBDA_START, type: E820_RESERVED },
    // 0xA0000-bios stays a hole: VGA memory and option ROM space, no RAM.
    { addr: bios, size: 0x100000 - bios, type: E820_RESERVED },
    { addr: 0x100000, size: top - 0x100000, type: E820_RAM },
    { addr: IOAPIC_BASE, size: 0x1000, type: E820_RESERVED },
    { addr: LAPIC_BASE, size: 0x1000, type: E820_RESERVED },
  ];
}

/** The entries in the 20-byte `struct boot_e820_entry` layout of boot_params (Linux boot protocol). */
export function encodeE820(entries: E820Entry[]): Uint8Array {
  const out = new Uint8Array(20 * entries.length);
  const dv = new DataView(out.buffer);
  entries.forEach((e, i) => {
    dv.setBigUint64(20 * i, BigInt(e.addr), true);
    dv.setBigUint64(20 * i + 8, BigInt(e.size), true);
    dv.setUint32(20 * i + 16, e.type, true);
  });
  return out;
}
