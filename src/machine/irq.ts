// Interrupt lines between devices and interrupt controllers. A device holds an IrqLine and drives its
// level; edge-triggered inputs (the ISA PIC in edge mode) see the rising edges.

/** Something that receives interrupt request levels on numbered inputs (PIC, I/O APIC). */
export interface IrqSink {
  setIrq(line: number, level: boolean): void;
}

/** Where an interrupt source counts its assertions (a DeviceCounter, for `--stats`). */
export interface IrqCounter { irqs: number }

/** One wire from a device to one or more controller inputs (ISA IRQs go to both the PIC and the I/O APIC). */
export class IrqLine {
  private level = false;
  /**
   * @param counter counts the line's rising edges (assertions; a pulse is one): the driving device's
   *   DeviceCounter, or a private one when nobody reads it.
   */
  constructor(private readonly targets: { sink: IrqSink; line: number }[], readonly counter: IrqCounter = { irqs: 0 }) {}
  set(level: boolean): void {
    if (level === this.level) return;
    this.level = level;
    if (level) this.counter.irqs++;
    for (const t of this.targets) t.sink.setIrq(t.line, level);
  }
  raise(): void { this.set(true); }
  lower(): void { this.set(false); }
  /** A pulse: edge-triggered inputs see one rising edge. */
  pulse(): void { this.set(true); this.set(false); }
  get high(): boolean { return this.level; }
}
