import { HELP, MAIN_HELP, parseArgs } from './args';

describe('parseArgs', () => {
  it('reads each command with its options and file', () => {
    expect(parseArgs(['warm', 'q.txt'])).toEqual({ kind: 'warm', file: 'q.txt', concurrency: 2, everySeconds: 5 });
    expect(parseArgs(['warm', '--concurrency', '4', '--every=0.5', '-'])).toEqual({ kind: 'warm', file: '-', concurrency: 4, everySeconds: 0.5 });
    expect(parseArgs(['export', '--prefix', 'places:v1:reverse:', 'out.ndjson'])).toEqual({ kind: 'export', file: 'out.ndjson', prefix: 'places:v1:reverse:' });
    expect(parseArgs(['import', '-'])).toEqual({ kind: 'import', file: '-' });
  });

  it('gives help for the program and for each command', () => {
    expect(parseArgs([])).toEqual({ kind: 'help', text: MAIN_HELP });
    expect(parseArgs(['warm', '--help'])).toEqual({ kind: 'help', text: HELP.warm });
    expect(parseArgs(['help', 'import'])).toEqual({ kind: 'help', text: HELP.import });
  });

  it('refuses what it cannot do, in one line', () => {
    const message = (argv: string[]) => {
      const r = parseArgs(argv);
      return r.kind === 'usage-error' ? r.message : r.kind;
    };
    expect(message(['frob'])).toMatch(/^unknown command "frob"/);
    expect(message(['warm'])).toMatch(/^warm: give one FILE/);
    expect(message(['warm', 'a', 'b'])).toMatch(/^warm: give one FILE/);
    expect(message(['warm', '--prefix', 'x', 'a'])).toMatch(/^warm: unknown option --prefix/);
    expect(message(['warm', '--concurrency', '0', 'a'])).toMatch(/--concurrency must be/);
    expect(message(['warm', 'a', '--every'])).toMatch(/--every needs a value/);
    // Before Redis is reached: a wrong prefix is not reported as Redis being down, nor exits 1.
    expect(message(['export', '--prefix', 'search:', '-'])).toMatch(/^export: --prefix must start with places:v1:/);
    expect(message(['export', '--prefix=places:v1', 'out.ndjson'])).toMatch(/^export: --prefix must start with places:v1:/);
    for (const argv of [['frob'], ['warm']]) expect(message(argv)).not.toContain('\n');
  });
});
