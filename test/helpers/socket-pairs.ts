/**
 * Real TCP connections on 127.0.0.1, for tests of the edge's socket writes:
 * the server end is what the edge writes to, the client end a viewer that
 * reads (recording what it got) or, paused, lets the kernel's buffers fill.
 */
import { afterAll, beforeAll } from 'vitest';
import net from 'node:net';
import { useNativeWrites } from '../../services/edge/fanout-batch.js';
import { until } from './wait.js';

export interface Pair {
  server: net.Socket;
  client: net.Socket;
  received: Buffer[];
}

/** Registers the listener's hooks in the calling suite; returns the function that opens a pair. */
export function socketPairs(): (read?: boolean) => Promise<Pair> {
  let listener: net.Server;
  const accepted: net.Socket[] = [];
  beforeAll(async () => {
    listener = net.createServer((s) => accepted.push(s));
    await new Promise<void>((r) => listener.listen(0, '127.0.0.1', r));
  });
  afterAll(async () => {
    useNativeWrites(true);
    for (const s of accepted) s.destroy();
    await new Promise((r) => listener.close(r));
  });
  return async (read = true) => {
    const before = accepted.length;
    const client = net.connect((listener.address() as net.AddressInfo).port, '127.0.0.1');
    const received: Buffer[] = [];
    if (read) client.on('data', (d) => received.push(d));
    else client.pause();
    await until(() => accepted.length > before, 2000, 'the connection');
    const server = accepted[accepted.length - 1];
    server.on('error', () => undefined); // a client that goes away with data still queued for it
    return { server, client, received };
  };
}
