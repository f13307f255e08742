import { stopLeftovers } from './leftovers';

// Root-level, so it runs after every describe block's afterAll: whatever a failed test left running is
// stopped here, and the Jest process can exit (see leftovers.ts).
afterAll(async () => {
  const stopped = await stopLeftovers();
  if (stopped.length > 0) console.warn(`stopped what this file left running: ${stopped.join(', ')}`);
});
