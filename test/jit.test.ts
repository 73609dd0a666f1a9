// The binary translator (src/jit/) against the interpreter and the host CPU:
// - every single-instruction form of test/diff through the code generator, judged by the host CPU;
// - multi-instruction programs run by the interpreter and by the JIT, compared state for state
//   (loops, self-modifying code, a code page rewritten by DMA, a fault in the middle of a unit);
// - random byte streams run both ways: identical outcomes and no host exception.
//
//   JIT_DIFF_CASES=<n>   differential cases (default 50000)      JIT_STREAMS=<n>  random streams (default 3000)

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createUserTestCpu, type UserTestCpu } from '../src/cpu/testing.ts';
import { CpuStop } from '../src/cpu/cpu.ts';
import { attachJit, type Jit } from '../src/jit/jit.ts';
import { createJitTestCpu } from '../src/jit/testing.ts';
import { EXIT_GROUP, EXIT_SEGMENT } from '../src/jit/codegen.ts';
import { makeStream, Rng, type StreamKind } from '../src/cpu/fuzz.ts';
import { runDiff } from './diff/run.ts';
import { CPU } from '../src/cpu/cpu.ts';
import { CR4_TSD, CS as CS_SEG, DS } from '../src/cpu/constants.ts';
import type { PortBus } from '../src/cpu/bus.ts';
import { GuestMemory } from '../src/memory/guest-memory.ts';
import { irqSource, raiseIrq } from './system-harness.ts';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { nativeOnly } from '../src/guest/i386-host.mjs';

const env = process.env;
const CASES = Number(env.JIT_DIFF_CASES ?? 50000);
const STREAMS = Number(env.JIT_STREAMS ?? 3000);
// Fixed by default so `npm test` is deterministic (see test/diff.test.ts); DIFF_SEED=random for a fresh seed.
const SEED = env.DIFF_SEED === 'random' ? (Date.now() ^ (process.pid << 16)) >>> 0
  : env.DIFF_SEED !== undefined ? Number(env.DIFF_SEED) >>> 0 : 1645987225;

const CODE = 0x100000, DATA = 0x200000, STACK = 0x300000, AREA = 0x10000;

interface Outcome { regs: number[]; eflags: number; eip: number; instructions: number; event: string; data: Uint8Array; stack: Uint8Array; cr2: number }

/** Runs `code` at CODE until INT3/INT n or an exception (reported, not delivered), or `budget`. */
function runProgram(code: Uint8Array, engine: 'interp' | 'jit', opts: { hot?: number; reviewRuns?: number; groupRuns?: number; budget?: number; regs?: number[]; eflags?: number; slice?: number; setup?: (t: UserTestCpu, j: Jit | null) => void } = {}): Outcome & { jit: Jit | null } {
  const t = createUserTestCpu();
  const cpu = t.cpu;
  // Units are translated again along their hot path after 3 runs (not 4096), so that every test covers it.
  const jit = engine === 'jit' ? attachJit(cpu, { hot: opts.hot, reviewRuns: opts.reviewRuns ?? 3, groupRuns: opts.groupRuns ?? 6 }) : null;
  t.writeMem(CODE, code);
  (opts.regs ?? [0, 0, 0, 0, STACK + 0x8000, 0, 0, 0]).forEach((v, i) => t.setGpr(i, v));
  t.setEflags(opts.eflags ?? 0x202);
  t.setEip(CODE);
  let event = '';
  const stop = (what: string) => { event = what; cpu.stopSlice = true; return true; };
  cpu.hooks.softInt = (v) => stop(`int ${v}`);
  cpu.hooks.exception = (v, c) => stop(`exception ${v} code ${c}`);
  cpu.hooks.sysenter = () => stop('sysenter');
  // RDTSC reads the host clock; a fixed counter keeps the two runs comparable.
  cpu.readTsc = () => 0x123456789abn;
  opts.setup?.(t, jit);
  const budget = opts.budget ?? 50_000_000;
  const slice = opts.slice ?? 100_000;
  try {
    while (!event && cpu.instructions < budget && !cpu.halted) cpu.run(Math.min(slice, budget - cpu.instructions));
  } catch (e) {
    if (!(e instanceof CpuStop)) throw e;
    event = `stop ${e.reason}`;
  }
  return {
    regs: Array.from(cpu.r32, (v) => v >>> 0), eflags: cpu.getEflags() >>> 0, eip: cpu.eip >>> 0, instructions: cpu.instructions,
    event, data: t.readMem(DATA, AREA), stack: t.readMem(STACK, AREA), cr2: cpu.cr2 >>> 0, jit,
  };
}

function assertSame(a: Outcome, b: Outcome, what: string): void {
  const hex = (v: number) => v.toString(16);
  assert.deepEqual(b.regs.map(hex), a.regs.map(hex), `${what}: registers`);
  assert.equal(hex(b.eflags), hex(a.eflags), `${what}: eflags`);
  assert.equal(hex(b.eip), hex(a.eip), `${what}: eip`);
  assert.equal(b.event, a.event, `${what}: how it ended`);
  assert.equal(b.instructions, a.instructions, `${what}: instruction count`);
  assert.equal(hex(b.cr2), hex(a.cr2), `${what}: cr2`);
  assert.ok(Buffer.compare(b.data, a.data) === 0, `${what}: data memory`);
  assert.ok(Buffer.compare(b.stack, a.stack) === 0, `${what}: stack memory`);
}

const hexBytes = (s: string) => Uint8Array.from(Buffer.from(s, 'hex'));
const le32 = (v: number) => [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff];

// Programs, assembled with nasm (org 0x100000, bits 32); the sources are in the comments.

// mov ecx, 3000000 / mov esi, 0x200000 / xor eax, eax / mov ebx, 3
// L: add eax, ebx / xor edx, eax / mov [esi+8], eax / mov ebx, [esi+8] / lea edi, [eax+ebx*2+1]
//    cmp edi, edx / inc ebx / sub edx, 1 / dec ecx / jnz L
// int3
const LOOP = hexBytes('b9c0c62d00be0000200031c0bb0300000001d831c28946088b5e088d7c580139d74383ea014975e9cc');

// mov ecx, 300 / xor ebx, ebx
// L: mov [patch+1], cl        ; rewrites the immediate of the next instruction, inside the running unit
// patch: mov al, 0 / movzx eax, al / add ebx, eax / dec ecx / jnz L
// int3
const SMC = hexBytes('b92c01000031db880d0e001000b0000fb6c001c34975f0cc');

// mov ecx, 1000 / xor ebx, ebx / xor edx, edx
// L: call f / inc edx / cmp edx, 50 / jne skip / xor edx, edx
//    add dword [f+1], 3       ; f's immediate: another unit in the same page, translated and hot
// skip: dec ecx / jnz L
// int3 / align 64
// f: add ebx, 1 / ret
const SMC_CALL = hexBytes('b9e803000031db31d2e8320000004283fa32750931d2830541001000034975e9cc9090909090909090909090909090909090909090909090909090909090909083c301c3');

// mov esi, 0x200000 / xor eax, eax / mov ecx, 7
// L: add eax, [esi] / mov [esi+4], eax / inc dword [esi+8] / push eax / pop edx / add esi, 0x1000
//    lea edi, [eax+ecx*4] / imul edi, ecx / shl edi, 3 / jmp L      ; #PF when esi leaves the data area
const FAULT = hexBytes('be0000200031c0b9070000000306894604ff4608505a81c6001000008d3c880faff9c1e703ebe5');

// A mix of inlined forms and monitor calls: imul/div, movzx/movsx, setcc/cmovcc, shifts and rotates,
// 16-bit moves, adc/sbb/not/neg, bt/bswap, rep movsb, inc/dec of memory, xchg, call/leave/ret, pushfd.
// (tmp sources: see docs/jit.md, "Tests".)
const MIX = hexBytes('b9d0070000be00002000bf0008200031dbbd3930000089e869c06d4ec641053930000089c531d2bb07000000f7f389148e0fb6040e0fbf144e39d00f9cc30f4fc2c1f803c1c005c1ca07d3ea668907668b1f11d819c2f7d0f7daa98000000074060fbae0030fca515657b910000000fcf3a45f5e59fe460366ff4e06928d44d06425ff0f000009c229d3019e00010000e808000000490f857affffffcc5589e58b45089c5825d5080000318600020000c9c3');

test('jit: loop workload matches the interpreter (and is translated)', () => {
  const a = runProgram(LOOP, 'interp');
  for (const hot of [1, 8]) {
    const b = runProgram(LOOP, 'jit', { hot });
    assertSame(a, b, `loop, hot=${hot}`);
    assert.ok(b.jit!.totals().unitInsns > 29_000_000, `only ${b.jit!.totals().unitInsns} instructions ran translated`);
  }
  assert.equal(a.event, 'int 3');
});

test('jit: mixed program (inline forms and monitor calls) matches the interpreter', () => {
  const a = runProgram(MIX, 'interp');
  assert.equal(a.event, 'int 3');
  for (const hot of [1, 3]) for (const slice of [100_000, 7, 1]) assertSame(a, runProgram(MIX, 'jit', { hot, slice }), `mix, hot=${hot} slice=${slice}`);
});

// fninit / mov ebp, 3000 / xor edx, edx
// L: mov edi, 0x200010 / mov ecx, ebp / and ecx, 0x3f / mov eax, ebp / rep stosb      ; inside one page
//    add [0x204018], edi
//    mov edi, 0x200ff0 / mov ecx, 40 / rep stosb                                       ; crossing a page
//    mov edi, 0x202064 / mov ecx, ebp / and ecx, 15 / rep stosd                        ; dwords
//    std / mov edi, 0x203100 / mov ecx, 8 / rep stosb / cld                            ; backwards
//    mov eax, ebp / and eax, 1 / imul eax, eax, 0x4e / add eax, 0x42                   ; 0x90 or 0x42
//    mov edi, patch / mov ecx, 4 / rep stosb                                           ; into this code
// patch: inc edx (x4)
//    mov eax, ebp / shl eax, 8 / or eax, ebp / sahf / pushfd / pop ebx / add [0x204000], ebx
//    adc dword [0x204004], 0 / setpe bl / add [0x204008], bl
//    mov [0x20400c], ebp / mov eax, ebp / and eax, ~3 / mov [0x20401c], eax
//    fild dword [0x20400c] / fild dword [0x20401c] / fcompp                            ; equal 1 time in 4
//    fnstsw ax / add [0x204010], ax / sahf / jb below / inc dword [0x204014]
// below: dec ebp / jnz L / int3
const STOS_SAHF = hexBytes('dbe3bdb80b000031d2bf1000200089e983e13f89e8f3aa013d18402000bff00f2000b928000000f3aabf6420200089e983e10ff3abfdbf00312000b908000000f3aafc89e883e0016bc04e83c042bf5a001000b904000000f3aa4242424289e8c1e00809e89e9c5b011d00402000831504402000000f9ac3001d08402000892d0c40200089e883e0fca31c402000db050c402000db051c402000ded9dfe0660105104020009e7206ff05144020004d0f8554ffffffcc');

// fninit / mov ebp, 2000 / mov esi, 0x200000 / fld1 / fldz
// L: mov [esi+0x100], ebp / fild dword [esi+0x100] / fld st1 / fxch st2 / faddp st1, st0 / fadd st0, st1
//    fmul st1, st0 / cmp ebp, 1000 / fcomi st0, st1 / jb .b / inc dword [esi]
// .b: cmp ebp, 1500 / fcmovb st0, st2 / fucomip st0, st1 / setbe al / add [esi+4], al
//    fstp st0 / fld st0 / fxam / fnstsw ax / add [esi+12], ax / dec ebp / jnz L
// fst qword [esi+0x20] / fxch st1 / fnstenv [esi+0x40] / fst qword [esi+0x28]      ; FIP, FOP of the FXCH
// fnstcw [esi+16] / and word [esi+16], 0xfffe / fldcw [esi+16]          ; unmask IE
// fldz / fldz / fdiv st0, st1 / fld st0 / int3                           ; 0/0 pending: #MF at FLD ST(0)
const X87_REG = hexBytes('dbe3bdd0070000be00002000d9e8d9ee89ae00010000db8600010000d9c1d9cadec1d8c1dcc981fde8030000dbf17202ff0681fddc050000dac2dfe90f96c0004604ddd8d9c0d9e5dfe06601460c4d75bfdd5620d9c9d97640dd5628d97e1066836610fed96e10d9eed9eed8f1d9c0cc');

test('jit: x87 register forms called directly (FCOMI and FCMOV with the flags in the CPU) and #MF match the interpreter', () => {
  const a = runProgram(X87_REG, 'interp');
  assert.match(a.event, /^exception 16/);
  for (const hot of [1, 3]) for (const slice of [100_000, 7]) assertSame(a, runProgram(X87_REG, 'jit', { hot, slice }), `x87 registers, hot=${hot} slice=${slice}`);
});

test('jit: REP STOS in one page, SAHF and FNSTSW AX inline match the interpreter (page crossings, DF, stores into code)', () => {
  const a = runProgram(STOS_SAHF, 'interp');
  assert.equal(a.event, 'int 3');
  // The odd iterations turned the INC EDXs into NOPs, the even ones back: 1,500 x 4.
  assert.equal(a.regs[2], 6000);
  for (const hot of [1, 3]) for (const slice of [100_000, 5]) assertSame(a, runProgram(STOS_SAHF, 'jit', { hot, slice }), `stos/sahf, hot=${hot} slice=${slice}`);
});

test('jit: self-modifying code inside the running unit', () => {
  const a = runProgram(SMC, 'interp');
  // ECX counts 300..1 and the immediate is CL: the interpreter sees every rewritten value.
  let sum = 0;
  for (let k = 300; k >= 1; k--) sum += k & 0xff;
  assert.equal(a.regs[3], sum);
  for (const hot of [1, 2, 8]) {
    const b = runProgram(SMC, 'jit', { hot });
    assertSame(a, b, `smc, hot=${hot}`);
    assert.ok(b.jit!.stats.invalidatedFrames > 0, 'the code page was invalidated');
  }
});

test('jit: a hot translated routine rewritten by its caller', () => {
  const a = runProgram(SMC_CALL, 'interp');
  for (const hot of [1, 8]) {
    const b = runProgram(SMC_CALL, 'jit', { hot });
    assertSame(a, b, `smc-call, hot=${hot}`);
    assert.ok(b.jit!.stats.invalidatedUnits > 0);
  }
});

test('jit: a code page rewritten by DMA (GuestMemory.writeBytes) runs its new code', () => {
  // mov ebx, imm32 / inc ebx / ... / int3, re-run after the immediate is rewritten from outside the vCPU.
  // mov ecx, 10 / mov ebx, k / L: inc ebx / dec ecx / jnz L / int3
  const prog = (k: number) => hexBytes(`b90a000000bb${k.toString(16).padStart(2, '0')}000000434975fccc`);
  const t = createUserTestCpu();
  const cpu = t.cpu;
  const jit = attachJit(cpu, { hot: 1, reviewRuns: 3, groupRuns: 6 });
  let done = false;
  cpu.hooks.softInt = () => { done = true; cpu.stopSlice = true; return true; };
  for (let k = 1; k <= 5; k++) {
    cpu.mem.writeBytes(CODE, prog(k * 16));
    t.setEip(CODE);
    done = false;
    while (!done) cpu.run(1000);
    // ECX=10 iterations of inc ebx: the new immediate plus 10.
    assert.equal(cpu.r32[3], k * 16 + 10, `run ${k}`);
  }
  assert.ok(jit.stats.invalidatedFrames >= 4);
});

test('jit: a fault in the middle of a unit restarts exactly at the faulting instruction', () => {
  const a = runProgram(FAULT, 'interp');
  assert.match(a.event, /^exception 14/);
  assert.equal(a.cr2, DATA + AREA);
  for (const hot of [1, 4]) for (const slice of [1000, 13]) {
    const b = runProgram(FAULT, 'jit', { hot, slice });
    assertSame(a, b, `fault, hot=${hot} slice=${slice}`);
  }
});

// mov esi, DATA / fld qword [esi] / fadd dword [esi+8] / fstp qword [esi+16] / fld dword [esi+8]
// fmul qword [esi] / fst dword [esi+24] / fnstenv [esi+32] / fld qword [0x3ff00000]   ; #PF
const X87_MEM = hexBytes('be00002000dd06d84608dd5e10d94608dc0ed95618d97620dd050000f03f');

test('jit: x87 memory forms called directly keep the FPU state, FIP/FDP and exceptions exact', () => {
  const setup = (t: UserTestCpu) => {
    const d = new DataView(new ArrayBuffer(12));
    d.setFloat64(0, 1.5, true); d.setFloat32(8, 2.25, true);
    t.writeMem(DATA, new Uint8Array(d.buffer));
  };
  const a = runProgram(X87_MEM, 'interp', { setup });
  assert.match(a.event, /^exception 14/);
  assert.equal(new DataView(a.data.buffer, a.data.byteOffset).getFloat64(16, true), 3.75);
  for (const slice of [1000, 3]) assertSame(a, runProgram(X87_MEM, 'jit', { hot: 1, slice, setup }), `x87, slice ${slice}`);
  // CR0.TS: the first x87 instruction raises #NM.
  const ts = (t: UserTestCpu) => { setup(t); t.cpu.cr0 |= 8; };
  const b = runProgram(X87_MEM, 'interp', { setup: ts });
  assert.match(b.event, /^exception 7/);
  assertSame(b, runProgram(X87_MEM, 'jit', { hot: 1, setup: ts }), 'x87 with CR0.TS');
});

test('jit: cache flushes and unit-size limits keep results exact', () => {
  const a = runProgram(MIX, 'interp');
  const b = runProgram(MIX, 'jit', { hot: 1, slice: 997, setup: (t, j) => {
    // Flush the whole cache between slices, as capacity pressure would.
    const run = t.cpu.run.bind(t.cpu);
    t.cpu.run = (n: number) => { j!.flush(); return run(n); };
  } });
  assertSame(a, b, 'mix with flushes');
  assert.ok(b.jit!.stats.flushes > 10);
});

test('jit: a loop whose head instruction crosses a page still runs translated', () => {
  // CODE: mov ecx, 100000 / jmp L ... L (at CODE+0xffd, across the page end): add eax, 0x01020304
  // inc ebx / dec ecx / jnz L / int3. No unit can start at L; the rest of the loop gets one.
  const code = new Uint8Array(0x1010).fill(0x90);
  const L = 0xffd;
  code.set([0xb9, 0xa0, 0x86, 0x01, 0x00, 0xe9, ...le32(L - 10)], 0);
  const rel = L - (L + 5 + 1 + 1 + 2);
  code.set([0x05, 0x04, 0x03, 0x02, 0x01, 0x43, 0x49, 0x75, rel & 0xff, 0xcc], L);
  const a = runProgram(code, 'interp');
  assert.equal(a.event, 'int 3');
  const b = runProgram(code, 'jit', { hot: 8 });
  assertSame(a, b, 'page-crossing loop head');
  const t = b.jit!.totals();
  assert.ok(t.unitInsns > 0.7 * b.instructions, `only ${t.unitInsns} of ${b.instructions} instructions ran translated`);
});

test('jit: long straight code becomes hot piece by piece, not one piece after another', () => {
  // L: 600 x add eax, ebx / dec ecx / jnz L / int3, 40 iterations with HOT = 8: every 96-instruction
  // piece of the straight run is counted as a block start while it is still interpreted.
  const body = new Array<number>(600).fill(0).flatMap(() => [0x01, 0xd8]);
  const loopLen = body.length + 1 + 6;
  const code = Uint8Array.from([0xb9, 40, 0, 0, 0, ...body, 0x49, 0x0f, 0x85, ...le32(-loopLen), 0xcc]);
  const a = runProgram(code, 'interp');
  const b = runProgram(code, 'jit', { hot: 8 });
  assertSame(a, b, 'straight code');
  const interpreted = b.instructions - b.jit!.totals().unitInsns;
  // About HOT iterations of the whole body (8 x 602) are interpreted; one piece after another would be
  // about three times that.
  assert.ok(interpreted < 8000, `${interpreted} instructions interpreted`);
});

test(`jit: random byte streams run alike on the interpreter and the JIT (${STREAMS} streams, seed ${SEED})`, () => {
  const rng = new Rng(SEED);
  const kinds: StreamKind[] = ['random', 'shaped', 'shaped', 'system'];
  let compared = 0, translated = 0;
  for (let s = 0; s < STREAMS; s++) {
    const stream = makeStream(rng, kinds[rng.int(kinds.length)]);
    const code = new Uint8Array(Math.min(stream.length, 0x8000));
    code.set(stream.subarray(0, code.length));
    const regs: number[] = [];
    for (let i = 0; i < 8; i++) regs.push(rng.chance(0.6) ? DATA + rng.int(AREA) : rng.chance(0.5) ? CODE + rng.int(0x100) : rng.u32());
    regs[4] = STACK + 0x1000 + rng.int(AREA - 0x2000) & ~3;
    const eflags = (rng.u32() & 0x8d5) | 0x202;
    const budget = 200;
    const a = runProgram(code, 'interp', { regs, eflags, budget });
    let b;
    try {
      b = runProgram(code, 'jit', { regs, eflags, budget, hot: 1 });
    } catch (e) {
      assert.fail(`host exception on stream ${s} (${Buffer.from(code.subarray(0, 64)).toString('hex')}): ${(e as Error).stack}`);
    }
    translated += b.jit!.stats.unitsTranslated;
    // A unit may run past the budget, so only streams that ended by themselves are compared.
    if (!a.event || a.instructions >= budget) continue;
    compared++;
    assertSame(a, b, `stream ${s} (${Buffer.from(code.subarray(0, 64)).toString('hex')})`);
  }
  assert.ok(compared > STREAMS / 2, `only ${compared} streams ended within the budget`);
  assert.ok(translated > STREAMS / 4, `only ${translated} units translated`);
});

/**
 * Random straight-line sequences of flag producers (ALU, ADC/SBB, INC/DEC, shifts, rotates, IMUL, NEG)
 * and flag consumers (Jcc, SETcc, CMOVcc, ADC, PUSHFD, a call-out), with forward branches (over one
 * instruction, if-else arms, crossing pairs), calls and returns, optionally looped and ending in a faulting load: the flags
 * a unit keeps in locals must reach the CPU exactly at exits, loops, call-outs, faults and branch targets.
 */
function flagProgram(rng: Rng, loop: boolean): Uint8Array {
  const regs = [0, 2, 3, 5, 6, 7]; // not ECX (shift counts) or ESP
  const out: number[] = [];
  const insn = (): number[] => {
    const r = rng.pick(regs), s = rng.pick(regs), alu = rng.int(8), cc = rng.int(16);
    switch (rng.int(18)) {
      case 0: return [(alu << 3) | 1, 0xc0 | (s << 3) | r];
      case 1: return [(alu << 3) | 0, 0xc0 | (rng.int(8) << 3) | rng.int(4)];
      case 2: return [0x83, 0xc0 | (alu << 3) | r, rng.pick([0, 1, 0x7f, 0x80, 0xff, rng.byte()])];
      case 3: { const v = rng.pick([0, 0x7fffffff, 0x80000000, 0xffffffff, rng.u32()]); return [0x81, 0xc0 | (alu << 3) | r, v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, v >>> 24]; }
      case 4: return [rng.chance(0.5) ? 0x40 + r : 0x48 + r];
      case 5: return [0xc1, 0xc0 | (rng.pick([4, 5, 7, 0, 1]) << 3) | r, rng.pick([0, 1, 31, 32, 33, rng.int(40)])];
      case 6: return [0xd1, 0xc0 | (rng.pick([4, 5, 7, 0, 1]) << 3) | r];
      case 7: return [0xd3, 0xc0 | (rng.pick([4, 5, 7]) << 3) | r];
      case 8: return [0x0f, 0xaf, 0xc0 | (r << 3) | s];
      case 9: return [0xf7, 0xc0 | (rng.pick([2, 3]) << 3) | r];
      case 10: return [0x85, 0xc0 | (s << 3) | r];
      case 11: return [0x0f, 0x90 + cc, 0xc0 | rng.int(4)];
      case 12: return [0x0f, 0x40 + cc, 0xc0 | (r << 3) | s];
      case 13: return [0x9c, 0x58 + r]; // PUSHFD (a call-out) / POP r32
      case 14: return [0x66, 0xc1, 0xc0 | (rng.pick([4, 5, 7]) << 3) | r, rng.int(20)];
      case 15: return rng.chance(0.5) ? [0xb1, rng.int(40)] // MOV CL, imm8: shift counts, 0 included
        : rng.pick([[0x66, (alu << 3) | 1, 0xc0 | (s << 3) | r], [0x66, 0x83, 0xc0 | (alu << 3) | r, rng.byte()], [0x66, 0x40 + rng.int(16)], [0x66, 0xf7, 0xc0 | (rng.int(4) << 3) | r, 0x00, 0x80]]);
      case 16: return rng.pick([[0x0f, 0xa3, 0xc0 | (s << 3) | r], [0x0f, 0xab + 8 * rng.int(3), 0xc0 | (s << 3) | r], [0x0f, 0xba, 0xc0 | ((4 + rng.int(4)) << 3) | r, rng.byte()],
        [0x66, 0x0f, 0xba, 0xc0 | ((4 + rng.int(4)) << 3) | r, rng.byte()], [0x0f, 0xba, 0x2d, 8, 0, 0x20, 0, rng.byte()]]); // BT/BTS/BTR/BTC: CF only (memory: not the loop counter)
      default: return [0x9c, 0x58 + r, 0x0f, 0xa3, 0x15, 8, 0, 0x20, 0]; // PUSHFD; BT [DATA], EDX (a call-out reading CF)
    }
  };
  const some = (): number[] => { const a = insn(); return rng.chance(0.5) ? [...a, ...insn()] : a; };
  // Out-of-line code placed after the program's end, reached by a Jcc rel32 at `at` (patched at the end)
  // and jumping back to `join`: the unit decodes it as a side trace after its main trace has ended.
  const cold: { at: number; join: number; body: number[] }[] = [];
  for (let n = 4 + rng.int(24); n > 0; n--) {
    const p = rng.int(110);
    if (p >= 100) {
      // jcc Lcold; A; join: ... / Lcold: B (maybe with an if inside); jmp join
      const a = some();
      const body: number[] = [];
      for (let k = rng.chance(0.2) ? 6 + rng.int(30) : 1 + rng.int(3); k > 0; k--) {
        const q = rng.int(10);
        if (q < 3) { const x = insn(); body.push(0x70 + rng.int(16), x.length, ...x); } // an if inside
        else if (q < 5) { const junk = [0xcc, 0x0f, 0x0b].slice(0, 1 + rng.int(3)); body.push(0xeb, junk.length, ...junk); } // a JMP the trace follows
        else if (q < 6) { const a2 = some(), b2 = some(); body.push(0x70 + rng.int(16), a2.length + 2, ...a2, 0xeb, b2.length, ...b2); } // if-else
        else body.push(...some());
      }
      out.push(0x0f, 0x80 + rng.int(16), 0, 0, 0, 0);
      cold.push({ at: out.length - 4, join: out.length + a.length, body });
      out.push(...a);
      continue;
    }
    if (p < 15) {
      // Jcc over the next instruction: both sides continue in the unit.
      const next = insn();
      out.push(0x70 + rng.int(16), next.length, ...next);
    } else if (p < 25) {
      // if-else: Jcc to the second arm, JMP over it at the end of the first (both arms stay in the unit).
      const a = some(), b = some();
      out.push(0x70 + rng.int(16), a.length + 2, ...a, 0xeb, b.length, ...b);
    } else if (p < 30) {
      // Crossing forward branches: jcc1 X; A1; jcc2 Y; A2; X: A3; jmp Z; Y: B; Z:
      const a1 = some(), a2 = some(), a3 = some(), b = some();
      out.push(0x70 + rng.int(16), a1.length + 2 + a2.length, ...a1, 0x70 + rng.int(16), a2.length + a3.length + 2, ...a2, ...a3, 0xeb, b.length, ...b);
    } else if (p < 33) {
      // if-else whose other arm ends the unit (INT3): the builder gives up decoding past the JMP and follows it.
      const a = some(), b = [...some(), 0xcc];
      out.push(0x70 + rng.int(16), a.length + 2, ...a, 0xeb, b.length, ...b);
    } else if (p < 40) {
      // call L1; jmp L2; L3: jmp L2; L1: body; [mov dword [esp], L3]; ret; L2: the unit follows the CALL and
      // goes on after the RET, which must check what it pops (L3 instead of the return address: leave).
      const body = some(), start = CODE + out.length, l3 = start + 7;
      const mism = rng.chance(0.3) ? [0xc7, 0x04, 0x24, ...le32(l3)] : [];
      const l2 = start + 9 + body.length + mism.length + 1;
      out.push(0xe8, 4, 0, 0, 0, 0xeb, l2 - (start + 7), 0xeb, l2 - (start + 9), ...body, ...mism, 0xc3);
    } else out.push(...insn());
  }
  if (loop) {
    // dec dword [DATA] / jnz CODE: the unit loops back to its entry while the counter runs down.
    out.push(0xff, 0x0d, ...[0, 0, 0x20, 0]);
    const rel = CODE - (CODE + out.length + 6);
    out.push(0x0f, 0x85, rel & 0xff, (rel >>> 8) & 0xff, (rel >>> 16) & 0xff, (rel >>> 24) & 0xff);
  }
  // Half end in a #PF (a load from unmapped memory), half in INT3.
  if (rng.chance(0.5)) out.push(0x8b, 0x05, 0, 0, 0xf0, 0x3f, 0xcc); else out.push(0xcc);
  for (const c of cold) {
    const rel = out.length - (c.at + 4);
    out.splice(c.at, 4, ...le32(rel));
    out.push(...c.body);
    const back = c.join - (out.length + 5);
    out.push(0xe9, ...le32(back));
  }
  return Uint8Array.from(out);
}

test('jit: random flag producer/consumer sequences match the interpreter (loops, call-outs, faults)', () => {
  const rng = new Rng(SEED ^ 0x5a5a);
  for (let s = 0; s < 1500; s++) {
    const loop = rng.chance(0.4);
    const code = flagProgram(rng, loop);
    const regs: number[] = [];
    for (let i = 0; i < 8; i++) regs.push(rng.pick([0, 1, 0x7fffffff, 0x80000000, 0xffffffff, rng.u32()]));
    regs[4] = STACK + 0x8000;
    const eflags = (rng.u32() & 0x8d5) | 0x202;
    const count = 1 + rng.int(5);
    const setup = (t: UserTestCpu) => t.writeMem(DATA, Uint8Array.of(count, 0, 0, 0));
    const a = runProgram(code, 'interp', { regs, eflags, setup });
    assert.ok(a.event, `program ${s} did not end`);
    for (const slice of [100_000, 3]) {
      assertSame(a, runProgram(code, 'jit', { regs, eflags, setup, hot: 1, slice }), `program ${s} slice ${slice} (${Buffer.from(code).toString('hex')})`);
    }
  }
});

test(`jit: single-instruction differential against the host CPU (${CASES} cases, seed ${SEED})`, { timeout: 30 * 60_000, skip: nativeOnly('single instructions with all their flags, the undefined ones included') || false }, async () => {
  const jits: Jit[] = [];
  const rep = await runDiff({
    total: CASES, seed: SEED, filter: env.DIFF_FILTER ? new RegExp(env.DIFF_FILTER) : undefined,
    createCpu: () => { const t = createJitTestCpu(); jits.push(t.jit); return t; },
    keep: Number(env.DIFF_SHOW ?? 5),
  });
  for (const [cat, s] of [...rep.stats].sort()) console.log(`jit diff: ${cat} ${s.cases} cases, ${s.mismatches} mismatches`);
  const inlined = jits.reduce((k, j) => k + j.stats.insnsInlined, 0);
  console.log(`jit diff: ${inlined} of ${CASES} instructions ran as inline code, the rest as monitor calls`);
  if (rep.mismatchCount) {
    const worst = [...rep.perForm].sort((a, b) => b[1] - a[1]).slice(0, 15).map(([n, k]) => `${n}: ${k}`);
    assert.fail(`${rep.mismatchCount} mismatches (seed ${SEED}); by form: ${worst.join(', ')}\n\n${rep.mismatches.join('\n\n')}`);
  }
  assert.ok(inlined > CASES / 10);
});

test('jit: the system-test kernels (protected mode, paging, gates, tasks, v86, triple fault) behave as on the interpreter', () => {
  // The same freestanding kernels as test/system.test.ts, run by the interpreter and by the JIT (every
  // block start translated at once, and at the second visit), compared in output, status and count.
  const dir = join(dirname(fileURLToPath(import.meta.url)), 'native', 'system');
  const out = mkdtempSync(join(tmpdir(), 'trapeze-jit-system-'));
  for (const name of readdirSync(dir).filter((f) => f.endsWith('.asm')).map((f) => f.slice(0, -4))) {
    const bin = join(out, `${name}.bin`);
    execFileSync('nasm', ['-f', 'bin', '-I', `${dir}/`, '-o', bin, join(dir, `${name}.asm`)], { stdio: 'pipe' });
    const image = new Uint8Array(readFileSync(bin));
    const run = (hot: number | null) => {
      const mem = new GuestMemory(16 << 20);
      let text = '', status: number | null = null;
      const bus: PortBus = {
        in: (_p, size) => (size === 1 ? 0xff : size === 2 ? 0xffff : -1),
        out: (port, _size, value) => {
          if (port === 0xe9) text += String.fromCharCode(value & 0xff);
          else if (port === 0xf4) { status = value & 0xff; cpu.stopSlice = true; }
          else if (port === 0xe8) raiseIrq(cpu, value & 0xff);
        },
      };
      const cpu: CPU = new CPU(mem, bus);
      cpu.intSource = irqSource(cpu);
      const jit = hot === null ? null : attachJit(cpu, { hot, reviewRuns: 3, groupRuns: 6 });
      mem.writeBytes(0x8000, image);
      cpu.loadSegReal(CS_SEG, 0);
      cpu.eip = 0x8000;
      let stop = '';
      try {
        while (status === null && cpu.instructions < 20_000_000) {
          cpu.run(100_000);
          if (cpu.halted && status === null) break;
        }
      } catch (e) {
        if (e instanceof CpuStop) stop = e.message; else throw e;
      }
      return { text, status, stop, instructions: cpu.instructions, eip: cpu.eip, units: jit?.stats.unitsTranslated ?? 0 };
    };
    const a = run(null);
    assert.ok(a.status !== null || a.stop, `${name}: the interpreter run ended`);
    for (const hot of [1, 2]) {
      const b = run(hot);
      assert.deepEqual({ ...b, units: 0 }, { ...a, units: 0 }, `${name}, hot=${hot}`);
      assert.ok(b.units > 0, `${name}: nothing was translated`);
    }
  }
});

// Chaining and position independence (docs/jit.md, "Chaining"). The routine f lives in another page, so
// the caller's unit leaves through a chainable exit and the dispatcher links it to f's unit.

// mov ecx, 1000 / xor ebx, ebx
// L: call 0x102000 / cmp ecx, 500 / jne skip / mov byte [0x102002], 5    ; f's immediate: add ebx, 5
// skip: dec ecx / jnz L / int3
const CHAIN_SMC = hexBytes('b9e803000031dbe8f41f000081f9f40100007507c60502201000054975e9cc');
// The same with `mov esi, 0x102000` before L and `call esi`: an indirect call is never followed, so the
// caller's unit and f's leave through chainable exits (a followed CALL and its RET stay inside the unit).
const CHAIN_SMC_INDIRECT = hexBytes('b9e803000031dbbe00201000ffd681f9f40100007507c60502201000054975eccc');
// mov ecx, 100 / xor ebx, ebx
// L: call 0x102000 / cmp ecx, 50 / jne skip / int 0x80       ; the test remaps linear 0x102000
// skip: dec ecx / jnz L / int3
const CHAIN_REMAP = hexBytes('b96400000031dbe8f41f000083f9327502cd804975f1cc');
const F_ADD1 = hexBytes('83c301c3'), F_ADD100 = hexBytes('83c364c3'); // add ebx, 1 / add ebx, 100 ; ret
const PTE = (lin: number) => 0x3f1000 + (lin >>> 12) * 4; // the test process's page table (src/cpu/testing.ts)

/** On INT 0x80, maps linear page `lin` to `frame` and flushes the TLB, as a CR3 write does. */
function remapOnInt80(t: UserTestCpu, lin: number, frame: number): void {
  const stop = t.cpu.hooks.softInt!;
  t.cpu.hooks.softInt = (v) => {
    if (v !== 0x80) return stop(v);
    t.cpu.mem.write32(PTE(lin), frame | 7);
    t.cpu.flushTlb(true);
    return true;
  };
}

test('jit: rewriting the target of a chained call drops the link', () => {
  const setup = (t: UserTestCpu) => t.writeMem(0x102000, F_ADD1);
  const a = runProgram(CHAIN_SMC, 'interp', { setup });
  assert.equal(a.regs[3], 501 + 499 * 5);
  const ai = runProgram(CHAIN_SMC_INDIRECT, 'interp', { setup });
  assert.equal(ai.regs[3], 501 + 499 * 5);
  for (const hot of [1, 8]) for (const slice of [100_000, 37]) {
    // Without groups every call goes through a chain link; with them (the default in tests), through the group.
    const b = runProgram(CHAIN_SMC_INDIRECT, 'jit', { hot, slice, setup, groupRuns: 1e9 });
    assertSame(ai, b, `chain-smc (call esi), hot=${hot} slice=${slice}`);
    assert.ok(b.jit!.stats.chained > 500, `only ${b.jit!.stats.chained} chained dispatches`);
    const bg = runProgram(CHAIN_SMC_INDIRECT, 'jit', { hot, slice, setup });
    assertSame(ai, bg, `chain-smc (call esi, groups), hot=${hot} slice=${slice}`);
    assert.ok(bg.jit!.stats.groups > 0 && bg.jit!.stats.invalidatedUnits > 0, 'a group was made and f invalidated');
    assert.ok(bg.jit!.exits[EXIT_GROUP] > 100, `only ${bg.jit!.exits[EXIT_GROUP]} transfers inside groups`);
    assert.ok(b.jit!.stats.invalidatedUnits > 0, 'f was invalidated');
    // With a direct CALL, the caller's unit follows it into f and back: rewriting f drops that unit.
    const d = runProgram(CHAIN_SMC, 'jit', { hot, slice, setup });
    assertSame(a, d, `chain-smc, hot=${hot} slice=${slice}`);
    assert.ok(d.jit!.stats.invalidatedUnits > 0, 'the unit holding f was invalidated');
  }
});

test('jit: a chained successor is not followed once its linear page maps elsewhere (TLB flush)', () => {
  // Linear 0x102000 first maps f (+1); INT 0x80 in the middle of the run points it at another frame
  // holding +100 and flushes the TLB, as a CR3 write does. The link from the caller's unit to the old f
  // must be re-validated against the new mapping.
  const setup = (t: UserTestCpu) => {
    t.writeMem(0x102000, F_ADD1);
    t.writeMem(0x104000, F_ADD100);
    remapOnInt80(t, 0x102000, 0x104000);
  };
  const a = runProgram(CHAIN_REMAP, 'interp', { setup });
  assert.equal(a.regs[3], 51 + 49 * 100);
  for (const hot of [1, 4]) for (const slice of [100_000, 13]) {
    const b = runProgram(CHAIN_REMAP, 'jit', { hot, slice, setup, groupRuns: 1e9 });
    assertSame(a, b, `chain-remap, hot=${hot} slice=${slice}`);
    assert.ok(b.jit!.stats.chained > 50, `only ${b.jit!.stats.chained} chained dispatches`);
    const bg = runProgram(CHAIN_REMAP, 'jit', { hot, slice, setup });
    assertSame(a, bg, `chain-remap (groups), hot=${hot} slice=${slice}`);
    assert.ok(bg.jit!.stats.groups > 0, 'a group was made');
  }
});

test('jit: one translation serves the same code page at another linear address (position independence)', () => {
  // The LOOP and FAULT programs run at CODE and then through an alias mapping of the same frame at
  // 0x108000: the second run reuses the units (no new translation) and reports the alias EIPs, also for
  // a fault in the middle of a unit.
  const ALIAS = 0x108000;
  for (const prog of [LOOP, FAULT]) {
    const outcome = (engine: 'interp' | 'jit') => {
      const results: Outcome[] = [];
      let translatedFirst = 0, translatedAfter = 0;
      runProgram(prog, engine, { hot: 1, setup: (t, j) => {
        t.cpu.mem.write32(PTE(ALIAS), CODE | 7);
        t.cpu.flushTlb(true);
        let done = '';
        const stop = () => { t.cpu.stopSlice = true; return true; };
        t.cpu.hooks.softInt = (v) => { done = `int ${v}`; return stop(); };
        t.cpu.hooks.exception = (v, c) => { done = `exception ${v} code ${c}`; return stop(); };
        for (const eip of [CODE, ALIAS]) {
          [0, 0, 0, 0, STACK + 0x8000, 0, 0, 0].forEach((v, i) => t.setGpr(i, v));
          t.setEip(eip);
          done = '';
          const n0 = t.cpu.instructions;
          while (!done && t.cpu.instructions - n0 < 50_000_000) t.cpu.run(100_000);
          results.push({ regs: Array.from(t.cpu.r32, (v) => v >>> 0), eflags: t.cpu.getEflags() >>> 0, eip: t.cpu.eip >>> 0,
            instructions: t.cpu.instructions - n0, event: done, data: t.readMem(DATA, AREA), stack: t.readMem(STACK, AREA), cr2: t.cpu.cr2 >>> 0 });
          if (eip === CODE) translatedFirst = j?.stats.unitsTranslated ?? 0; else translatedAfter = j?.stats.unitsTranslated ?? 0;
        }
        // The caller's own loop must not run again.
        t.cpu.hooks.softInt = () => stop();
        t.cpu.halted = true;
      } });
      return { results, translatedFirst, translatedAfter };
    };
    const a = outcome('interp'), b = outcome('jit');
    assert.ok(a.results[1].eip >= ALIAS && a.results[1].eip < ALIAS + 0x1000, 'the second run ended in the alias');
    for (const k of [0, 1]) assertSame(a.results[k], b.results[k], `${prog === LOOP ? 'loop' : 'fault'} run ${k}`);
    assert.ok(b.translatedFirst > 0);
    assert.equal(b.translatedAfter, b.translatedFirst, 'the alias run translated nothing new');
  }
});

// mov ecx, 100; xor ebx, ebx; mov esi, DATA; loop: add ebx, [esi]; mov [esi+8], ebx; add dword [esi], 1;
// cmp ecx, 50; jne +2; int 0x80; dec ecx; jnz loop; int3
const SEG_BASE = hexBytes('b96400000031dbbe00002000031e895e08830601' + '83f93275' + '02cd804975eecc');

test('jit: units translated with flat data segments see a later non-zero DS base', () => {
  // Units skip base and limit for segments that were flat when translated, behind one check at entry.
  // Halfway, INT 0x80 gives DS a base of 0x100: from then on the same units must address DATA + 0x100.
  const setup = (t: UserTestCpu) => {
    const stop = t.cpu.hooks.softInt!;
    t.cpu.hooks.softInt = (v) => {
      if (v !== 0x80) return stop(v);
      t.cpu.segBase[DS] = 0x100;
      t.cpu.updateSegFast(DS);
      return true;
    };
  };
  const a = runProgram(SEG_BASE, 'interp', { setup });
  assert.equal(a.event, 'int 3');
  assert.equal(a.data[0x100], 49, 'the second half counted at DS base 0x100');
  for (const hot of [1, 4]) for (const slice of [100_000, 7]) {
    const b = runProgram(SEG_BASE, 'jit', { hot, slice, setup });
    assertSame(a, b, `seg-base, hot=${hot} slice=${slice}`);
    assert.ok(b.jit!.misses[7] > 0, 'the flat-segment check failed over to the interpreter');
  }
});

// mov ecx, 100; xor ebx, ebx; jmp 0x101ffb. At 0x101ffb: inc ebx; inc ebx; nop x3, falling through into
// the page at 0x102000: add ebx, 1; cmp ecx, 50; jne +2; int 0x80; dec ecx; jnz 0x101ffb; int3.
const CROSS_START = hexBytes('b96400000031dbe9ef1f0000');
const CROSS_TAIL = hexBytes('4343909090');
const CROSS_PAGE2 = (add: number) => hexBytes(`83c3${add.toString(16).padStart(2, '0')}83f9327502cd804975eecc`);

test('jit: a unit that falls through into the next page checks that page\'s mapping when it gets there', () => {
  // The loop at 0x101ffb is one unit spanning two code pages. INT 0x80 in the middle of the run maps the
  // second page to a frame whose copy adds 100 instead of 1, and flushes the TLB: the unit must notice at
  // the page boundary, not run the old page's code.
  const setup = (t: UserTestCpu) => {
    t.writeMem(0x101ffb, CROSS_TAIL);
    t.writeMem(0x102000, CROSS_PAGE2(1));
    t.writeMem(0x104000, CROSS_PAGE2(100));
    remapOnInt80(t, 0x102000, 0x104000);
  };
  const a = runProgram(CROSS_START, 'interp', { setup });
  assert.equal(a.regs[3], 51 * 3 + 49 * 102);
  for (const hot of [1, 4]) for (const slice of [100_000, 11]) {
    const b = runProgram(CROSS_START, 'jit', { hot, slice, setup });
    assertSame(a, b, `cross-page, hot=${hot} slice=${slice}`);
  }
});

// jmp over 16 NOPs (so that a unit starts at its target); mov esi, DATA; lds eax, [esi]; mov [esi], eax;
// int3 (the far pointer at DATA is 0:0, a null selector)
const LDS_NULL = hexBytes('eb10' + '90'.repeat(16) + 'be00002000c5068906cc');

test('jit: LDS in the middle of a unit that treats DS as flat ends the unit when DS is no longer flat', () => {
  // LDS is a monitor call the unit goes on after; it loads a null selector into DS, so the store after it
  // raises #GP(0) on the interpreter. The unit was translated with DS flat: it must not store through it.
  const a = runProgram(LDS_NULL, 'interp');
  assert.equal(a.event, 'exception 13 code 0');
  const b = runProgram(LDS_NULL, 'jit', { hot: 1 });
  assertSame(a, b, 'lds-null');
  assert.ok(b.jit!.stats.unitsTranslated >= 1, 'the LDS ran inside a unit');
});

// mov ecx, 50 / L: rdtsc / add ebx, eax / adc esi, edx / cmp ecx, 25 / jnz S / int 0x80 / S: dec ecx /
// jnz L / int3
const RDTSC_LOOP = hexBytes('b932000000' + '0f31' + '01c3' + '11d6' + '83f919' + '7502' + 'cd80' + '49' + '75f0' + 'cc');

test('jit: RDTSC runs inside units, in order, and raises #GP under CR4.TSD at CPL 3 as on the interpreter', () => {
  // A counter that moves on at every read: the sum shows that each RDTSC read the clock once, in order.
  // INT 0x80 halfway sets CR4.TSD (or not): the next RDTSC, in a unit by then, must raise #GP(0).
  const clock = (tsd: boolean) => (t: UserTestCpu) => {
    let tsc = 0xfffff000n;
    t.cpu.readTsc = () => (tsc += 0x345n);
    const stop = t.cpu.hooks.softInt!;
    t.cpu.hooks.softInt = (v) => {
      if (v !== 0x80) return stop(v);
      if (tsd) t.cpu.cr4 |= CR4_TSD;
      return true;
    };
  };
  const a = runProgram(RDTSC_LOOP, 'interp', { setup: clock(false) });
  assert.equal(a.event, 'int 3');
  const b = runProgram(RDTSC_LOOP, 'jit', { hot: 1, setup: clock(false) });
  assertSame(a, b, 'rdtsc loop');
  assert.equal(b.jit!.callouts[0x131], 0, 'RDTSC was a monitor call');
  const c = runProgram(RDTSC_LOOP, 'interp', { setup: clock(true) });
  assert.equal(c.event, 'exception 13 code 0');
  for (const hot of [1, 2]) assertSame(c, runProgram(RDTSC_LOOP, 'jit', { hot, setup: clock(true) }), `rdtsc under CR4.TSD, hot=${hot}`);
});

// mov ecx, N / xor eax, eax / xor edx, edx / mov esi, DATA / jmp A / A: add eax, ecx / mov [esi], eax /
// dec ecx / jnz B / int3 / B: inc edx / cmp edx, 4000 / jne A / mov ebx, [edx] / int3
const SPLIT_LOOP = (n: number) => Uint8Array.from([0xb9, ...le32(n), ...hexBytes(`31c031d2be00002000eb0001c88906497501cc4281faa00f000075ef8b1acc`)]);

test('jit: a loop split over two units (Jcc to Jcc) is translated again as one loop, with exact exits and faults', () => {
  // A leaves through JNZ's taken side to B, B through JNE's taken side back to A: after `reviewRuns` runs A
  // is translated again following JNZ, so that B's code is in A and JNE loops to A's entry. N = 3000
  // ends the loop on JNZ's fall-through side (now an exit of the new unit); N = 5000 ends it with a #PF
  // (address 4000 is not mapped) in B's code inside the new unit.
  for (const [n, event] of [[3000, 'int 3'], [5000, 'exception 14 code 4']] as const) {
    const a = runProgram(SPLIT_LOOP(n), 'interp');
    assert.equal(a.event, event);
    for (const slice of [100_000, 7]) {
      const b = runProgram(SPLIT_LOOP(n), 'jit', { hot: 1, slice });
      assertSame(a, b, `split loop, n=${n} slice=${slice}`);
      // Short slices break the chain links the cycle is found by; the loop is then left as it was.
      if (slice === 100_000) {
        assert.equal(b.jit!.stats.retranslated, 1, 'the loop was translated again');
        assert.ok(b.jit!.totals().unitRuns < 100, `${b.jit!.totals().unitRuns} unit runs`);
      }
    }
    const c = runProgram(SPLIT_LOOP(n), 'jit', { hot: 1, reviewRuns: 1e9 });
    assertSame(a, c, `split loop, n=${n}, not translated again`);
    assert.equal(c.jit!.stats.retranslated, 0);
  }
});

test('jit: a group runs its members one after another without the dispatcher, with exact budgets and faults', () => {
  // The split loop again, not translated again (reviewRuns): A and B become one group, and each iteration
  // goes from A to B and back inside the group function. With N = 5000 the #PF happens in B's code inside
  // the group; a 7-instruction slice leaves the group at every budget check.
  for (const [n, event] of [[3000, 'int 3'], [5000, 'exception 14 code 4']] as const) {
    const a = runProgram(SPLIT_LOOP(n), 'interp');
    assert.equal(a.event, event);
    for (const slice of [100_000, 7]) {
      const b = runProgram(SPLIT_LOOP(n), 'jit', { hot: 1, reviewRuns: 1e9, groupRuns: 4, slice });
      assertSame(a, b, `split loop in a group, n=${n} slice=${slice}`);
      assert.equal(b.jit!.stats.groups, 1, 'one group');
      if (slice === 100_000) {
        assert.ok(b.jit!.exits[EXIT_GROUP] > 5000, `only ${b.jit!.exits[EXIT_GROUP]} transfers inside the group`);
        assert.ok(b.jit!.totals().unitRuns < 100, `${b.jit!.totals().unitRuns} unit runs`);
      }
    }
  }
});

// jmp over 16 NOPs; mov esi, DATA; xor eax, eax; mov ds, eax (a null selector); mov [esi], eax; int3 — and the
// same with push 0; pop es; mov es:[esi], eax (26 89 06)
const MOVDS_NULL = hexBytes('eb10' + '90'.repeat(16) + 'be00002000' + '31c0' + '8ed8' + '8906' + 'cc');
const POPES_NULL = hexBytes('eb10' + '90'.repeat(16) + 'be00002000' + '31c0' + '6a00' + '07' + '268906' + 'cc');

test('jit: MOV DS and POP ES in the middle of a unit go on in it, and leave it when the segment is no longer flat', () => {
  for (const [name, code] of [['mov ds', MOVDS_NULL], ['pop es', POPES_NULL]] as const) {
    const a = runProgram(code, 'interp');
    assert.equal(a.event, 'exception 13 code 0', name);
    const b = runProgram(code, 'jit', { hot: 1 });
    assertSame(a, b, name);
    assert.ok(b.jit!.stats.unitsTranslated >= 1, `${name}: ran inside a unit`);
    assert.equal(b.jit!.exits[name === 'mov ds' ? 0x8e : 0x07], 0, `${name}: did not end the unit`);
  }
});

// A GDT in the data area (index 4: flat data, DPL 3, not yet accessed; index 5: data with base 0x1000, limit
// 7 entries), then, in one unit:
//   mov esi, DATA / mov eax, 0x23 / mov ds, eax / mov [esi], eax / mov gs, [esi] / add eax, 0x7fffffff /
//   mov edx, 0x23 /
//   mov es, dx / jno J1 / mov ebx, 0x2b / mov es, ebx / mov [es:esi+4], ebx / mov [esi+8], eax /
//   J1: mov ecx, 0x7fb / mov fs, ecx (beyond the limit: #GP(0x7f8)) / int3
const MOVSEG = hexBytes('eb10' + '90'.repeat(16) + 'be00002000b8230000008ed889068e2e05ffffff7fba230000008ec2710ebb2b0000008ec3' +
  '26895e04894608b9fb0700008ee1cc');
const GDT = DATA + 0x800;
const gdtSetup = (t: UserTestCpu): void => {
  const c = t.cpu;
  c.gdtBase = GDT; c.gdtLimit = 6 * 8 - 1;
  c.mem.write32(GDT + 4 * 8, 0x0000ffff); c.mem.write32(GDT + 4 * 8 + 4, 0x00cff200);
  c.mem.write32(GDT + 5 * 8, 0x1000ffff); c.mem.write32(GDT + 5 * 8 + 4, 0x00cff300);
};

test('jit: MOV to a data segment register inline: register and memory sources, accessed bit, flags in locals, #GP, a non-flat ES', () => {
  const cpus: CPU[] = [];
  const setup = (t: UserTestCpu): void => { gdtSetup(t); cpus.push(t.cpu); };
  const a = runProgram(MOVSEG, 'interp', { setup });
  assert.equal(a.event, 'exception 13 code 2040');
  assert.equal(a.data[0x800 + 4 * 8 + 5], 0xf3, 'accessed bit set');
  const b = runProgram(MOVSEG, 'jit', { hot: 1, setup });
  assertSame(a, b, 'mov sreg');
  const segs = (c: CPU) => [...c.sreg].map((v, i) => `${v.toString(16)}:${(c.segBase[i] >>> 0).toString(16)}:${c.segAr[i].toString(16)}`);
  assert.deepEqual(segs(cpus[1]), segs(cpus[0]), 'segment registers');
  assert.equal(cpus[0].sreg[5], 0x23, 'GS loaded from memory');
  assert.equal(b.jit!.callouts[0x8e], 0, 'no monitor call');
  assert.ok(b.jit!.exits[EXIT_SEGMENT] >= 1, 'left the unit when ES stopped being flat');
});
