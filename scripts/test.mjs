// `npm test`: installs what the tests need, builds, type-checks and runs every test with Node's runner.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { hostRunsI386, QEMU_I386 } from '../src/guest/i386-host.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
process.chdir(root);

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { stdio: 'inherit', ...opts });
  if (r.status !== 0) {
    console.error(`npm test: \`${cmd} ${args.join(' ')}\` failed (exit ${r.status ?? r.signal})`);
    process.exit(r.status || 1);
  }
}

// Host packages the tests build native oracles with (Debian names).
const debs = [
  { pkg: 'gcc-multilib', present: () => existsSync('/usr/lib/gcc/x86_64-linux-gnu/12/32/libgcc.a') || existsSync('/usr/lib32/crt1.o') },
  { pkg: 'cpio', present: () => existsSync('/usr/bin/cpio') },
  { pkg: 'acpica-tools', present: () => existsSync('/usr/bin/iasl') },
  { pkg: 'qemu-utils', present: () => existsSync('/usr/bin/qemu-img') },
  { pkg: 'vdeplug', present: () => existsSync('/usr/bin/vde_plug') },
  { pkg: 'libvdeplug-slirp', present: () => existsSync('/usr/lib/x86_64-linux-gnu/vdeplug/libvdeplug_slirp.so') },
  { pkg: 'vde2', present: () => existsSync('/usr/bin/vde_switch') },
  // The QEMU VM on the same VDE switch as Trapeze's (test/net-switch.test.ts).
  { pkg: 'qemu-system-x86', present: () => existsSync('/usr/bin/qemu-system-i386') },
  // The differential tests' oracle where the host kernel cannot run i386 programs itself (src/guest/i386-host.mjs).
  { pkg: 'qemu-user-static', present: () => hostRunsI386() || existsSync(QEMU_I386) },
  { pkg: 'nasm', present: () => spawnSync('sh', ['-c', 'command -v nasm'], { stdio: 'ignore' }).status === 0 },
];
const missing = debs.filter((d) => !d.present()).map((d) => d.pkg);
if (missing.length) {
  if (process.getuid && process.getuid() === 0) {
    console.log(`npm test: installing Debian packages: ${missing.join(' ')}`);
    run('apt-get', ['update', '-qq']);
    run('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...missing], { env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  } else {
    console.error(`npm test: missing Debian packages; run: sudo apt-get install -y ${missing.join(' ')}`);
    process.exit(1);
  }
}

if (!existsSync(join(root, 'node_modules', '.bin', 'tsx'))) run('npm', ['install', '--no-audit', '--no-fund']);
run('node', ['scripts/build.mjs']);
run(join(root, 'node_modules', '.bin', 'tsc'), ['--noEmit', '-p', '.']);

function findTests(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...findTests(p));
    else if (name.endsWith('.test.ts')) out.push(p);
  }
  return out;
}
const only = process.argv.slice(2);
const files = only.length ? only : findTests(join(root, 'test')).sort();
run('node', ['--import', 'tsx', '--test', '--test-reporter=spec', ...files]);
