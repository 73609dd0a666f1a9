// End to end: the default Debian guest boots with an emulated Intel e1000 on user-mode networking (vde_plug
// slirp://), Linux's own e1000 driver binds it, busybox udhcpc gets an address from slirp's DHCP server, and
// wget fetches a file from an HTTP server this test runs on 127.0.0.1 (slirp's gateway 10.0.2.2 reaches the
// host's loopback). The file's SHA-256 inside the guest must match.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createServer } from 'node:http';
import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';

const bin = join(import.meta.dirname, '..', 'bin', 'trapeze');
const haveVde = spawnSync('sh', ['-c', 'command -v vde_plug && test -e /usr/lib/x86_64-linux-gnu/vdeplug/libvdeplug_slirp.so'], { stdio: 'ignore' }).status === 0;

test('guest on --nic user,model=e1000 gets DHCP and downloads a file intact', { timeout: 16 * 60_000, skip: haveVde ? false : 'vde_plug with the slirp module is not installed (apt-get install vdeplug libvdeplug-slirp)' }, async (t) => {
  const body = randomBytes(200_000);
  const sha = createHash('sha256').update(body).digest('hex');
  let hits = 0;
  const server = createServer((req, res) => {
    hits++;
    if (req.url !== '/blob') { res.writeHead(404).end(); return; }
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': body.length }).end(body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;

  // udhcpc only reports a lease to its script; this one applies it (what the initramfs lacks by default).
  const script = [
    `printf '#!/bin/sh\\n[ "$1" = bound ] && ifconfig $interface $ip netmask $subnet && route add default gw $router\\nexit 0\\n' > /tmp/dhcp.sh`,
    'chmod +x /tmp/dhcp.sh',
    'echo driver=$(basename $(readlink /sys/class/net/eth0/device/driver))',
    'echo mac=$(cat /sys/class/net/eth0/address)',
    'ifconfig eth0 up',
    'udhcpc -i eth0 -n -q -t 10 -T 2 -s /tmp/dhcp.sh >/dev/null 2>&1 && echo dhcp=ok',
    "echo addr=$(ifconfig eth0 | sed -n 's/.*inet addr:\\([0-9.]*\\).*/\\1/p')",
    `wget -q -O /tmp/blob http://10.0.2.2:${port}/blob && echo wget=ok`,
    "echo sha=$(sha256sum /tmp/blob | cut -d' ' -f1)",
    'echo carrier=$(cat /sys/class/net/eth0/carrier)',
    'poweroff',
    '',
  ].join('\n');

  const t0 = Date.now();
  const r = await new Promise<{ code: number | null; out: string; err: string }>((resolve) => {
    const p = spawn(process.execPath, [bin, 'run', '--memory', '256', '--stats', '--nic', 'user,model=e1000,mac=52:54:00:ab:cd:ef'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '', err = '';
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { err += d; });
    p.stdin.end(script);
    const timer = setTimeout(() => p.kill('SIGKILL'), 15 * 60_000);
    p.on('close', (code) => { clearTimeout(timer); resolve({ code, out, err }); });
  });
  server.close();
  t.diagnostic(`boot, DHCP and download took ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  if (/archive unreachable/i.test(r.err)) { t.skip('Debian archive unreachable: the default guest could not be fetched'); return; }
  const lines = r.out.split(/\r?\n/);
  const field = (name: string) => lines.find((l) => l.startsWith(`${name}=`))?.slice(name.length + 1);
  const ctx = `\nstderr: ${r.err.slice(-1500)}\nlast output: ${r.out.slice(-2500)}`;
  assert.equal(r.code, 0, `exit status${ctx}`);
  assert.equal(field('driver'), 'e1000', `Linux's e1000 driver bound the device${ctx}`);
  assert.equal(field('mac'), '52:54:00:ab:cd:ef', 'MAC from the EEPROM');
  assert.equal(field('dhcp'), 'ok', `udhcpc got a lease${ctx}`);
  assert.equal(field('addr'), '10.0.2.15', 'slirp hands out 10.0.2.15');
  assert.equal(field('wget'), 'ok', `wget succeeded${ctx}`);
  assert.equal(field('sha'), sha, 'downloaded file matches');
  assert.equal(field('carrier'), '1', 'link up');
  assert.ok(hits >= 1, 'the host server was reached');
  const stats = /e1000\.0: rx (\d+) pkts\/(\d+) B, tx (\d+) pkts/.exec(r.err);
  assert.ok(stats, `--stats prints the NIC counters${ctx}`);
  assert.ok(Number(stats[2]) >= body.length, `received bytes ${stats[2]} cover the file`);
  t.diagnostic(stats[0]);
});
