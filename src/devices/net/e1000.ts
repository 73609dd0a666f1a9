// Intel 82540EM Gigabit Ethernet Controller (PCI 8086:100E), as driven by Linux's `e1000`. Written from the
// "PCI/PCI-X Family of Gigabit Ethernet Controllers Software Developer's Manual" (8254x SDM, rev 4.0); section
// numbers below refer to it. BAR0 is the 128 KiB register window (§13), BAR1 the 8-byte IOADDR/IODATA pair
// that reaches the same registers through I/O space (§13.2.2). The PHY is the integrated M88E1011-compatible
// one, reached through MDIC (§13.4.10); the MAC address lives in a 93C46 Microwire EEPROM behind EECD and
// EERD (§5, §13.4.3-4).

import { PciFunction, CMD_BUS_MASTER, type PciConfigState } from '../../machine/pci.ts';
import type { GuestMemory } from '../../memory/guest-memory.ts';
import type { Clock, Timer } from '../../machine/clock.ts';
import type { NetBackend } from './backend.ts';
import { dmaOk, foldSum, isBroadcast, isMulticast, NicPort, onesSum, withFcs, ETH_HLEN, ETH_ZLEN, type StoreResult, type NicOptions } from './ethernet.ts';
import { eepromChecksum, eepromPins, newEeprom, type Eeprom93c46State } from './eeprom93c46.ts';

// Register offsets (§13.4, Table 13-2).
const CTRL = 0x0000, STATUS = 0x0008, EECD = 0x0010, EERD = 0x0014, CTRL_EXT = 0x0018, MDIC = 0x0020;
const FCAL = 0x0028, FCAH = 0x002c, FCT = 0x0030, VET = 0x0038, ICR = 0x00c0, ITR = 0x00c4, ICS = 0x00c8;
const IMS = 0x00d0, IMC = 0x00d8, RCTL = 0x0100, FCTTV = 0x0170, TXCW = 0x0178, RXCW = 0x0180, TCTL = 0x0400;
const TIPG = 0x0410, LEDCTL = 0x0e00, PBA = 0x1000, FCRTL = 0x2160, FCRTH = 0x2168;
const RDBAL = 0x2800, RDBAH = 0x2804, RDLEN = 0x2808, RDH = 0x2810, RDT = 0x2818, RDTR = 0x2820, RXDCTL = 0x2828, RADV = 0x282c, RSRPD = 0x2c00;
const TXDMAC = 0x3000, TDBAL = 0x3800, TDBAH = 0x3804, TDLEN = 0x3808, TDH = 0x3810, TDT = 0x3818, TIDV = 0x3820, TXDCTL = 0x3828, TADV = 0x382c;
const STATS = 0x4000, STATS_END = 0x4100, RXCSUM = 0x5000, MTA = 0x5200, RA = 0x5400, VFTA = 0x5600;
const WUC = 0x5800, WUFC = 0x5808, WUS = 0x5810, MANC = 0x5820, IPAV = 0x5838, IP4AT = 0x5840, IP6AT = 0x5880, WUPL = 0x5900, WUPM = 0x5a00, FFLT = 0x5f00, FFMT = 0x9000, FFVT = 0x9800;

// Statistics registers the model counts (§13.7), as offsets.
const S_MPC = 0x4010, S_PRC64 = 0x405c, S_GPRC = 0x4074, S_BPRC = 0x4078, S_MPRC = 0x407c, S_GPTC = 0x4080;
const S_GORCL = 0x4088, S_GOTCL = 0x4090, S_RNBC = 0x40a0, S_ROC = 0x40ac, S_TORL = 0x40c0, S_TOTL = 0x40c8;
const S_TPR = 0x40d0, S_TPT = 0x40d4, S_PTC64 = 0x40d8, S_MPTC = 0x40f0, S_BPTC = 0x40f4, S_TSCTC = 0x40f8;

// Interrupt cause bits (§13.4.17).
export const ICR_TXDW = 1 << 0, ICR_TXQE = 1 << 1, ICR_LSC = 1 << 2, ICR_RXDMT0 = 1 << 4, ICR_RXO = 1 << 6, ICR_RXT0 = 1 << 7, ICR_MDAC = 1 << 9;
const ICR_VALID = 0x0001f6df;

const CTRL_FD = 1 << 0, CTRL_SLU = 1 << 6, CTRL_RST = 1 << 26, CTRL_VME = 1 << 30, CTRL_PHY_RST = 1 << 31;
const STATUS_FD = 1 << 0, STATUS_LU = 1 << 1, STATUS_SPEED_1000 = 1 << 7;
const EECD_SK = 1 << 0, EECD_CS = 1 << 1, EECD_DI = 1 << 2, EECD_DO = 1 << 3, EECD_REQ = 1 << 6, EECD_GNT = 1 << 7, EECD_PRES = 1 << 8;
const RCTL_EN = 1 << 1, RCTL_SBP = 1 << 2, RCTL_UPE = 1 << 3, RCTL_MPE = 1 << 4, RCTL_LPE = 1 << 5, RCTL_BAM = 1 << 15, RCTL_VFE = 1 << 18, RCTL_BSEX = 1 << 25, RCTL_SECRC = 1 << 26;
const TCTL_EN = 1 << 1, TCTL_PSP = 1 << 3;
const RXCSUM_IPOFL = 1 << 8, RXCSUM_TUOFL = 1 << 9;

// Descriptor bits (§3.2.3 receive, §3.3.3 legacy transmit, §3.3.6-7 context and data transmit).
const RXD_DD = 1 << 0, RXD_EOP = 1 << 1, RXD_IXSM = 1 << 2, RXD_VP = 1 << 3, RXD_TCPCS = 1 << 5, RXD_IPCS = 1 << 6;
const RXE_TCPE = 1 << 5, RXE_IPE = 1 << 6;
const TXD_EOP = 1 << 0, TXD_IFCS = 1 << 1, TXD_IC = 1 << 2, TXD_TSE = 1 << 2, TXD_RS = 1 << 3, TXD_DEXT = 1 << 5, TXD_VLE = 1 << 6, TXD_IDE = 1 << 7;
const POPTS_IXSM = 1 << 0, POPTS_TXSM = 1 << 1;
const TUCMD_TCP = 1 << 0, TUCMD_IP = 1 << 1;

// PHY registers (IEEE 802.3 clause 22 plus the M88E1011's specific ones, §13.4.10 and the PHY's datasheet).
const PHY_CTRL = 0, PHY_STATUS = 1, PHY_ID1 = 2, PHY_ID2 = 3, PHY_AUTONEG_ADV = 4, PHY_LP_ABILITY = 5, PHY_AUTONEG_EXP = 6;
const PHY_1000T_CTRL = 9, PHY_1000T_STATUS = 10, M88_PHY_SPEC_CTRL = 16, M88_PHY_SPEC_STATUS = 17, M88_EXT_PHY_SPEC_CTRL = 20;
const MII_SR_LINK = 1 << 2, MII_SR_AUTONEG_COMPLETE = 1 << 5;

const MMIO_SIZE = 0x20000;
/** 64-bit addresses beyond this machine's reach are treated like any other DMA outside guest RAM. */
const TX_BUF_MAX = 0x10000 + 0x400;

export const E1000_DEFAULT_MAC = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];

type TxContext = { ipcss: number; ipcso: number; ipcse: number; tucss: number; tucso: number; tucse: number; paylen: number; tucmd: number; hdrlen: number; mss: number };

export type E1000State = PciConfigState & {
  /** The register file, one 32-bit word per dword offset of BAR0; side effects are modelled around it. */
  regs: Uint32Array;
  phy: Uint16Array;
  eeprom: Eeprom93c46State;
  /** IOADDR (§13.2.2): the register the I/O window's data port reaches. */
  ioAddr: number;
  /** The offload context last loaded by a context descriptor (§3.3.6); it persists across packets. */
  ctx: TxContext;
  /** The packet being gathered from data descriptors until EOP. */
  txBuf: Uint8Array;
  txLen: number;
  /** Options of the packet being gathered: TSE, POPTS, VLAN, overflowed. */
  txTse: boolean; txPopts: number; txVle: boolean; txVlan: number; txLegacyCso: number; txLegacyCss: number; txLegacyIc: boolean; txBad: boolean;
  /** Deadlines (clock ns, -1 = off): interrupt throttle, receive/transmit delay and absolute timers (§13.4.18, .27-.28, .44-.45). */
  itrAt: number; rdtrAt: number; radvAt: number; tidvAt: number; tadvAt: number;
  lastIrqAt: number;
  /** The INTx level last driven (after throttling). */
  irqOut: boolean;
};

export type E1000Options = NicOptions;

export class E1000 extends PciFunction<E1000State> {
  readonly port: NicPort;
  private readonly mem: GuestMemory;
  private readonly clock: Clock;
  private readonly timer: Timer;

  constructor(opts: E1000Options) {
    const mac = opts.mac ?? E1000_DEFAULT_MAC;
    const words = new Uint16Array(64);
    // EEPROM map (§5.6, Table 5-2): Ethernet address in words 0-2, IDs in 0x0B-0x0E, checksum word 0x3F
    // making the 64 words sum to 0xBABA, which the driver verifies before trusting the address.
    for (let i = 0; i < 3; i++) words[i] = mac[2 * i] | (mac[2 * i + 1] << 8);
    words[0x0a] = 0x6400 | 0x0020; // Initialization Control 1: signature 01b, fixed by §5.6.9
    words[0x0b] = 0x001e; words[0x0c] = 0x8086; words[0x0d] = 0x100e; words[0x0e] = 0x8086;
    words[0x0f] = 0x3040; // Initialization Control 2
    eepromChecksum(words, 0x3f, 0xbaba);
    super(opts.name ?? 'e1000', { vendor: 0x8086, device: 0x100e, classCode: 0x020000, revision: 0x03, subsystemVendor: 0x8086, subsystem: 0x001e, interruptPin: 1 }, {
      regs: new Uint32Array(MMIO_SIZE / 4), phy: new Uint16Array(32), eeprom: newEeprom(words), ioAddr: 0,
      ctx: { ipcss: 0, ipcso: 0, ipcse: 0, tucss: 0, tucso: 0, tucse: 0, paylen: 0, tucmd: 0, hdrlen: 0, mss: 0 },
      txBuf: new Uint8Array(TX_BUF_MAX), txLen: 0, txTse: false, txPopts: 0, txVle: false, txVlan: 0, txLegacyCso: 0, txLegacyCss: 0, txLegacyIc: false, txBad: false,
      itrAt: -1, rdtrAt: -1, radvAt: -1, tidvAt: -1, tadvAt: -1, lastIrqAt: -1e18, irqOut: false,
    });
    this.mem = opts.mem;
    this.clock = opts.clock;
    this.timer = this.clock.createTimer(() => this.onTimer());
    this.setBar(0, { kind: 'mem', size: MMIO_SIZE, read: (o, s) => this.mmioRead(o, s), write: (o, s, v) => this.mmioWrite(o, s, v) });
    this.setBar(1, { kind: 'io', size: 8, read: (o, s) => this.ioRead(o, s), write: (o, s, v) => this.ioWrite(o, s, v) });
    this.port = new NicPort(opts.backend, {
      accepts: (f) => this.accepts(f), store: (f) => this.store(f), missed: () => this.missed(), linkChanged: () => this.linkChanged(),
    }, { maxFrame: 16384, wake: opts.wake });
    this.reset();
    this.resetPhy();
    // The receive address register 0 is loaded from the EEPROM at power-up (§5.6.1).
    this.loadRa0();
  }

  get stats() { return this.port.stats; }
  get mac(): number[] { const r = this.state.regs; const lo = r[RA >> 2], hi = r[(RA + 4) >> 2]; return [lo & 0xff, (lo >>> 8) & 0xff, (lo >>> 16) & 0xff, lo >>> 24, hi & 0xff, (hi >>> 8) & 0xff]; }

  private reg(off: number): number { return this.state.regs[off >> 2]; }
  private setReg(off: number, v: number): void { this.state.regs[off >> 2] = v >>> 0; }

  private loadRa0(): void {
    const w = this.state.eeprom.words;
    this.setReg(RA, w[0] | (w[1] << 16));
    this.setReg(RA + 4, w[2] | 0x80000000); // AV: address valid
  }

  /** Software reset through CTRL.RST (§14.9): everything but PCI configuration and the EEPROM goes to defaults. */
  private reset(): void {
    const s = this.state;
    s.regs.fill(0);
    this.setReg(CTRL, 0x00000240 | CTRL_FD); // SLU and 1000 Mb/s, full duplex, as the EEPROM's defaults select
    this.setReg(EECD, EECD_PRES | (1 << 4)); // EEPROM present; flash writes disabled (FWE = 01b)
    this.setReg(LEDCTL, 0x07068302);
    this.setReg(PBA, 0x00000030); // 48 KB receive / 16 KB transmit packet buffer
    this.setReg(TIPG, 0x0060200a);
    this.setReg(VET, 0x8100);
    this.setReg(TXDCTL, 0x00010000); this.setReg(RXDCTL, 0x00010000);
    this.setReg(MANC, 0);
    s.txLen = 0; s.txBad = false;
    s.itrAt = s.rdtrAt = s.radvAt = s.tidvAt = s.tadvAt = -1;
    s.lastIrqAt = -1e18;
    this.loadRa0();
    this.port.flush();
    this.armTimer();
    this.updateIrq();
  }

  private resetPhy(): void {
    const p = this.state.phy;
    p.fill(0);
    p[PHY_CTRL] = 0x1140; // autonegotiation enabled, full duplex, 1000 Mb/s select
    p[PHY_ID1] = 0x0141; p[PHY_ID2] = 0x0c20; // M88E1011
    p[PHY_AUTONEG_ADV] = 0x01e1; p[PHY_LP_ABILITY] = 0x41e1; p[PHY_AUTONEG_EXP] = 0x0001;
    p[PHY_1000T_CTRL] = 0x0300; p[M88_PHY_SPEC_CTRL] = 0x0068; p[M88_EXT_PHY_SPEC_CTRL] = 0x0d60;
    this.updatePhyLink();
  }

  private updatePhyLink(): void {
    const p = this.state.phy;
    const up = this.port?.linkUp ?? false;
    // Status: 100BASE-X/10BASE-T capabilities, extended status, preamble suppression, plus link and autoneg done.
    p[PHY_STATUS] = 0x7949 | (up ? MII_SR_LINK | MII_SR_AUTONEG_COMPLETE : 0);
    p[PHY_1000T_STATUS] = up ? 0x3c00 : 0;
    // M88 specific status: 1000 Mb/s, full duplex, speed/duplex resolved, real-time link.
    p[M88_PHY_SPEC_STATUS] = up ? 0xbc00 : 0;
  }

  private linkChanged(): void {
    this.updatePhyLink();
    this.setIcr(ICR_LSC);
  }

  // --- Register access -------------------------------------------------------------------------------------

  private mmioRead(off: number, size: 1 | 2 | 4): number {
    const v = this.readReg(off & ~3);
    return size === 4 ? v : (v >>> (8 * (off & 3))) & (size === 1 ? 0xff : 0xffff);
  }

  private mmioWrite(off: number, size: 1 | 2 | 4, value: number): void {
    if (size !== 4) {
      // Sub-dword writes merge into the stored word (the bus enables only some byte lanes).
      const sh = 8 * (off & 3), mask = (size === 1 ? 0xff : 0xffff) << sh;
      value = (this.reg(off & ~3) & ~mask) | ((value << sh) & mask);
    }
    this.writeReg(off & ~3, value >>> 0);
  }

  /** I/O window (§13.2.2): offset 0 IOADDR selects a register, offset 4 IODATA reads or writes it. */
  private ioRead(off: number, size: 1 | 2 | 4): number {
    const v = off < 4 ? this.state.ioAddr : this.readReg(this.state.ioAddr & 0x1fffc);
    return size === 4 ? v : (v >>> (8 * (off & 3))) & (size === 1 ? 0xff : 0xffff);
  }

  private ioWrite(off: number, size: 1 | 2 | 4, value: number): void {
    if (size !== 4) { this.stats.badRegAccesses++; return; } // the window takes dword accesses only
    if (off < 4) this.state.ioAddr = value & 0x1fffc;
    else this.writeReg(this.state.ioAddr & 0x1fffc, value >>> 0);
  }

  private known(off: number): boolean {
    if (off >= STATS && off < STATS_END) return true;
    if (off >= MTA && off < MTA + 0x200) return true;
    if (off >= RA && off < RA + 0x80) return true;
    if (off >= VFTA && off < VFTA + 0x200) return true;
    if ((off >= IP4AT && off < IP4AT + 0x20) || (off >= IP6AT && off < IP6AT + 0x10) || (off >= WUPM && off < WUPM + 0x80) || (off >= FFLT && off < FFLT + 0x20)) return true;
    if ((off >= FFMT && off < FFMT + 0x400) || (off >= FFVT && off < FFVT + 0x400)) return true;
    return KNOWN.has(off);
  }

  readReg(off: number): number {
    this.stats.regReads++;
    const s = this.state;
    if (!this.known(off)) { this.stats.badRegAccesses++; return 0; }
    switch (off) {
      case STATUS: {
        const up = this.port.linkUp;
        return (up ? STATUS_LU | STATUS_FD | STATUS_SPEED_1000 : 0) >>> 0;
      }
      case EECD: {
        let v = this.reg(EECD) & ~(EECD_DO | EECD_GNT);
        if (v & EECD_REQ) v |= EECD_GNT; // no other agent (firmware) contends for the EEPROM
        if (s.eeprom.dout) v |= EECD_DO;
        return v >>> 0;
      }
      case ICR: {
        // Reading ICR returns and clears every cause (§13.4.17) and deasserts the interrupt.
        const v = this.reg(ICR);
        this.setReg(ICR, 0);
        this.updateIrq();
        return v;
      }
      case ICS: return this.reg(ICR);
      case IMC: return 0;
      case RDH: case RDT: case TDH: case TDT: return this.reg(off) & 0xffff;
    }
    if (off >= STATS && off < STATS_END) {
      // Statistics clear on read (§13.7); the 64-bit octet counters clear when their high half is read.
      const v = this.reg(off);
      if (!(off === S_GORCL || off === S_GOTCL || off === S_TORL || off === S_TOTL)) this.setReg(off, 0);
      else this.setReg(off, v); // low half: kept until the high half is read
      if (off === S_GORCL + 4 || off === S_GOTCL + 4 || off === S_TORL + 4 || off === S_TOTL + 4) this.setReg(off - 4, 0);
      return v;
    }
    return this.reg(off);
  }

  writeReg(off: number, v: number): void {
    this.stats.regWrites++;
    const s = this.state;
    if (!this.known(off)) { this.stats.badRegAccesses++; return; }
    switch (off) {
      case CTRL:
        if (v & CTRL_PHY_RST) this.resetPhy();
        if (v & CTRL_RST) { this.reset(); return; } // self-clearing
        this.setReg(CTRL, v & ~(CTRL_RST | CTRL_PHY_RST));
        return;
      case STATUS: return; // read-only
      case EECD: {
        // Software owns SK, CS, DI and REQ; DO, GNT, PRES and the size bits are the hardware's.
        const keep = this.reg(EECD) & ~(EECD_SK | EECD_CS | EECD_DI | EECD_REQ);
        this.setReg(EECD, keep | (v & (EECD_SK | EECD_CS | EECD_DI | EECD_REQ)));
        eepromPins(s.eeprom, (v & EECD_CS) !== 0, (v & EECD_SK) !== 0, (v & EECD_DI) !== 0);
        return;
      }
      case EERD: {
        // EEPROM Read register (§13.4.4): START bit 0, address bits 15:8, DONE bit 4, data bits 31:16.
        if (!(v & 1)) { this.setReg(EERD, v & 0xff00); return; }
        const addr = (v >>> 8) & 0xff;
        const data = addr < 64 ? s.eeprom.words[addr] : 0xffff;
        this.setReg(EERD, (data << 16) | (addr << 8) | (1 << 4));
        return;
      }
      case MDIC: this.mdic(v); return;
      case ICR: this.setReg(ICR, this.reg(ICR) & ~v); this.updateIrq(); return; // write-one-to-clear
      case ICS: this.setIcr(v & ICR_VALID); return;
      case IMS: this.setReg(IMS, (this.reg(IMS) | v) & ICR_VALID); this.updateIrq(); return;
      case IMC: this.setReg(IMS, this.reg(IMS) & ~v); this.updateIrq(); return;
      case ITR: this.setReg(ITR, v & 0xffff); return;
      case RCTL: this.setReg(RCTL, v); if (v & RCTL_EN) this.port.drain(); return;
      case TCTL: this.setReg(TCTL, v); if (v & TCTL_EN) this.transmit(); return;
      case RDLEN: case TDLEN: this.setReg(off, v & 0xfff80); return; // multiple of 128 bytes (§13.4.27)
      case RDBAL: case TDBAL: this.setReg(off, v & ~0xf); return; // 16-byte aligned
      case RDH: case TDH: this.setReg(off, v & 0xffff); return;
      case RDT: this.setReg(RDT, v & 0xffff); this.port.drain(); return;
      case TDT: this.setReg(TDT, v & 0xffff); this.transmit(); return;
      case RDTR:
        this.setReg(RDTR, v & 0xffff);
        // FPD (bit 31): flush the pending receive interrupt now.
        if (v & 0x80000000) { s.rdtrAt = s.radvAt = -1; this.setIcr(ICR_RXT0); }
        return;
      case RADV: case TIDV: case TADV: this.setReg(off, v & 0xffff); return;
    }
    if (off >= STATS && off < STATS_END) return; // read-only counters
    this.setReg(off, v);
  }

  /** MDI control (§13.4.10): one PHY register read or write per command, done at once. */
  private mdic(v: number): void {
    const data = v & 0xffff, reg = (v >>> 16) & 0x1f, phyAddr = (v >>> 21) & 0x1f, op = (v >>> 26) & 3;
    let out = (v & 0x3fffffff) | (1 << 28); // READY
    if (phyAddr !== 1 || (op !== 1 && op !== 2)) {
      out |= 1 << 30; // ERROR: only PHY address 1 answers
    } else if (op === 2) {
      out = (out & ~0xffff) | this.state.phy[reg];
    } else {
      this.phyWrite(reg, data);
    }
    this.setReg(MDIC, out);
    if (v & (1 << 29)) this.setIcr(ICR_MDAC);
  }

  private phyWrite(reg: number, v: number): void {
    const p = this.state.phy;
    switch (reg) {
      case PHY_CTRL:
        if (v & 0x8000) { this.resetPhy(); p[PHY_CTRL] = v & ~0x8200 & 0xffff; this.updatePhyLink(); return; }
        p[PHY_CTRL] = v & ~0x0200; // restart-autonegotiation self-clears; it completes at once
        this.updatePhyLink();
        return;
      case PHY_STATUS: case PHY_ID1: case PHY_ID2: case PHY_LP_ABILITY: case PHY_AUTONEG_EXP: case PHY_1000T_STATUS: case M88_PHY_SPEC_STATUS:
        return; // read-only
      default: p[reg] = v;
    }
  }

  // --- Interrupts ----------------------------------------------------------------------------------------------

  private setIcr(bits: number): void {
    if (!bits) return;
    this.setReg(ICR, this.reg(ICR) | bits);
    this.updateIrq();
  }

  /**
   * INTA# follows ICR & IMS, but the interrupt throttle (ITR, §13.4.18) keeps successive assertions at least
   * ITR × 256 ns apart; a cause that arrives sooner waits for the interval to expire.
   */
  private updateIrq(): void {
    const s = this.state;
    const pending = (this.reg(ICR) & this.reg(IMS)) !== 0;
    if (!pending) { s.itrAt = -1; this.drive(false); return; }
    if (s.irqOut) return;
    const itr = this.reg(ITR) & 0xffff;
    const now = this.clock.now();
    const earliest = s.lastIrqAt + itr * 256;
    if (itr && now < earliest) {
      if (s.itrAt < 0) { s.itrAt = earliest; this.armTimer(); }
      return;
    }
    s.itrAt = -1;
    s.lastIrqAt = now;
    this.drive(true);
  }

  private drive(level: boolean): void {
    if (level === this.state.irqOut) return;
    this.state.irqOut = level;
    if (level) this.stats.interrupts++;
    this.setIntx(level);
  }

  private armTimer(): void {
    const s = this.state;
    let d = -1;
    for (const t of [s.itrAt, s.rdtrAt, s.radvAt, s.tidvAt, s.tadvAt]) if (t >= 0 && (d < 0 || t < d)) d = t;
    this.timer.deadline = d;
  }

  private onTimer(): void {
    const s = this.state, now = this.clock.now();
    let causes = 0;
    if ((s.rdtrAt >= 0 && s.rdtrAt <= now) || (s.radvAt >= 0 && s.radvAt <= now)) { s.rdtrAt = s.radvAt = -1; causes |= ICR_RXT0; }
    if ((s.tidvAt >= 0 && s.tidvAt <= now) || (s.tadvAt >= 0 && s.tadvAt <= now)) { s.tidvAt = s.tadvAt = -1; causes |= ICR_TXDW; }
    if (s.itrAt >= 0 && s.itrAt <= now) s.itrAt = -1;
    if (causes) this.setReg(ICR, this.reg(ICR) | causes);
    this.updateIrq();
    this.armTimer();
  }

  /** Receive timer (§3.2.7): RDTR restarts with each packet, RADV bounds the total delay. */
  private rxDone(): void {
    const s = this.state, rdtr = this.reg(RDTR) & 0xffff, radv = this.reg(RADV) & 0xffff;
    if (!rdtr) { this.setIcr(ICR_RXT0); return; }
    const now = this.clock.now();
    s.rdtrAt = now + rdtr * 1024;
    if (radv && s.radvAt < 0) s.radvAt = now + radv * 1024;
    this.armTimer();
  }

  /** Transmit interrupt delay (§3.4): descriptors with IDE delay TXDW by TIDV, bounded by TADV. */
  private txDone(ide: boolean): void {
    const s = this.state, tidv = this.reg(TIDV) & 0xffff, tadv = this.reg(TADV) & 0xffff;
    if (!ide || !tidv) { s.tidvAt = s.tadvAt = -1; this.setIcr(ICR_TXDW); return; }
    const now = this.clock.now();
    s.tidvAt = now + tidv * 1024;
    if (tadv && s.tadvAt < 0) s.tadvAt = now + tadv * 1024;
    this.armTimer();
  }

  // --- Receive -----------------------------------------------------------------------------------------------

  /** Destination address filtering (§3.2.1): exact RAL/RAH matches, the multicast table, and the promiscuous bits. */
  private accepts(f: Uint8Array): boolean {
    const rctl = this.reg(RCTL);
    if ((this.reg(CTRL) & CTRL_VME) === 0 && (rctl & RCTL_VFE) && f[12] === 0x81 && f[13] === 0x00) {
      // VLAN filtering applies to tagged frames only (§3.2.1.1).
      const vid = ((f[14] << 8) | f[15]) & 0xfff;
      if (!(this.reg(VFTA + 4 * (vid >> 5)) & (1 << (vid & 31)))) return false;
    }
    if (isBroadcast(f)) return (rctl & RCTL_BAM) !== 0 || (rctl & RCTL_MPE) !== 0;
    if (isMulticast(f)) {
      if (rctl & RCTL_MPE) return true;
    } else if (rctl & RCTL_UPE) return true;
    for (let i = 0; i < 16; i++) {
      const hi = this.reg(RA + 8 * i + 4);
      if (!(hi & 0x80000000)) continue;
      const lo = this.reg(RA + 8 * i);
      if (f[0] === (lo & 0xff) && f[1] === ((lo >>> 8) & 0xff) && f[2] === ((lo >>> 16) & 0xff) && f[3] === lo >>> 24 && f[4] === (hi & 0xff) && f[5] === ((hi >>> 8) & 0xff)) return true;
    }
    if (!isMulticast(f)) return false;
    // Multicast Offset (RCTL.MO, §13.4.22) picks which 12 bits of the address index the 4096-bit table.
    const mo = (rctl >>> 12) & 3;
    const w = f[4] | (f[5] << 8);
    const hash = (w >>> [4, 3, 2, 0][mo]) & 0xfff;
    return (this.reg(MTA + 4 * (hash >>> 5)) & (1 << (hash & 31))) !== 0;
  }

  private bufSize(): number {
    const rctl = this.reg(RCTL), bs = (rctl >>> 16) & 3;
    if (rctl & RCTL_BSEX) return [0, 16384, 8192, 4096][bs] || 2048; // BSEX with 00b is reserved: use 2048
    return [2048, 1024, 512, 256][bs];
  }

  private missed(): void {
    this.setReg(S_MPC, this.reg(S_MPC) + 1);
    this.setReg(S_RNBC, this.reg(S_RNBC) + 1);
    this.setIcr(ICR_RXO);
  }

  private store(frame: Uint8Array): StoreResult {
    const rctl = this.reg(RCTL);
    if (!(rctl & RCTL_EN) || !this.port.linkUp) return 'off';
    if (!(this.command & CMD_BUS_MASTER)) return 'full';
    // Long packets (§3.2.2): without LPE anything beyond 1522 bytes (with FCS) is dropped as oversize.
    if (!(rctl & RCTL_LPE) && frame.length > 1518) { this.stats.rxMalformed++; this.bump(S_ROC); return 'ok'; }
    let status = 0, special = 0;
    if ((this.reg(CTRL) & CTRL_VME) && frame[12] === (this.reg(VET) >>> 8 & 0xff) && frame[13] === (this.reg(VET) & 0xff)) {
      // VLAN tag stripping (§3.2.8): the tag moves to the descriptor's special field.
      special = (frame[14] << 8) | frame[15];
      const t = new Uint8Array(frame.length - 4);
      t.set(frame.subarray(0, 12)); t.set(frame.subarray(16), 12);
      frame = t; status |= RXD_VP;
    }
    const data = rctl & RCTL_SECRC ? frame : withFcs(frame);
    const ringBytes = this.reg(RDLEN), count = ringBytes / 16;
    const base = this.reg(RDBAL) + this.reg(RDBAH) * 2 ** 32;
    let head = this.reg(RDH) & 0xffff;
    const tail = this.reg(RDT) & 0xffff;
    if (count === 0 || head >= count || tail >= count) { this.stats.rxMissed++; this.bump(S_RNBC); return 'full'; }
    const bsize = this.bufSize();
    const need = Math.ceil(data.length / bsize);
    const free = (tail - head + count) % count;
    if (free < need) { this.bump(S_RNBC); return 'full'; }
    if (!dmaOk(this.mem, base, ringBytes)) { this.stats.dmaFaults++; return 'ok'; }
    const csum = this.rxChecksum(frame);
    status |= csum.status;
    for (let off = 0, i = 0; off < data.length; i++) {
      const desc = base + head * 16;
      const len = Math.min(bsize, data.length - off);
      const buf = this.mem.read32(desc) >>> 0, bufHi = this.mem.read32(desc + 4) >>> 0;
      const addr = buf + bufHi * 2 ** 32;
      const last = off + len >= data.length;
      if (dmaOk(this.mem, addr, len)) this.mem.writeBytes(addr, data.subarray(off, off + len));
      else this.stats.dmaFaults++;
      this.mem.write16(desc + 8, len);
      this.mem.write16(desc + 10, csum.raw);
      this.mem.write8(desc + 13, last ? csum.errors : 0);
      this.mem.write16(desc + 14, special);
      this.mem.write8(desc + 12, RXD_DD | (last ? RXD_EOP | status : 0));
      head = (head + 1) % count;
      off += len;
    }
    this.setReg(RDH, head);
    this.countRx(frame, data.length);
    // Receive descriptor minimum threshold (RCTL.RDMTS, §13.4.22): free descriptors down to 1/2, 1/4 or 1/8.
    const left = (tail - head + count) % count;
    const rdmts = (rctl >>> 8) & 3;
    if (rdmts < 3 && left <= count >> (rdmts + 1)) this.setIcr(ICR_RXDMT0);
    this.rxDone();
    return 'ok';
  }

  /** Receive checksum offload (§3.2.9, RXCSUM): IPv4 header and TCP/UDP checksums verified. */
  private rxChecksum(f: Uint8Array): { status: number; errors: number; raw: number } {
    const rx = this.reg(RXCSUM);
    let status = 0, errors = 0;
    const pcss = rx & 0xff;
    const raw = foldSum(onesSum(f, Math.min(pcss, f.length), f.length));
    if (!(rx & (RXCSUM_IPOFL | RXCSUM_TUOFL))) return { status: RXD_IXSM, errors, raw };
    if (f[12] !== 0x08 || f[13] !== 0x00) return { status, errors, raw };
    const ip = ETH_HLEN, ihl = (f[ip] & 0xf) * 4;
    if ((f[ip] >> 4) !== 4 || ihl < 20 || ip + ihl > f.length) return { status, errors, raw };
    if (rx & RXCSUM_IPOFL) { status |= RXD_IPCS; if (foldSum(onesSum(f, ip, ip + ihl)) !== 0xffff) errors |= RXE_IPE; }
    const total = (f[ip + 2] << 8) | f[ip + 3];
    const frag = ((f[ip + 6] << 8) | f[ip + 7]) & 0x3fff;
    const proto = f[ip + 9];
    if ((rx & RXCSUM_TUOFL) && !frag && (proto === 6 || proto === 17) && total >= ihl && ip + total <= f.length) {
      const l4 = ip + ihl, len = total - ihl;
      if (!(proto === 17 && f[l4 + 6] === 0 && f[l4 + 7] === 0)) {
        let sum = onesSum(f, ip + 12, ip + 20) + proto + len;
        sum = onesSum(f, l4, l4 + len, sum);
        if (foldSum(sum) !== 0xffff) errors |= RXE_TCPE;
      }
      status |= RXD_TCPCS;
    }
    return { status, errors, raw };
  }

  private bump(off: number, by = 1): void { this.setReg(off, Math.min(0xffffffff, this.reg(off) + by)); }
  private bump64(off: number, by: number): void {
    const lo = this.reg(off) + by;
    this.setReg(off, lo % 2 ** 32);
    if (lo >= 2 ** 32) this.bump(off + 4);
  }

  private sizeBin(base: number, len: number): void {
    // 64, 65-127, 128-255, 256-511, 512-1023, 1024-1522 byte bins (with FCS).
    const n = len < 65 ? 0 : len < 128 ? 1 : len < 256 ? 2 : len < 512 ? 3 : len < 1024 ? 4 : 5;
    this.bump(base + 4 * n);
  }

  private countRx(f: Uint8Array, lenWithFcs: number): void {
    const len = f.length + 4;
    this.bump(S_TPR); this.bump(S_GPRC); this.bump64(S_GORCL, len); this.bump64(S_TORL, len);
    if (isBroadcast(f)) this.bump(S_BPRC); else if (isMulticast(f)) this.bump(S_MPRC);
    this.sizeBin(S_PRC64, Math.max(len, lenWithFcs));
  }

  // --- Transmit ------------------------------------------------------------------------------------------------

  /** Processes descriptors from TDH up to TDT (§3.3.1). Bounded by the ring size per call. */
  private transmit(): void {
    if (!(this.reg(TCTL) & TCTL_EN) || !(this.command & CMD_BUS_MASTER)) return;
    const s = this.state;
    const ringBytes = this.reg(TDLEN), count = ringBytes / 16;
    const base = this.reg(TDBAL) + this.reg(TDBAH) * 2 ** 32;
    let head = this.reg(TDH) & 0xffff;
    const tail = this.reg(TDT) & 0xffff;
    if (count === 0 || head >= count || tail >= count) { if (head !== tail) this.stats.txMalformed++; return; }
    if (!dmaOk(this.mem, base, ringBytes)) { this.stats.dmaFaults++; return; }
    let sent = false, ide = true;
    for (let n = 0; head !== tail && n < count; n++) {
      const d = base + head * 16;
      const lo = this.mem.read32(d) >>> 0, hi = this.mem.read32(d + 4) >>> 0;
      const w2 = this.mem.read32(d + 8) >>> 0;
      const cmd = w2 >>> 24;
      const addr = lo + hi * 2 ** 32;
      const dtyp = (w2 >>> 20) & 0xf;
      if ((cmd & TXD_DEXT) && dtyp === 0) {
        // Context descriptor (§3.3.6): loads the offload parameters for the following packets.
        const c = s.ctx;
        c.ipcss = this.mem.read8(d); c.ipcso = this.mem.read8(d + 1); c.ipcse = this.mem.read16(d + 2);
        c.tucss = this.mem.read8(d + 4); c.tucso = this.mem.read8(d + 5); c.tucse = this.mem.read16(d + 6);
        c.paylen = w2 & 0xfffff; c.tucmd = cmd; c.hdrlen = this.mem.read8(d + 13); c.mss = this.mem.read16(d + 14);
      } else {
        const ext = (cmd & TXD_DEXT) !== 0;
        if (ext && dtyp !== 1) { this.stats.txMalformed++; } else {
          const len = ext ? w2 & 0xfffff : w2 & 0xffff;
          if (s.txLen === 0 && !s.txBad) {
            // First descriptor of a packet carries its options (§3.3.7.1).
            const popts = this.mem.read8(d + 13);
            s.txTse = ext && (cmd & TXD_TSE) !== 0;
            s.txPopts = ext ? popts : 0;
            s.txLegacyIc = !ext && (cmd & TXD_IC) !== 0;
            s.txLegacyCso = ext ? 0 : (w2 >>> 16) & 0xff;
            s.txLegacyCss = ext ? 0 : popts;
            s.txVle = (cmd & TXD_VLE) !== 0;
            s.txVlan = this.mem.read16(d + 14);
          }
          if (s.txLen + len > TX_BUF_MAX) s.txBad = true;
          else if (!dmaOk(this.mem, addr, len)) { this.stats.dmaFaults++; s.txBad = true; } else {
            this.mem.readBytes(addr, len, s.txBuf, s.txLen);
            s.txLen += len;
          }
          if (cmd & TXD_EOP) {
            if (s.txBad) this.stats.txMalformed++; else this.sendPacket();
            s.txLen = 0; s.txBad = false;
            sent = true;
            ide = ide && (cmd & TXD_IDE) !== 0;
          }
        }
      }
      // Descriptor done: with RS the status byte's DD bit is written back (§3.3.3.2).
      if (cmd & TXD_RS) this.mem.write8(d + 12, this.mem.read8(d + 12) | 1);
      head = (head + 1) % count;
    }
    this.setReg(TDH, head);
    if (sent) this.txDone(ide);
    if (head === tail) this.setIcr(ICR_TXQE);
  }

  private sendPacket(): void {
    const s = this.state;
    const pkt = s.txBuf.subarray(0, s.txLen);
    if (s.txTse) { this.sendTso(pkt); return; }
    const f = pkt.slice();
    if (s.txLegacyIc) {
      if (s.txLegacyCso + 2 <= f.length && s.txLegacyCss < f.length) this.putSum(f, s.txLegacyCso, onesSum(f, s.txLegacyCss, f.length));
    } else {
      const c = s.ctx;
      if (s.txPopts & POPTS_IXSM) this.insertSum(f, c.ipcss, c.ipcse, c.ipcso);
      if (s.txPopts & POPTS_TXSM) this.insertSum(f, c.tucss, c.tucse, c.tucso);
    }
    this.emit(f);
  }

  /** Sums bytes [start, end] (end inclusive, 0 = to the end of the packet) and stores the complement at `at`. */
  private insertSum(f: Uint8Array, start: number, end: number, at: number): void {
    const stop = end ? Math.min(end + 1, f.length) : f.length;
    if (start >= stop || at + 2 > f.length) return;
    this.putSum(f, at, onesSum(f, start, stop));
  }

  private putSum(f: Uint8Array, at: number, sum: number): void {
    const c = ~foldSum(sum) & 0xffff;
    f[at] = c >> 8; f[at + 1] = c & 0xff;
  }

  /**
   * TCP segmentation (§3.5): the header (HDRLEN bytes) is repeated in front of each MSS-sized piece of the
   * payload; per segment the IP total length and identification, the TCP sequence number and flags are
   * updated and both checksums recomputed. The driver leaves the pseudo-header sum without length in the
   * TCP checksum field; the length of each segment is added here.
   */
  private sendTso(pkt: Uint8Array): void {
    const c = this.state.ctx;
    const hdr = c.hdrlen, mss = c.mss;
    if (hdr < ETH_HLEN || hdr > pkt.length || mss === 0 || c.tucss + 18 > hdr || c.ipcss + 20 > hdr) { this.stats.txMalformed++; return; }
    const payload = pkt.length - hdr;
    const ipv4 = (c.tucmd & TUCMD_IP) !== 0, tcp = (c.tucmd & TUCMD_TCP) !== 0;
    const seq0 = ((pkt[c.tucss + 4] << 24) | (pkt[c.tucss + 5] << 16) | (pkt[c.tucss + 6] << 8) | pkt[c.tucss + 7]) >>> 0;
    const id0 = (pkt[c.ipcss + 4] << 8) | pkt[c.ipcss + 5];
    const pseudo = (pkt[c.tucso] << 8) | pkt[c.tucso + 1];
    let n = 0;
    for (let off = 0; off < payload || (payload === 0 && n === 0); off += mss, n++) {
      const len = Math.min(mss, payload - off), last = off + len >= payload;
      const f = new Uint8Array(hdr + len);
      f.set(pkt.subarray(0, hdr)); f.set(pkt.subarray(hdr + off, hdr + off + len), hdr);
      if (ipv4) {
        const tot = hdr - c.ipcss + len;
        f[c.ipcss + 2] = tot >> 8; f[c.ipcss + 3] = tot & 0xff;
        const id = (id0 + n) & 0xffff;
        f[c.ipcss + 4] = id >> 8; f[c.ipcss + 5] = id & 0xff;
        f[c.ipcso] = 0; f[c.ipcso + 1] = 0;
        if (this.state.txPopts & POPTS_IXSM) this.insertSum(f, c.ipcss, c.ipcse, c.ipcso);
      } else {
        const pl = hdr - c.ipcss - 40 + len; // IPv6 payload length
        f[c.ipcss + 4] = pl >> 8; f[c.ipcss + 5] = pl & 0xff;
      }
      if (tcp) {
        const seq = (seq0 + off) >>> 0;
        f[c.tucss + 4] = seq >>> 24; f[c.tucss + 5] = (seq >>> 16) & 0xff; f[c.tucss + 6] = (seq >>> 8) & 0xff; f[c.tucss + 7] = seq & 0xff;
        if (!last) f[c.tucss + 13] &= ~0x09; // FIN and PSH only on the last segment
      } else {
        const ul = hdr - c.tucss + len;
        f[c.tucss + 4] = ul >> 8; f[c.tucss + 5] = ul & 0xff;
      }
      if (this.state.txPopts & POPTS_TXSM) {
        f[c.tucso] = pseudo >> 8; f[c.tucso + 1] = pseudo & 0xff;
        const l4len = f.length - c.tucss;
        this.putSum(f, c.tucso, onesSum(f, c.tucss, f.length) + l4len);
      }
      this.emit(f);
      if (last) break;
    }
    this.bump(S_TSCTC);
  }

  private emit(frame: Uint8Array): void {
    const s = this.state;
    let f = frame;
    if (s.txVle && (this.reg(CTRL) & CTRL_VME)) {
      // VLAN tag insertion (§3.3.7.2): VET and the descriptor's special field go after the source address.
      const vet = this.reg(VET) & 0xffff;
      f = new Uint8Array(frame.length + 4);
      f.set(frame.subarray(0, 12)); f[12] = vet >> 8; f[13] = vet & 0xff; f[14] = s.txVlan >> 8; f[15] = s.txVlan & 0xff;
      f.set(frame.subarray(12), 16);
    }
    if (f.length < ETH_HLEN) { this.stats.txMalformed++; return; }
    if (f.length < ETH_ZLEN && (this.reg(TCTL) & TCTL_PSP)) { const p = new Uint8Array(ETH_ZLEN); p.set(f); f = p; }
    if (!this.port.linkUp) return; // no carrier: the frame goes nowhere (counted by the backend as lost)
    this.port.transmit(f);
    const len = f.length + 4;
    this.bump(S_TPT); this.bump(S_GPTC); this.bump64(S_GOTCL, len); this.bump64(S_TOTL, len);
    if (isBroadcast(f)) this.bump(S_BPTC); else if (isMulticast(f)) this.bump(S_MPTC);
    this.sizeBin(S_PTC64, len);
  }

  override afterRestore(): void {
    super.afterRestore();
    this.armTimer();
    this.setIntx(this.state.irqOut);
  }
}

const KNOWN = new Set([
  CTRL, STATUS, EECD, EERD, CTRL_EXT, 0x001c, MDIC, FCAL, FCAH, FCT, VET, ICR, ITR, ICS, IMS, IMC, RCTL, FCTTV, TXCW, RXCW, TCTL,
  TIPG, LEDCTL, PBA, FCRTL, FCRTH, RDBAL, RDBAH, RDLEN, RDH, RDT, RDTR, RXDCTL, RADV, RSRPD, TXDMAC, TDBAL, TDBAH, TDLEN, TDH, TDT,
  TIDV, TXDCTL, TADV, 0x3830 /* TSPMT */, RXCSUM, WUC, WUFC, WUS, MANC, IPAV, WUPL,
  0x3400 /* TDFH */, 0x3410 /* TDFT */, 0x3418 /* TDFHS */, 0x3420 /* TDFTS */, 0x3428 /* TDFPC */, 0x2410 /* RDFH */, 0x2418 /* RDFT */, 0x2420, 0x2428, 0x2430,
]);
