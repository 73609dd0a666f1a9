// virtio-rng, the entropy device (virtio 1.2 §5.4): every writable buffer the driver posts on its one
// queue comes back filled with random bytes from the host's CSPRNG (Web Crypto, in Node and browsers).

import { scatter, type Virtqueue } from './virtqueue.ts';
import type { VirtioDeviceModel, VirtioPci } from './pci-transport.ts';

/** getRandomValues fills at most 65536 bytes per call; larger buffers are filled piecewise. */
const CHUNK = 65536;
/** §5.4.6.1 lets the device fill less than offered; one request gets at most this much. */
const MAX_PER_REQUEST = 1 << 20;

export class VirtioRng implements VirtioDeviceModel {
  readonly deviceId = 4;
  readonly classCode = 0x00ff00; // no class fits; "device built before class codes" like QEMU's
  readonly features = 0n;
  readonly queueSizes = [64];
  readonly configSize = 0;
  private transport!: VirtioPci;
  private readonly buf = new Uint8Array(CHUNK);

  attach(t: VirtioPci): void { this.transport = t; }

  readConfig(): number { return 0; }

  process(q: Virtqueue): void {
    const mem = this.transport.mem;
    for (let c = q.pop(); c; c = q.pop()) {
      // §5.4.6.1: the device writes only into device-writable buffers; a read-only one gets nothing.
      let done = 0;
      if (!c.error) {
        const want = Math.min(c.writeLen, MAX_PER_REQUEST);
        while (done < want) {
          const n = Math.min(CHUNK, want - done);
          crypto.getRandomValues(this.buf.subarray(0, n));
          done += scatter(mem, c.writable, done, this.buf.subarray(0, n));
        }
      }
      q.push(c.head, done);
    }
  }
}
