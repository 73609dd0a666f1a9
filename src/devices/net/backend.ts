// The host side of a NIC as the device models see it: a port that carries whole Ethernet frames (destination
// MAC first, no preamble, no FCS) and has a link that can go up and down. Implementations live in
// src/backends/net/ (VDE) or here (the in-memory pair used by tests and for VM-to-VM cables).

export interface NetBackend {
  /** Queues one frame for the network; never blocks. A frame sent while the link is down is lost (as on a wire). */
  send(frame: Uint8Array): void;
  /** The single consumer of frames arriving from the network. */
  onReceive(cb: (frame: Uint8Array) => void): void;
  /** Whether the far end is reachable: a NIC shows this as its PHY's link status. */
  readonly linkUp: boolean;
  onLinkChange(cb: (up: boolean) => void): void;
  /** Stops the backend for good (child processes are ended). */
  close(): void;
}

/**
 * Two ends of a virtual cable in memory. Frames are handed over synchronously, which keeps device tests
 * deterministic. `sent` keeps what the attached NIC transmitted (bounded, oldest dropped first).
 */
export class LoopbackBackend implements NetBackend {
  linkUp = true;
  readonly sent: Uint8Array[] = [];
  peer: LoopbackBackend | null = null;
  private rx: ((f: Uint8Array) => void) | null = null;
  private link: ((up: boolean) => void) | null = null;
  constructor(private readonly keep = 256) {}

  static pair(): [LoopbackBackend, LoopbackBackend] {
    const a = new LoopbackBackend(), b = new LoopbackBackend();
    a.peer = b; b.peer = a;
    return [a, b];
  }

  send(frame: Uint8Array): void {
    if (!this.linkUp) return;
    this.sent.push(frame.slice());
    if (this.sent.length > this.keep) this.sent.shift();
    this.peer?.inject(frame);
  }
  onReceive(cb: (frame: Uint8Array) => void): void { this.rx = cb; }
  onLinkChange(cb: (up: boolean) => void): void { this.link = cb; }
  /** Delivers a frame from "the network" to the NIC. */
  inject(frame: Uint8Array): void { if (this.linkUp) this.rx?.(frame.slice()); }
  setLink(up: boolean): void { if (up !== this.linkUp) { this.linkUp = up; this.link?.(up); } }
  close(): void { this.rx = null; this.link = null; }
}
