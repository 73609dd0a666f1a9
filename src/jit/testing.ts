// A JIT-backed variant of the differential-test vCPU (src/cpu/testing.ts): each step() translates the
// instruction at EIP as a one-instruction unit and runs the generated code, so the whole instruction-form
// table of test/diff runs through the code generator (inline forms and monitor calls alike).

import { CpuFault } from '../cpu/cpu.ts';
import { createUserTestCpu, type UserTestCpu } from '../cpu/testing.ts';
import { attachJit, type Jit } from './jit.ts';

export function createJitTestCpu(memBytes = 4 << 20): UserTestCpu & { jit: Jit } {
  const base = createUserTestCpu(memBytes);
  const cpu = base.cpu;
  const jit = attachJit(cpu);
  // The base step() reports an INT n through the softInt hook it installed; wrap it to see the vector.
  let softVector = -1;
  const inner = cpu.hooks.softInt;
  cpu.hooks.softInt = (v) => { softVector = v; return inner ? inner(v) : true; };
  return {
    ...base,
    jit,
    step: () => {
      softVector = -1;
      try {
        jit.stepOne();
      } catch (e) {
        if (e instanceof CpuFault) { cpu.eip = cpu.prevEip; return e.vector; }
        throw e;
      }
      return softVector;
    },
  };
}
