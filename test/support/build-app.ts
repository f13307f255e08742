import { transformFile } from '@swc/core';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';

const ROOT = join(__dirname, '..', '..');
const SRC = join(ROOT, 'src');

export interface BuiltApp {
  /** `<dir>/main.js`, to run with `node` */
  main: string;
  /** env to add when spawning it: NODE_PATH to the project's node_modules */
  env: Record<string, string>;
  remove(): void;
}

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return sources(path);
    return e.name.endsWith('.ts') && !e.name.endsWith('.spec.ts') ? [path] : [];
  });
}

/**
 * Compiles src/ to CommonJS in a private temporary directory, with the compiler and options the
 * tests already use (@swc/jest's), so a test can run the app as its own process (`node main.js`)
 * and send it signals. Not `npm run build`: `nest build` empties the shared dist/ first, which other
 * builds running at the same time would trip over; and not `node -r @swc-node/register`, which runs
 * the app in a child process that a signal sent to the parent never reaches.
 */
export async function buildApp(): Promise<BuiltApp> {
  const out = mkdtempSync(join(tmpdir(), 'places-cache-build-'));
  await Promise.all(
    sources(SRC).map(async (file) => {
      const { code } = await transformFile(file, {
        jsc: {
          parser: { syntax: 'typescript', decorators: true },
          transform: { legacyDecorator: true, decoratorMetadata: true },
          target: 'es2022',
        },
        module: { type: 'commonjs' },
        sourceMaps: false,
        swcrc: false,
      });
      const target = join(out, relative(SRC, file)).replace(/\.ts$/, '.js');
      mkdirSync(dirname(target), { recursive: true });
      writeFileSync(target, code);
    }),
  );
  return {
    main: join(out, 'main.js'),
    env: { NODE_PATH: join(ROOT, 'node_modules') },
    remove: () => rmSync(out, { recursive: true, force: true }),
  };
}
