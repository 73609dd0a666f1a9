// V8 settings for running guest code on the binary translator (src/jit/), shared by `trapeze run` and
// `trapeze user`. Must run before the translator makes its first unit.
import { setFlagsFromString } from 'node:v8';

/**
 * Translated units are thousands of small functions, most run only hundreds of times: with V8's default
 * budget (66 KB of bytecode run per profiler tick) they stay in its baseline tier, slower than the
 * interpreter. A smaller budget lets them reach the optimising compiler (docs/jit.md, "V8 tiering").
 * Sparkplug (V8's baseline compiler) is off: with the small budget units reach the optimising compiler
 * soon anyway, and their baseline code, kept beside the optimised code, was 85% of V8's code space
 * (64 MB for the ~4,000 units of a boot and a few workloads) for no speed (docs/jit.md, "V8 tiering").
 */
export function tuneV8ForJit(): void {
  setFlagsFromString('--interrupt-budget=8192');
  setFlagsFromString('--no-sparkplug');
}
