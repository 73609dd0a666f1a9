// The Intel 82441FX PCI and memory controller (PMC), the host bridge at 00:00.0 of a 440FX board
// (Intel 440FX PCIset datasheet, order no. 290549, §3.2 "PCI configuration registers").
//
// We boot the guest without a BIOS, so nothing uses the DRAM-controller registers: the memory map is
// fixed by the machine. They are kept as plain read/write bytes so software that saves and restores
// them (or probes them, as Linux's PCI quirks do) reads back what it wrote.

import { PciFunction, type PciConfigState } from '../../machine/pci.ts';

export class I440fxHostBridge extends PciFunction<PciConfigState> {
  constructor() {
    // 8086:1237 revision 02, class 06/00/00 "host bridge" (datasheet §3.2.1-3.2.4).
    super('i440fx', { vendor: 0x8086, device: 0x1237, classCode: 0x060000, revision: 0x02 }, {});
    // PMCCFG (0x50-0x51), DETURBO (0x52), DBC (0x53), AXC (0x54), DRAMR (0x55-0x56), DRAMC (0x57),
    // DRAMT (0x58), PAM0-6 (0x59-0x5F), DRB0-7 (0x60-0x67), FDHC (0x68), MTT (0x70), CLT (0x71),
    // SMRAM (0x72), ERRCMD (0x90), ERRSTS (0x91), TRC (0x93).
    for (let r = 0x50; r <= 0x72; r++) this.wmask[r] = 0xff;
    this.wmask[0x90] = 0xff;
    this.w1cmask[0x91] = 0xff;
    this.wmask[0x93] = 0xff;
    // SMRAM: D_OPEN etc. are meaningless without SMM; C_BASE_SEG reads 010b (A0000h, §3.2.22).
    this.state.config[0x72] = 0x02;
  }
}
