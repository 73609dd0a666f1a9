// Realtek RTL8029AS (PCI 10EC:8029), an NE2000-compatible DP8390 core on PCI, as driven by Linux's `ne2k-pci`.
// Written from National Semiconductor's "DP8390D/NS32490D Network Interface Controller" datasheet (register
// pages, buffer ring, remote DMA) and Realtek's RTL8029AS datasheet (the NE2000 I/O map: 16 registers, a
// data port at 10h and a reset port at 1Fh; 16 KiB of buffer RAM at 4000h-7FFFh; the station address PROM
// at 0000h-001Fh, each byte doubled for the 16-bit bus; RTL8029 ID bytes 'P','C' in page 0 at 0Ah/0Bh).

import { PciFunction, type PciConfigState } from '../../machine/pci.ts';
import type { GuestMemory } from '../../memory/guest-memory.ts';
import type { Clock } from '../../machine/clock.ts';
import type { NetBackend } from './backend.ts';
import { isBroadcast, isMulticast, macEquals, multicastHash6, NicPort, withFcs, ETH_FRAME_MAX_VLAN, ETH_HLEN, type StoreResult, type NicOptions } from './ethernet.ts';

// Command register (CR) bits.
const CR_STP = 0x01, CR_STA = 0x02, CR_TXP = 0x04, CR_RD_READ = 0x08, CR_RD_WRITE = 0x10, CR_RD_ABORT = 0x20;
// Interrupt status bits (ISR).
export const ISR_PRX = 0x01, ISR_PTX = 0x02, ISR_RXE = 0x04, ISR_TXE = 0x08, ISR_OVW = 0x10, ISR_CNT = 0x20, ISR_RDC = 0x40, ISR_RST = 0x80;
// Receive configuration (RCR) and receive status (RSR).
// SEP (0x01, keep errored packets) and AR (0x02, keep runts) have no effect: the host side delivers only
// whole, valid frames.
const RCR_AB = 0x04, RCR_AM = 0x08, RCR_PRO = 0x10, RCR_MON = 0x20;
const RSR_PRX = 0x01, RSR_MPA = 0x10, RSR_PHY = 0x20, RSR_DIS = 0x40;
const TSR_PTX = 0x01, TSR_ABT = 0x08;
const DCR_WTS = 0x01;

/** Buffer RAM (RTL8029AS: 16 KiB at 4000h-7FFFh); the PROM occupies 0000h-001Fh. */
const RAM_START = 0x4000, RAM_END = 0x8000;

export const NE2K_DEFAULT_MAC = [0x52, 0x54, 0x00, 0x12, 0x34, 0x58];

export type Ne2kState = PciConfigState & {
  cr: number; pstart: number; pstop: number; bnry: number; tpsr: number; tbcr: number; isr: number; imr: number;
  rsar: number; rbcr: number; rcr: number; tcr: number; dcr: number; tsr: number; rsr: number; ncr: number;
  curr: number; par: Uint8Array; mar: Uint8Array;
  /** Tally counters CNTR0-2: frame alignment errors, CRC errors, missed packets (8 bits each, clear on read). */
  cntr: Uint8Array;
  /** Address of the last packet received (CLDA), and page 3 CONFIG bytes and 9346CR of the RTL8029AS. */
  clda: number; rtlConfig: Uint8Array; cr9346: number;
  /** The station PROM and buffer RAM as the remote DMA engine sees them (0000h-7FFFh). */
  mem: Uint8Array;
};

export type Ne2kOptions = NicOptions;

export class Ne2kPci extends PciFunction<Ne2kState> {
  readonly port: NicPort;

  constructor(opts: Ne2kOptions) {
    const mac = opts.mac ?? NE2K_DEFAULT_MAC;
    super(opts.name ?? 'ne2k-pci', { vendor: 0x10ec, device: 0x8029, classCode: 0x020000, revision: 0, subsystemVendor: 0x10ec, subsystem: 0x8029, interruptPin: 1 }, {
      cr: CR_STP | CR_RD_ABORT, pstart: 0, pstop: 0, bnry: 0, tpsr: 0, tbcr: 0, isr: ISR_RST, imr: 0, rsar: 0, rbcr: 0, rcr: 0, tcr: 0, dcr: 0,
      tsr: 0, rsr: 0, ncr: 0, curr: 0, par: new Uint8Array(6), mar: new Uint8Array(8), cntr: new Uint8Array(3), clda: 0,
      rtlConfig: new Uint8Array(4), cr9346: 0, mem: new Uint8Array(RAM_END),
    });
    // PROM: the address with each byte doubled (the 16-bit bus reads a word per byte), then the NE2000
    // signature bytes 57h at 0Eh/0Fh (doubled: 1Ch-1Fh).
    const m = this.state.mem;
    for (let i = 0; i < 6; i++) { m[2 * i] = mac[i]; m[2 * i + 1] = mac[i]; }
    for (let i = 12; i < 28; i++) m[i] = 0;
    m[28] = m[29] = m[30] = m[31] = 0x57;
    this.setBar(0, { kind: 'io', size: 32, read: (o, s) => this.read(o, s), write: (o, s, v) => this.write(o, s, v) });
    this.port = new NicPort(opts.backend, {
      accepts: (f) => this.accepts(f), store: (f) => this.store(f), missed: () => this.missed(), linkChanged: () => {},
    }, { maxFrame: ETH_FRAME_MAX_VLAN, wake: opts.wake });
  }

  get stats() { return this.port.stats; }

  // --- I/O ports -----------------------------------------------------------------------------------------------

  private read(off: number, size: 1 | 2 | 4): number {
    this.stats.regReads++;
    if (off >= 0x10 && off < 0x18) return this.dataRead(size);
    if (off >= 0x18) { this.resetChip(); return 0; } // reading the reset port resets the NIC
    if (size !== 1) { this.stats.badRegAccesses++; return this.readReg(off) | (this.readReg(off + 1) << 8); }
    return this.readReg(off);
  }

  private write(off: number, size: 1 | 2 | 4, v: number): void {
    this.stats.regWrites++;
    if (off >= 0x10 && off < 0x18) { this.dataWrite(size, v); return; }
    if (off >= 0x18) return; // writes to the reset port do nothing; the read did the reset
    if (size !== 1) { this.stats.badRegAccesses++; this.writeReg(off, v & 0xff); return; }
    this.writeReg(off, v & 0xff);
  }

  /** Hardware reset through the reset port: the NIC enters the stopped state with ISR.RST set (DP8390 "Initialization"). */
  private resetChip(): void {
    const s = this.state;
    s.cr = CR_STP | CR_RD_ABORT;
    s.isr = ISR_RST;
    s.imr = 0;
    s.dcr &= ~DCR_WTS;
    s.tcr = 0; s.rcr = 0;
    this.port.flush();
    this.updateIrq();
  }

  private readReg(o: number): number {
    const s = this.state;
    if (o === 0) return s.cr;
    switch (s.cr >> 6) {
      case 0:
        switch (o) {
          case 1: return s.clda & 0xff;
          case 2: return s.clda >> 8;
          case 3: return s.bnry;
          case 4: return s.tsr;
          case 5: return s.ncr;
          case 6: return 0; // FIFO (loopback diagnostics only)
          case 7: return s.isr;
          case 8: return s.rsar & 0xff;
          case 9: return s.rsar >> 8;
          case 0xa: return 0x50; // RTL8029 ID 'P'
          case 0xb: return 0x43; // 'C'
          case 0xc: return s.rsr;
          case 0xd: case 0xe: case 0xf: { const v = s.cntr[o - 0xd]; s.cntr[o - 0xd] = 0; return v; } // clear on read
        }
        break;
      case 1:
        if (o <= 6) return s.par[o - 1];
        if (o === 7) return s.curr;
        return s.mar[o - 8];
      case 2:
        switch (o) {
          case 1: return s.pstart;
          case 2: return s.pstop;
          case 3: return 0; // remote next packet pointer (unused by the NE2000 data path)
          case 4: return s.tpsr;
          case 5: return 0; // local next packet pointer
          case 0xc: return s.rcr | 0xc0;
          case 0xd: return s.tcr | 0xe0;
          case 0xe: return s.dcr | 0x80;
          case 0xf: return s.imr | 0x80;
        }
        break;
      case 3:
        // RTL8029AS page 3: 9346CR, CONFIG0-3 and the 'P','C' ID again.
        switch (o) {
          case 1: return s.cr9346;
          case 3: case 4: case 5: case 6: return s.rtlConfig[o - 3];
          case 0xe: return 0x50;
          case 0xf: return 0x43;
        }
    }
    this.stats.badRegAccesses++;
    return 0;
  }

  private writeReg(o: number, v: number): void {
    const s = this.state;
    if (o === 0) { this.writeCr(v); return; }
    switch (s.cr >> 6) {
      case 0:
        switch (o) {
          case 1: s.pstart = v; return;
          case 2: s.pstop = v; return;
          case 3: s.bnry = v; this.port.drain(); return;
          case 4: s.tpsr = v; return;
          case 5: s.tbcr = (s.tbcr & 0xff00) | v; return;
          case 6: s.tbcr = (s.tbcr & 0xff) | (v << 8); return;
          case 7: // write 1 to clear; RST is status only
            s.isr &= ~(v & 0x7f);
            // Acknowledging an overflow while frames still wait for the ring: the ring is still exhausted, so
            // OVW comes back (store sets it again) unless the waiting frames now fit. lib8390's ei_rx_overrun
            // acks OVW after one ei_receive of at most 9 packets; without this, frames left waiting would
            // raise nothing until the port's FIFO overflowed.
            if (v & ISR_OVW) this.port.drain();
            this.updateIrq();
            return;
          case 8: s.rsar = (s.rsar & 0xff00) | v; return;
          case 9: s.rsar = (s.rsar & 0xff) | (v << 8); return;
          case 0xa: s.rbcr = (s.rbcr & 0xff00) | v; return;
          case 0xb: s.rbcr = (s.rbcr & 0xff) | (v << 8); return;
          case 0xc: s.rcr = v & 0x3f; this.port.drain(); return;
          case 0xd: s.tcr = v & 0x1f; return;
          case 0xe: s.dcr = v & 0x7f; return;
          case 0xf: s.imr = v & 0x7f; this.updateIrq(); return;
        }
        break;
      case 1:
        if (o <= 6) { s.par[o - 1] = v; return; }
        if (o === 7) { s.curr = v; return; }
        s.mar[o - 8] = v;
        return;
      case 2:
        // Page 2 is for diagnostics; the pointers written here are the same registers as page 0 reads.
        switch (o) {
          case 1: s.pstart = v; return;
          case 2: s.pstop = v; return;
          case 4: s.tpsr = v; return;
        }
        break;
      case 3:
        switch (o) {
          case 1: s.cr9346 = v; return;
          // CONFIG registers are writable only when 9346CR selects config write enable (EEM = 11b).
          case 3: case 4: case 5: case 6: if ((s.cr9346 >> 6) === 3) s.rtlConfig[o - 3] = v; return;
        }
    }
    this.stats.badRegAccesses++;
  }

  private writeCr(v: number): void {
    const s = this.state;
    // RD2-0: 1xx aborts/completes remote DMA; 001 read, 010 write. PS1-0 select the page.
    let rd = v & 0x38;
    if (rd & CR_RD_ABORT) rd = CR_RD_ABORT;
    s.cr = (v & 0xc0) | rd | (v & (CR_STP | CR_STA)) | (s.cr & CR_TXP);
    if (v & CR_STP) { s.cr = (s.cr & ~CR_STA) | CR_STP; s.isr |= ISR_RST; this.updateIrq(); }
    else if (v & CR_STA) { s.cr &= ~CR_STP; s.isr &= ~ISR_RST; this.port.drain(); }
    // A remote DMA with a zero byte count completes at once (RDC).
    if ((rd === CR_RD_READ || rd === CR_RD_WRITE) && s.rbcr === 0) { s.isr |= ISR_RDC; this.updateIrq(); }
    if ((v & CR_TXP) && !(s.cr & CR_STP)) this.transmit();
  }

  // --- Remote DMA through the data port --------------------------------------------------------------------

  private memRead(a: number): number { return a < RAM_END && (a < 32 || a >= RAM_START) ? this.state.mem[a] : 0xff; }
  private memWrite(a: number, b: number): void { if (a >= RAM_START && a < RAM_END) this.state.mem[a] = b; }

  /** Advances the remote address: it wraps from PSTOP to PSTART inside the ring (DP8390 "Remote DMA"). */
  private advance(n: number): void {
    const s = this.state;
    s.rsar = (s.rsar + n) & 0xffff;
    if (s.pstop && s.rsar === s.pstop << 8) s.rsar = s.pstart << 8;
    s.rbcr = Math.max(0, s.rbcr - n);
    if (s.rbcr === 0) { s.isr |= ISR_RDC; this.updateIrq(); }
  }

  private dataRead(size: 1 | 2 | 4): number {
    const s = this.state;
    if ((s.cr & 0x38) !== CR_RD_READ) { this.stats.badRegAccesses++; return 0xff; }
    if (size === 4) return (this.dataRead(2) | (this.dataRead(2) << 16)) >>> 0;
    if (s.dcr & DCR_WTS) {
      // Word transfer: each access moves 16 bits; a byte access sees the low byte.
      const a = s.rsar & ~1;
      const v = this.memRead(a) | (this.memRead(a + 1) << 8);
      this.advance(2);
      return size === 1 ? v & 0xff : v;
    }
    const v = this.memRead(s.rsar);
    this.advance(1);
    return size === 2 ? v | (this.dataRead(1) << 8) : v;
  }

  private dataWrite(size: 1 | 2 | 4, v: number): void {
    const s = this.state;
    if ((s.cr & 0x38) !== CR_RD_WRITE) { this.stats.badRegAccesses++; return; }
    if (size === 4) { this.dataWrite(2, v & 0xffff); this.dataWrite(2, v >>> 16); return; }
    if (s.dcr & DCR_WTS) {
      const a = s.rsar & ~1;
      this.memWrite(a, v & 0xff);
      this.memWrite(a + 1, size === 1 ? 0 : (v >> 8) & 0xff);
      this.advance(2);
      return;
    }
    this.memWrite(s.rsar, v & 0xff);
    this.advance(1);
    if (size === 2) this.dataWrite(1, v >> 8);
  }

  // --- Interrupts --------------------------------------------------------------------------------------------

  private updateIrq(): void {
    const level = (this.state.isr & this.state.imr & 0x7f) !== 0;
    if (level && !this.state.intx) this.stats.interrupts++;
    if (level !== this.state.intx) this.setIntx(level);
  }

  private raise(bits: number): void { this.state.isr |= bits; this.updateIrq(); }

  // --- Receive -----------------------------------------------------------------------------------------------

  /** Address recognition (DP8390 "Address Matching"): physical address, multicast hash, broadcast, promiscuous. */
  private accepts(f: Uint8Array): boolean {
    const s = this.state;
    if (s.rcr & RCR_PRO) return true;
    if (isBroadcast(f)) return (s.rcr & RCR_AB) !== 0;
    if (isMulticast(f)) {
      if (!(s.rcr & RCR_AM)) return false;
      const h = multicastHash6(f);
      return (s.mar[h >> 3] & (1 << (h & 7))) !== 0;
    }
    return macEquals(f, 0, s.par);
  }

  private missed(): void {
    const s = this.state;
    s.rsr |= RSR_MPA;
    this.countMissed();
    this.raise(ISR_OVW);
  }

  private countMissed(): void {
    const c = this.state.cntr;
    if (c[2] < 0xff) c[2]++;
    // CNT is raised when a tally counter's MSB sets (DP8390 "Tally Counters").
    if (c[2] & 0x80) this.raise(ISR_CNT);
  }

  /**
   * The receive ring (DP8390 "Buffer Ring"): 256-byte pages from PSTART to PSTOP; a packet is stored at CURR
   * behind a 4-byte header (receive status, next page, byte count including the header), and the NIC
   * never writes into the page BNRY points at: with no room the ring has overflowed.
   */
  private store(frame: Uint8Array): StoreResult {
    const s = this.state;
    if (s.cr & CR_STP) return 'off';
    if (s.rcr & RCR_MON) { s.rsr = RSR_DIS | RSR_MPA; this.countMissed(); return 'ok'; } // monitor: checked, counted, not stored
    const start = s.pstart, stop = s.pstop;
    if (start < RAM_START >> 8 || stop > RAM_END >> 8 || start >= stop || s.curr < start || s.curr >= stop) {
      this.stats.dmaFaults++; // nonsense ring: nothing can be stored
      return 'full';
    }
    const data = withFcs(frame);
    const total = data.length + 4;
    // The Next Packet Pointer is the page after the one the local DMA address is in once the last byte is
    // stored (DP8390D "Buffer Ring" / "Storage Format"): that address has already crossed into the next page
    // when a packet fills its last page exactly, so such a packet uses one more page than ceil(total / 256).
    // Drivers check this: Linux's lib8390 ei_receive expects next = this + 1 + (count >> 8) (or one more) and
    // otherwise discards the whole ring as a "bogus packet header", so a TCP segment of such a length was
    // dropped every time it was retransmitted and the connection stalled.
    const pages = (total >> 8) + 1;
    const ringPages = stop - start;
    const avail = s.curr < s.bnry ? s.bnry - s.curr : ringPages - (s.curr - s.bnry);
    if (pages >= avail) {
      // The ring is exhausted: the chip sets OVW ("receive buffer ring storage resources have been exhausted",
      // DP8390D ISR bit 4) when its local DMA reaches the Boundary Pointer. Where the chip would then drop the
      // packet, the frame waits in the port's FIFO (counted as missed only if that overflows too), but the
      // interrupt must still come: lib8390's ei_receive takes at most 9 packets per call and then acks PRX, so
      // a full ring whose arrivals only queued silently would never be looked at again, and a TCP sender
      // waiting out its retransmission timer would find the connection stalled. So while frames wait, OVW is
      // set (here, and again when the driver acks it; see the ISR write).
      this.raise(ISR_OVW);
      return 'full';
    }
    let next = s.curr + pages;
    if (next >= stop) next -= ringPages;
    const status = RSR_PRX | (isMulticast(frame) ? RSR_PHY : 0);
    const hdr = [status, next, total & 0xff, total >> 8];
    let a = s.curr << 8;
    const put = (b: number) => { s.mem[a] = b; a++; if (a === stop << 8) a = start << 8; };
    for (const b of hdr) put(b);
    for (let i = 0; i < data.length; i++) put(data[i]);
    s.clda = s.curr << 8;
    s.curr = next;
    s.rsr = status;
    this.raise(ISR_PRX);
    return 'ok';
  }

  // --- Transmit ----------------------------------------------------------------------------------------------

  /** Sends TBCR bytes from page TPSR (DP8390 "Transmit Packet"); bad lengths abort with TXE. */
  private transmit(): void {
    const s = this.state;
    const a = s.tpsr << 8, n = s.tbcr;
    if (n < ETH_HLEN || n > ETH_FRAME_MAX_VLAN || a < RAM_START || a + n > RAM_END) {
      this.stats.txMalformed++;
      s.tsr = TSR_ABT;
      this.raise(ISR_TXE);
      return;
    }
    const f = s.mem.slice(a, a + n);
    if ((s.tcr & 0x06) !== 0) {
      // Loopback modes (TCR LB1-0): the frame comes back to our own receiver, not onto the wire.
      this.port.receive(f);
    } else if (this.port.linkUp) this.port.transmit(f);
    s.tsr = TSR_PTX;
    s.ncr = 0;
    s.cr &= ~CR_TXP;
    this.raise(ISR_PTX);
  }

  override afterRestore(): void {
    super.afterRestore();
    this.updateIrq();
  }
}
