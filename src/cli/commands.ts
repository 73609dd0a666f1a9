// The table of sub-commands. Each lives in its own file and is registered here.
import { guestCommand } from './guest.ts';
import { userCommand } from './user.ts';
import { runCommand } from './run.ts';
import { imgCommand } from './img.ts';
export interface Command {
  name: string;
  summary: string;
  run(args: string[]): Promise<number>;
}

export const commands: Command[] = [runCommand, imgCommand, guestCommand, userCommand];

export function usage(): string {
  const lines = [
    'usage: trapeze <command> [options]',
    '',
    'Trapeze, a hosted x86 hypervisor.',
    '',
    'commands:',
    ...commands.map((c) => `  ${c.name.padEnd(10)} ${c.summary}`),
    '',
    'Run `trapeze <command> --help` for the options of one command.',
    '',
  ];
  return lines.join('\n');
}
