// End to end on a virtual switch: two Trapeze VMs (Linux's e1000 and virtio_net drivers) and a QEMU VM (its
// e1000, same Debian kernel and initramfs) plugged into one `--nic switch=NAME` vde_switch, with static
// addresses on a private /24 that exists only on that switch. The Trapeze VMs ping each other and move a
// 4 MiB file with busybox nc (SHA-256 compared); QEMU and a Trapeze VM ping each other. Then the test kills
// -9 the vde_plug under one running Trapeze VM (and its replacements for 3.5 s): Trapeze must log the loss
// once, restart the plug with growing backoff, the guest must see its link go down and up again (carrier
// changes), traffic must resume, and the VM must keep running to a clean poweroff.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { defaultCacheDir } from '../src/guest/cache.ts';
import { childProcesses, defaultGuestFiles, Guest, haveSwitch } from './guest-harness.ts';

const haveQemu = spawnSync('sh', ['-c', 'qemu-system-i386 -netdev help | grep -qx vde'], { stdio: 'ignore' }).status === 0;
const NET = '10.1.0';

test('Trapeze and QEMU VMs on one switch ping each other, move a file with nc, and survive a killed vde_plug', {
  timeout: 30 * 60_000,
  skip: haveSwitch ? false : 'vde_plug and vde_switch are not installed (apt-get install vdeplug vde2)',
}, async (t) => {
  const name = `trapeze-test-${process.pid}`;
  const switchDir = join(defaultCacheDir(), 'vde', name);
  const vms: Guest[] = [];
  // QEMU boots the same kernel and initramfs (fetched first: this blocks, and must not while VMs write output).
  const files = haveQemu ? defaultGuestFiles() : null;
  try {
    const a = new Guest('A', ['--memory', '256', '--nic', `switch=${name},model=e1000,mac=52:54:00:12:34:a1`], { killAfterMs: 28 * 60_000 });
    vms.push(a);
    // A starts the switch; B and QEMU join it once it is there (two processes starting it at once would race).
    await a.waitFor('the switch', () => existsSync(join(switchDir, 'ctl')) && /started vde_switch/.test(a.err), 120_000);
    const b = new Guest('B', ['--memory', '256', '--nic', `switch=${name},model=virtio,mac=52:54:00:12:34:b2`], { killAfterMs: 28 * 60_000 });
    vms.push(b);
    const c = files ? new Guest('QEMU', [
      '-accel', 'tcg', '-m', '256', '-display', 'none', '-monitor', 'none', '-serial', 'stdio', '-no-reboot',
      '-kernel', files.kernel, '-initrd', files.initrd, '-append', 'console=ttyS0 panic=-1 cryptomgr.notests',
      '-netdev', `vde,id=n0,sock=${switchDir}`, '-device', 'e1000,netdev=n0,mac=52:54:00:12:34:c3',
    ], { command: 'qemu-system-i386', killAfterMs: 28 * 60_000 }) : null;
    if (c) vms.push(c);

    // A guest that cannot be fetched (no Debian archive) ends its VM at once: that is a skip, not a failure.
    await Promise.all(vms.map((vm) => vm.ready(20 * 60_000).catch((e) => { if (!vm.archiveUnreachable()) throw e; })));
    if (vms.some((vm) => vm.archiveUnreachable())) { t.skip('Debian archive unreachable: the default guest could not be fetched'); return; }
    t.diagnostic(`all shells up after ${a.elapsed().toFixed(0)} s`);
    // No DHCP server on this switch: stop the initramfs's udhcpc and give static addresses.
    const ip = new Map<Guest, string>(vms.map((vm, i) => [vm, `${NET}.${i + 1}`]));
    for (const vm of vms) await vm.ok(`killall udhcpc 2>/dev/null; ifconfig eth0 ${ip.get(vm)} netmask 255.255.255.0 up`, 60_000);

    const ping = async (from: Guest, to: Guest) => {
      const r = await from.sh(`ping -c 3 -W 10 ${ip.get(to)}`, 120_000);
      assert.equal(r.status, 0, `${from.name} pings ${to.name}: ${r.out}${from.context()}`);
      const m = /(\d+) packets received.*\n.*= [\d.]+\/([\d.]+)\//.exec(r.out);
      t.diagnostic(`${from.name} → ${to.name}: ${m ? `${m[1]}/3 replies, avg ${m[2]} ms` : r.out.trim()}`);
    };
    await ping(a, b);
    await ping(b, a);

    // 4 MiB from A to B over TCP with busybox nc: A listens with the file on its stdin (in the background,
    // reading no terminal) and half-closes at its end; B connects in the foreground, writes what arrives and
    // exits when A's side closes (busybox nc exits at end of the socket's stream).
    const sum = await a.ok("dd if=/dev/urandom of=/tmp/f bs=65536 count=64 2>/dev/null && sha256sum /tmp/f | cut -d' ' -f1", 60_000);
    await a.ok('nc -l -p 5000 < /tmp/f &', 30_000);
    const t0 = Date.now();
    await b.ok(`for i in 1 2 3 4 5; do nc ${ip.get(a)} 5000 > /tmp/recv && break; sleep 1; done`, 10 * 60_000);
    const secs = (Date.now() - t0) / 1000;
    await a.ok('wait', 60_000);
    assert.equal(await b.ok("sha256sum /tmp/recv | cut -d' ' -f1", 60_000), sum, 'the file arrived intact');
    assert.equal(await b.ok('wc -c < /tmp/recv', 30_000), String(4 << 20));
    t.diagnostic(`nc A → B: 4 MiB in ${secs.toFixed(1)} s wall`);

    if (c) {
      await ping(c, a);
      await ping(a, c);
    } else t.diagnostic('qemu-system-i386 with vde networking is not installed: the QEMU VM was skipped');

    // Kill A's vde_plug, and every plug Trapeze starts in its place for the next 3.5 s: the link stays down
    // long enough for any driver to notice, the restarts must back off (500 ms, then doubling), and all of
    // it must cost one log line.
    const plugsOf = () => childProcesses(a.pid).filter((p) => /vde_plug$/.test(p.cmdline[0] ?? ''));
    const plugs = plugsOf();
    assert.equal(plugs.length, 1, `A runs one vde_plug (${JSON.stringify(childProcesses(a.pid))})`);
    const changes = async () => Number(await a.ok('cat /sys/class/net/eth0/carrier_changes', 30_000));
    const changesBefore = await changes();
    const errBefore = a.err.length;
    const killedPids = new Set([plugs[0].pid]);
    const killedAt = [Date.now()];
    process.kill(plugs[0].pid, 'SIGKILL');
    // Replacements are killed within ~10 ms, long before one would count as up (300 ms).
    while (Date.now() - killedAt[0] < 3500) {
      for (const p of plugsOf()) {
        if (killedPids.has(p.pid)) continue;
        killedPids.add(p.pid);
        process.kill(p.pid, 'SIGKILL');
        killedAt.push(Date.now());
      }
      await new Promise((r) => setTimeout(r, 10));
    }
    const gaps = killedAt.slice(1).map((t, i) => t - killedAt[i]);
    assert.ok(gaps.length >= 2, `Trapeze kept restarting vde_plug (restarts killed after ${gaps.join(', ')} ms)`);
    gaps.forEach((g, i) => assert.ok(g >= 0.95 * 500 * 2 ** i, `restart ${i + 1} waited ${g} ms, backoff ${500 * 2 ** i} ms`));
    await a.waitFor('the restart', () => /link up/.test(a.err.slice(errBefore)), 120_000);
    const restartMs = Date.now() - killedAt[killedAt.length - 1];
    const logged = a.err.slice(errBefore).split('\n').filter((l) => l.trim());
    assert.equal(logged.filter((l) => /link down/.test(l)).length, 1, `one line for the failure: ${logged.join(' | ')}`);
    assert.match(logged[0], /vde_plug killed by SIGKILL; link down, restarting/);
    const newPlugs = plugsOf();
    assert.equal(newPlugs.length, 1, 'a new vde_plug runs');
    assert.ok(!killedPids.has(newPlugs[0].pid));
    // Traffic resumes: the switch learns the new port as soon as it sends.
    const resumed = await a.sh(`for i in $(seq 30); do ping -c 1 -W 2 ${ip.get(b)} >/dev/null && echo ok && break; done`, 180_000);
    assert.match(resumed.out, /ok/, `A reaches B again after the restart${a.context()}`);
    const seen = (await changes()) - changesBefore;
    assert.ok(seen >= 2, `the guest saw its link go down and up (carrier_changes +${seen})`);
    assert.match(await a.ok('dmesg | grep -i "link is" | tail -2', 30_000), /Down[\s\S]*Up/, 'e1000 logged link down, then up');
    await ping(a, b);
    t.diagnostic(`vde_plug killed ${killedAt.length} times, restarts after ${gaps.join(', ')} ms; link back ${restartMs} ms after the last kill; log: ${logged.join(' | ')}`);

    const ends = await Promise.all(vms.map((vm) => vm.poweroff()));
    ends.forEach((e, i) => assert.equal(e.code, 0, `${vms[i].name} powered off cleanly${vms[i].context()}`));
    t.diagnostic(`total ${a.elapsed().toFixed(0)} s`);
  } finally {
    for (const vm of vms) vm.kill();
    try {
      const pid = Number(readFileSync(join(switchDir, 'vde_switch.pid'), 'utf8'));
      if (pid) process.kill(pid, 'SIGTERM');
    } catch { /* never started */ }
    rmSync(switchDir, { recursive: true, force: true });
  }
});
