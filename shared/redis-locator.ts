/**
 * Finds a Redis for the demo: REDIS_URL/ZMCAST_REDIS_URL if set, else a
 * reachable local server on 6379, else a private `redis-server` on a free
 * port (stopped with the demo), else a clear message saying how to get one.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createConnection, createServer } from 'node:net';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface LocatedRedis {
  url: string;
  how: 'configured' | 'local' | 'spawned';
  stop(): Promise<void>;
}

export class RedisNotFoundError extends Error {
  readonly code = 'redis_not_found';
}

export async function locateRedis(configured: string): Promise<LocatedRedis> {
  const none = async () => {};
  if (configured) return { url: configured, how: 'configured', stop: none };
  if (await pingRedis('127.0.0.1', 6379)) return { url: 'redis://127.0.0.1:6379', how: 'local', stop: none };
  return spawnRedis();
}

/** True when something on host:port answers PING with PONG. */
export function pingRedis(host: string, port: number, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = createConnection({ host, port });
    const done = (ok: boolean) => { sock.destroy(); resolve(ok); };
    sock.setTimeout(timeoutMs, () => done(false));
    sock.once('error', () => done(false));
    sock.once('connect', () => sock.write('PING\r\n'));
    sock.once('data', (d) => done(d.toString().startsWith('+PONG')));
  });
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

export async function spawnRedis(binary = 'redis-server'): Promise<LocatedRedis> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'zmcast-redis-'));
  let child: ChildProcess;
  try {
    child = spawn(binary, ['--bind', '127.0.0.1', '--port', String(port), '--save', '', '--appendonly', 'no', '--dir', dir], {
      stdio: 'ignore',
    });
    await new Promise<void>((resolve, reject) => {
      child.once('error', reject);
      child.once('spawn', () => resolve());
    });
  } catch {
    throw new RedisNotFoundError(
      'No Redis found: REDIS_URL is not set, nothing answers on 127.0.0.1:6379, and no redis-server binary is on PATH. ' +
        'Install one (Debian/Ubuntu: apt-get install redis-server; macOS: brew install redis) or set REDIS_URL=redis://host:port.',
    );
  }
  for (let i = 0; i < 100; i++) {
    if (await pingRedis('127.0.0.1', port, 200)) {
      return {
        url: `redis://127.0.0.1:${port}`,
        how: 'spawned',
        stop: () => new Promise<void>((resolve) => {
          if (child.exitCode !== null) return resolve();
          child.once('exit', () => resolve());
          child.kill('SIGTERM');
        }),
      };
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  child.kill('SIGKILL');
  throw new RedisNotFoundError(`redis-server started on port ${port} but did not answer PING within 5 s`);
}
