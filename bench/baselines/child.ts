/**
 * What every baseline shares with the benchmark driver: it is forked with an IPC channel, announces
 * its port once listening, and reports its own `process.cpuUsage()` on request, so the driver measures
 * server CPU exactly (µs) over its measured window.
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export type ChildMessage = { type: 'ready'; port: number } | { type: 'cpu'; user: number; system: number };

export function announce(server: Server): void {
  const { port } = server.address() as AddressInfo;
  process.on('message', (m: { type?: string }) => {
    if (m?.type === 'cpu') {
      const { user, system } = process.cpuUsage();
      process.send?.({ type: 'cpu', user, system } satisfies ChildMessage);
    }
  });
  // The driver going away ends the baseline too.
  process.on('disconnect', () => process.exit(0));
  process.send?.({ type: 'ready', port } satisfies ChildMessage);
}

export function env(name: string, fallback?: string): string {
  const v = process.env[name] ?? fallback;
  if (v === undefined) throw new Error(`${name} is required`);
  return v;
}
