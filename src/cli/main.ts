// The `trapeze` command line: one sub-command per face of the hypervisor.
import { commands, usage } from './commands.ts';

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(usage());
    return 0;
  }
  if (name === '--version') {
    process.stdout.write('trapeze 0.1.0\n');
    return 0;
  }
  const cmd = commands.find((c) => c.name === name);
  if (!cmd) {
    process.stderr.write(`trapeze: unknown command '${name}'; run \`trapeze --help\` for the list\n`);
    return 2;
  }
  return cmd.run(rest);
}

main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (err: unknown) => {
    // A user-facing error is one line; anything else is a bug, shown with its stack.
    if (err instanceof Error && (err as { userError?: boolean }).userError) {
      process.stderr.write(`trapeze: ${err.message}\n`);
      process.exitCode = 2;
    } else {
      process.stderr.write(`trapeze: internal error: ${err instanceof Error ? err.stack : String(err)}\n`);
      process.exitCode = 70;
    }
  },
);
