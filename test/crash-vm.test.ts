// A VM killed with SIGKILL while its guest writes a qcow2 disk: the image must pass `qemu-img check` with no
// corruption, and everything the guest had synced before the kill must be there. This is the whole path —
// Debian's virtio_blk/ata_piix driver, our device models, the qcow2 writer — not a writer process alone
// (test/qcow2.test.ts has that one).
//
// The guest writes 64 KiB blocks whose offset and contents follow from a sequence number, then `sync`s and
// prints `synced N`. `sync` reaches the device as a flush (VIRTIO_BLK_T_FLUSH / ATA FLUSH CACHE), which the
// host completes only after fsync. The host kills the VM at a random moment; every block up to the last
// `synced` line it saw must then be in the image. Blocks after it may or may not have landed.
//
// `npm test` runs CRASH_ROUNDS (default 2) rounds, alternating virtio and IDE; `npm run soak:crash` runs 20.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const bin = join(import.meta.dirname, '..', 'bin', 'trapeze');
const ROUNDS = Number(process.env.CRASH_ROUNDS ?? 2);
const DISK = 32 << 20;
const BLOCK = 64 << 10;
const SLOTS = DISK / BLOCK;
const hasQemuImg = spawnSync('qemu-img', ['--version']).status === 0;

/** Slot of block N: a stride coprime with the slot count, so blocks overwrite earlier ones after a lap. */
const slotOf = (seq: number) => (seq * 37) % SLOTS;
/** Contents of block N: what `yes "blk N" | head -c 65536` prints. */
function blockOf(seq: number): Buffer {
  return Buffer.alloc(BLOCK, `blk ${seq}\n`);
}

const guestLoop = (first: number) => [
  'echo 1 > /proc/sys/kernel/printk',
  `i=${first}; while :; do yes "blk $i" | head -c ${BLOCK} > /tmp/b; ` +
    `dd if=/tmp/b of=$DEV bs=${BLOCK} seek=$(( (i * 37) % ${SLOTS} )) conv=notrunc 2>/dev/null || echo dd-"failed"; ` +
    'sync; echo "synced $i"; i=$((i + 1)); done',
  '',
].join('\n');

function check(path: string): { status: number; out: string } {
  const r = spawnSync('qemu-img', ['check', path], { encoding: 'utf8' });
  return { status: r.status ?? -1, out: r.stdout + r.stderr };
}

test(`a VM killed with SIGKILL mid-write ${ROUNDS} times leaves a check-clean qcow2 holding every synced block`, {
  skip: hasQemuImg ? false : 'qemu-img not installed (apt-get install qemu-utils)',
  timeout: ROUNDS * 8 * 60_000,
}, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'trapeze-crash-'));
  const img = join(dir, 'disk.qcow2');
  execFileSync(bin, ['img', 'create', '-f', 'qcow2', img, String(DISK)]);
  const ref = Buffer.alloc(DISK);
  let next = 0, leaks = 0;
  try {
    for (let round = 0; round < ROUNDS; round++) {
      const iface = round % 2 === 0 ? 'virtio' : 'ide';
      const dev = iface === 'virtio' ? '/dev/vda' : '/dev/sda';
      const p = spawn(process.execPath, [bin, 'run', '--memory', '128', '--drive', `file=${img},format=qcow2,if=${iface}`],
        { stdio: ['pipe', 'pipe', 'pipe'] });
      let out = '', err = '', lastSynced = -1, firstSeen = false;
      const t0 = Date.now();
      const killed = new Promise<void>((resolve, reject) => {
        const deadline = setTimeout(() => { p.kill('SIGKILL'); reject(new Error(`round ${round}: no progress\n${out.slice(-2000)}\n${err}`)); }, 6 * 60_000);
        p.stdout.on('data', (d) => {
          out += d;
          for (const m of String(d).matchAll(/synced (\d+)/g)) lastSynced = Math.max(lastSynced, Number(m[1]));
          if (!firstSeen && lastSynced >= next + 2) {
            firstSeen = true;
            // Somewhere in the next few write/sync cycles, including mid-flush.
            setTimeout(() => { clearTimeout(deadline); p.kill('SIGKILL'); resolve(); }, Math.random() * 6000);
          }
        });
        p.on('exit', (code, sig) => { if (sig !== 'SIGKILL') { clearTimeout(deadline); reject(new Error(`round ${round}: VM exited (${code}) before the kill: ${err.slice(-1500)}`)); } });
      });
      p.stderr.on('data', (d) => { err += d; });
      p.stdin.write(`DEV=${dev}\n` + guestLoop(next));
      await killed;
      await new Promise((res) => { if (p.exitCode !== null || p.signalCode !== null) res(null); else p.on('exit', res); });
      const c = check(img);
      assert.ok(c.status === 0 || c.status === 3, `round ${round} (${iface}): qemu-img check found corruption:\n${c.out}`);
      if (c.status === 3) leaks++;
      const failed = out.indexOf('dd-failed');
      assert.ok(failed < 0, `round ${round} (${iface}): a guest write failed:\n${out.slice(Math.max(0, failed - 2500), failed + 200)}\nstderr: ${err.slice(-2000)}`);

      // Synced blocks in order; the (at most two) blocks after the last sync seen may hold either contents.
      for (let s = next; s <= lastSynced; s++) blockOf(s).copy(ref, slotOf(s) * BLOCK);
      const dontCare = new Set([slotOf(lastSynced + 1), slotOf(lastSynced + 2)]);
      const raw = join(dir, 'now.raw');
      execFileSync('qemu-img', ['convert', '-O', 'raw', img, raw]);
      const actual = readFileSync(raw);
      rmSync(raw);
      const bad: number[] = [];
      for (let slot = 0; slot < SLOTS; slot++) {
        if (dontCare.has(slot)) continue;
        if (!actual.subarray(slot * BLOCK, (slot + 1) * BLOCK).equals(ref.subarray(slot * BLOCK, (slot + 1) * BLOCK))) bad.push(slot);
      }
      assert.deepEqual(bad, [], `round ${round} (${iface}): synced blocks differ in slots ${bad.join(',')} (blocks ${next}..${lastSynced})`);
      actual.copy(ref);
      t.diagnostic(`round ${round} (${iface}): blocks ${next}..${lastSynced} synced, killed after ${((Date.now() - t0) / 1000).toFixed(0)} s, check ${c.status === 0 ? 'clean' : 'leaks only'}`);
      next = lastSynced + 3;
    }
    t.diagnostic(`${ROUNDS} rounds, ${next} blocks, ${leaks} rounds left leaked clusters (not corruption)`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
