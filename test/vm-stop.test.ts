// How a VM ends: guest power-off (ACPI S5), reset (with --no-reboot semantics), a triple fault, and a vCPU
// halted with interrupts disabled. Each is driven by a tiny "kernel": a bzImage header followed by 32-bit
// code that the Linux boot protocol enters at 1 MiB in flat protected mode.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Vm } from '../src/vmm/vm.ts';

function tinyKernel(code: number[]): Uint8Array {
  const setupSects = 4;
  const img = new Uint8Array((setupSects + 1) * 512 + code.length);
  const dv = new DataView(img.buffer);
  img[0x1f1] = setupSects;
  dv.setUint16(0x1fe, 0xaa55, true);
  dv.setUint32(0x202, 0x53726448, true); // "HdrS"
  dv.setUint16(0x206, 0x020f, true); // boot protocol 2.15
  img[0x201] = 0x66; // header length (jump offset) so the loader copies the whole header
  img[0x211] = 1; // LOADED_HIGH
  dv.setUint32(0x214, 0x100000, true); // code32_start
  dv.setUint32(0x22c, 0x37ffffff, true); // initrd_addr_max
  dv.setUint32(0x238, 2048, true); // cmdline_size
  img.set(code, (setupSects + 1) * 512);
  return img;
}

async function runTiny(code: number[], noReboot = true) {
  const vm = new Vm({
    config: { memoryMiB: 32, kernel: tinyKernel(code), cmdline: '' },
    noReboot,
    onConsoleOutput: () => {},
    host: { sleep: (ms) => new Promise((r) => setTimeout(r, ms)), yield: () => new Promise((r) => setImmediate(r)) },
  });
  return vm.run();
}

test('ACPI soft-off (PM1a_CNT SLP_TYP=S5, SLP_EN) powers the VM off', async () => {
  // mov dx, 0x604 ; mov ax, 0x2000 (SLP_EN, SLP_TYP 0 = S5 on PIIX4) ; out dx, ax ; jmp $
  const r = await runTiny([0x66, 0xba, 0x04, 0x06, 0x66, 0xb8, 0x00, 0x20, 0x66, 0xef, 0xeb, 0xfe]);
  assert.equal(r.kind, 'poweroff');
});

test('keyboard-controller reset stops the VM when rebooting is disabled', async () => {
  // mov al, 0xfe ; out 0x64, al ; jmp $
  const r = await runTiny([0xb0, 0xfe, 0xe6, 0x64, 0xeb, 0xfe]);
  assert.equal(r.kind, 'reset');
});

test('a triple fault stops the VM with a message', async () => {
  // The loader leaves the IDT limit at 0: INT3 → #GP → #DF → triple fault.
  const r = await runTiny([0xcc]);
  assert.equal(r.kind, 'triple-fault');
  assert.match((r as { message: string }).message, /triple fault/);
});

test('HLT with interrupts disabled and nothing to wake the vCPU stops the VM', async () => {
  const r = await runTiny([0xfa, 0xf4]); // cli ; hlt
  assert.equal(r.kind, 'hung');
  assert.match((r as { message: string }).message, /halted with interrupts disabled/);
});

test('a reset reboots the machine when rebooting is allowed', async () => {
  // The guest resets through port 0x92 (fast reset) on every boot; the test watches the VM rebuild its
  // machine, then quits from the host side as the console's Ctrl-A x would.
  let boots = 0;
  const code = [0xb0, 0x01, 0xe6, 0x92, 0xeb, 0xfe]; // mov al, 1 ; out 0x92, al ; jmp $
  const vm = new Vm({
    config: { memoryMiB: 32, kernel: tinyKernel(code), cmdline: '' },
    noReboot: false,
    onConsoleOutput: () => {},
    host: { sleep: (ms) => new Promise((r) => setTimeout(r, ms)), yield: () => new Promise((r) => setImmediate(r)) },
  });
  const first = vm.machine;
  const timer = setInterval(() => { if (vm.machine !== first) { boots++; vm.quit(); } }, 5);
  const r = await vm.run();
  clearInterval(timer);
  assert.equal(r.kind, 'quit');
  assert.ok(boots >= 1, 'the machine was rebuilt after the reset');
});
