import { loadConfig } from '../../src/config/configuration';

/**
 * The names of every environment variable the configuration reads, found by running `loadConfig` on an
 * environment that records each name asked for (and holds nothing, so every default is taken). Derived
 * from the configuration itself, so a variable added there is known here without a list to keep.
 * A variable read only when another one has some value would be missed: loadConfig reads all of them.
 */
export function configVariables(): string[] {
  const names = new Set<string>();
  const recorder = new Proxy<Record<string, string | undefined>>(
    {},
    {
      get(_target, name) {
        if (typeof name === 'string') names.add(name);
        return undefined;
      },
      has(_target, name) {
        if (typeof name === 'string') names.add(name);
        return false;
      },
    },
  );
  loadConfig(recorder);
  return [...names].sort();
}
