// The 16550A as Linux's 8250 driver sees it: autoconfig probes, THRE interrupt rules, RX FIFO trigger
// levels and character timeout, loopback, line and modem status interrupts, host flow control.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { IoBus } from '../src/machine/io-bus.ts';
import { IrqLine } from '../src/machine/irq.ts';
import { Clock } from '../src/machine/clock.ts';
import { Uart16550, COM_PORTS } from '../src/devices/isa/uart16550.ts';

const B = 0x3f8, RBR = B, IER = B + 1, IIR = B + 2, FCR = B + 2, LCR = B + 3, MCR = B + 4, LSR = B + 5, MSR = B + 6, SCR = B + 7;
function setup() {
  const clock = new Clock({ manual: true });
  const bus = new IoBus();
  const irq = { level: false };
  const line = new IrqLine([{ sink: { setIrq: (_l, v) => { irq.level = v; } }, line: 4 }]);
  const uart = new Uart16550(clock, line, COM_PORTS[0].base);
  uart.register(bus);
  const sent: number[] = [];
  uart.onTransmit = (b) => sent.push(b);
  return { clock, bus, uart, irq, sent, in: (p: number) => bus.in(p, 1), out: (p: number, v: number) => bus.out(p, 1, v) };
}

test('Linux autoconfig identifies a 16550A', () => {
  const t = setup();
  t.out(IER, 0); assert.equal(t.in(IER) & 0x0f, 0);
  t.out(IER, 0x0f); assert.equal(t.in(IER), 0x0f);
  t.out(IER, 0xff); assert.equal(t.in(IER), 0x0f, 'IER bits 7-4 are always 0 (no UUE, not an XScale)');
  t.out(IER, 0);
  t.out(MCR, 0x10 | 0x0a); // loopback with RTS and OUT2
  assert.equal(t.in(MSR) & 0xf0, 0x90, 'CTS from RTS, DCD from OUT2');
  t.out(MCR, 0);
  t.out(LCR, 0xbf); assert.notEqual(t.in(IIR), 0, 'no EFR');
  t.out(LCR, 0); t.out(FCR, 0x01);
  assert.equal(t.in(IIR) >> 6, 3, 'FIFOs present and working');
  t.out(FCR, 0x21); assert.equal((t.in(IIR) >> 5) & 1, 0, 'no 64-byte FIFO (not a 16750)');
  t.out(SCR, 0x5a); assert.equal(t.in(SCR), 0x5a);
  assert.notEqual(t.in(LSR), 0xff);
  assert.equal(t.in(LSR), 0x60, 'THRE and TEMT, no data');
});

test('THRE interrupt: raised on enabling ETBEI, cleared by reading IIR, re-raised by THR write', () => {
  const t = setup();
  t.out(FCR, 0x07); t.out(LCR, 0x03); t.out(MCR, 0x0b);
  assert.equal(t.in(IIR), 0xc1);
  t.out(IER, 0x02);
  assert.equal(t.irq.level, true);
  assert.equal(t.in(IIR), 0xc2);
  assert.equal(t.irq.level, false);
  assert.equal(t.in(IIR), 0xc1, 'IIR read cleared THRE');
  // serial8250_do_startup's UART_BUG_THRE test: disable and re-enable must re-assert it
  t.out(IER, 0); t.out(IER, 0x02);
  assert.equal(t.in(IIR), 0xc2);
  t.out(RBR, 0x41); t.out(RBR, 0x42);
  assert.deepEqual(t.sent, [0x41, 0x42]);
  assert.equal(t.irq.level, true, 'THR empty again');
  t.out(IER, 0);
  assert.equal(t.irq.level, false);
});

test('OUT2 gates the IRQ line; DLAB selects the divisor latch', () => {
  const t = setup();
  t.out(MCR, 0x03); t.out(IER, 0x02);
  assert.equal(t.in(IIR) & 0x0f, 0x02);
  t.out(IER, 0); t.out(IER, 0x02);
  assert.equal(t.irq.level, false, 'no OUT2');
  t.out(MCR, 0x0b);
  assert.equal(t.irq.level, true);
  t.out(LCR, 0x83); t.out(RBR, 0x01); t.out(IER, 0x00);
  assert.equal(t.in(RBR), 0x01); assert.equal(t.in(IER), 0x00);
  t.out(LCR, 0x03);
  assert.equal(t.in(IER), 0x02);
  assert.deepEqual(t.sent, []);
});

test('RX FIFO: trigger level, full FIFO refuses bytes, character timeout', () => {
  const t = setup();
  t.out(LCR, 0x83); t.out(RBR, 1); t.out(IER, 0); t.out(LCR, 0x03); // 115200 8N1
  t.out(FCR, 0x81); t.out(MCR, 0x0b);
  assert.equal(t.uart.readyForInput(), false);
  t.out(IER, 0x01);
  t.clock.advance(1_000_000);
  assert.equal(t.uart.readyForInput(), true);
  for (let i = 0; i < 7; i++) assert.equal(t.uart.receive(0x30 + i), true);
  assert.equal(t.in(IIR), 0xc1, 'below the trigger level of 8');
  assert.equal(t.irq.level, false);
  t.uart.receive(0x37);
  assert.equal(t.in(IIR), 0xc4);
  assert.equal(t.irq.level, true);
  for (let i = 8; i < 16; i++) assert.equal(t.uart.receive(0x30 + i), true);
  assert.equal(t.uart.canReceive(), false);
  assert.equal(t.uart.receive(0x99), false, 'full: the caller keeps the byte');
  assert.equal(t.in(LSR) & 0x03, 0x01, 'no overrun');
  const got: number[] = [];
  while (t.in(LSR) & 1) got.push(t.in(RBR));
  assert.deepEqual(got, Array.from({ length: 16 }, (_, i) => 0x30 + i));
  assert.equal(t.irq.level, false);
  // one byte below the trigger: the timeout interrupt after 4 character times (10 bits at 115200)
  t.uart.receive(0x61);
  t.clock.advance(4 * 86806 - 1000);
  assert.equal(t.irq.level, false);
  t.clock.advance(2000);
  assert.equal(t.in(IIR), 0xcc);
  assert.equal(t.in(RBR), 0x61);
  assert.equal(t.in(IIR), 0xc1);
  t.out(FCR, 0x83); // RX reset
  t.uart.receive(1); t.out(FCR, 0x83);
  assert.equal(t.in(LSR) & 1, 0);
});

test('16450 mode holds one byte', () => {
  const t = setup();
  t.out(IER, 0x01); t.out(MCR, 0x08);
  assert.equal(t.uart.receive(0x10), true);
  assert.equal(t.uart.receive(0x11), false);
  assert.equal(t.in(IIR), 0x04);
  assert.equal(t.in(RBR), 0x10);
  assert.equal(t.uart.receive(0x11), true);
});

test('loopback: TX to RX, modem outputs to inputs with deltas, overrun, no host output', () => {
  const t = setup();
  t.out(MCR, 0x10);
  t.in(MSR);
  assert.equal(t.uart.canReceive(), false, 'the line input is disconnected');
  t.out(MCR, 0x10 | 0x01);
  assert.equal(t.in(MSR), 0x20 | 0x02, 'DSR with DDSR');
  assert.equal(t.in(MSR), 0x20);
  t.out(MCR, 0x10 | 0x04); t.out(MCR, 0x10);
  assert.equal(t.in(MSR) & 0x0f, 0x02 | 0x04, 'DDSR, TERI on RI falling');
  t.out(RBR, 0x55);
  assert.equal(t.in(LSR) & 1, 1);
  assert.equal(t.in(RBR), 0x55);
  t.out(RBR, 1); t.out(RBR, 2);
  assert.equal(t.in(LSR) & 0x03, 0x03, 'overrun in 16450 mode');
  assert.equal(t.in(LSR) & 0x02, 0, 'OE cleared by reading LSR');
  assert.equal(t.in(RBR), 2);
  t.out(FCR, 0x01);
  for (let i = 0; i < 17; i++) t.out(RBR, i);
  t.out(IER, 0x05);
  assert.equal(t.in(IIR), 0xc6, 'line status has the highest priority');
  assert.equal(t.in(LSR) & 0x83, 0x03);
  assert.equal(t.in(IIR), 0xc4);
  assert.equal(t.in(RBR), 0, 'the FIFO kept its data');
  assert.deepEqual(t.sent, []);
  t.out(IER, 0x0f);
  assert.equal(t.irq.level, false, 'OUT2 forced inactive in loopback');
});

test('modem status interrupt from host lines', () => {
  const t = setup();
  t.out(MCR, 0x08); t.out(IER, 0x08);
  assert.equal(t.in(MSR), 0xb0);
  t.uart.setModemLines({ cts: true, dsr: true, ri: false, dcd: false });
  assert.equal(t.irq.level, true);
  assert.equal(t.in(IIR), 0x00);
  assert.equal(t.in(MSR), 0x30 | 0x08);
  assert.equal(t.in(IIR), 0x01);
  assert.equal(t.irq.level, false);
});

test('held host input waits until the receiver has settled: Linux 8250 startup and set_termios lose nothing', () => {
  const t = setup();
  assert.equal(t.uart.readyForInput(), false, 'RDA interrupt off: hold input');
  // serial8250_do_startup: clear and disable the FIFOs, enable RLS+RDA, then read LSR/RBR/IIR/MSR "for luck";
  // set_termios then enables the FIFOs again. A byte offered inside this sequence would be discarded.
  t.out(FCR, 0x01); t.out(FCR, 0x07); t.out(FCR, 0);
  t.out(LCR, 0x03); t.out(MCR, 0x0b);
  t.out(IER, 0x05);
  assert.equal(t.uart.readyForInput(), false, 'just opened');
  t.in(LSR); t.in(RBR); t.in(IIR); t.in(MSR);
  t.clock.advance(600_000);
  t.out(FCR, 0x81);
  t.clock.advance(600_000);
  assert.equal(t.uart.readyForInput(), false, 'the FIFO reset 0.6 ms ago restarted the wait');
  t.clock.advance(400_000);
  assert.equal(t.uart.readyForInput(), true, 'open for 1 ms with no reset');
  assert.equal(t.uart.receive(0x65), true);
  assert.equal(t.in(LSR) & 1, 1);
  assert.equal(t.in(RBR), 0x65, 'the first byte reaches the driver');
  t.out(IER, 0x01);
  assert.equal(t.uart.readyForInput(), true, 'changing other IER bits keeps the receiver open');
  t.out(IER, 0);
  assert.equal(t.uart.readyForInput(), false, 'RDA off again: hold input');
});
