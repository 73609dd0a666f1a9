// The host terminal as the guest's serial console. On a TTY: raw mode, with QEMU's escape key Ctrl-A
// (Ctrl-A x quits, Ctrl-A h helps, Ctrl-A Ctrl-A sends a literal Ctrl-A). On a pipe or file: bytes go
// to the guest as it takes them, and the end of input does not stop the VM.

import type { Vm } from '../vmm/vm.ts';

const CTRL_A = 0x01;

export interface ConsoleHandle { close(): void }

export function attachConsole(vm: Vm, stdin: NodeJS.ReadStream, stdout: NodeJS.WriteStream): ConsoleHandle {
  const tty = stdin.isTTY === true;
  let escape = false;
  const onData = (chunk: Buffer) => {
    if (!tty) { vm.sendInput(chunk); return; }
    const out: number[] = [];
    for (const b of chunk) {
      if (escape) {
        escape = false;
        if (b === 0x78 /* x */) { stdout.write('\r\n[trapeze: quit]\r\n'); vm.quit(); return; }
        if (b === 0x68 /* h */) { stdout.write('\r\n[trapeze console keys: C-a x  quit | C-a h  this help | C-a C-a  send C-a]\r\n'); continue; }
        if (b === CTRL_A) out.push(CTRL_A);
        continue;
      }
      if (b === CTRL_A) { escape = true; continue; }
      out.push(b);
    }
    if (out.length) vm.sendInput(Uint8Array.from(out));
  };
  if (tty) stdin.setRawMode(true);
  stdin.on('data', onData);
  stdin.resume();
  return {
    close() {
      stdin.off('data', onData);
      if (tty) stdin.setRawMode(false);
      stdin.pause();
    },
  };
}
