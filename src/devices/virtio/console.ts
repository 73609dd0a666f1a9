// virtio-console (virtio 1.2 §5.3) with one port, which Linux shows as hvc0: receiveq (0) takes host-to-guest
// bytes, transmitq (1) brings guest output. The host end is whatever `output` writes to and whoever calls
// `receive` (the VM's terminal, like the serial console).
//
// We offer MULTIPORT for its control queues (2, 3) only: they are how the driver says a port is ready and
// open (§5.3.6.2). Without them, input sent while Linux is still setting up hvc0 — it posts receive
// buffers before it marks the port connected — is thrown away by the driver; with them, input waits for
// the driver's PORT_OPEN. A driver that does not take MULTIPORT gets input as soon as it is running.

import { gather, scatter, type Virtqueue } from './virtqueue.ts';
import { STATUS_DRIVER_OK, type VirtioDeviceModel, type VirtioPci } from './pci-transport.ts';

const F_MULTIPORT = 1n;
/** VIRTIO_CONSOLE_F_EMERG_WRITE (§5.3.3): the driver may write a character to config emerg_wr with no queue. */
const F_EMERG_WRITE = 2n;
const RX = 0, TX = 1, CTRL_RX = 2, CTRL_TX = 3;
// Control events (§5.3.6.2): struct virtio_console_control { le32 id; le16 event; le16 value; }.
const DEVICE_READY = 0, DEVICE_ADD = 1, PORT_READY = 3, CONSOLE_PORT = 4, PORT_OPEN = 6;
/** Bytes taken from one transmit buffer at a time, so a huge buffer costs no huge allocation. */
const CHUNK = 64 * 1024;
/** Control messages waiting for a control receive buffer; the exchange above never needs more. */
const MAX_PENDING_CONTROL = 8;

export class VirtioConsole implements VirtioDeviceModel {
  readonly deviceId = 3;
  readonly classCode = 0x078000; // simple communication controller, other
  readonly features = (1n << F_MULTIPORT) | (1n << F_EMERG_WRITE);
  readonly queueSizes = [128, 128, 32, 32];
  /** struct virtio_console_config: cols, rows, max_nr_ports, emerg_wr (§5.3.4). */
  readonly configSize = 12;
  /** Whether the driver opened port 0, and control messages (id, event, value triples) not yet delivered. */
  state = { portOpen: false, pendingControl: [] as number[] };
  private transport!: VirtioPci;

  constructor(private readonly output: (data: Uint8Array) => void) {}

  attach(t: VirtioPci): void { this.transport = t; }

  reset(): void { this.state = { portOpen: false, pendingControl: [] }; }

  readConfig(off: number, size: 1 | 2 | 4): number {
    // cols/rows are only meaningful with VIRTIO_CONSOLE_F_SIZE; max_nr_ports is 1; emerg_wr reads 0.
    return off === 4 && size === 4 ? 1 : 0;
  }

  writeConfig(off: number, _size: 1 | 2 | 4, value: number): void {
    if (off === 8) this.output(Uint8Array.of(value & 0xff));
  }

  private get multiport(): boolean { return this.transport.has(F_MULTIPORT); }

  process(q: Virtqueue): void {
    const mem = this.transport.mem;
    if (q.index === TX) {
      for (let c = q.pop(); c; c = q.pop()) {
        if (!c.error) for (let done = 0; done < c.readLen; done += CHUNK) this.output(gather(mem, c.readable, done, Math.min(CHUNK, c.readLen - done)));
        q.push(c.head, 0);
      }
    } else if (q.index === CTRL_TX && this.multiport) {
      for (let c = q.pop(); c; c = q.pop()) {
        const m = new DataView(gather(mem, c.readable, 0, 8).slice().buffer);
        q.push(c.head, 0);
        if (c.error || m.byteLength < 8) continue;
        this.control(m.getUint32(0, true), m.getUint16(4, true), m.getUint16(6, true));
      }
    } else if (q.index === CTRL_RX) {
      this.flushControl();
    }
  }

  /** The driver's side of the port handshake (§5.3.6.2): add port 0, make it the console, say the host is there. */
  private control(id: number, event: number, value: number): void {
    if (event === DEVICE_READY && value === 1) this.send(0, DEVICE_ADD, 0);
    else if (id !== 0) return;
    else if (event === PORT_READY && value === 1) { this.send(0, CONSOLE_PORT, 1); this.send(0, PORT_OPEN, 1); }
    else if (event === PORT_OPEN) this.state.portOpen = value === 1;
  }

  private send(id: number, event: number, value: number): void {
    if (this.state.pendingControl.length >= 3 * MAX_PENDING_CONTROL) return;
    this.state.pendingControl.push(id, event, value);
    this.flushControl();
  }

  private flushControl(): void {
    const t = this.transport, q = t.queues[CTRL_RX], p = this.state.pendingControl;
    while (p.length && q.hasAvail()) {
      const c = q.pop();
      if (!c) break;
      const msg = new Uint8Array(8), v = new DataView(msg.buffer);
      v.setUint32(0, p[0], true); v.setUint16(4, p[1], true); v.setUint16(6, p[2], true);
      q.push(c.head, c.error ? 0 : scatter(t.mem, c.writable, 0, msg));
      p.splice(0, 3);
    }
    t.signal(CTRL_RX);
  }

  /** Offers input to the guest; returns how many bytes it took (0 until the port is open and has buffers). */
  receive(data: Uint8Array): number {
    const t = this.transport, q = t.queues[RX];
    if (!(t.state.status & STATUS_DRIVER_OK) || (this.multiport && !this.state.portOpen)) return 0;
    let done = 0;
    while (done < data.length && q.hasAvail()) {
      const c = q.pop();
      if (!c) break;
      const n = c.error ? 0 : scatter(t.mem, c.writable, 0, data.subarray(done));
      q.push(c.head, n);
      done += n;
    }
    t.signal(RX);
    return done;
  }
}
