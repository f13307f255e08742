import { KEY_PREFIX } from '../cache/cache.constants';

/** What the command line asked for, or why it cannot be done (a usage error: exit code 2). */
export type Invocation =
  | { kind: 'help'; text: string }
  | { kind: 'usage-error'; message: string }
  | { kind: 'warm'; file: string; concurrency: number; everySeconds: number }
  | { kind: 'export'; file: string; prefix: string }
  | { kind: 'import'; file: string };

const COMMANDS = ['warm', 'export', 'import'] as const;
type Command = (typeof COMMANDS)[number];

const PROGRAM = 'node dist/cli.js';

export const MAIN_HELP = `Usage: ${PROGRAM} <command> [options] FILE|-

Operators' tools for places-cache. They read the same environment as the service (REDIS_URL,
NOMINATIM_URL, NOMINATIM_MAX_RPS, CACHE_TTL_SECONDS, ...) and work on its Redis.

Commands:
  warm FILE|-     ask every question in FILE (one a line) that is not cached and fresh
  export FILE|-   write every cached answer to FILE as NDJSON
  import FILE|-   load answers written by export, keeping their remaining lifetime

FILE - means standard input (warm, import) or standard output (export).
Run '${PROGRAM} <command> --help' for a command's options and examples.
`;

export const HELP: Record<Command, string> = {
  warm: `Usage: ${PROGRAM} warm [--concurrency N] [--every SECONDS] FILE|-

Fills the cache before launch. One question a line: free text is an /api question (a search with
format=json); a line starting with / is that Nominatim request. Empty lines and lines starting with #
are skipped. Questions already cached and fresh are not asked again, so a stopped run can simply be
started again: it continues where it stopped. Upstream calls go through the service's fleet-wide
pacer (NOMINATIM_MAX_RPS), so warming beside a running fleet never exceeds the upstream's rate.

Progress goes to standard error: a bar on a terminal, else a line every --every seconds, with the
rate and the time left. The summary counts questions asked, already cached and failed; each failure
is reported with its line number. Exit code 1 when any question failed.

Options:
  --concurrency N    questions in flight at once (default 2; the pacer sets the upstream rate)
  --every SECONDS    seconds between progress lines when not on a terminal (default 5)

Examples:
  ${PROGRAM} warm places.txt
  printf 'Berlin\\n/reverse?lat=52.52&lon=13.40&format=json\\n' | ${PROGRAM} warm -
  heroku run node dist/cli.js warm - < places.txt
`,
  export: `Usage: ${PROGRAM} export [--prefix PREFIX] FILE|-

Writes every cached answer as NDJSON, one line each: key, request, status, headers, body, storedAt,
freshUntil, expiresAt, empty. Keys are walked with SCAN (never KEYS), in constant memory, while the
service keeps running. Working state (fill locks, pacing, rate limits) is not exported.

Options:
  --prefix PREFIX    only keys starting with PREFIX (e.g. places:v1:reverse:)

Examples:
  ${PROGRAM} export cache.ndjson
  ${PROGRAM} export - | gzip > cache.ndjson.gz
  ${PROGRAM} export --prefix places:v1:search: searches.ndjson
`,
  import: `Usage: ${PROGRAM} import FILE|-

Loads answers written by export into the Redis of REDIS_URL. Each entry keeps the lifetime it had left
(expiresAt); expired entries are skipped, and an entry is not written over a newer copy already
cached. A line that is not a valid entry is reported with its number and the rest is imported (exit
code 1). Running instances drop their in-process copy of every imported key (the purge broadcast),
so the whole fleet serves the imported answers at once.

Examples:
  ${PROGRAM} import cache.ndjson
  gunzip -c cache.ndjson.gz | REDIS_URL=redis://new-host:6379 ${PROGRAM} import -
`,
};

function isCommand(s: string): s is Command {
  return (COMMANDS as readonly string[]).includes(s);
}

/** Parses argv (without node and the script). Pure: no I/O. */
export function parseArgs(argv: readonly string[]): Invocation {
  const [command, ...rest] = argv;
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    const topic = command === 'help' ? rest[0] : undefined;
    if (topic !== undefined && isCommand(topic)) return { kind: 'help', text: HELP[topic] };
    return { kind: 'help', text: MAIN_HELP };
  }
  if (!isCommand(command)) return usage(`unknown command "${command}" (warm, export or import)`);
  if (rest.includes('--help') || rest.includes('-h')) return { kind: 'help', text: HELP[command] };

  const options = new Map<string, string>();
  const files: string[] = [];
  const takes = command === 'warm' ? ['--concurrency', '--every'] : command === 'export' ? ['--prefix'] : [];
  for (let i = 0; i < rest.length; i++) {
    const arg = rest[i];
    if (arg === '-' || !arg.startsWith('-')) {
      files.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const name = eq === -1 ? arg : arg.slice(0, eq);
    if (!takes.includes(name)) return usage(`${command}: unknown option ${name}`, command);
    const value = eq === -1 ? rest[++i] : arg.slice(eq + 1);
    if (value === undefined) return usage(`${command}: ${name} needs a value`, command);
    options.set(name, value);
  }
  if (files.length !== 1) return usage(`${command}: give one FILE, or - for standard ${command === 'export' ? 'output' : 'input'}`, command);
  const file = files[0];

  switch (command) {
    case 'warm': {
      const concurrency = Number(options.get('--concurrency') ?? 2);
      if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 64) {
        return usage('warm: --concurrency must be a whole number from 1 to 64', command);
      }
      const everySeconds = Number(options.get('--every') ?? 5);
      if (!Number.isFinite(everySeconds) || everySeconds < 0.1 || everySeconds > 3600) {
        return usage('warm: --every must be a number of seconds from 0.1 to 3600', command);
      }
      return { kind: 'warm', file, concurrency, everySeconds };
    }
    case 'export': {
      // Checked here, before Redis is reached: a bad value is a usage error (exit 2), not a wait for
      // Redis that may end in "cannot reach Redis" instead.
      const prefix = options.get('--prefix') ?? '';
      if (prefix !== '' && !prefix.startsWith(KEY_PREFIX)) return usage(`export: --prefix must start with ${KEY_PREFIX}`, command);
      return { kind: 'export', file, prefix };
    }
    case 'import':
      return { kind: 'import', file };
  }
}

function usage(message: string, command?: Command): Invocation {
  return { kind: 'usage-error', message: `${message}; see '${PROGRAM} ${command ?? ''}${command ? ' ' : ''}--help'` };
}
