// Realtek RTL8139C+ (PCI 10EC:8139) in its RTL8139-compatible mode, as driven by Linux's `8139too`. Written
// from the "RTL8139C(L)+ Advanced PCI/Mini-PCI/CardBus 3.3V Single-Chip 10/100M Fast Ethernet Controller"
// datasheet (rev 1.6) and Realtek's "RTL8139(A/B) Programming Guide"; section names below refer to them.
// Registers are reachable through BAR0 (I/O) and BAR1 (memory), 256 bytes each.
//
// The PCI revision is 0x10: 8139too leaves chips with revision >= 0x20 to 8139cp (C+ mode), and only
// 8139too is in the guest's initramfs; TCR's hardware version still says RTL8139C+.

import { PciFunction, CMD_BUS_MASTER, type PciConfigState } from '../../machine/pci.ts';
import type { GuestMemory } from '../../memory/guest-memory.ts';
import type { Clock, Timer } from '../../machine/clock.ts';
import type { NetBackend } from './backend.ts';
import { dmaOk, isBroadcast, isMulticast, macEquals, multicastHash6, NicPort, withFcs, ETH_FRAME_MAX_VLAN, ETH_HLEN, type StoreResult, type NicOptions } from './ethernet.ts';
import { eepromPins, newEeprom, type Eeprom93c46State } from './eeprom93c46.ts';

// Register map ("Register Descriptions", Table 6).
const IDR0 = 0x00, MAR0 = 0x08, TSD0 = 0x10, TSAD0 = 0x20, RBSTART = 0x30, CR = 0x37, CAPR = 0x38, CBR = 0x3a;
const IMR = 0x3c, ISR = 0x3e, TCR = 0x40, RCR = 0x44, TCTR = 0x48, MPC = 0x4c, CR9346 = 0x50, CONFIG0 = 0x51;
const CONFIG1 = 0x52, TIMERINT = 0x54, MSR = 0x58, CONFIG3 = 0x59, CONFIG4 = 0x5a, MULINT = 0x5c, RERID = 0x5e;
const TSAD_SUMMARY = 0x60, BMCR = 0x62, BMSR = 0x64, ANAR = 0x66, ANLPAR = 0x68, ANER = 0x6a, CSCR = 0x74, CONFIG5 = 0xd8;

export const ISR_ROK = 1 << 0, ISR_RER = 1 << 1, ISR_TOK = 1 << 2, ISR_TER = 1 << 3, ISR_RXOVW = 1 << 4, ISR_LINKCHG = 1 << 5;
export const ISR_FOVW = 1 << 6, ISR_TIMEOUT = 1 << 14;
const CR_BUFE = 1 << 0, CR_TE = 1 << 2, CR_RE = 1 << 3, CR_RST = 1 << 4;
const RCR_AAP = 1 << 0, RCR_APM = 1 << 1, RCR_AM = 1 << 2, RCR_AB = 1 << 3, RCR_WRAP = 1 << 7;
const TSD_OWN = 1 << 13, TSD_TOK = 1 << 15, TSD_TABT = 1 << 30;
// Receive packet header status ("Packet Header", Rx status register in Rx buffer).
const RX_ROK = 1 << 0, RX_BAR = 1 << 13, RX_PAM = 1 << 14, RX_MAR = 1 << 15;

/** TCR hardware version bits for the RTL8139C+ (bits 30-26 = 11101, 23-22 = 10). */
const HWVERID_8139CP = 0x74800000;
const HWVERID_MASK = 0x7cc00000;
/** Largest transmit descriptor size ("TSD: SIZE ... up to 1792 bytes"). */
const TX_MAX = 1792;
/** The PCI bus clock TCTR counts ("Timer CounT Register: 32-bit general-purpose counter at the PCI clock"). */
const PCI_HZ = 33_000_000;

export const RTL8139_DEFAULT_MAC = [0x52, 0x54, 0x00, 0x12, 0x34, 0x57];

export type Rtl8139State = PciConfigState & {
  /** The 256-byte register file; registers with behaviour are interpreted around it. */
  regs: Uint8Array;
  eeprom: Eeprom93c46State;
  /** Next transmit descriptor the chip will look at (they are used in round-robin order). */
  txNext: number;
  /** Clock time TCTR was last cleared. */
  tctrBase: number;
};

export type Rtl8139Options = NicOptions;

export class Rtl8139 extends PciFunction<Rtl8139State> {
  readonly port: NicPort;
  private readonly mem: GuestMemory;
  private readonly clock: Clock;
  private readonly timer: Timer;

  constructor(opts: Rtl8139Options) {
    const mac = opts.mac ?? RTL8139_DEFAULT_MAC;
    // 93C46 contents ("EEPROM (93C46) Contents"): ID 8129h, PCI IDs, the Ethernet address at bytes 0Eh-13h.
    const words = new Uint16Array(64);
    words[0] = 0x8129; words[1] = 0x10ec; words[2] = 0x8139; words[3] = 0x10ec; words[4] = 0x8139;
    words[5] = 0x4020; words[6] = 0xe110;
    for (let i = 0; i < 3; i++) words[7 + i] = mac[2 * i] | (mac[2 * i + 1] << 8);
    super(opts.name ?? 'rtl8139', { vendor: 0x10ec, device: 0x8139, classCode: 0x020000, revision: 0x10, subsystemVendor: 0x10ec, subsystem: 0x8139, interruptPin: 1 }, {
      regs: new Uint8Array(256), eeprom: newEeprom(words), txNext: 0, tctrBase: 0,
    });
    this.mem = opts.mem;
    this.clock = opts.clock;
    this.timer = this.clock.createTimer(() => this.onTimer());
    const bar = { size: 256, read: (o: number, s: 1 | 2 | 4) => this.read(o, s), write: (o: number, s: 1 | 2 | 4, v: number) => this.write(o, s, v) };
    this.setBar(0, { kind: 'io', ...bar });
    this.setBar(1, { kind: 'mem', ...bar });
    this.port = new NicPort(opts.backend, {
      accepts: (f) => this.accepts(f), store: (f) => this.store(f), missed: () => this.missed(), linkChanged: () => this.linkChanged(),
    }, { maxFrame: ETH_FRAME_MAX_VLAN, wake: opts.wake });
    this.powerOn();
  }

  get stats() { return this.port.stats; }
  get mac(): number[] { return [...this.state.regs.subarray(IDR0, IDR0 + 6)]; }

  private r8(o: number): number { return this.state.regs[o]; }
  private r16(o: number): number { return this.state.regs[o] | (this.state.regs[o + 1] << 8); }
  private r32(o: number): number { const r = this.state.regs; return (r[o] | (r[o + 1] << 8) | (r[o + 2] << 16) | (r[o + 3] << 24)) >>> 0; }
  private w8(o: number, v: number): void { this.state.regs[o] = v; }
  private w16(o: number, v: number): void { this.state.regs[o] = v; this.state.regs[o + 1] = v >>> 8; }
  private w32(o: number, v: number): void { for (let i = 0; i < 4; i++) this.state.regs[o + i] = v >>> (8 * i); }

  private powerOn(): void {
    const s = this.state;
    s.regs.fill(0);
    // The ID registers and CONFIG bytes are auto-loaded from the EEPROM at power-up ("9346CR: auto-load").
    this.autoload();
    this.w8(CONFIG0, 0x00); this.w8(CONFIG1, 0x00); this.w8(CONFIG3, 0x00); this.w8(CONFIG4, 0x00); this.w8(CONFIG5, 0x00);
    this.w8(MSR, 0x00);
    this.w16(BMCR, 0x3100); // autonegotiation enabled, 100 Mb/s, full duplex
    this.w16(ANAR, 0x05e1);
    this.w16(CSCR, 0x0000);
    this.w32(TCR, HWVERID_8139CP);
    this.reset();
  }

  private autoload(): void {
    const w = this.state.eeprom.words;
    for (let i = 0; i < 3; i++) { this.state.regs[IDR0 + 2 * i] = w[7 + i] & 0xff; this.state.regs[IDR0 + 2 * i + 1] = w[7 + i] >> 8; }
  }

  /** Software reset (CR.RST, "Command Register"): the ID and MAR registers and configuration keep their values. */
  private reset(): void {
    const s = this.state;
    this.w8(CR, CR_BUFE);
    for (let i = 0; i < 4; i++) this.w32(TSD0 + 4 * i, TSD_OWN);
    this.w16(IMR, 0); this.w16(ISR, 0);
    this.w16(CAPR, 0xfff0); this.w16(CBR, 0);
    this.w32(RCR, 0);
    this.w32(TCR, HWVERID_8139CP | (this.r32(TCR) & 0x03000000));
    this.w32(MPC, 0);
    s.txNext = 0;
    s.tctrBase = this.clock.now();
    this.port.flush();
    this.updateLink();
    this.updateIrq();
  }

  private updateLink(): void {
    const up = this.port?.linkUp ?? false;
    // BMSR: 100BASE-TX/10BASE-T capabilities, autoneg ability, link status, autoneg complete.
    this.w16(BMSR, 0x7809 | (up ? (1 << 2) | (1 << 5) : 0));
    this.w16(ANLPAR, up ? 0x45e1 : 0);
    this.w16(ANER, up ? 0x0001 : 0);
    // MSR LINKB is inverted: 1 = link failed ("Media Status Register").
    this.w8(MSR, (this.r8(MSR) & ~0x04) | (up ? 0 : 0x04));
  }

  private linkChanged(): void {
    this.updateLink();
    this.raise(ISR_LINKCHG);
  }

  // --- Register access ---------------------------------------------------------------------------------------

  private read(off: number, size: 1 | 2 | 4): number {
    this.stats.regReads++;
    let v = 0;
    for (let i = 0; i < size; i++) v |= this.readByte(off + i) << (8 * i);
    return v >>> 0;
  }

  private readByte(o: number): number {
    if (o >= 0x100) return 0xff;
    switch (o) {
      case CR: {
        const rd = (this.r16(CAPR) + 16) & 0xffff, wr = this.r16(CBR);
        return (this.r8(CR) & (CR_RE | CR_TE)) | ((rd % this.bufLen()) === wr ? CR_BUFE : 0);
      }
      case CR9346: {
        const v = this.r8(CR9346) & 0xce;
        return v | (((v >> 6) === 2 && this.state.eeprom.dout) ? 1 : 0);
      }
      case TCTR: case TCTR + 1: case TCTR + 2: case TCTR + 3:
        return (this.tctr() >>> (8 * (o - TCTR))) & 0xff;
      case TSAD_SUMMARY: case TSAD_SUMMARY + 1: {
        // Transmit status of all descriptors: TOK 15-12, TUN 11-8, TABT 7-4, OWN 3-0.
        let v = 0;
        for (let i = 0; i < 4; i++) {
          const t = this.r32(TSD0 + 4 * i);
          if (t & TSD_TOK) v |= 1 << (12 + i);
          if (t & (1 << 14)) v |= 1 << (8 + i);
          if (t & TSD_TABT) v |= 1 << (4 + i);
          if (t & TSD_OWN) v |= 1 << i;
        }
        return (v >> (8 * (o - TSAD_SUMMARY))) & 0xff;
      }
      case RERID: return 0x00;
    }
    if (RESERVED(o)) { this.stats.badRegAccesses++; return 0; }
    return this.r8(o);
  }

  private write(off: number, size: 1 | 2 | 4, v: number): void {
    this.stats.regWrites++;
    const s = this.state;
    if (off >= TSD0 && off < TSD0 + 16 && size === 4 && (off & 3) === 0) {
      // Writing a TSD with OWN clear hands the buffer to the chip ("Transmit Status of Descriptor").
      this.w32(off, v & ~(TSD_OWN | TSD_TOK | TSD_TABT | (1 << 14)) & 0x003f3fff);
      if (!(v & TSD_OWN)) this.transmit();
      return;
    }
    switch (off) {
      case CR:
        if (v & CR_RST) { this.reset(); return; }
        this.w8(CR, (this.r8(CR) & CR_BUFE) | (v & (CR_RE | CR_TE)));
        if (v & CR_TE) this.transmit();
        if (v & CR_RE) this.port.drain();
        return;
      case CAPR:
        if (size === 1) { this.w8(CAPR, v); return; }
        this.w16(CAPR, v & 0xffff);
        this.port.drain();
        return;
      case ISR:
        // Write 1 to clear ("Interrupt Status Register"); byte or word.
        this.w16(ISR, this.r16(ISR) & ~(size === 1 ? v & 0xff : v & 0xffff));
        this.updateIrq();
        return;
      case ISR + 1:
        this.w16(ISR, this.r16(ISR) & ~((v & 0xff) << 8));
        this.updateIrq();
        return;
      case IMR:
        if (size === 1) this.w8(IMR, v); else this.w16(IMR, v & 0xe07f);
        this.updateIrq();
        return;
      case TCR:
        // Hardware version bits are read-only.
        this.w32(TCR, (size === 4 ? v & ~HWVERID_MASK : (this.r32(TCR) & ~0xffff & ~HWVERID_MASK) | (v & 0xffff)) | HWVERID_8139CP);
        return;
      case RCR:
        if (size !== 4) break;
        this.w32(RCR, v & 0xf0fff7ff);
        this.port.drain();
        return;
      case TCTR: s.tctrBase = this.clock.now(); this.armTimer(); return; // any write clears it
      case MPC: this.w32(MPC, 0); return;
      case TIMERINT: if (size === 4) { this.w32(TIMERINT, v); this.armTimer(); return; } break;
      case CR9346: this.write9346(v & 0xff); return;
      case BMCR:
        // Reset (bit 15) and restart autonegotiation (bit 9) complete at once and read back zero.
        this.w16(BMCR, v & ~0x8200 & 0xffff);
        this.updateLink();
        return;
      case BMSR: case ANLPAR: case ANER: case RERID: case TSAD_SUMMARY: case CBR: return; // read-only
    }
    for (let i = 0; i < size; i++) this.writeByte(off + i, (v >>> (8 * i)) & 0xff);
  }

  private writeByte(o: number, b: number): void {
    if (o >= 0x100 || RESERVED(o)) { this.stats.badRegAccesses++; return; }
    // CONFIG registers accept writes only in "config register write enable" mode (9346CR EEM = 11).
    if ((o === CONFIG0 || o === CONFIG1 || o === CONFIG3 || o === CONFIG4 || o === CONFIG5) && (this.r8(CR9346) >> 6) !== 3) return;
    this.w8(o, b);
  }

  /** 93C46 command register: EEM selects normal, auto-load, programming (pins by software) or config write. */
  private write9346(v: number): void {
    const eem = v >> 6;
    this.w8(CR9346, v & 0xce);
    if (eem === 1) { this.autoload(); this.w8(CR9346, 0); return; } // auto-load finishes immediately
    if (eem === 2) eepromPins(this.state.eeprom, (v & 0x08) !== 0, (v & 0x04) !== 0, (v & 0x02) !== 0);
    else eepromPins(this.state.eeprom, false, false, false);
  }

  // --- Interrupts and timer ----------------------------------------------------------------------------------

  private raise(bits: number): void { this.w16(ISR, this.r16(ISR) | bits); this.updateIrq(); }

  private updateIrq(): void {
    const level = (this.r16(ISR) & this.r16(IMR)) !== 0;
    if (level && !this.state.intx) this.stats.interrupts++;
    if (level !== this.state.intx) this.setIntx(level);
  }

  private tctr(): number { return Math.floor(((this.clock.now() - this.state.tctrBase) * PCI_HZ) / 1e9) >>> 0; }

  /** TimerInt: a non-zero value raises TimeOut when TCTR reaches it ("Timer Interrupt Register"). */
  private armTimer(): void {
    const t = this.r32(TIMERINT);
    if (!t) { this.timer.deadline = -1; return; }
    const at = this.state.tctrBase + Math.ceil((t * 1e9) / PCI_HZ);
    this.timer.deadline = at > this.clock.now() ? at : -1;
  }

  private onTimer(): void { this.raise(ISR_TIMEOUT); }

  // --- Receive ---------------------------------------------------------------------------------------------------

  private bufLen(): number { return 8192 << ((this.r32(RCR) >>> 11) & 3); }

  /** RCR address filter: all-physical, own address, multicast through the MAR hash, broadcast. */
  private accepts(f: Uint8Array): boolean {
    const rcr = this.r32(RCR);
    if (rcr & RCR_AAP) return true;
    if (isBroadcast(f)) return (rcr & RCR_AB) !== 0;
    if (isMulticast(f)) {
      if (!(rcr & RCR_AM)) return false;
      const h = multicastHash6(f);
      return (this.r8(MAR0 + (h >> 3)) & (1 << (h & 7))) !== 0;
    }
    return (rcr & RCR_APM) !== 0 && macEquals(f, 0, this.state.regs.subarray(IDR0, IDR0 + 6));
  }

  private missed(): void {
    this.w32(MPC, Math.min(this.r32(MPC) + 1, 0xffffff));
    this.raise(ISR_RXOVW);
  }

  /**
   * The receive ring ("Receive Buffer"): each packet is a 4-byte header (status, length including CRC), the
   * frame and its CRC, then padding to a dword boundary. CBR is where the chip writes next; the driver frees
   * space by moving CAPR (its read pointer minus 16). With RCR.WRAP set, a packet that runs past the end of
   * the ring continues in the memory after it instead of wrapping.
   */
  private store(frame: Uint8Array): StoreResult {
    if (!(this.r8(CR) & CR_RE) || !this.port.linkUp) return 'off';
    if (!(this.command & CMD_BUS_MASTER)) return 'full';
    const len = this.bufLen(), rcr = this.r32(RCR);
    const data = withFcs(frame);
    const need = (4 + data.length + 3) & ~3;
    const wr = this.r16(CBR) % len, rd = ((this.r16(CAPR) + 16) & 0xffff) % len;
    const used = (wr - rd + len) % len;
    if (need >= len - used) return 'full';
    const base = this.r32(RBSTART);
    let status = RX_ROK;
    if (isBroadcast(frame)) status |= RX_BAR;
    else if (isMulticast(frame)) status |= RX_MAR;
    else if (macEquals(frame, 0, this.state.regs.subarray(IDR0, IDR0 + 6))) status |= RX_PAM;
    const pkt = new Uint8Array(4 + data.length);
    pkt[0] = status; pkt[1] = status >> 8; pkt[2] = data.length; pkt[3] = data.length >> 8;
    pkt.set(data, 4);
    const wrap = (rcr & RCR_WRAP) !== 0;
    if (wrap || wr + pkt.length <= len) {
      if (!dmaOk(this.mem, base + wr, pkt.length)) { this.stats.dmaFaults++; this.raise(ISR_RER); return 'ok'; }
      this.mem.writeBytes(base + wr, pkt);
    } else {
      const first = len - wr;
      if (!dmaOk(this.mem, base, len)) { this.stats.dmaFaults++; this.raise(ISR_RER); return 'ok'; }
      this.mem.writeBytes(base + wr, pkt.subarray(0, first));
      this.mem.writeBytes(base, pkt.subarray(first));
    }
    this.w16(CBR, (wr + need) % len);
    this.raise(ISR_ROK);
    return 'ok';
  }

  // --- Transmit --------------------------------------------------------------------------------------------------

  /** Sends every descriptor handed to the chip, in round-robin order from where it left off. */
  private transmit(): void {
    const s = this.state;
    if (!(this.r8(CR) & CR_TE) || !(this.command & CMD_BUS_MASTER)) return;
    for (let n = 0; n < 4; n++) {
      const i = s.txNext, tsd = this.r32(TSD0 + 4 * i);
      if (tsd & TSD_OWN) break;
      s.txNext = (i + 1) & 3;
      const size = tsd & 0x1fff, addr = this.r32(TSAD0 + 4 * i);
      let ok = true;
      if (size < ETH_HLEN || size > TX_MAX) { this.stats.txMalformed++; ok = false; }
      else if (!dmaOk(this.mem, addr, size)) { this.stats.dmaFaults++; ok = false; }
      if (ok) {
        const f = this.mem.readBytes(addr, size);
        if (this.port.linkUp) this.port.transmit(f);
        this.w32(TSD0 + 4 * i, tsd | TSD_OWN | TSD_TOK);
        this.raise(ISR_TOK);
      } else {
        // Transmit abort: the descriptor is returned with TABT and the error interrupt.
        this.w32(TSD0 + 4 * i, tsd | TSD_OWN | TSD_TABT);
        this.raise(ISR_TER);
      }
    }
  }

  override afterRestore(): void {
    super.afterRestore();
    this.armTimer();
    this.updateIrq();
  }
}

/** Reserved offsets in the register map (reads return 0, writes are ignored). */
function RESERVED(o: number): boolean {
  return o === 0x56 || o === 0x57 || o === 0x5f || o === 0x76 || o === 0x77 || (o >= 0xd4 && o < 0xd8) || o === 0xd9 || o === 0xdb;
}

