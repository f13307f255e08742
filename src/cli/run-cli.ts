import type { INestApplicationContext } from '@nestjs/common';
import { Invocation, parseArgs } from './args';
import { checkReadable, CliError } from './line-input';

/**
 * Runs one command line; resolves with the exit code (0 done, 1 something failed, 2 usage). A
 * failure the user can act on (no Redis, unreadable file, bad configuration) rejects with a CliError:
 * one line, no stack trace.
 */
export async function runCli(argv: readonly string[]): Promise<number> {
  const inv = parseArgs(argv);
  if (inv.kind === 'help') {
    process.stdout.write(inv.text);
    return 0;
  }
  if (inv.kind === 'usage-error') {
    process.stderr.write(`places-cache: ${inv.message}\n`);
    return 2;
  }
  if (inv.kind !== 'export') await checkReadable(inv.file);
  // Nest and the app are loaded only now: --help and usage errors answer at once.
  const { openContext } = await import('./cli-context.js');
  // export only reads: it may run against a read-only replica, sparing the master.
  const app = await openContext(process.env, { readOnly: inv.kind === 'export' });
  let code: number;
  try {
    code = await run(app, inv);
  } catch (e) {
    if (e instanceof CliError || !(e instanceof Error)) throw e;
    // A Redis that went away mid-run, a write error: still one line.
    throw new CliError(`${inv.kind} failed: ${e.message}`);
  } finally {
    await app.close().catch(() => undefined);
  }
  return code;
}

async function run(app: INestApplicationContext, inv: Exclude<Invocation, { kind: 'help' | 'usage-error' }>): Promise<number> {
  switch (inv.kind) {
    case 'warm':
      return (await import('./warm.command.js')).warm(app, inv.file, inv);
    case 'export':
      return (await import('./export.command.js')).exportEntries(app, inv.file, inv.prefix);
    case 'import':
      return (await import('./import.command.js')).importEntries(app, inv.file);
  }
}
