/**
 * Fault drills run the real processes: a private redis-server this test can
 * restart, pause or fill, and the real `zmcast capture` and `zmcast edge`
 * commands as children. Every child is killed when the file ends.
 */
import { afterAll } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { freePort, pingRedis } from '../../shared/redis-locator.js';
import { until } from '../helpers/wait.js';
import { spawnZmcast, type ZmcastProcess } from '../helpers/zmcast-process.js';

const children = new Set<ChildProcess>();
afterAll(() => {
  for (const c of children) c.kill('SIGKILL');
});

export class DrillRedis {
  private child: ChildProcess | null = null;
  readonly url: string;
  private constructor(readonly port: number, private readonly args: string[]) {
    this.url = `redis://127.0.0.1:${port}`;
  }

  static async start(args: string[] = []): Promise<DrillRedis> {
    const r = new DrillRedis(await freePort(), args);
    await r.launch();
    return r;
  }

  /** Starts redis-server on the same port, empty (no persistence, as the shipped deploy files run it). */
  async launch(): Promise<void> {
    const dir = mkdtempSync(join(tmpdir(), 'zmcast-drill-redis-'));
    const child = spawn('redis-server', ['--bind', '127.0.0.1', '--port', String(this.port), '--save', '', '--appendonly', 'no', '--dir', dir, ...this.args], { stdio: 'ignore' });
    child.once('error', (err) => { throw new Error(`redis-server is needed for the fault drills: ${err.message}`); });
    children.add(child);
    this.child = child;
    await until(() => pingRedis('127.0.0.1', this.port, 200), 10_000, `redis-server on ${this.port}`);
  }

  async kill(): Promise<void> {
    const child = this.child!;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
    children.delete(child);
  }

  /** The process stops answering but keeps its connections, as a stalled or overloaded server does. */
  pause(): void {
    this.child!.kill('SIGSTOP');
  }

  resume(): void {
    this.child!.kill('SIGCONT');
  }

  client(): Redis {
    return new Redis(this.url, { maxRetriesPerRequest: 1 });
  }
}

export type Zmcast = ZmcastProcess;

/** Runs `zmcast <args>` with the environment given (auth none, no metrics listeners unless set). */
export function zmcast(args: string[], env: NodeJS.ProcessEnv): Zmcast {
  const p = spawnZmcast(args, { ZMCAST_AUTH_MODE: 'none', ZMCAST_CAPTURE_METRICS_PORT: '0', ZMCAST_EDGE_ADMIN_PORT: '0', ZMCAST_LOG_LEVEL: 'info', ...env });
  children.add(p.child);
  p.child.once('exit', () => children.delete(p.child));
  return p;
}

/** A `zmcast edge` on loopback, with its admin listener (/metrics, detailed /readyz) on a port of its own. */
export async function startEdge(redisUrl: string, env: NodeJS.ProcessEnv = {}): Promise<Zmcast & { url: string; port: number; adminUrl: string }> {
  const [port, adminPort] = [await freePort(), await freePort()];
  const edge = zmcast(['edge', '--port', String(port)], {
    REDIS_URL: redisUrl, ZMCAST_REDIS_URL: redisUrl, ZMCAST_EDGE_HOST: '127.0.0.1', ZMCAST_EDGE_ADMIN_PORT: String(adminPort), ...env,
  });
  const url = `http://127.0.0.1:${port}`;
  const adminUrl = `http://127.0.0.1:${adminPort}`;
  await until(async () => (await fetch(`${adminUrl}/healthz`).catch(() => null))?.ok === true, 20_000, 'edge to listen');
  return { ...edge, url, port, adminUrl };
}

export function startCapture(redisUrl: string, monitors: string, env: NodeJS.ProcessEnv = {}): Zmcast {
  return zmcast(['capture', '--monitors', monitors], { REDIS_URL: redisUrl, ZMCAST_REDIS_URL: redisUrl, ...env });
}

export async function getJson<T>(url: string): Promise<{ status: number; body: T; ms: number; headers: Headers }> {
  const started = performance.now();
  const res = await fetch(url, { signal: AbortSignal.timeout(10_000) });
  return { status: res.status, body: (await res.json()) as T, ms: performance.now() - started, headers: res.headers };
}

export async function getText(url: string): Promise<{ status: number; body: string; ms: number }> {
  const started = performance.now();
  const res = await fetch(url, { signal: AbortSignal.timeout(10_000) });
  return { status: res.status, body: await res.text(), ms: performance.now() - started };
}

/** Names synthetic cameras cheap enough for two cores: small, 25 fps, a keyframe a second. */
export const cameras = (ids: number[], query = 'size=320x240&fps=25&gop=25') => ids.map((id) => `${id}=synthetic:?${query}`).join(',');
