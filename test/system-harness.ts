// Runs the freestanding system-test kernels of test/native/system/ on a vCPU (used by system.test.ts).

import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CPU, CpuStop } from '../src/cpu/cpu.ts';
import { GuestMemory } from '../src/memory/guest-memory.ts';
import type { PortBus } from '../src/cpu/bus.ts';
import { CS } from '../src/cpu/constants.ts';

const SRC = join(dirname(fileURLToPath(import.meta.url)), 'native', 'system');
const OUT = mkdtempSync(join(tmpdir(), 'trapeze-system-'));
const KBASE = 0x8000;

function assemble(name: string): Uint8Array {
  const out = join(OUT, `${name}.bin`);
  execFileSync('nasm', ['-f', 'bin', '-I', `${SRC}/`, '-o', out, join(SRC, `${name}.asm`)], { stdio: 'pipe' });
  return new Uint8Array(readFileSync(out));
}

export interface KernelResult { text: string; status: number | null; stop: CpuStop | null; instructions: number }

/**
 * The kernels' interrupt line (irq.asm): OUT 0xE8 with a vector raises INTR; it stays up until the CPU
 * acknowledges the interrupt, which returns that vector.
 */
const pendingVector = new WeakMap<CPU, number>();
export function raiseIrq(cpu: CPU, vector: number): void {
  pendingVector.set(cpu, vector);
  cpu.intr = vector !== 0;
}
export function irqSource(cpu: CPU): { acknowledge(): number } {
  return { acknowledge: () => { const v = pendingVector.get(cpu) ?? 0; pendingVector.set(cpu, 0); cpu.intr = false; return v || -1; } };
}

/** Runs a kernel to its port-0xF4 report, a halt, a triple fault, or the instruction limit. */
export function runKernel(name: string, limit = 20_000_000): KernelResult {
  const image = assemble(name);
  const mem = new GuestMemory(16 << 20);
  let text = '';
  let status: number | null = null;
  let cpu: CPU;
  const bus: PortBus = {
    in: (_port, size) => (size === 1 ? 0xff : size === 2 ? 0xffff : -1),
    out: (port, _size, value) => {
      if (port === 0xe9) text += String.fromCharCode(value & 0xff);
      else if (port === 0xf4) { status = value & 0xff; cpu.stopSlice = true; }
      else if (port === 0xe8) raiseIrq(cpu, value & 0xff);
    },
  };
  cpu = new CPU(mem, bus);
  cpu.intSource = irqSource(cpu);
  mem.writeBytes(KBASE, image);
  cpu.loadSegReal(CS, 0);
  cpu.eip = KBASE;
  let stop: CpuStop | null = null;
  let n = 0;
  try {
    while (status === null && n < limit) {
      n += cpu.run(100_000);
      if (cpu.halted && status === null) break;
    }
  } catch (e) {
    if (e instanceof CpuStop) stop = e; else throw e;
  }
  return { text, status, stop, instructions: n };
}

