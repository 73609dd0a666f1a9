// Realtek RTL8139C+ (PCI 10EC:8139) in its RTL8139-compatible mode, as driven by Linux's `8139too`. Written
// from the "RTL8139C(L)+ Advanced PCI/Mini-PCI/CardBus 3.3V Single-Chip 10/100M Fast Ethernet Controller"
// datasheet (rev 1.6) and Realtek's "RTL8139(A/B) Programming Guide"; section names below refer to them.
// Registers are reachable through BAR0 (I/O) and BAR1 (memory), 256 bytes each.
//
// Both of the chip's modes are modelled: the RTL8139-compatible "C mode" (receive ring buffer, four transmit
// descriptors in registers) and "C+ mode" (16-byte descriptors in guest memory, checksum and large-send
// offload, VLAN tagging; see the C+ section below). Which Linux driver binds is decided by the PCI revision
// alone: 8139too refuses revision >= 0x20 ("an enhanced 8139C+ chip, use 8139cp") and 8139cp refuses
// revision < 0x20. The default revision is 0x10, so the guest's 8139too drives the chip in C mode; with
// `cplus: true` the function reports 0x20, as QEMU's rtl8139 does, and 8139cp drives it in C+ mode. TCR's
// hardware version says RTL8139C+ either way.

import { PciFunction, CMD_BUS_MASTER, type PciConfigState } from '../../machine/pci.ts';
import type { GuestMemory } from '../../memory/guest-memory.ts';
import type { Clock, Timer } from '../../machine/clock.ts';
import type { NetBackend } from './backend.ts';
import { dmaOk, isBroadcast, isMulticast, macEquals, multicastHash6, NicPort, withFcs, ETH_FRAME_MAX_VLAN, ETH_HLEN, type StoreResult, type NicOptions } from './ethernet.ts';
import { checkIpv4, fillIpv4Checksum, fillL4Checksum, ipv4Info, segmentTcpIpv4 } from './ethernet.ts';
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
} & CplusState;

export type Rtl8139Options = NicOptions & {
  /** Report PCI revision 0x20 (RTL8139C+), which Linux hands to 8139cp (C+ mode) instead of 8139too. */
  cplus?: boolean;
};

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
    super(opts.name ?? 'rtl8139', { vendor: 0x10ec, device: 0x8139, classCode: 0x020000, revision: opts.cplus ? 0x20 : 0x10, subsystemVendor: 0x10ec, subsystem: 0x8139, interruptPin: 1 }, {
      regs: new Uint8Array(256), eeprom: newEeprom(words), txNext: 0, tctrBase: 0, ...newCplusState(),
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
    this.cpReset();
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
      case TPPOLL: if (this.state.cplus) return 0; break; // polling completes at once: the bits read back clear
    }
    if (RESERVED(o)) { this.stats.badRegAccesses++; return 0; }
    return this.r8(o);
  }

  private write(off: number, size: 1 | 2 | 4, v: number): void {
    this.stats.regWrites++;
    const s = this.state;
    if ((s.cplus || off === CPCR) && this.cpWrite(off, size, v)) return;
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
    this.state.tally.missPkt = Math.min(this.state.tally.missPkt + 1, 0xffff);
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
    if (this.r16(CPCR) & CPCR_CPRX) return this.cpStore(frame);
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

  // --- C+ mode -------------------------------------------------------------------------------------------------
  // Datasheet "C+ mode" chapters (transmit/receive descriptors, CPCR, TPPoll, DTCCR). Writing CPCR switches
  // the register map to C+ mode until the next reset: 10h-17h become DTCCR (tally dump), 20h-2Fh the
  // normal- and high-priority transmit ring addresses (TNPDS, THPDS), D9h TPPoll; E0h CPCR, E2h IntrMitigate,
  // E4h RDSAR. CPCR.CPTx and CPRx pick the descriptor engines per direction; RE/TE in CR still gate them.

  private rxCplusOn(): boolean { return (this.r16(CPCR) & CPCR_CPRX) !== 0 && (this.r8(CR) & CR_RE) !== 0; }
  private txCplusOn(): boolean { return (this.r16(CPCR) & CPCR_CPTX) !== 0 && (this.r8(CR) & CR_TE) !== 0 && (this.command & CMD_BUS_MASTER) !== 0; }
  private r64(o: number): number { return this.r32(o) + this.r32(o + 4) * 2 ** 32; }

  private cpReset(): void {
    const s = this.state;
    s.cplus = false;
    s.cpTxNext = 0; s.cpTxHiNext = 0; s.cpRxNext = 0;
    s.cpTxLen = 0; s.cpTxBad = false; s.cpTxActive = false; s.cpRduSignalled = false;
    this.w16(CPCR, 0); this.w16(INTRMIT, 0);
  }

  /** Register writes that mean something else in C+ mode. Returns false to let the C-mode handler run. */
  private cpWrite(off: number, size: 1 | 2 | 4, v: number): boolean {
    const s = this.state;
    switch (off) {
      case CPCR: {
        // Bits 0 (CPTx), 1 (CPRx), 3 (MulRW), 4 (DAC), 5 (RxChkSum), 6 (RxVLAN) are writable; the rest read 0.
        s.cplus = true;
        const lo = size === 1 ? (this.r16(CPCR) & 0xff00) | (v & 0xff) : v & 0xffff;
        this.w16(CPCR, lo & CPCR_WRITABLE);
        if (size === 4) this.w16(INTRMIT, v >>> 16);
        this.port.drain();
        return true;
      }
      case CPCR + 1: return true; // reserved, read-only high byte
      case INTRMIT:
        // Interrupt mitigation (timer and packet-count thresholds for RX/TX interrupts): stored and read back.
        // The model raises every interrupt at once, which is what the value 0 selects; Linux's 8139cp never
        // programs the register.
        if (size === 1) this.w8(INTRMIT, v); else this.w16(INTRMIT, v & 0xffff);
        return true;
      case TPPOLL:
        // TPPoll: bit 7 HPQ polls the high-priority ring, bit 6 NPQ the normal one (high first), bit 0 FSWInt
        // raises the software interrupt.
        if (v & TPPOLL_FSWINT) this.raise(ISR_SWINT);
        if (v & TPPOLL_HPQ) this.cpTransmit(true);
        if (v & TPPOLL_NPQ) this.cpTransmit(false);
        return true;
      case CR: {
        if (v & CR_RST) { this.reset(); return true; }
        const was = this.r8(CR);
        this.w8(CR, (was & CR_BUFE) | (v & (CR_RE | CR_TE)));
        // Enabling a direction restarts its engine at the first descriptor of the ring(s).
        if ((v & CR_TE) && !(was & CR_TE)) { s.cpTxNext = 0; s.cpTxHiNext = 0; s.cpTxLen = 0; s.cpTxActive = false; s.cpTxBad = false; }
        if ((v & CR_RE) && !(was & CR_RE)) s.cpRxNext = 0;
        if (v & CR_RE) this.port.drain();
        return true;
      }
      case IMR:
        // In C+ mode bits 7 (TDU) and 8 (SWInt) are interrupt sources too.
        if (size === 1) this.w8(IMR, v); else this.w16(IMR, v & 0xe1ff);
        this.updateIrq();
        this.port.drain(); // 8139cp unmasks RX interrupts after refilling the ring
        return true;
      case ISR: case ISR + 1: {
        // Write one to clear, as in C mode. 8139cp acknowledges RX events before it refills descriptors, so
        // frames held in the FIFO for lack of descriptors are retried here and on the IMR write after it.
        const bits = off === ISR + 1 ? (v & 0xff) << 8 : size === 1 ? v & 0xff : v & 0xffff;
        this.w16(ISR, this.r16(ISR) & ~bits);
        this.updateIrq();
        this.port.drain();
        return true;
      }
    }
    if (off >= DTCCR && off < DTCCR + 8) {
      for (let i = 0; i < size && off + i < DTCCR + 8; i++) this.w8(off + i, v >>> (8 * i));
      if (this.r32(DTCCR) & DTCCR_CMD) this.cpDumpTally();
      return true;
    }
    if (off >= DTCCR + 8 && off < TSAD0) { this.stats.badRegAccesses++; return true; } // 18h-1Fh: reserved in C+ mode
    return false;
  }

  /** DTCCR: the 64-byte tally counter block goes to the 64-byte aligned address; Cmd clears when done. */
  private cpDumpTally(): void {
    const t = this.state.tally;
    const lo = this.r32(DTCCR);
    const addr = (lo & ~0x3f) + this.r32(DTCCR + 4) * 2 ** 32;
    this.w32(DTCCR, lo & ~DTCCR_CMD);
    if (!(this.command & CMD_BUS_MASTER)) return;
    if (!dmaOk(this.mem, addr, 64)) { this.stats.dmaFaults++; this.raise(ISR_SERR); return; }
    const b = new Uint8Array(64), dv = new DataView(b.buffer);
    const u64 = (o: number, n: number) => { dv.setUint32(o, n % 2 ** 32, true); dv.setUint32(o + 4, Math.floor(n / 2 ** 32), true); };
    u64(0, t.txOk); u64(8, t.rxOk); u64(16, t.txErr); dv.setUint32(24, t.rxErr, true); dv.setUint16(28, t.missPkt, true);
    // 30 FAE, 32 Tx1Col, 36 TxMCol: no alignment errors or collisions on a virtual wire.
    u64(40, t.rxOkPhy); u64(48, t.rxOkBrd); dv.setUint32(56, t.rxOkMul, true); dv.setUint16(60, t.txAbt, true);
    // 62 TxUndrn: stays 0.
    this.mem.writeBytes(addr, b);
  }

  /**
   * Walks one transmit ring from the chip's current descriptor while the NIC owns it ("Transmit Descriptor
   * Format"): opts1 = OWN 31, EOR 30, FS 29, LS 28, LGSEN 27, MSS 26-16 (with LGSEN) or IPCS 18, UDPCS 17,
   * TCPCS 16 (without), buffer length 15-0; opts2 = TAGC 17, VLAN tag 15-0; then the 64-bit buffer address.
   * The buffers from FS to LS make one packet. Each descriptor is handed back with OWN clear; on the LS one
   * the status says whether the packet went out (TES error summary otherwise). The ring ends at EOR; a ring
   * that never sets it wraps after CP_RING_MAX descriptors, and one poll looks at no more than that many.
   */
  private cpTransmit(high: boolean): void {
    const s = this.state;
    if (!this.txCplusOn()) return;
    const base = this.r64(high ? THPDS : TNPDS);
    let ok = 0, err = 0, n = 0, stalled = false;
    for (; n < CP_RING_MAX; n++) {
      const idx = high ? s.cpTxHiNext : s.cpTxNext;
      const d = base + 16 * idx;
      if (!dmaOk(this.mem, d, 16)) { this.stats.dmaFaults++; this.raise(ISR_SERR); stalled = true; break; } // master abort
      const o1 = this.mem.read32(d) >>> 0;
      if (!(o1 & D_OWN)) { stalled = s.cpTxActive; break; }
      const o2 = this.mem.read32(d + 4) >>> 0;
      const addr = (this.mem.read32(d + 8) >>> 0) + (this.mem.read32(d + 12) >>> 0) * 2 ** 32;
      const len = o1 & 0xffff;
      if ((o1 & D_FS) || !s.cpTxActive) {
        // FS starts a packet; a packet cut short by a new FS, or data without any FS, is dropped.
        if (s.cpTxActive) { this.stats.txMalformed++; s.tally.txErr++; }
        s.cpTxActive = true; s.cpTxLen = 0; s.cpTxOpts1 = o1; s.cpTxOpts2 = o2; s.cpTxUnderrun = false;
        s.cpTxBad = !(o1 & D_FS);
        if (s.cpTxBad) this.stats.txMalformed++;
      }
      if (!s.cpTxBad) {
        if (s.cpTxLen + len > CP_TX_BUF) { this.stats.txMalformed++; s.cpTxBad = true; }
        else if (!dmaOk(this.mem, addr, len)) { this.stats.dmaFaults++; s.cpTxBad = true; s.cpTxUnderrun = true; }
        else if (len) { this.mem.readBytes(addr, len, s.cpTxBuf, s.cpTxLen); s.cpTxLen += len; }
      }
      let status = o1 & (D_EOR | D_FS | D_LS);
      if (o1 & D_LS) {
        // A packet whose data could not be fetched ends as a FIFO underrun; one the chip cannot send (bad
        // length, no TCP/IPv4 for large send) as a plain error (TES); no link as a link failure.
        const why = s.cpTxBad ? (s.cpTxUnderrun ? TXS_UNF : 0) : this.cpSendPacket();
        if (why === 0 && !s.cpTxBad) this.stats.txMalformed++;
        if (why === -1) { ok++; s.tally.txOk++; } else {
          status |= TXS_TES | why; err++; s.tally.txErr++;
          if (why & TXS_UNF) s.tally.txUndrn = Math.min(s.tally.txUndrn + 1, 0xffff);
          else s.tally.txAbt = Math.min(s.tally.txAbt + 1, 0xffff);
        }
        s.cpTxActive = false; s.cpTxLen = 0; s.cpTxBad = false; s.cpTxUnderrun = false;
      }
      this.mem.write32(d, status);
      const next = (o1 & D_EOR) ? 0 : (idx + 1) % CP_RING_MAX;
      if (high) s.cpTxHiNext = next; else s.cpTxNext = next;
    }
    if (ok) this.raise(ISR_TOK);
    if (err) this.raise(ISR_TER);
    // Tx Descriptor Unavailable: the poll found nothing to send, or a packet's remaining descriptors are
    // still the driver's.
    if ((n === 0 || stalled) && !ok && !err) this.raise(ISR_TDU);
  }

  /** Sends the gathered packet with the offloads its FS descriptor asked for. -1: sent; otherwise the TX
   *  status error bits (0: a malformed packet the chip refuses, TXS_LNKF: no link). */
  private cpSendPacket(): number {
    const s = this.state;
    const o1 = s.cpTxOpts1, o2 = s.cpTxOpts2;
    const pkt = s.cpTxBuf.slice(0, s.cpTxLen);
    if (pkt.length < ETH_HLEN) return 0;
    let frames: Uint8Array[];
    if (o1 & TX_LGSEN) {
      // Large send: the NIC cuts the TCP payload into MSS-sized segments with their own IP and TCP
      // headers and checksums.
      const segs = segmentTcpIpv4(pkt, (o1 >>> 16) & 0x7ff);
      if (!segs) return 0;
      frames = segs;
    } else {
      if (pkt.length > CP_FRAME_MAX) return 0;
      if (o1 & (TX_IPCS | TX_UDPCS | TX_TCPCS)) {
        // Checksum offload applies to IPv4 only; other frames go out as the driver built them.
        const i = ipv4Info(pkt);
        if (i) {
          if (o1 & TX_IPCS) fillIpv4Checksum(pkt, i);
          if (((o1 & TX_TCPCS) && i.proto === 6) || ((o1 & TX_UDPCS) && i.proto === 17)) fillL4Checksum(pkt, i);
        }
      }
      frames = [pkt];
    }
    if (!this.port.linkUp) return TXS_LNKF;
    for (let f of frames) {
      if (o2 & TX2_TAGC) {
        // VLAN insertion: 8100h and the tag (stored high byte first in bits 7-0, VIDL in 15-8) after the source address.
        const t = new Uint8Array(f.length + 4);
        t.set(f.subarray(0, 12)); t[12] = 0x81; t[13] = 0x00; t[14] = o2 & 0xff; t[15] = (o2 >>> 8) & 0xff; t.set(f.subarray(12), 16);
        f = t;
      }
      this.port.transmit(f);
    }
    return -1;
  }

  /**
   * Receive into the descriptor ring at RDSAR ("Receive Descriptor Format"): each descriptor the NIC owns
   * offers a buffer of opts1 bits 12-0 bytes; a frame and its CRC fill as many as needed, the first marked
   * FS, the last LS with the whole length and the status: MAR 26, PAM 25, BAR 24, RES 20 (error summary),
   * protocol ID 17-16 (1 TCP, 2 UDP, 3 other IPv4) with IPF 15, UDPF 14, TCPF 13 when CPCR.RxChkSum is on, and
   * in opts2 TAVA 16 with the tag removed by CPCR.RxVLAN. OWN cleared hands the descriptor back. No NIC-owned
   * descriptor: RDU (ISR bit 4), and the frame waits in the FIFO.
   */
  private cpStore(frame: Uint8Array): StoreResult {
    const s = this.state;
    if (!this.rxCplusOn() || !this.port.linkUp) return 'off';
    if (!(this.command & CMD_BUS_MASTER)) return 'full';
    const cpcr = this.r16(CPCR);
    let f = frame, opts2 = 0;
    if ((cpcr & CPCR_RXVLAN) && f[12] === 0x81 && f[13] === 0x00 && f.length >= ETH_HLEN + 4) {
      opts2 = RX2_TAVA | f[14] | (f[15] << 8);
      const t = new Uint8Array(f.length - 4);
      t.set(f.subarray(0, 12)); t.set(f.subarray(16), 12);
      f = t;
    }
    const data = withFcs(f);
    const base = this.r64(RDSAR);
    // First find enough NIC-owned descriptors, so a frame is never half-written into a ring that runs out.
    const descs: { d: number; o1: number; addr: number; take: number }[] = [];
    let idx = s.cpRxNext, room = 0;
    while (room < data.length) {
      const d = base + 16 * idx;
      if (!dmaOk(this.mem, d, 16)) {
        // The descriptor fetch ends in a master abort (system error); the frame is lost.
        this.stats.dmaFaults++; s.tally.rxErr++; this.raise(ISR_SERR);
        return 'ok';
      }
      if ((descs.length > 0 && idx === s.cpRxNext) || descs.length >= CP_RING_MAX) {
        // The whole ring together holds less than this frame (zero-sized buffers, say): it is dropped.
        this.stats.rxMissed++; s.tally.rxErr++; this.raise(ISR_RER);
        return 'ok';
      }
      const o1 = this.mem.read32(d) >>> 0;
      if (!(o1 & D_OWN)) {
        if (!s.cpRduSignalled) { s.cpRduSignalled = true; this.raise(ISR_RDU); }
        return 'full';
      }
      const size = o1 & 0x1fff;
      const addr = (this.mem.read32(d + 8) >>> 0) + (this.mem.read32(d + 12) >>> 0) * 2 ** 32;
      const take = Math.min(size, data.length - room);
      descs.push({ d, o1, addr, take });
      room += take;
      idx = (o1 & D_EOR) ? 0 : (idx + 1) % CP_RING_MAX;
    }
    s.cpRduSignalled = false;
    let st = 0;
    if (isBroadcast(f)) st |= RXS_BAR;
    else if (isMulticast(f)) st |= RXS_MAR;
    else if (macEquals(f, 0, this.state.regs.subarray(IDR0, IDR0 + 6))) st |= RXS_PAM;
    if (cpcr & CPCR_RXCHKSUM) {
      const i = ipv4Info(f);
      if (i) {
        const c = checkIpv4(f, i);
        const l4 = !i.fragment && (i.proto === 6 || i.proto === 17);
        st |= (l4 ? (i.proto === 6 ? 1 : 2) : 3) << 16;
        if (!c.ipOk) st |= RXS_IPF;
        if (l4 && c.l4Ok === false) st |= i.proto === 6 ? RXS_TCPF : RXS_UDPF;
      }
    }
    let off = 0, fault = false;
    for (let k = 0; k < descs.length; k++) {
      const { addr, take } = descs[k];
      if (take && !dmaOk(this.mem, addr, take)) fault = true;
      else if (take) this.mem.writeBytes(addr, data.subarray(off, off + take));
      off += take;
    }
    if (fault) { this.stats.dmaFaults++; st |= RXS_RES; }
    for (let k = 0; k < descs.length; k++) {
      const { d, o1, take } = descs[k];
      const last = k === descs.length - 1;
      let v = (o1 & D_EOR) | (k === 0 ? D_FS : 0);
      v |= last ? D_LS | st | (data.length & 0x1fff) : take;
      this.mem.write32(d + 4, last ? opts2 : 0);
      this.mem.write32(d, v);
    }
    s.cpRxNext = idx;
    if (fault) { s.tally.rxErr++; this.raise(ISR_RER); return 'ok'; }
    const t = s.tally;
    t.rxOk++;
    if (st & RXS_PAM) t.rxOkPhy++; else if (st & RXS_BAR) t.rxOkBrd++; else if (st & RXS_MAR) t.rxOkMul = (t.rxOkMul + 1) % 2 ** 32;
    this.raise(ISR_ROK);
    return 'ok';
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


// --- C+ mode definitions -------------------------------------------------------------------------------------

// C+ mode registers ("Register Descriptions" for C+ mode).
const DTCCR = 0x10, TNPDS = 0x20, THPDS = 0x28, TPPOLL = 0xd9, CPCR = 0xe0, INTRMIT = 0xe2, RDSAR = 0xe4;
const CPCR_CPTX = 1 << 0, CPCR_CPRX = 1 << 1, CPCR_RXCHKSUM = 1 << 5, CPCR_RXVLAN = 1 << 6;
/** CPTx, CPRx, MulRW (3), DAC (4), RxChkSum, RxVLAN. */
const CPCR_WRITABLE = 0x007b;
const TPPOLL_HPQ = 1 << 7, TPPOLL_NPQ = 1 << 6, TPPOLL_FSWINT = 1 << 0;
const DTCCR_CMD = 1 << 3;
/** ISR in C+ mode: bit 4 is RDU (Rx Descriptor Unavailable), bit 7 TDU (Tx Descriptor Unavailable), bit 8 SWInt,
 *  bit 15 SERR (system error: a DMA ended in a master abort). */
export const ISR_RDU = 1 << 4, ISR_TDU = 1 << 7, ISR_SWINT = 1 << 8, ISR_SERR = 1 << 15;
// Descriptor bits shared by both directions, then transmit command/status and receive status.
const D_OWN = 0x80000000, D_EOR = 1 << 30, D_FS = 1 << 29, D_LS = 1 << 28;
const TX_LGSEN = 1 << 27, TX_IPCS = 1 << 18, TX_UDPCS = 1 << 17, TX_TCPCS = 1 << 16;
const TXS_UNF = 1 << 25, TXS_TES = 1 << 23, TXS_LNKF = 1 << 21;
const TX2_TAGC = 1 << 17;
const RXS_MAR = 1 << 26, RXS_PAM = 1 << 25, RXS_BAR = 1 << 24, RXS_RES = 1 << 20, RXS_IPF = 1 << 15, RXS_UDPF = 1 << 14, RXS_TCPF = 1 << 13;
const RX2_TAVA = 1 << 16;
/** Descriptors the chip's ring pointers can address (a 10-bit index): rings end at EOR, at the latest here. */
const CP_RING_MAX = 1024;
/** Largest packet gathered from one FS..LS chain: a 64 KiB large-send request plus its headers. */
const CP_TX_BUF = 65536 + 128;
/** Largest single frame without large send: a 4 KiB payload (the MTU range 8139cp allows) with header and tag. */
const CP_FRAME_MAX = 4096 + ETH_HLEN + 4;

/** The DTCCR tally counters (all 64 bytes of the dump that can be non-zero on a virtual wire). */
type Tally = { txOk: number; rxOk: number; txErr: number; rxErr: number; missPkt: number; rxOkPhy: number; rxOkBrd: number; rxOkMul: number; txAbt: number; txUndrn: number };

type CplusState = {
  /** A CPCR write since reset switched the register map to C+ mode. */
  cplus: boolean;
  /** Ring indices of the next descriptor the chip looks at: normal and high-priority transmit, receive. */
  cpTxNext: number; cpTxHiNext: number; cpRxNext: number;
  /** The transmit packet being gathered from FS to LS, and the FS descriptor's command words. */
  cpTxBuf: Uint8Array; cpTxLen: number; cpTxActive: boolean; cpTxBad: boolean; cpTxUnderrun: boolean; cpTxOpts1: number; cpTxOpts2: number;
  /** RDU was raised and no frame has been stored since (one RDU per episode of an exhausted ring). */
  cpRduSignalled: boolean;
  tally: Tally;
};

function newCplusState(): CplusState {
  return {
    cplus: false, cpTxNext: 0, cpTxHiNext: 0, cpRxNext: 0,
    cpTxBuf: new Uint8Array(CP_TX_BUF), cpTxLen: 0, cpTxActive: false, cpTxBad: false, cpTxUnderrun: false, cpTxOpts1: 0, cpTxOpts2: 0,
    cpRduSignalled: false,
    tally: { txOk: 0, rxOk: 0, txErr: 0, rxErr: 0, missPkt: 0, rxOkPhy: 0, rxOkBrd: 0, rxOkMul: 0, txAbt: 0, txUndrn: 0 },
  };
}
