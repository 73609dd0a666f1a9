// `npm run fuzz -- [--seconds N] [--seed S] [--cpl 0|3|both]`: runs random instruction streams on the
// vCPU (see src/cpu/fuzz.ts) and fails if any host exception escapes, a stream hangs, or host memory grows
// without bound. Failing streams are printed with their bytes and initial registers to reproduce them.

import { runCampaign, type CampaignStats } from '../src/cpu/fuzz.ts';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  if (i >= 0) return process.argv[i + 1];
  const eq = process.argv.find((a) => a.startsWith(`--${name}=`));
  return eq?.slice(name.length + 3);
}

const seconds = Number(arg('seconds') ?? 10);
const seed = arg('seed') !== undefined ? Number(arg('seed')) >>> 0 : (Date.now() ^ process.pid) >>> 0;
const cplArg = arg('cpl') ?? 'both';
if (!['0', '3', 'both'].includes(cplArg) || !(seconds > 0) || Number.isNaN(seed)) {
  console.error('usage: npm run fuzz -- [--seconds N] [--seed S] [--cpl 0|3|both]');
  process.exit(2);
}
const cpl = cplArg === 'both' ? 'both' : (Number(cplArg) as 0 | 3);
const MB = 1 << 20;
const line = (s: CampaignStats) =>
  `${s.streams} streams (${s.byMode[0]} at CPL 0, ${s.byMode[3]} at CPL 3), ${s.instructions} instructions, ` +
  `${s.exceptions} guest exceptions, ${s.tripleFaults} triple faults, ${s.hostExceptions.length} host exceptions, ` +
  `slowest ${s.slowestMillis.toFixed(1)} ms, rss ${(s.rssStart / MB).toFixed(0)} → ${(s.rssPeak / MB).toFixed(0)} MiB`;

console.log(`fuzz: seed ${seed}, ${seconds} s, CPL ${cplArg}`);
const stats = runCampaign({ seed, millis: seconds * 1000, cpl, onProgress: (s) => console.log(`  ${line(s)}`) });
console.log(`fuzz: ${line(stats)} in ${(stats.millis / 1000).toFixed(1)} s`);

let failed = false;
const seen = new Set<string>();
for (const h of stats.hostExceptions) {
  const key = h.error.split('\n').slice(0, 2).join('|');
  if (seen.has(key)) continue;
  seen.add(key);
  failed = true;
  console.log(`\nHOST EXCEPTION at CPL ${h.mode}, stream #${h.index}: ${h.stream}`);
  console.log(`  regs eax..edi, eflags: ${h.regs.map((r) => (r >>> 0).toString(16)).join(' ')}`);
  console.log(`  ${h.error.split('\n').slice(0, 8).join('\n  ')}`);
}
for (const h of stats.hangs) { failed = true; console.log(`\nHANG at CPL ${h.mode}, stream #${h.index} (${h.millis.toFixed(0)} ms): ${h.stream}`); }
const growth = stats.rssPeak - stats.rssStart;
if (growth > 512 * MB) { failed = true; console.log(`\nMEMORY: rss grew by ${(growth / MB).toFixed(0)} MiB`); }
process.exit(failed ? 1 : 0);
