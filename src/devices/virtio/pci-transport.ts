// The virtio-over-PCI transport, modern interface only (virtio 1.2 §4.1): what a driver finds through the
// vendor capabilities, feature negotiation, device status, queue setup, notifications, and interrupts by
// MSI-X or, when the driver does not enable it, INTx# with the ISR status register. The device-specific
// part (virtio-blk, -console, -rng) is a VirtioDeviceModel; everything generic lives here.
//
// BAR0 (memory, 16 KiB) holds the four virtio structures one page apart; BAR1 (4 KiB) holds the MSI-X table
// and pending-bit array (PCI 3.0 §6.8.2).

import { PciFunction, type PciConfigState } from '../../machine/pci.ts';
import type { GuestMemory } from '../../memory/guest-memory.ts';
import { NO_VECTOR, newQueueState, Virtqueue, type QueueHost, type QueueState } from './virtqueue.ts';

// Device status bits (§2.1).
export const STATUS_ACKNOWLEDGE = 1, STATUS_DRIVER = 2, STATUS_DRIVER_OK = 4, STATUS_FEATURES_OK = 8;
export const STATUS_NEEDS_RESET = 0x40, STATUS_FAILED = 0x80;

// Reserved feature bits (§6).
export const F_INDIRECT_DESC = 28n, F_EVENT_IDX = 29n, F_VERSION_1 = 32n;

// Capability types (§4.1.4) and where each structure sits in BAR0.
const CAP_COMMON = 1, CAP_NOTIFY = 2, CAP_ISR = 3, CAP_DEVICE = 4, CAP_PCI_CFG = 5;
const COMMON_AT = 0x0000, COMMON_LEN = 0x3c, ISR_AT = 0x1000, DEVICE_AT = 0x2000, NOTIFY_AT = 0x3000;
/** queue_notify_off = queue index, so each queue has its own doorbell 4 bytes apart (§4.1.4.4). */
const NOTIFY_MULTIPLIER = 4;
const PBA_AT = 0x800;

/** The device-type-specific half of a virtio device. */
export interface VirtioDeviceModel {
  /** Virtio device ID (§5): 2 block, 3 console, 4 entropy. */
  readonly deviceId: number;
  /** PCI class code reported for it. */
  readonly classCode: number;
  /** Device-specific feature bits offered (the transport adds VERSION_1, INDIRECT_DESC, EVENT_IDX). */
  readonly features: bigint;
  /** Maximum size of each virtqueue. */
  readonly queueSizes: readonly number[];
  /** Bytes of device configuration space (0: no device-specific structure). */
  readonly configSize: number;
  readConfig(off: number, size: 1 | 2 | 4): number;
  writeConfig?(off: number, size: 1 | 2 | 4, value: number): void;
  /** The driver made buffers available on `q` (or DRIVER_OK was just set and `q` may hold some). */
  process(q: Virtqueue): void;
  /** Called once by the transport the model is plugged into. */
  attach(transport: VirtioPci): void;
  /** Device reset (§2.1): forget whatever the device model keeps about the driver. */
  reset?(): void;
}

export interface VirtioPciOptions {
  /** Guest memory the rings and buffers live in. */
  mem: GuestMemory;
  /** Delivers an MSI write (SDM vol. 3A §10.11), normally `ApicBus.deliverMsi`. */
  msi: (address: number, data: number) => void;
  /** Where the one line about a misbehaving driver goes. */
  log?: (message: string) => void;
  /** MSI-X vectors: one for configuration changes plus one per queue by default. */
  msixVectors?: number;
}

export type VirtioPciState = PciConfigState & {
  status: number;
  deviceFeatureSel: number;
  driverFeatureSel: number;
  driverFeatures: Uint32Array;
  configVector: number;
  configGeneration: number;
  queueSel: number;
  isr: number;
  queues: QueueState[];
  /** MSI-X table: address low, address high, data, vector control per entry (PCI 3.0 §6.8.2.6). */
  msixTable: Uint32Array;
  msixPending: Uint32Array;
};

export class VirtioPci extends PciFunction<VirtioPciState> implements QueueHost {
  readonly mem: GuestMemory;
  readonly queues: Virtqueue[];
  private readonly msixCap: number;
  private readonly cfgCap: number;
  private readonly nvec: number;
  readonly log: (message: string) => void;
  private readonly msi: (address: number, data: number) => void;

  constructor(name: string, readonly model: VirtioDeviceModel, opts: VirtioPciOptions) {
    const nvec = opts.msixVectors ?? model.queueSizes.length + 1;
    super(name, {
      // §4.1.2: 0x1040 + device ID, revision 1 or higher for a device without the legacy interface.
      vendor: 0x1af4, device: 0x1040 + model.deviceId, revision: 1, classCode: model.classCode,
      subsystemVendor: 0x1af4, subsystem: 0x1100, interruptPin: 1,
    }, {
      status: 0, deviceFeatureSel: 0, driverFeatureSel: 0, driverFeatures: new Uint32Array(2), configVector: NO_VECTOR,
      configGeneration: 0, queueSel: 0, isr: 0, queues: model.queueSizes.map(newQueueState),
      msixTable: new Uint32Array(4 * nvec), msixPending: new Uint32Array(Math.ceil(nvec / 32)),
    });
    this.mem = opts.mem;
    this.msi = opts.msi;
    this.log = opts.log ?? ((m) => console.error(`trapeze: ${m}`));
    this.nvec = nvec;
    for (let v = 0; v < nvec; v++) this.state.msixTable[4 * v + 3] = 1; // entries start masked (§6.8.2.9)
    this.queues = this.state.queues.map((s, i) => new Virtqueue(this, i, s));
    model.attach(this);

    this.setBar(0, { kind: 'mem', size: 0x4000, read: (o, s) => this.barRead(o, s), write: (o, s, v) => this.barWrite(o, s, v) });
    this.setBar(1, { kind: 'mem', size: 0x1000, read: (o, s) => this.msixRead(o, s), write: (o, s, v) => this.msixWrite(o, s, v) });
    this.addVirtioCap(CAP_COMMON, COMMON_AT, COMMON_LEN);
    const notify = this.addVirtioCap(CAP_NOTIFY, NOTIFY_AT, NOTIFY_MULTIPLIER * model.queueSizes.length, 4);
    this.put(notify + 16, 4, NOTIFY_MULTIPLIER);
    this.addVirtioCap(CAP_ISR, ISR_AT, 1);
    if (model.configSize) this.addVirtioCap(CAP_DEVICE, DEVICE_AT, model.configSize);
    // §4.1.4.9: a window into the BARs through configuration space; bar, offset, length and data are the driver's.
    this.cfgCap = this.addVirtioCap(CAP_PCI_CFG, 0, 0, 4);
    this.wmask[this.cfgCap + 4] = 0xff;
    this.setWmask(this.cfgCap + 8, 4, 0xffffffff);
    this.setWmask(this.cfgCap + 12, 4, 0xffffffff);
    this.setWmask(this.cfgCap + 16, 4, 0xffffffff);
    // MSI-X capability (PCI 3.0 §6.8.2): table size N-1; enable (bit 15) and function mask (bit 14) are writable.
    this.msixCap = this.addCapability(0x11, 12);
    this.put(this.msixCap + 2, 2, nvec - 1);
    this.wmask[this.msixCap + 3] = 0xc0;
    this.put(this.msixCap + 4, 4, 0 | 1); // table at offset 0 of BAR1
    this.put(this.msixCap + 8, 4, PBA_AT | 1);
  }

  /** struct virtio_pci_cap (§4.1.4): cfg_type, bar, offset, length (+ extra bytes for notify/pci_cfg). */
  private addVirtioCap(type: number, offset: number, length: number, extra = 0): number {
    const off = this.addCapability(0x09, 16 + extra);
    this.put(off + 2, 1, 16 + extra);
    this.put(off + 3, 1, type);
    this.put(off + 4, 1, 0);
    this.put(off + 8, 4, offset);
    this.put(off + 12, 4, length);
    return off;
  }

  // --- Features and status -------------------------------------------------------------------------------

  get deviceFeatures(): bigint {
    return this.model.features | (1n << F_VERSION_1) | (1n << F_INDIRECT_DESC) | (1n << F_EVENT_IDX);
  }

  get driverFeatures(): bigint {
    return BigInt(this.state.driverFeatures[0]) | (BigInt(this.state.driverFeatures[1]) << 32n);
  }

  /** Whether the driver accepted feature `bit`. */
  has(bit: bigint): boolean { return ((this.driverFeatures >> bit) & 1n) === 1n; }

  get indirect(): boolean { return this.has(F_INDIRECT_DESC); }
  get eventIdx(): boolean { return this.has(F_EVENT_IDX); }
  get needsReset(): boolean { return (this.state.status & STATUS_NEEDS_RESET) !== 0; }

  /** §2.1.2: the device hit an error it cannot recover from; the driver must reset it. */
  broken(message: string): void {
    if (this.needsReset) return;
    this.log(`${this.name}: ${message}; device needs reset`);
    this.state.status |= STATUS_NEEDS_RESET;
    if (this.state.status & STATUS_DRIVER_OK) this.configChanged();
  }

  private reset(): void {
    const s = this.state;
    s.status = 0; s.deviceFeatureSel = 0; s.driverFeatureSel = 0; s.driverFeatures.fill(0);
    s.configVector = NO_VECTOR; s.queueSel = 0; s.isr = 0;
    this.model.queueSizes.forEach((n, i) => { s.queues[i] = newQueueState(n); this.queues[i].state = s.queues[i]; });
    this.setIntx(false);
    this.model.reset?.();
  }

  private writeStatus(v: number): void {
    const s = this.state;
    if (v === 0) { this.reset(); return; }
    const old = s.status;
    // §3.1.1: FEATURES_OK only sticks if the device accepts what the driver chose; VERSION_1 is mandatory (§6.1).
    if ((v & STATUS_FEATURES_OK) && !(old & STATUS_FEATURES_OK)) {
      const f = this.driverFeatures;
      if ((f & ~this.deviceFeatures) !== 0n || !this.has(F_VERSION_1)) v &= ~STATUS_FEATURES_OK;
    }
    s.status = (v & ~STATUS_NEEDS_RESET) | (old & STATUS_NEEDS_RESET);
    if ((v & STATUS_DRIVER_OK) && !(old & STATUS_DRIVER_OK)) this.queues.forEach((q) => this.kick(q.index));
  }

  // --- Interrupts ----------------------------------------------------------------------------------------

  private get msixEnabled(): boolean { return (this.state.config[this.msixCap + 3] & 0x80) !== 0; }
  private get msixFunctionMasked(): boolean { return (this.state.config[this.msixCap + 3] & 0x40) !== 0; }

  /** Raises a used-buffer notification for queue `q` if the driver wants one (§2.7.7). */
  signal(q: number): void {
    const vq = this.queues[q];
    if (!vq.shouldInterrupt()) return;
    this.interrupt(vq.state.msixVector, 1);
  }

  /** A configuration change notification (§2.1.2, §4.1.5.3). */
  configChanged(): void {
    this.state.configGeneration = (this.state.configGeneration + 1) & 0xff;
    this.interrupt(this.state.configVector, 2);
  }

  private interrupt(vector: number, isrBit: number): void {
    if (this.msixEnabled) {
      // §4.1.5.1.2: with MSI-X on, NO_VECTOR means the driver asked for no interrupt at all.
      if (vector === NO_VECTOR || vector >= this.nvec) return;
      this.state.msixPending[vector >>> 5] |= 1 << (vector & 31);
      this.deliverPending();
    } else {
      this.state.isr |= isrBit;
      this.setIntx(true);
    }
  }

  /** Sends every pending vector whose entry and function are unmasked (PCI 3.0 §6.8.2.9 pending bits). */
  private deliverPending(): void {
    if (!this.msixEnabled || this.msixFunctionMasked) return;
    const t = this.state.msixTable, p = this.state.msixPending;
    for (let v = 0; v < this.nvec; v++) {
      if (!(p[v >>> 5] & (1 << (v & 31))) || (t[4 * v + 3] & 1)) continue;
      p[v >>> 5] &= ~(1 << (v & 31));
      // Only 32-bit message addresses reach the APIC window; anything else is a write to nowhere.
      if (t[4 * v + 1] === 0) this.msi(t[4 * v], t[4 * v + 2]);
    }
  }

  override writeConfig(off: number, size: 1 | 2 | 4, value: number): void {
    const c = this.cfgCap;
    if (off >= c + 16 && off < c + 20) { this.cfgWindow(off - c - 16, size, value); return; }
    super.writeConfig(off, size, value);
    if (off <= this.msixCap + 3 && off + size > this.msixCap + 2) {
      if (this.msixEnabled) this.setIntx(false);
      this.deliverPending();
    }
  }

  override readConfig(off: number, size: 1 | 2 | 4): number {
    const c = this.cfgCap;
    if (off >= c + 16 && off < c + 20) return this.cfgWindow(off - c - 16, size);
    return super.readConfig(off, size);
  }

  /** VIRTIO_PCI_CAP_PCI_CFG data window: an access of cap.length bytes at cap.offset of BAR cap.bar (§4.1.4.9). */
  private cfgWindow(at: number, size: 1 | 2 | 4, value?: number): number {
    const c = this.cfgCap, len = this.get(c + 12, 4), bar = this.state.config[c + 4], boff = this.get(c + 8, 4);
    if (at !== 0 || bar !== 0 || (len !== 1 && len !== 2 && len !== 4) || boff % len || boff + len > 0x4000) return 0;
    if (value === undefined) return this.barRead(boff, len as 1 | 2 | 4);
    this.barWrite(boff, len as 1 | 2 | 4, value);
    return 0;
  }

  private msixRead(off: number, size: 1 | 2 | 4): number {
    if (size !== 4 || off & 3) return 0;
    if (off < 16 * this.nvec) return this.state.msixTable[off >>> 2];
    if (off >= PBA_AT && off < PBA_AT + 4 * this.state.msixPending.length) return this.state.msixPending[(off - PBA_AT) >>> 2];
    return 0;
  }

  private msixWrite(off: number, size: 1 | 2 | 4, value: number): void {
    if (size !== 4 || off & 3 || off >= 16 * this.nvec) return; // the PBA is read-only
    this.state.msixTable[off >>> 2] = (off & 15) === 12 ? value & 1 : value >>> 0;
    if ((off & 15) === 12) this.deliverPending();
  }

  // --- BAR0: common configuration, ISR, device configuration, notifications -------------------------------

  private barRead(off: number, size: 1 | 2 | 4): number {
    if (off < COMMON_AT + COMMON_LEN) {
      let v = 0;
      for (let i = 0; i < size; i++) v |= this.commonByte(off + i) << (8 * i);
      return v >>> 0;
    }
    if (off === ISR_AT) {
      // §4.1.4.5: reading the ISR status clears it and de-asserts INTx#.
      const v = this.state.isr;
      this.state.isr = 0;
      this.setIntx(false);
      return v;
    }
    if (off >= DEVICE_AT && off + size <= DEVICE_AT + this.model.configSize) return this.model.readConfig(off - DEVICE_AT, size) >>> 0;
    return 0;
  }

  private get selected(): QueueState | undefined { return this.state.queues[this.state.queueSel]; }

  /** The 32-bit word of common configuration that contains byte `off`. */
  private commonByte(off: number): number {
    const s = this.state, q = this.selected, w = off & ~3;
    let v = 0;
    const hilo = (x: number, hi: boolean) => (hi ? Math.floor(x / 2 ** 32) : x % 2 ** 32);
    switch (w) {
      case 0x00: v = s.deviceFeatureSel; break;
      case 0x04: v = s.deviceFeatureSel < 2 ? Number((this.deviceFeatures >> BigInt(32 * s.deviceFeatureSel)) & 0xffffffffn) : 0; break;
      case 0x08: v = s.driverFeatureSel; break;
      case 0x0c: v = s.driverFeatureSel < 2 ? s.driverFeatures[s.driverFeatureSel] : 0; break;
      case 0x10: v = s.configVector | (this.queues.length << 16); break;
      case 0x14: v = s.status | (s.configGeneration << 8) | (s.queueSel << 16); break;
      case 0x18: v = q ? q.size | (q.msixVector << 16) : 0; break;
      case 0x1c: v = q ? (q.ready ? 1 : 0) | (s.queueSel << 16) : 0; break;
      case 0x20: case 0x24: v = q ? hilo(q.desc, w === 0x24) : 0; break;
      case 0x28: case 0x2c: v = q ? hilo(q.driver, w === 0x2c) : 0; break;
      case 0x30: case 0x34: v = q ? hilo(q.device, w === 0x34) : 0; break;
      case 0x38: v = s.queueSel; break; // queue_notify_data; queue_reset reads 0
    }
    return (v >>> (8 * (off & 3))) & 0xff;
  }

  private barWrite(off: number, size: 1 | 2 | 4, value: number): void {
    if (off >= NOTIFY_AT && off < NOTIFY_AT + NOTIFY_MULTIPLIER * this.queues.length) {
      this.kick((off - NOTIFY_AT) / NOTIFY_MULTIPLIER | 0);
      return;
    }
    if (off >= DEVICE_AT && off + size <= DEVICE_AT + this.model.configSize) { this.model.writeConfig?.(off - DEVICE_AT, size, value); return; }
    if (off >= COMMON_AT + COMMON_LEN) return;
    const s = this.state, q = this.selected;
    value >>>= 0;
    const setAddr = (key: 'desc' | 'driver' | 'device', hi: boolean) => {
      if (!q || q.ready) return; // §4.1.4.3.2: ring addresses are fixed once the queue is enabled
      const lo = q[key] % 2 ** 32, h = Math.floor(q[key] / 2 ** 32);
      q[key] = hi ? lo + value * 2 ** 32 : h * 2 ** 32 + value;
    };
    // Fields are written at their natural width (§4.1.3.1); 64-bit fields as two 32-bit halves.
    switch (off) {
      case 0x00: s.deviceFeatureSel = value; break;
      case 0x08: s.driverFeatureSel = value; break;
      case 0x0c:
        if (s.driverFeatureSel < 2 && !(s.status & STATUS_FEATURES_OK)) s.driverFeatures[s.driverFeatureSel] = value;
        break;
      case 0x10: s.configVector = value < this.nvec ? value : NO_VECTOR; break;
      case 0x14: this.writeStatus(value & 0xff); break;
      case 0x16: s.queueSel = value & 0xffff; break;
      case 0x18:
        // §2.7: a split queue's size is a power of two no larger than the device's maximum.
        if (q && !q.ready) q.size = value >= 1 && value <= this.model.queueSizes[s.queueSel] && !(value & (value - 1)) ? value : q.size;
        break;
      case 0x1a: if (q) q.msixVector = value < this.nvec ? value : NO_VECTOR; break;
      case 0x1c:
        if (q && value === 1 && !q.ready) {
          const vq = this.queues[s.queueSel];
          const bad = vq.validate();
          if (bad) this.broken(bad);
          else { q.ready = true; q.lastAvail = 0; q.usedIdx = 0; q.signalledUsed = 0; }
        }
        break;
      case 0x20: case 0x24: setAddr('desc', off === 0x24); break;
      case 0x28: case 0x2c: setAddr('driver', off === 0x2c); break;
      case 0x30: case 0x34: setAddr('device', off === 0x34); break;
    }
  }

  /** A driver notification for queue `q` (§4.1.4.4): let the device take what is available. */
  kick(q: number): void {
    const vq = this.queues[q];
    if (!vq || !vq.state.ready || this.needsReset || !(this.state.status & STATUS_DRIVER_OK)) return;
    this.model.process(vq);
    this.signal(q);
  }

  override afterRestore(): void {
    this.state.queues.forEach((s, i) => { this.queues[i].state = s; });
    super.afterRestore();
  }
}
