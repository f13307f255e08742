import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import metadata from './metadata';

const ROOT = join(__dirname, '..');
const REGENERATE = 'node -r @swc-node/register scripts/generate-metadata.ts';

/**
 * src/metadata.ts is what the tests (@swc/jest, no compiler plugin) know of the Swagger plugin's output.
 * It is generated and committed; a DTO or controller change without regenerating it would make the
 * tests' API documentation differ from the build's. This regenerates it into a temporary directory.
 */
describe('src/metadata.ts (Swagger plugin metadata)', () => {
  let dir: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'places-cache-metadata-'));
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it(`is current (else run: ${REGENERATE})`, async () => {
    await promisify(execFile)(process.execPath, ['-r', '@swc-node/register', 'scripts/generate-metadata.ts', '--out-dir', dir], {
      cwd: ROOT,
      timeout: 90_000,
    });
    const fresh = await readFile(join(dir, 'metadata.ts'), 'utf8');
    const committed = await readFile(join(ROOT, 'src', 'metadata.ts'), 'utf8');
    expect(committed).toBe(fresh);
  }, 120_000);

  it('names only classes that exist, the documented DTOs among them', async () => {
    const swagger = ((await metadata()) as Record<string, unknown>)['@nestjs/swagger'] as Record<'models' | 'controllers', Array<[unknown, Record<string, unknown>]>>;
    expect(swagger.models.length).toBeGreaterThan(0);
    for (const [mod, classes] of [...swagger.models, ...swagger.controllers]) {
      const exports = (await mod) as Record<string, unknown>;
      for (const name of Object.keys(classes)) expect(typeof exports[name]).toBe('function');
    }
    const models = swagger.models.flatMap(([, classes]) => Object.keys(classes));
    expect(models).toEqual(expect.arrayContaining(['ApiQueryDto', 'SearchQueryDto', 'ApiAnswerDto', 'NominatimPlaceDto', 'GatewayErrorDto']));
  });
});
