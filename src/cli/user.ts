// `trapeze user`: run a static Linux i386 executable on the vCPU with emulated system calls (like qemu-i386).
import type { Command } from './commands.ts';
import { UserError } from './errors.ts';
import { tuneV8ForJit } from './v8-tuning.ts';
import { ElfError, runUser } from '../user/process.ts';

const HELP = `usage: trapeze user [--mem MIB] [--strace] [--stats] ELF [ARG...]

Runs a statically linked Linux i386 executable on the vCPU at CPL 3, emulating Linux system calls on top
of the host's files. The exit status is the program's (128+N when it dies of signal N).

options:
  --mem MIB   process memory in MiB (default 1024; at most 3072)
  --strace    trace every system call on stderr (also: TRAPEZE_STRACE=1)
  --cpu ENGINE  interp (the interpreter, default) or jit (the binary translator)
  --stats     print the instruction count and speed on stderr at exit (and the translator's statistics)
`;

export const userCommand: Command = {
  name: 'user',
  summary: 'run a static Linux i386 executable (user-mode emulation)',
  async run(args: string[]): Promise<number> {
    let mem = 1024;
    let strace = process.env.TRAPEZE_STRACE === '1';
    let stats = false;
    let cpu: 'interp' | 'jit' = 'interp';
    let i = 0;
    // Options end at the first non-option: everything after the ELF belongs to the guest program.
    for (; i < args.length && args[i].startsWith('-'); i++) {
      const a = args[i];
      if (a === '--help' || a === '-h') { process.stdout.write(HELP); return 0; }
      if (a === '--') { i++; break; }
      if (a === '--strace') strace = true;
      else if (a === '--stats') stats = true;
      else if (a === '--cpu' || a.startsWith('--cpu=')) {
        const v = a === '--cpu' ? args[++i] : a.slice(6);
        if (v !== 'interp' && v !== 'jit') throw new UserError(`--cpu takes interp or jit, not '${v}'`);
        cpu = v;
      }
      else if (a === '--mem' || a.startsWith('--mem=')) {
        const v = a === '--mem' ? args[++i] : a.slice(6);
        mem = Number(v);
        if (!Number.isInteger(mem) || mem < 64 || mem > 3072) throw new UserError(`--mem needs a whole number of MiB between 64 and 3072, not '${v}'`);
      } else throw new UserError(`unknown option '${a}' for \`trapeze user\`; run \`trapeze user --help\``);
    }
    const path = args[i];
    if (path === undefined) { process.stderr.write(HELP); return 2; }
    const env = Object.entries(process.env).filter(([k]) => !k.startsWith('TRAPEZE_')).map(([k, v]) => `${k}=${v}`);
    if (cpu === 'jit') tuneV8ForJit();
    let result;
    try {
      result = runUser({ path, argv: args.slice(i), env, memBytes: mem * 1024 * 1024, strace, cpu });
    } catch (e) {
      if (e instanceof ElfError) throw new UserError(`${path}: ${e.message}`);
      if ((e as { code?: string }).code === 'ENOENT' && (e as { path?: string }).path !== undefined) throw new UserError(`${path}: no such file`);
      throw e;
    }
    if (stats) {
      const mips = result.instructions / result.seconds / 1e6;
      process.stderr.write(`trapeze: ${result.instructions} instructions in ${result.seconds.toFixed(3)} s (${mips.toFixed(1)} MIPS), exit status ${result.status}\n`);
      if (result.jitReport) process.stderr.write(result.jitReport);
    }
    return result.status;
  },
};
