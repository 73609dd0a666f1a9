// Direct Linux boot, the way QEMU's -kernel and Firecracker do it: load a bzImage's protected-mode
// kernel at 1 MiB, build the zero page (struct boot_params), and enter the 32-bit entry point in flat
// protected mode. Everything here follows the kernel's Documentation/arch/x86/boot.rst ("THE LINUX/x86
// BOOT PROTOCOL"), sections "THE REAL-MODE KERNEL HEADER", "LOADING THE REST OF THE KERNEL" and
// "32-bit BOOT PROTOCOL"; offsets are those of struct setup_header / struct boot_params.

import type { CPU } from '../cpu/cpu.ts';
import type { GuestMemory } from '../memory/guest-memory.ts';
import { CS, DS, ES, FS, GS, SS, CR0_PE } from '../cpu/constants.ts';

export interface E820Entry { addr: number; size: number; type: number }
export const E820_RAM = 1, E820_RESERVED = 2, E820_ACPI = 3, E820_NVS = 4;

export class BootError extends Error {}

/** What the header of a bzImage says (boot.rst "THE REAL-MODE KERNEL HEADER"). */
export interface BzImageInfo {
  protocol: number;
  setupBytes: number;
  kernelOffset: number;
  kernelSize: number;
  code32Start: number;
  initrdAddrMax: number;
  cmdlineSize: number;
  relocatable: boolean;
  prefAddress: number;
  initSize: number;
}

export function parseBzImage(img: Uint8Array): BzImageInfo {
  if (img.length < 0x250) throw new BootError('kernel image is too small to be a bzImage');
  const dv = new DataView(img.buffer, img.byteOffset, img.byteLength);
  if (dv.getUint16(0x1fe, true) !== 0xaa55 || dv.getUint32(0x202, true) !== 0x53726448 /* "HdrS" */) {
    throw new BootError('kernel is not a bzImage (no "HdrS" boot header at 0x202)');
  }
  const protocol = dv.getUint16(0x206, true);
  if (protocol < 0x206) throw new BootError(`kernel boot protocol ${(protocol >> 8)}.${protocol & 0xff} is too old (need 2.06 or newer)`);
  if (!(img[0x211] & 1)) throw new BootError('kernel is a zImage (not loaded high); a bzImage is needed');
  let setupSects = img[0x1f1];
  if (setupSects === 0) setupSects = 4;
  const kernelOffset = (setupSects + 1) * 512;
  if (kernelOffset >= img.length) throw new BootError('bzImage is truncated (no protected-mode kernel after the setup code)');
  return {
    protocol,
    setupBytes: kernelOffset,
    kernelOffset,
    kernelSize: img.length - kernelOffset,
    code32Start: dv.getUint32(0x214, true),
    initrdAddrMax: dv.getUint32(0x22c, true),
    cmdlineSize: protocol >= 0x206 ? dv.getUint32(0x238, true) : 255,
    relocatable: img[0x234] !== 0,
    prefAddress: protocol >= 0x20a ? Number(dv.getBigUint64(0x258, true)) : 0x100000,
    initSize: protocol >= 0x20a ? dv.getUint32(0x260, true) : 0,
  };
}

// Low-memory layout used by the loader (all below 640 KiB, inside E820 RAM the kernel will reclaim).
const GDT_ADDR = 0x1000;
const ZERO_PAGE = 0x7000;
const CMDLINE_ADDR = 0x20000;

export interface LinuxBootOptions {
  kernel: Uint8Array;
  initrd?: Uint8Array;
  cmdline: string;
  e820: E820Entry[];
  /** Guest-physical address of the ACPI RSDP (boot_params.acpi_rsdp_addr), if any. */
  rsdp?: number;
}

/** Loads kernel, initrd and command line into memory and sets the vCPU up at the 32-bit entry. */
export function loadLinux(cpu: CPU, mem: GuestMemory, opts: LinuxBootOptions): BzImageInfo {
  const info = parseBzImage(opts.kernel);
  const ramTop = topOfRam(opts.e820);
  const loadAddr = 0x100000;
  const needed = Math.max(info.kernelSize, info.initSize);
  if (loadAddr + needed > ramTop) throw new BootError(`kernel needs ${Math.ceil((loadAddr + needed) / 1048576)} MiB of RAM; give the VM more memory`);
  mem.writeBytes(loadAddr, opts.kernel.subarray(info.kernelOffset));

  // The zero page starts as a copy of the image's setup header (boot.rst: "copy the header").
  const zp = new Uint8Array(4096);
  const hdrEnd = 0x202 + opts.kernel[0x201];
  zp.set(opts.kernel.subarray(0x1f1, Math.min(hdrEnd, opts.kernel.length)), 0x1f1);
  const z = new DataView(zp.buffer);
  z.setUint8(0x210, 0xff); // type_of_loader: undefined loader
  z.setUint8(0x211, (zp[0x211] | 0x80) & ~0x20); // CAN_USE_HEAP; no QUIET_FLAG
  z.setUint16(0x224, 0xfe00, true); // heap_end_ptr

  const cmd = new TextEncoder().encode(opts.cmdline);
  if (cmd.length >= info.cmdlineSize) throw new BootError(`kernel command line is longer than the kernel accepts (${info.cmdlineSize - 1} bytes)`);
  const cmdBuf = new Uint8Array(cmd.length + 1);
  cmdBuf.set(cmd);
  mem.writeBytes(CMDLINE_ADDR, cmdBuf);
  z.setUint32(0x228, CMDLINE_ADDR, true);

  if (opts.initrd && opts.initrd.length) {
    const maxAddr = Math.min(info.initrdAddrMax >>> 0, ramTop - 1, 0x37ffffff);
    const addr = Math.floor((maxAddr + 1 - opts.initrd.length) / 4096) * 4096;
    const kernelEnd = loadAddr + needed;
    if (addr < kernelEnd) throw new BootError(`initrd (${Math.ceil(opts.initrd.length / 1048576)} MiB) does not fit in guest memory beside the kernel; give the VM more memory`);
    mem.writeBytes(addr, opts.initrd);
    z.setUint32(0x218, addr, true);
    z.setUint32(0x21c, opts.initrd.length, true);
  }

  // e820 table: boot_params.e820_entries at 0x1E8, e820_table at 0x2D0 (20 bytes per entry, max 128).
  const entries = opts.e820.slice(0, 128);
  z.setUint8(0x1e8, entries.length);
  entries.forEach((e, i) => {
    const o = 0x2d0 + i * 20;
    z.setBigUint64(o, BigInt(e.addr), true);
    z.setBigUint64(o + 8, BigInt(e.size), true);
    z.setUint32(o + 16, e.type, true);
  });
  if (opts.rsdp !== undefined && info.protocol >= 0x20e) z.setBigUint64(0x070, BigInt(opts.rsdp), true);
  mem.writeBytes(ZERO_PAGE, zp);

  // GDT with the boot protocol's flat segments: __BOOT_CS = 0x10, __BOOT_DS = 0x18.
  const gdt = new Uint8Array(32);
  const g = new DataView(gdt.buffer);
  g.setUint32(16, 0x0000ffff, true); g.setUint32(20, 0x00cf9b00, true);
  g.setUint32(24, 0x0000ffff, true); g.setUint32(28, 0x00cf9300, true);
  mem.writeBytes(GDT_ADDR, gdt);

  enter32(cpu, info.code32Start || loadAddr);
  return info;
}

/** CPU state of the 32-bit boot protocol: PE on, paging off, interrupts off, flat CS/DS, ESI = zero page. */
function enter32(cpu: CPU, entry: number): void {
  cpu.reset();
  cpu.gdtBase = GDT_ADDR; cpu.gdtLimit = 31;
  cpu.idtBase = 0; cpu.idtLimit = 0;
  cpu.cr0 |= CR0_PE;
  for (const s of [CS, DS, ES, FS, GS, SS]) {
    cpu.sreg[s] = s === CS ? 0x10 : 0x18;
    cpu.segBase[s] = 0;
    cpu.segLimit[s] = 0xffffffff;
    cpu.segAr[s] = s === CS ? 0xc09b : 0xc093;
  }
  cpu.cpl = 0;
  cpu.updateModes();
  cpu.setEflags(0x2);
  cpu.r32.fill(0);
  cpu.r32[6] = ZERO_PAGE; // ESI
  cpu.eip = entry;
  cpu.flushTlb(true);
}

function topOfRam(e820: E820Entry[]): number {
  let top = 0;
  for (const e of e820) if (e.type === E820_RAM && e.addr + e.size > top && e.addr < 0x100000000) top = e.addr + e.size;
  return Math.min(top, 0x100000000);
}
