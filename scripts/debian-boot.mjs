#!/usr/bin/env node
// Boots the Debian root filesystem image (`trapeze guest debian`) under Trapeze, logs in on the serial console,
// asks systemd how the boot went and powers off, printing how long each stage took. Builds the image first if it
// is missing (that needs root). Too long for `npm test` (minutes under the interpreter), so it is a script:
//
//   npm run debian-boot [-- --image FILE] [--if virtio|ide] [--memory MiB] [--cpu jit] [--timeout MIN]
//                          [--append "ARGS"] [--quiet] [--build]
//
// Exit status 0 when the login prompt came, the login worked and `systemctl is-system-running` answered
// `running` or `degraded`.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..');
const bin = join(repo, 'bin', 'trapeze');
const { values: v } = parseArgs({
  options: {
    image: { type: 'string' }, memory: { type: 'string', default: '512' }, cpu: { type: 'string' },
    timeout: { type: 'string', default: '60' }, quiet: { type: 'boolean' }, build: { type: 'boolean' },
    append: { type: 'string', default: '' }, password: { type: 'string', default: 'trapeze' },
    if: { type: 'string', default: 'virtio' },
  },
});
const cache = process.env.TRAPEZE_CACHE ? resolve(process.env.TRAPEZE_CACHE) : join(process.env.XDG_CACHE_HOME ? resolve(process.env.XDG_CACHE_HOME) : join(homedir(), '.cache'), 'trapeze');
const image = resolve(v.image ?? join(cache, 'debian.qcow2'));

if (v.build || !existsSync(image)) {
  process.stderr.write(`debian-boot: building ${image} with \`trapeze guest debian\`\n`);
  const r = spawnSync(process.execPath, [bin, 'guest', 'debian', '--out', image], { stdio: ['ignore', 'inherit', 'inherit'] });
  if (r.status !== 0) process.exit(r.status ?? 1);
}

// The image is a bare filesystem (no partition table): the whole disk is root, /dev/vda on virtio, /dev/sda on IDE.
const rootDev = v.if === 'ide' ? '/dev/sda' : '/dev/vda';
// No format=: Trapeze recognises the qcow2 header, as the plain `--drive file=debian.qcow2,if=virtio` should.
const args = ['run', '--memory', v.memory, '--drive', `file=${image},if=${v.if}`, '--append', `root=${rootDev} ${v.append}`.trim()];
if (v.cpu) args.push('--cpu', v.cpu);
process.stderr.write(`debian-boot: trapeze ${args.join(' ')}\n`);
const t0 = Date.now();
const secs = (t = Date.now()) => ((t - t0) / 1000).toFixed(1);
const marks = [];
const mark = (what) => { marks.push([what, secs()]); process.stderr.write(`\ndebian-boot: [${secs()} s] ${what}\n`); };

const p = spawn(process.execPath, [bin, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
// The VM is this script's child: take it down with the script.
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, () => { p.kill('SIGKILL'); process.exit(130); });
let out = '';
let err = '';
// Everything after `from` is what the current step waits on, so an earlier prompt cannot satisfy a later step.
let from = 0;
// ANSI colour and cursor sequences (systemd's status lines, agetty's issue) are dropped before matching.
const plain = () => out.slice(from).replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '');
const steps = [
  { want: /Trapeze initramfs: mounted \S+/, what: 'initramfs mounted the root filesystem' },
  { want: /systemd\[1\]|Welcome to .*Debian/, what: 'systemd started' },
  { want: /login: $/m, what: 'login prompt', send: 'root\n' },
  { want: /Password: $/m, what: 'password prompt', send: `${v.password}\n` },
  // A computed marker: the echoed command line itself cannot match.
  { want: /# $/m, what: 'root shell', send: 'echo "STATE=$(systemctl is-system-running --wait)"\n' },
  { want: /STATE=([a-z]+)/, what: 'systemctl is-system-running answered', send: 'systemctl --failed --no-pager --no-legend --plain; echo "FAILED-$((6*7))"\n' },
  { want: /FAILED-42/, what: 'systemctl --failed listed', send: 'systemd-analyze --no-pager 2>&1 | head -3; uname -r; echo "DONE-$((6*7))"\n' },
  { want: /DONE-42/, what: 'systemd-analyze answered', send: 'poweroff\n' },
];
let step = 0;
let state;
const advance = () => {
  while (step < steps.length) {
    const s = steps[step];
    const text = plain();
    const m = s.want.exec(text);
    if (!m) return;
    if (s.what.startsWith('systemctl is-system-running')) state = m[1];
    mark(s.what + (state && s.what.startsWith('systemctl is-system') ? `: ${state}` : ''));
    // Where the match ended, in the raw buffer: escapes only ever shorten the plain text, so search from there.
    from = out.length;
    step++;
    if (s.send) p.stdin.write(s.send);
  }
};
p.stdout.on('data', (d) => { out += d; if (!v.quiet) process.stdout.write(d); advance(); });
p.stderr.on('data', (d) => { err += d; if (!v.quiet) process.stderr.write(d); });
const timer = setTimeout(() => { process.stderr.write(`\ndebian-boot: timed out after ${v.timeout} min at step "${steps[step]?.what}"\n`); p.kill('SIGKILL'); }, Number(v.timeout) * 60_000);
const code = await new Promise((r) => p.on('close', (c) => r(c)));
clearTimeout(timer);

const between = (a, b) => {
  const s = out.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '');
  const i = s.lastIndexOf(a);
  const j = i < 0 ? -1 : s.indexOf(b, i + a.length);
  return i < 0 || j < 0 ? '' : s.slice(i + a.length, j);
};
const failedRaw = between('FAILED-$((6*7))"', 'FAILED-42');
const failed = failedRaw.split(/\r?\n/).map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
const analyze = between('DONE-$((6*7))"', 'DONE-42').split(/\r?\n/).map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
process.stdout.write('\n--- debian-boot summary ---\n');
for (const [what, t] of marks) process.stdout.write(`${t.padStart(7)} s  ${what}\n`);
process.stdout.write(`${secs().padStart(7)} s  trapeze exited with status ${code}\n`);
process.stdout.write(`is-system-running: ${state ?? '(no answer)'}\n`);
const asked = marks.some(([w]) => w === 'systemctl --failed listed');
process.stdout.write(`failed units: ${!asked ? '(not asked)' : failed.length ? '\n  ' + failed.join('\n  ') : 'none'}\n`);
if (analyze.length) process.stdout.write(`in the guest: ${analyze.join(' / ')}\n`);
const ok = marks.some(([w]) => w === 'login prompt') && (state === 'running' || state === 'degraded');
if (!ok && v.quiet) process.stdout.write(`last output:\n${out.slice(-3000)}\nstderr:\n${err.slice(-2000)}\n`);
process.exit(ok ? 0 : 1);
