// What one call into a translated unit costs in V8: N distinct functions made with `new Function` (as
// src/jit makes units), called through one call site with a predictable sequence of targets, a random
// one, and a single target V8 can inline. docs/jit.md ("What stands in the way") quotes the numbers.
//   node scripts/jit-callbench.mjs [N]
const N = Number(process.argv[2] ?? 3000);
const fns = [];
for (let i = 0; i < N; i++) fns.push(new Function(`return function unit(c, J, budget) { let r = c.a; r = (r + ${i}) | 0; c.a = r; return 7; }`)());
const c = { a: 0 }, J = {};
const CALLS = 1 << 20, REPS = 40;
// Each measurement gets its own copy of the loop (its own call site, so its own type feedback).
const loop = () => new Function('fns', 'idx', 'c', 'J', 'REPS', `let s = 0;
  for (let rep = 0; rep < REPS; rep++) for (let i = 0; i < idx.length; i++) s += fns[idx[i]](c, J, 100);
  return s;`);
function measure(label, pick) {
  const idx = new Int32Array(CALLS);
  for (let i = 0; i < CALLS; i++) idx[i] = pick(i);
  const run = loop();
  const t0 = performance.now();
  run(fns, idx, c, J, REPS);
  const ns = ((performance.now() - t0) * 1e6) / (REPS * CALLS);
  console.log(`${label.padEnd(44)} ${ns.toFixed(1)} ns/call`);
}
measure('one target (monomorphic, inlined)', () => 0);
measure(`${N} functions, 8 targets in a fixed cycle`, (i) => i % 8);
measure(`${N} functions, 64 targets in random order`, () => (Math.random() * 64) | 0);
