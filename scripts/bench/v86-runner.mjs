// Runs the v86 emulator in its own Node process with its first serial port on stdin/stdout, so that the
// benchmark drives it exactly like the other engines (a child process with a serial console on a pipe).
// Plain JavaScript, not TypeScript: it is started with bare `node` so no loader sits in its memory or start-up.
//   node v86-runner.mjs <v86 package dir> <json config>
// config: { kernel, initrd, bios, vgaBios, memoryMiB, cmdline }

import { pathToFileURL } from 'node:url';
import { join } from 'node:path';

const [pkgDir, json] = process.argv.slice(2);
if (!pkgDir || !json) {
  process.stderr.write('usage: node v86-runner.mjs <v86 package dir> <json config>\n');
  process.exit(2);
}
const cfg = JSON.parse(json);
const { V86 } = await import(pathToFileURL(join(pkgDir, 'build', 'libv86.mjs')).href);

const emulator = new V86({
  wasm_path: join(pkgDir, 'build', 'v86.wasm'),
  memory_size: cfg.memoryMiB * 1024 * 1024,
  bios: { url: cfg.bios },
  vga_bios: { url: cfg.vgaBios },
  bzimage: { url: cfg.kernel },
  initrd: { url: cfg.initrd },
  cmdline: cfg.cmdline,
  autostart: true,
  disable_keyboard: true,
  disable_mouse: true,
  disable_speaker: true,
});

// Serial output arrives a byte at a time; batch it per event-loop turn.
let pending = [];
let scheduled = false;
emulator.add_listener('serial0-output-byte', (b) => {
  pending.push(b);
  if (!scheduled) {
    scheduled = true;
    setImmediate(() => {
      scheduled = false;
      const out = Buffer.from(pending);
      pending = [];
      process.stdout.write(out);
    });
  }
});
process.stdin.on('data', (chunk) => emulator.serial0_send(chunk.toString('latin1')));
process.stdin.on('end', () => {});
process.on('SIGTERM', () => { emulator.destroy?.(); process.exit(0); });
