// What the vCPU needs from the machine around it, and nothing more: port I/O, an interrupt line, and a
// way to report events it cannot handle itself (triple fault, shutdown). Guest memory is a GuestMemory.

/** The I/O-port bus (IN/OUT, INS/OUTS). Unclaimed ports read as all ones. */
export interface PortBus {
  in(port: number, size: 1 | 2 | 4): number;
  out(port: number, size: 1 | 2 | 4, value: number): void;
}

/** The interrupt controller the vCPU's INTR pin is wired to (PIC or local APIC). */
export interface InterruptSource {
  /** INTA cycle: the vector of the highest-priority pending interrupt (SDM vol. 3A §6.3.3). */
  acknowledge(): number;
}

/** A port bus with nothing on it. */
export const NO_PORTS: PortBus = {
  in: (_p, size) => (size === 1 ? 0xff : size === 2 ? 0xffff : 0xffffffff),
  out: () => {},
};
