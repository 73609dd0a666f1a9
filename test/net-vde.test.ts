// The VDE backend against real vde_plug/vde_switch processes on a private switch in a temporary directory:
// frames cross the switch between two backends in the 2-byte-length stream format, a killed vde_plug takes
// the link down with one log line and comes back by itself, and `--nic` parsing.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureSwitch, VdeBackend } from '../src/backends/net/vde.ts';
import { parseNic, vdeUrl } from '../src/cli/nic.ts';

const have = spawnSync('sh', ['-c', 'command -v vde_plug && command -v vde_switch'], { stdio: 'ignore' }).status === 0;

const until = async (cond: () => boolean, ms = 5000) => {
  const t0 = Date.now();
  while (!cond()) { if (Date.now() - t0 > ms) return false; await new Promise((r) => setTimeout(r, 20)); }
  return true;
};

test('frames cross a vde_switch between two backends; a killed vde_plug restarts', { skip: have ? false : 'vde2/vdeplug not installed', timeout: 30_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'trapeze-vde-'));
  const logs: string[] = [];
  const log = (l: string) => logs.push(l);
  const url = ensureSwitch(join(dir, 'sw'), log);
  assert.equal(ensureSwitch(join(dir, 'sw'), log), url, 'a running switch is reused');
  assert.equal(logs.length, 1);
  const a = new VdeBackend(url, { log, backoffMs: [100, 400] });
  const b = new VdeBackend(url, { log, backoffMs: [100, 400] });
  const got: Uint8Array[] = [];
  b.onReceive((f) => got.push(f));
  const links: boolean[] = [];
  a.onLinkChange((up) => links.push(up));
  try {
    assert.ok(await until(() => a.linkUp && b.linkUp));
    await new Promise((r) => setTimeout(r, 200)); // both ports registered on the switch
    const mk = (n: number, tag: number) => { const f = new Uint8Array(n); f.fill(0xff, 0, 6); f.set([2, 0, 0, 0, 0, 1], 6); f[12] = 0x88; f[13] = 0xb5; f[14] = tag; return f; };
    const sent = [mk(60, 1), mk(1514, 2), mk(200, 3)];
    for (const f of sent) a.send(f);
    assert.ok(await until(() => got.length >= 3), `received ${got.length} of 3`);
    assert.deepEqual(got.map((f) => [...f]), sent.map((f) => [...f]));

    const pid = a.pid!;
    process.kill(pid, 'SIGKILL');
    assert.ok(await until(() => !a.linkUp), 'link down after vde_plug died');
    assert.ok(await until(() => a.linkUp && a.pid !== pid), 'restarted');
    assert.deepEqual(links, [true, false, true], 'up, down when killed, up again');
    assert.equal(logs.filter((l) => /link down/.test(l)).length, 1, 'one log line for the failure');
    await new Promise((r) => setTimeout(r, 200));
    a.send(mk(100, 4));
    assert.ok(await until(() => got.length >= 4), 'traffic flows again');
  } finally {
    a.close(); b.close();
    const pid = Number(readFileSync(join(dir, 'sw', 'vde_switch.pid'), 'utf8'));
    if (pid) process.kill(pid, 'SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a vde_plug that cannot connect keeps the link down and retries with backoff', { skip: have ? false : 'vdeplug not installed', timeout: 10_000 }, async () => {
  const logs: string[] = [];
  const be = new VdeBackend('vde:///nonexistent/trapeze-switch', { log: (l) => logs.push(l), backoffMs: [50, 200] });
  await new Promise((r) => setTimeout(r, 1200));
  assert.equal(be.linkUp, false);
  assert.ok(be.counters.restarts >= 3, `retried ${be.counters.restarts} times`);
  assert.equal(logs.length, 1, 'one log line, not one per retry');
  be.send(new Uint8Array(60));
  assert.equal(be.counters.dropped, 1);
  be.close();
});

test('--nic parsing', () => {
  const u = parseNic('user,hostfwd=tcp::2222-:22,hostfwd=udp:127.0.0.1:5353-10.0.2.16:53,model=rtl8139,mac=52:54:00:00:00:01', 0);
  assert.equal(u.model, 'rtl8139');
  assert.deepEqual(u.mac, [0x52, 0x54, 0, 0, 0, 1]);
  assert.equal(vdeUrl(u, '/x', () => {}), 'slirp:///tcpfwd=2222:10.0.2.15:22/udpfwd=127.0.0.1:5353:10.0.2.16:53');
  assert.equal(parseNic('user', 1).mac[5], 0x57, 'default MACs differ per NIC');
  // net= moves slirp (gateway .2, DNS .3, DHCP from .15) and the default forward target to another /24.
  assert.equal(vdeUrl(parseNic('user,hostfwd=tcp::8080-:80,net=10.0.3.0/24', 0), '/x', () => {}), 'slirp:///addr=10.0.3.2/dhcp=10.0.3.15/vnameserver=10.0.3.3/tcpfwd=8080:10.0.3.15:80');
  assert.equal(vdeUrl(parseNic('user,net=192.168.7.0', 0), '/x', () => {}), 'slirp:///addr=192.168.7.2/dhcp=192.168.7.15/vnameserver=192.168.7.3');
  assert.equal(vdeUrl(parseNic('tap=tap0', 0), '/x', () => {}), 'tap://tap0');
  assert.equal(vdeUrl(parseNic('vde=vxvde://239.1.2.3', 0), '/x', () => {}), 'vxvde://239.1.2.3');
  for (const bad of ['', 'bogus', 'user,model=pcnet', 'user,mac=01:00:00:00:00:00', 'user,mac=zz', 'switch=../x', 'tap=x,hostfwd=tcp::1-:2', 'user,hostfwd=tcp::0-:22', 'user,speed=10', 'user,net=10.0.3.0/16', 'user,net=10.0.3.1', 'user,net=300.0.3.0', 'switch=x,net=10.0.3.0/24']) {
    assert.throws(() => parseNic(bad, 0), /--nic/, bad);
  }
});
