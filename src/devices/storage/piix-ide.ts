// The PIIX3 IDE controller, function 1 of the south bridge at 00:01.1 (Intel 82371SB PIIX3 datasheet,
// order no. 290550, §2.4 "IDE configuration registers" and §2.7 "Bus master IDE I/O registers"), with ATA
// hard disks behind it (ATA/ATAPI-6, ANSI INCITS 361-2002: register block §7, commands §8, protocols §9).
//
// Compatibility ("legacy") mode only, as the PIIX3 has no native mode: the primary channel decodes the
// command block at 0x1F0-0x1F7 and the control block at 0x3F6 and interrupts on ISA IRQ14, the
// secondary at 0x170-0x177/0x376 on IRQ15 (§2.4.1, class code 01/01/80). BAR4 is the bus master block.
// Every command completes synchronously while the guest's register access traps: a PIO block is ready by
// the time the command register write returns, a DMA transfer runs when both the command is issued and
// the bus master's start bit is set, whichever comes last.

import { CMD_BUS_MASTER, CMD_IO, PciFunction, type PciConfigState } from '../../machine/pci.ts';
import type { IoBus, PortDevice } from '../../machine/io-bus.ts';
import { IrqLine } from '../../machine/irq.ts';
import type { PcMachine } from '../../vmm/pc.ts';
import type { GuestMemory } from '../../memory/guest-memory.ts';
import type { BlockBackend } from '../block-backend.ts';

const SECTOR = 512;
/** Sectors per DRQ block that SET MULTIPLE may choose (IDENTIFY word 47). */
const MAX_MULTIPLE = 16;

// Status register bits (ATA-6 §7.15).
const BSY = 0x80, DRDY = 0x40, DSC = 0x10, DRQ = 0x08, ERR = 0x01;
// Error register bits (§7.9): uncorrectable data, ID not found, aborted command.
const UNC = 0x40, IDNF = 0x10, ABRT = 0x04;
// Device control register bits (§7.6): interrupt disable, software reset, high order byte.
const NIEN = 0x02, SRST = 0x04, HOB = 0x80;
// Device register (§7.7): LBA addressing, device select.
const LBA = 0x40, DEV = 0x10;

// Bus master IDE registers (PIIX3 §2.7.1-2.7.3): command (start, read/write control), status, PRD pointer.
const BM_START = 0x01, BM_WRITE_TO_MEMORY = 0x08;
const BM_ACTIVE = 0x01, BM_ERROR = 0x02, BM_INTERRUPT = 0x04;
const BM_DMA_CAPABLE = 0x60;
/** PRD end-of-table flag, bit 31 of the second dword (§2.7.3, "Physical region descriptor table"). */
const PRD_EOT = 0x80000000;

// IDETIM (primary 0x40, secondary 0x42): bit 15 enables decoding the channel's legacy ports (§2.4.4).
const IDETIM = 0x40;
const IDE_DECODE = 0x8000;

const enum Xfer { None = 0, PioIn = 1, PioOut = 2, DmaIn = 3, DmaOut = 4 }

type DriveState = {
  status: number; error: number;
  /** Sectors per block for READ/WRITE MULTIPLE; 0 until SET MULTIPLE succeeds. */
  multiple: number;
  writeCache: boolean;
  /** Logical geometry from INITIALIZE DEVICE PARAMETERS (CHS addressing). */
  heads: number; sectors: number;
  /** Transfer mode set by SET FEATURES 03h (§8.37.10), reported back in IDENTIFY words 63 and 88. */
  mode: number;
};

type ChannelState = {
  // The command block registers; with 48-bit commands each is a two-byte FIFO (§7.1), the older byte the "HOB" one.
  feature: number; hobFeature: number; nsect: number; hobNsect: number;
  lbal: number; hobLbal: number; lbam: number; hobLbam: number; lbah: number; hobLbah: number;
  select: number; devCtl: number;
  /** INTRQ of the selected device before nIEN masking. */
  intrq: boolean;
  /** The data transfer in progress: its kind, next LBA, sectors left, sectors in the current DRQ block. */
  xfer: number; cmd: number; lba: number; remaining: number; block: number;
  /** The DRQ data block and how far the host has read or written it. */
  buf: Uint8Array; bufPos: number; bufLen: number;
  bmCmd: number; bmStatus: number; bmPrd: number;
  drives: DriveState[];
};

type State = PciConfigState & { channels: ChannelState[] };

export interface PiixIdeOptions {
  io: IoBus;
  mem: GuestMemory;
  /** ISA IRQ14 and IRQ15. */
  irqs: [IrqLine, IrqLine];
  /** Disks: index 0 primary master, 1 primary slave, 2 secondary master, 3 secondary slave. */
  drives: (BlockBackend | null | undefined)[];
  /** Called with a message when a host I/O error fails a guest request. */
  log?: (msg: string) => void;
}

const LEGACY = [{ cmd: 0x1f0, ctl: 0x3f6 }, { cmd: 0x170, ctl: 0x376 }];

function newDrive(): DriveState {
  return { status: DRDY | DSC, error: 1, multiple: 0, writeCache: true, heads: 16, sectors: 63, mode: 0x22 };
}

function newChannel(): ChannelState {
  return {
    feature: 0, hobFeature: 0, nsect: 1, hobNsect: 0, lbal: 1, hobLbal: 0, lbam: 0, hobLbam: 0, lbah: 0, hobLbah: 0,
    select: 0, devCtl: 0, intrq: false,
    xfer: Xfer.None, cmd: 0, lba: 0, remaining: 0, block: 0,
    buf: new Uint8Array(MAX_MULTIPLE * SECTOR), bufPos: 0, bufLen: 0,
    bmCmd: 0, bmStatus: 0, bmPrd: 0,
    drives: [newDrive(), newDrive()],
  };
}

export class PiixIde extends PciFunction<State> {
  private readonly mem: GuestMemory;
  private readonly irqs: [IrqLine, IrqLine];
  private readonly disks: (BlockBackend | null)[];
  private readonly log: (msg: string) => void;

  constructor(opts: PiixIdeOptions) {
    // 8086:7010, class 01/01/80: IDE, bus master capable, both channels fixed in compatibility mode (§2.4.1-2.4.3).
    super('piix3-ide', { vendor: 0x8086, device: 0x7010, classCode: 0x010180 }, { channels: [newChannel(), newChannel()] });
    this.mem = opts.mem;
    this.irqs = opts.irqs;
    this.disks = [0, 1, 2, 3].map((i) => opts.drives[i] ?? null);
    this.log = opts.log ?? (() => {});
    this.put(0x06, 2, 0x0280); // PCISTS: fast back-to-back capable, DEVSEL# medium (§2.4.3)
    // IDETIM/SIDETIM (0x40-0x44) are firmware's to program; with no BIOS we leave both channels decoding.
    this.setWmask(IDETIM, 4, 0xffffffff); this.wmask[0x44] = 0xff;
    this.put(IDETIM, 2, IDE_DECODE); this.put(IDETIM + 2, 2, IDE_DECODE);
    this.setBar(4, {
      kind: 'io', size: 16,
      read: (off, size) => this.bmRead(off, size),
      write: (off, size, v) => this.bmWrite(off, size, v),
    });
    LEGACY.forEach((p, ch) => {
      const cmdDev: PortDevice = { ioRead: (port, s) => this.cmdRead(ch, port - p.cmd, s), ioWrite: (port, s, v) => this.cmdWrite(ch, port - p.cmd, s, v) };
      const ctlDev: PortDevice = { ioRead: () => this.ctlRead(ch), ioWrite: (_p, _s, v) => this.ctlWrite(ch, v) };
      // Counted with the bus master BAR under the function's name: all of it is this controller's traffic.
      opts.io.register(p.cmd, 8, cmdDev, `piix3-ide${ch}`, this.name);
      opts.io.register(p.ctl, 1, ctlDev, `piix3-ide${ch}-ctl`, this.name);
    });
  }

  // --- Helpers ------------------------------------------------------------------------------------------------

  private decoding(ch: number): boolean {
    return (this.command & CMD_IO) !== 0 && (this.get(IDETIM + 2 * ch, 2) & IDE_DECODE) !== 0;
  }

  private unit(ch: number): number { return (this.state.channels[ch].select & DEV) ? 1 : 0; }
  private disk(ch: number, unit = this.unit(ch)): BlockBackend | null { return this.disks[ch * 2 + unit]; }
  private drive(ch: number): DriveState { return this.state.channels[ch].drives[this.unit(ch)]; }

  private setIrq(ch: number, level: boolean): void {
    const c = this.state.channels[ch];
    // The bus master's interrupt bit latches every rising edge of the channel's IDE interrupt (§2.7.2).
    if (level && !c.intrq) c.bmStatus |= BM_INTERRUPT;
    c.intrq = level;
    this.updateIrq(ch);
  }

  private updateIrq(ch: number): void {
    const c = this.state.channels[ch];
    this.irqs[ch].set(c.intrq && !(c.devCtl & NIEN));
  }

  // --- Command block ------------------------------------------------------------------------------------------

  private cmdRead(ch: number, reg: number, size: 1 | 2 | 4): number {
    const c = this.state.channels[ch];
    if (!this.decoding(ch) || (!this.disks[ch * 2] && !this.disks[ch * 2 + 1])) return size === 1 ? 0xff : size === 2 ? 0xffff : 0xffffffff;
    if (reg === 0) return this.dataRead(ch, size);
    const present = this.disk(ch) !== null;
    const hob = (c.devCtl & HOB) !== 0;
    switch (reg) {
      case 1: return present ? this.drive(ch).error : 0;
      case 2: return hob ? c.hobNsect : c.nsect;
      case 3: return hob ? c.hobLbal : c.lbal;
      case 4: return hob ? c.hobLbam : c.lbam;
      case 5: return hob ? c.hobLbah : c.lbah;
      case 6: return c.select;
      default: {
        // A missing device 1 reads status 0, which is how hosts tell it is absent (ATA-6 §9.1, §9.16).
        if (!present) return 0;
        const s = this.drive(ch).status;
        this.setIrq(ch, false); // reading Status clears a pending interrupt (§7.15)
        return s;
      }
    }
  }

  private cmdWrite(ch: number, reg: number, size: 1 | 2 | 4, v: number): void {
    const c = this.state.channels[ch];
    if (!this.decoding(ch)) return;
    if (reg === 0) { this.dataWrite(ch, size, v); return; }
    v &= 0xff;
    // Writing any command block register clears HOB (§7.6).
    c.devCtl &= ~HOB;
    switch (reg) {
      case 1: c.hobFeature = c.feature; c.feature = v; break;
      case 2: c.hobNsect = c.nsect; c.nsect = v; break;
      case 3: c.hobLbal = c.lbal; c.lbal = v; break;
      case 4: c.hobLbam = c.lbam; c.lbam = v; break;
      case 5: c.hobLbah = c.lbah; c.lbah = v; break;
      case 6: c.select = v; this.updateIrq(ch); break;
      case 7: this.execute(ch, v); break;
    }
  }

  private ctlRead(ch: number): number {
    if (!this.decoding(ch) || (!this.disks[ch * 2] && !this.disks[ch * 2 + 1])) return 0xff;
    // Alternate status: the status register without clearing the interrupt (§7.3).
    return this.disk(ch) ? this.drive(ch).status : 0;
  }

  private ctlWrite(ch: number, v: number): void {
    const c = this.state.channels[ch];
    if (!this.decoding(ch)) return;
    const old = c.devCtl;
    c.devCtl = v & (HOB | SRST | NIEN);
    if (v & SRST && !(old & SRST)) {
      // Software reset (§9.2): both devices go busy until SRST is cleared again.
      for (const d of c.drives) d.status = BSY;
      c.xfer = Xfer.None;
      c.intrq = false;
    } else if (!(v & SRST) && old & SRST) {
      this.resetChannel(ch);
    }
    this.updateIrq(ch);
  }

  /** The state after reset or EXECUTE DEVICE DIAGNOSTIC: the ATA signature in the command block (§9.12). */
  private resetChannel(ch: number): void {
    const c = this.state.channels[ch];
    c.nsect = 1; c.lbal = 1; c.lbam = 0; c.lbah = 0; c.select = 0;
    c.hobNsect = c.hobLbal = c.hobLbam = c.hobLbah = 0;
    c.xfer = Xfer.None;
    for (const d of c.drives) { d.status = DRDY | DSC; d.error = 1; }
  }

  // --- Commands (ATA-6 §8) ----------------------------------------------------------------------------------

  private execute(ch: number, cmd: number): void {
    const c = this.state.channels[ch];
    // EXECUTE DEVICE DIAGNOSTIC is addressed to both devices (§8.11); everything else to the selected one.
    if (cmd === 0x90) { if (this.disks[ch * 2] || this.disks[ch * 2 + 1]) { this.resetChannel(ch); this.setIrq(ch, true); } return; }
    const disk = this.disk(ch);
    if (!disk) return; // no device answers: the write goes nowhere
    const d = this.drive(ch);
    if (d.status & BSY) return;
    this.setIrq(ch, false);
    c.cmd = cmd;
    c.xfer = Xfer.None;
    d.error = 0;
    switch (cmd) {
      case 0xec: // IDENTIFY DEVICE (§8.15)
        c.buf.set(this.identify(ch));
        c.remaining = 1; c.block = 1;
        this.startBlock(ch, Xfer.PioIn, true);
        return;
      case 0x20: case 0x21: return this.rw(ch, false, false, Xfer.PioIn);   // READ SECTORS (§8.27)
      case 0x24: return this.rw(ch, true, false, Xfer.PioIn);               // READ SECTORS EXT (§8.28)
      case 0xc4: return this.rw(ch, false, true, Xfer.PioIn);               // READ MULTIPLE (§8.24)
      case 0x29: return this.rw(ch, true, true, Xfer.PioIn);                // READ MULTIPLE EXT (§8.25)
      case 0x30: case 0x31: return this.rw(ch, false, false, Xfer.PioOut);  // WRITE SECTORS (§8.53)
      case 0x34: return this.rw(ch, true, false, Xfer.PioOut);              // WRITE SECTORS EXT (§8.54)
      case 0xc5: return this.rw(ch, false, true, Xfer.PioOut);              // WRITE MULTIPLE (§8.50)
      case 0x39: return this.rw(ch, true, true, Xfer.PioOut);               // WRITE MULTIPLE EXT (§8.51)
      case 0xc8: case 0xc9: return this.rw(ch, false, false, Xfer.DmaIn);   // READ DMA (§8.21)
      case 0x25: return this.rw(ch, true, false, Xfer.DmaIn);               // READ DMA EXT (§8.22)
      case 0xca: case 0xcb: return this.rw(ch, false, false, Xfer.DmaOut);  // WRITE DMA (§8.45)
      case 0x35: return this.rw(ch, true, false, Xfer.DmaOut);              // WRITE DMA EXT (§8.46)
      case 0x40: case 0x41: case 0x42: {                                    // READ VERIFY SECTORS (EXT) (§8.29, 8.30)
        const a = this.address(ch, cmd === 0x42);
        if (a.lba + a.count > disk.size / SECTOR) return this.fail(ch, IDNF);
        return this.complete(ch);
      }
      case 0xe7: case 0xea: // FLUSH CACHE (EXT) (§8.12, 8.13): the write cache is the host's page cache
        try { disk.flush(); } catch (e) { this.log(`piix3-ide: flush failed: ${(e as Error).message}`); return this.fail(ch, ABRT); }
        return this.complete(ch);
      case 0xef: return this.setFeatures(ch);
      case 0xc6: { // SET MULTIPLE MODE (§8.39): a power of two up to IDENTIFY word 47, or 0 to disable
        const n = c.nsect;
        if (n > MAX_MULTIPLE || (n & (n - 1))) return this.fail(ch, ABRT);
        d.multiple = n;
        return this.complete(ch);
      }
      case 0x91: // INITIALIZE DEVICE PARAMETERS (§8.16): logical heads from the device register, sectors per track from the count
        if (c.nsect === 0) return this.fail(ch, ABRT);
        d.heads = (c.select & 0x0f) + 1; d.sectors = c.nsect;
        return this.complete(ch);
      case 0x70: // SEEK (obsolete in ATA-6 but still sent by old drivers)
      case 0xe0: case 0xe1: case 0xe2: case 0xe3: // STANDBY/IDLE (IMMEDIATE): nothing spins down
        return this.complete(ch);
      case 0xe5: // CHECK POWER MODE (§8.6): FFh = active or idle
        c.nsect = 0xff;
        return this.complete(ch);
      default:
        if (cmd >= 0x10 && cmd <= 0x1f) return this.complete(ch); // RECALIBRATE (obsolete)
        // Anything else, including the packet commands of ATAPI, is aborted (§6.2.1, "Aborted command").
        return this.fail(ch, ABRT);
    }
  }

  private setFeatures(ch: number): void {
    const c = this.state.channels[ch], d = this.drive(ch);
    switch (c.feature) {
      case 0x02: d.writeCache = true; break;  // enable write cache
      case 0x82: d.writeCache = false; break; // disable write cache: every write is flushed before it completes
      case 0x03: { // set transfer mode from the count register (§8.37.10)
        const type = c.nsect >> 3, mode = c.nsect & 7;
        // PIO default (00000b/00001b), PIO flow control modes 0-4, multiword DMA 0-2 (IDENTIFY words 63/64).
        if (!((type === 0 && mode <= 1) || (type === 1 && mode <= 4) || (type === 4 && mode <= 2))) return this.fail(ch, ABRT);
        d.mode = c.nsect;
        break;
      }
      case 0x55: case 0xaa: case 0x66: case 0xcc: break; // look-ahead and power-on defaults: no behaviour to change
      default: return this.fail(ch, ABRT);
    }
    this.complete(ch);
  }

  /** The starting sector and count of a read/write command (LBA28, LBA48 or CHS addressing, §7.1). */
  private address(ch: number, ext: boolean): { lba: number; count: number } {
    const c = this.state.channels[ch], d = this.drive(ch);
    if (ext) {
      const lba = (c.hobLbah * 2 ** 40) + (c.hobLbam * 2 ** 32) + (c.hobLbal * 2 ** 24) + (c.lbah << 16 | c.lbam << 8 | c.lbal);
      const n = c.hobNsect << 8 | c.nsect;
      return { lba, count: n === 0 ? 65536 : n };
    }
    const count = c.nsect === 0 ? 256 : c.nsect;
    if (c.select & LBA) return { lba: ((c.select & 0x0f) << 24 | c.lbah << 16 | c.lbam << 8 | c.lbal) >>> 0, count };
    const cyl = c.lbah << 8 | c.lbam, head = c.select & 0x0f, sector = c.lbal;
    if (sector === 0 || sector > d.sectors || head >= d.heads) return { lba: Infinity, count };
    return { lba: (cyl * d.heads + head) * d.sectors + sector - 1, count };
  }

  private rw(ch: number, ext: boolean, multiple: boolean, kind: Xfer): void {
    const c = this.state.channels[ch], d = this.drive(ch), disk = this.disk(ch)!;
    if (multiple && d.multiple === 0) return this.fail(ch, ABRT); // READ/WRITE MULTIPLE before SET MULTIPLE (§8.24)
    const { lba, count } = this.address(ch, ext);
    if (lba + count > disk.size / SECTOR) return this.fail(ch, IDNF);
    if ((kind === Xfer.PioOut || kind === Xfer.DmaOut) && disk.readOnly) return this.fail(ch, ABRT);
    c.lba = lba; c.remaining = count; c.block = multiple ? d.multiple : 1;
    if (kind === Xfer.DmaIn || kind === Xfer.DmaOut) {
      c.xfer = kind;
      d.status = DRDY | DSC | DRQ;
      this.runDma(ch);
      return;
    }
    if (kind === Xfer.PioIn) { if (this.loadBlock(ch)) this.startBlock(ch, Xfer.PioIn, true); return; }
    // PIO out: the first block is requested without an interrupt (§9.8, "PIO data-out").
    this.startBlock(ch, Xfer.PioOut, false);
  }

  /** Reads the next DRQ block from the disk into the channel buffer; false (and the command failed) on error. */
  private loadBlock(ch: number): boolean {
    const c = this.state.channels[ch];
    const n = Math.min(c.block, c.remaining);
    try {
      this.disk(ch)!.read(c.lba * SECTOR, c.buf.subarray(0, n * SECTOR));
    } catch (e) {
      this.log(`piix3-ide: read of sector ${c.lba} failed: ${(e as Error).message}`);
      this.fail(ch, UNC);
      return false;
    }
    return true;
  }

  private startBlock(ch: number, kind: Xfer, irq: boolean): void {
    const c = this.state.channels[ch];
    c.xfer = kind;
    c.bufPos = 0;
    c.bufLen = Math.min(c.block, c.remaining) * SECTOR;
    this.drive(ch).status = DRDY | DSC | DRQ;
    if (irq) this.setIrq(ch, true);
  }

  private complete(ch: number): void {
    const c = this.state.channels[ch];
    c.xfer = Xfer.None;
    this.drive(ch).status = DRDY | DSC;
    this.setIrq(ch, true);
  }

  private fail(ch: number, error: number): void {
    const c = this.state.channels[ch], d = this.drive(ch);
    c.xfer = Xfer.None;
    d.error = error;
    d.status = DRDY | DSC | ERR;
    this.setIrq(ch, true);
  }

  // --- PIO data port ------------------------------------------------------------------------------------------

  private dataRead(ch: number, size: 1 | 2 | 4): number {
    const c = this.state.channels[ch];
    if (c.xfer !== Xfer.PioIn || !this.disk(ch)) return 0;
    let v = 0;
    for (let i = 0; i < size && c.bufPos < c.bufLen; i++) v |= c.buf[c.bufPos++] << (8 * i);
    if (c.bufPos >= c.bufLen) this.blockDone(ch);
    return v >>> 0;
  }

  private dataWrite(ch: number, size: 1 | 2 | 4, v: number): void {
    const c = this.state.channels[ch];
    if (c.xfer !== Xfer.PioOut || !this.disk(ch)) return;
    for (let i = 0; i < size && c.bufPos < c.bufLen; i++) c.buf[c.bufPos++] = (v >>> (8 * i)) & 0xff;
    if (c.bufPos >= c.bufLen) this.blockDone(ch);
  }

  /** The host moved a whole DRQ block: write it out or fetch the next, interrupting as §9.7/§9.8 say. */
  private blockDone(ch: number): void {
    const c = this.state.channels[ch];
    const n = c.bufLen / SECTOR;
    if (c.xfer === Xfer.PioOut) {
      const disk = this.disk(ch)!;
      try {
        disk.write(c.lba * SECTOR, c.buf.subarray(0, c.bufLen));
        if (!this.drive(ch).writeCache && c.remaining === n) disk.flush();
      } catch (e) {
        this.log(`piix3-ide: write of sector ${c.lba} failed: ${(e as Error).message}`);
        return this.fail(ch, ABRT);
      }
    }
    c.lba += n; c.remaining -= n;
    if (c.remaining <= 0) {
      // Reads end silently after the last block (its interrupt came before it); writes interrupt at the end.
      if (c.xfer === Xfer.PioOut) return this.complete(ch);
      c.xfer = Xfer.None;
      this.drive(ch).status = DRDY | DSC;
      return;
    }
    if (c.xfer === Xfer.PioIn) { if (this.loadBlock(ch)) this.startBlock(ch, Xfer.PioIn, true); }
    else this.startBlock(ch, Xfer.PioOut, true);
  }

  // --- Bus master DMA (PIIX3 §2.7, §5.4 "Bus master function") ----------------------------------------------

  private bmRead(off: number, size: 1 | 2 | 4): number {
    let v = 0;
    for (let i = 0; i < size; i++) v |= this.bmReadByte(off + i) << (8 * i);
    return v >>> 0;
  }

  private bmReadByte(off: number): number {
    const c = this.state.channels[off >> 3];
    if (!c) return 0xff;
    switch (off & 7) {
      case 0: return c.bmCmd;
      case 2: return c.bmStatus;
      case 4: case 5: case 6: case 7: return (c.bmPrd >>> (8 * ((off & 7) - 4))) & 0xff;
      default: return 0;
    }
  }

  private bmWrite(off: number, size: 1 | 2 | 4, v: number): void {
    for (let i = 0; i < size; i++) this.bmWriteByte(off + i, (v >>> (8 * i)) & 0xff);
  }

  private bmWriteByte(off: number, v: number): void {
    const ch = off >> 3, c = this.state.channels[ch];
    if (!c) return;
    switch (off & 7) {
      case 0: {
        const old = c.bmCmd;
        c.bmCmd = v & (BM_START | BM_WRITE_TO_MEMORY);
        if (v & BM_START && !(old & BM_START)) { c.bmStatus |= BM_ACTIVE; this.runDma(ch); }
        // Clearing start stops the engine; a transfer it cut short is lost (§2.7.1 bit 0).
        else if (!(v & BM_START)) c.bmStatus &= ~BM_ACTIVE;
        break;
      }
      case 2:
        // Error and interrupt are write-one-to-clear, the two drive-capable bits read/write (§2.7.2).
        c.bmStatus = (c.bmStatus & ~(v & (BM_ERROR | BM_INTERRUPT)) & ~BM_DMA_CAPABLE) | (v & BM_DMA_CAPABLE);
        break;
      case 4: case 5: case 6: case 7: {
        const sh = 8 * ((off & 7) - 4);
        // The descriptor table is dword aligned: bits 1:0 are hardwired to zero (§2.7.3).
        c.bmPrd = ((c.bmPrd & ~(0xff << sh)) | (v << sh)) & ~3;
        c.bmPrd >>>= 0;
        break;
      }
    }
  }

  /** Runs a DMA command once the device has one pending and the bus master has been started. */
  private runDma(ch: number): void {
    const c = this.state.channels[ch];
    if ((c.xfer !== Xfer.DmaIn && c.xfer !== Xfer.DmaOut) || !(c.bmCmd & BM_START)) return;
    if (!(this.command & CMD_BUS_MASTER)) return; // the function may not master the bus yet
    const disk = this.disk(ch)!;
    const toMemory = c.xfer === Xfer.DmaIn;
    const total = c.remaining * SECTOR;
    const data = new Uint8Array(total);
    if (toMemory) {
      try { disk.read(c.lba * SECTOR, data); } catch (e) {
        this.log(`piix3-ide: read of sector ${c.lba} failed: ${(e as Error).message}`);
        c.bmStatus &= ~BM_ACTIVE;
        return this.fail(ch, UNC);
      }
    }
    // Walk the physical region descriptors: base address, byte count (0 means 64 KiB), EOT (§2.7.3).
    let done = 0, prd = c.bmPrd, eot = false;
    for (let guard = 0; done < total && !eot && guard < 65536; guard++, prd = (prd + 8) >>> 0) {
      const base = this.mem.read32(prd) & ~1;
      const flags = this.mem.read32(prd + 4);
      const len = (flags & 0xfffe) || 0x10000;
      eot = (flags & PRD_EOT) !== 0;
      const n = Math.min(len, total - done);
      if (toMemory) this.mem.writeBytes(base >>> 0, data.subarray(done, done + n));
      else this.mem.readBytes(base >>> 0, n, data, done);
      done += n;
      // A region larger than the rest of the transfer leaves the engine active (§5.4.2: the drive ends first).
      if (n < len) eot = false;
      if (n < len) break;
    }
    if (done < total) {
      // The table ran out before the device's data did: the PIIX stops with active clear and the
      // interrupt from the aborted command tells the driver (§5.4.2, "PRD is smaller than the transfer").
      c.bmStatus &= ~BM_ACTIVE;
      return this.fail(ch, ABRT);
    }
    if (!toMemory) {
      try {
        disk.write(c.lba * SECTOR, data);
        if (!this.drive(ch).writeCache) disk.flush();
      } catch (e) {
        this.log(`piix3-ide: write of sector ${c.lba} failed: ${(e as Error).message}`);
        c.bmStatus &= ~BM_ACTIVE;
        return this.fail(ch, ABRT);
      }
    }
    c.lba += c.remaining; c.remaining = 0;
    // Transfer done exactly at the end of the table: the engine goes idle (§2.7.2 bit 0).
    if (eot) c.bmStatus &= ~BM_ACTIVE;
    this.complete(ch);
  }

  // --- IDENTIFY DEVICE (ATA-6 §8.15, Table 26) -----------------------------------------------------------------

  private identify(ch: number): Uint8Array {
    const unit = this.unit(ch), disk = this.disk(ch)!, d = this.drive(ch);
    const w = new Uint16Array(256);
    const total = Math.floor(disk.size / SECTOR);
    const cyls = Math.min(16383, Math.max(1, Math.floor(total / (16 * 63))));
    const str = (at: number, words: number, s: string) => {
      // ATA strings hold the first character of each pair in the high byte (§3.2.9).
      const t = s.padEnd(words * 2, ' ');
      for (let i = 0; i < words; i++) w[at + i] = (t.charCodeAt(2 * i) << 8) | t.charCodeAt(2 * i + 1);
    };
    w[0] = 0x0040; // ATA device, fixed (not removable)
    w[1] = cyls; w[3] = 16; w[6] = 63;
    str(10, 10, `TRAPEZE-IDE-${ch}${unit}`);
    str(23, 4, '0.1');
    str(27, 20, 'Trapeze ATA disk');
    w[47] = 0x8000 | MAX_MULTIPLE;
    w[49] = 0x0300 | 0x0800 | 0x0200; // DMA, LBA, IORDY supported
    w[50] = 0x4000;
    w[51] = 0x0200; // PIO timing mode 2 (obsolete word)
    w[53] = 0x0007; // words 54-58, 64-70 and 88 are valid
    const curCyls = Math.min(65535, Math.floor(total / (d.heads * d.sectors)));
    w[54] = curCyls; w[55] = d.heads; w[56] = d.sectors;
    const chs = curCyls * d.heads * d.sectors;
    w[57] = chs & 0xffff; w[58] = chs >>> 16;
    w[59] = d.multiple ? 0x0100 | d.multiple : 0;
    const lba28 = Math.min(total, 0x0fffffff);
    w[60] = lba28 & 0xffff; w[61] = lba28 >>> 16;
    // Multiword DMA 0-2 supported, the selected one flagged in the high byte.
    w[63] = 0x0007 | ((d.mode >> 3) === 4 ? 0x100 << (d.mode & 7) : 0);
    w[64] = 0x0003; // PIO 3 and 4
    w[65] = 120; w[66] = 120; w[67] = 120; w[68] = 120;
    w[80] = 0x007e; // ATA/ATAPI-1 through -6
    // Command sets: write cache, 48-bit addressing, FLUSH CACHE and FLUSH CACHE EXT (words 82-87).
    w[82] = 0x0020; w[83] = 0x4000 | 0x2000 | 0x1000 | 0x0400; w[84] = 0x4000;
    w[85] = d.writeCache ? 0x0020 : 0; w[86] = 0x2000 | 0x1000 | 0x0400; w[87] = 0x4000;
    w[100] = total & 0xffff; w[101] = (total >>> 16) & 0xffff; w[102] = Math.floor(total / 2 ** 32) & 0xffff; w[103] = 0;
    const out = new Uint8Array(512);
    for (let i = 0; i < 256; i++) { out[2 * i] = w[i] & 0xff; out[2 * i + 1] = w[i] >> 8; }
    return out;
  }

  /** Connects a disk at position `index` (0 primary master ... 3 secondary slave) before the guest runs. */
  attachDisk(index: number, disk: BlockBackend): void {
    if (index < 0 || index > 3) throw new RangeError('an IDE controller has two channels of two devices');
    if (this.disks[index]) throw new Error(`IDE position ${index} already has a disk`);
    this.disks[index] = disk;
  }

  override afterRestore(): void {
    super.afterRestore();
    this.updateIrq(0); this.updateIrq(1);
  }
}

/** PCI device/function of the PIIX3 IDE function: slot 1 with the ISA bridge, function 1 (PIIX3 §2.4). */
export const PIIX_IDE_SLOT = 1, PIIX_IDE_FUNCTION = 1;

/**
 * An attach hook (PcConfig.devices) putting `disk` at IDE position `index` (0 = primary master, hda/sda),
 * creating the controller on first use; the IDE interrupts are ISA IRQ14/15 on both the PIC and the I/O APIC.
 */
export function attachIdeDisk(disk: BlockBackend, index: number, log?: (msg: string) => void): (m: PcMachine) => void {
  return (m) => {
    let ide = m.pci.functions[(PIIX_IDE_SLOT << 3) | PIIX_IDE_FUNCTION];
    if (!(ide instanceof PiixIde)) {
      const isa = (irq: number) => new IrqLine([{ sink: m.pic, line: irq }, { sink: m.ioapic, line: irq }], m.counters.counter('piix3-ide'));
      ide = new PiixIde({ io: m.io, mem: m.mem, irqs: [isa(14), isa(15)], drives: [], log });
      m.pci.add(ide, PIIX_IDE_SLOT, PIIX_IDE_FUNCTION);
    }
    (ide as PiixIde).attachDisk(index, disk);
  };
}
