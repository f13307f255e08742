import 'reflect-metadata';
import { CliError } from './cli/line-input';
import { runCli } from './cli/run-cli';

// The operators' command line (warm, export, import): `node dist/cli.js --help`.
runCli(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`places-cache: ${e instanceof CliError ? e.message : e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exit(1);
  },
);
