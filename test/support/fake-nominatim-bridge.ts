/*
 * The fake Nominatim for a service running in a container (.ci/docker-checks.sh).
 *
 * The fake binds loopback only; a container cannot reach the host's loopback. This starts the fake and
 * forwards one TCP port on a given host address (the Docker bridge's gateway, e.g. 172.17.0.1, which
 * only containers on this host reach) to it, prints that port, and keeps the count of requests the fake
 * received in a file, so the checks can tell a miss (one upstream request) from a hit (none).
 *
 *   node -r @swc-node/register test/support/fake-nominatim-bridge.ts --bind 172.17.0.1 --count-file F
 */
import { writeFileSync } from 'node:fs';
import { AddressInfo, connect, createServer, isIP, Socket } from 'node:net';
import { FakeNominatim } from './fake-nominatim';

interface Options {
  bind: string;
  countFile: string;
}

function parseArgs(argv: string[]): Options {
  let bind: string | undefined;
  let countFile: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--bind') bind = argv[++i];
    else if (argv[i] === '--count-file') countFile = argv[++i];
    else throw new Error(`unknown option ${argv[i]}\nusage: fake-nominatim-bridge --bind ADDRESS --count-file FILE`);
  }
  if (bind === undefined || countFile === undefined) throw new Error('--bind and --count-file are required');
  // One host address that only local containers reach, never every interface.
  if (isIP(bind) === 0 || bind === '0.0.0.0' || bind === '::') throw new Error(`--bind needs one IP address of this host (got "${bind}")`);
  return { bind, countFile };
}

async function main(): Promise<void> {
  const { bind, countFile } = parseArgs(process.argv.slice(2));
  // The count is written as each request arrives, before it is answered: whoever got an answer reads a
  // count that includes its request.
  const writeCount = (): void => writeFileSync(countFile, `${fake.requests.length}\n`);
  const fake = new FakeNominatim({ onArrival: writeCount });
  const target = new URL(await fake.start());
  const sockets = new Set<Socket>();
  const forwarder = createServer((client) => {
    const upstream = connect(Number(target.port), target.hostname);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve, reject) => {
    forwarder.once('error', reject);
    forwarder.listen(0, bind, () => resolve());
  });
  writeCount();
  process.stdout.write(`${(forwarder.address() as AddressInfo).port}\n`);
  const shutdown = (): void => {
    for (const s of sockets) s.destroy();
    forwarder.close();
    void fake.stop().then(() => process.exit(0));
  };
  process.once('SIGINT', shutdown);
  process.once('SIGTERM', shutdown);
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
