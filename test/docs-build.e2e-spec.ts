import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { promisify } from 'node:util';
import { RunningApp, startApp } from './support/app-harness';
import { AppProcess, spawnApp } from './support/app-process';
import { freePort } from './support/redis-server';

const ROOT = join(__dirname, '..');

/** Whether `mainJs` exists and was written after the last change to any file under src/ or nest-cli.json. */
async function builtAfterSources(mainJs: string): Promise<boolean> {
  const built = await stat(mainJs).catch(() => undefined);
  if (built === undefined) return false;
  const newest = async (dir: string): Promise<number> => {
    let max = 0;
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      max = Math.max(max, entry.isDirectory() ? await newest(path) : (await stat(path)).mtimeMs);
    }
    return max;
  };
  const sources = Math.max(await newest(join(ROOT, 'src')), (await stat(join(ROOT, 'nest-cli.json'))).mtimeMs);
  return built.mtimeMs > sources;
}

/**
 * `nest build` runs the Swagger plugin as a TypeScript transform; the tests run the sources through
 * @swc/jest, where only src/metadata.ts brings the plugin's output. This starts the app as built for
 * production (dist/ when current, else a private build) and compares its /docs-json with the one the
 * tests see: they must be the same document.
 */
describe('OpenAPI document: nest build and the tests agree (e2e)', () => {
  let buildDir: string | undefined;
  let mainJs: string;
  let built: AppProcess | undefined;
  let tested: RunningApp;

  beforeAll(async () => {
    // CI builds dist/ (npm run build) right before the tests: use it when no source is newer, rather
    // than compiling again next to the other suites. Otherwise build privately.
    const dist = join(ROOT, 'dist', 'main.js');
    if (await builtAfterSources(dist)) {
      mainJs = dist;
      return;
    }
    await mkdir(join(ROOT, '.tmp'), { recursive: true });
    buildDir = await mkdtemp(join(ROOT, '.tmp', 'docs-build-'));
    // Inside the project, so the built files resolve node_modules as dist/ does.
    await writeFile(
      join(buildDir, 'tsconfig.json'),
      JSON.stringify({
        extends: '../../tsconfig.build.json',
        compilerOptions: { rootDir: '../../src', outDir: './dist' },
        include: ['../../src/**/*.ts'],
        exclude: ['../../node_modules', '../../src/**/*.spec.ts'],
      }),
    );
    // The Nest CLI wants the tsconfig path relative to the project.
    const tsconfig = relative(ROOT, join(buildDir, 'tsconfig.json'));
    await promisify(execFile)(process.execPath, [join(ROOT, 'node_modules', '@nestjs', 'cli', 'bin', 'nest.js'), 'build', '-p', tsconfig], {
      cwd: ROOT,
      timeout: 240_000,
    });
    mainJs = join(buildDir, 'dist', 'main.js');
  }, 300_000);

  afterAll(async () => {
    await built?.stop('SIGTERM');
    await tested?.close();
    if (buildDir !== undefined) await rm(buildDir, { recursive: true, force: true });
  });

  it('serves the same /docs-json from dist as from the TypeScript sources', async () => {
    const port = await freePort();
    // Loopback only: no Redis (in-memory cache), and spawnApp's upstream nobody listens on (never called
    // here). The build finds node_modules from where it is, as dist/ does: no NODE_PATH.
    built = spawnApp({ main: mainJs, env: {} }, { cwd: ROOT, env: { PORT: String(port), LOG_LEVEL: 'warn', RATE_LIMIT_ENABLED: 'false' } });
    const url = `http://127.0.0.1:${port}/docs-json`;
    let fromBuild: unknown;
    const served = async () => {
      const res = await fetch(url).catch(() => undefined);
      if (res?.status !== 200) return false;
      fromBuild = await res.json();
      return true;
    };
    await built.until(served, 'GET /docs-json', 60_000, 200);

    tested = await startApp({ NOMINATIM_URL: 'http://127.0.0.1:9' });
    const fromSources = await (await fetch(`${tested.url}/docs-json`)).json();

    expect(fromBuild).toEqual(fromSources);
    expect(JSON.stringify(fromSources)).toContain('Free-text place query');
  }, 120_000);
});
