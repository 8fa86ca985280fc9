/**
 * Real zmcast processes for the reconnect drills, started as operators start
 * them (bin/zmcast.js) and killed the way machines lose them.
 */
import type { ChildProcess } from 'node:child_process';
import { freePort } from '../../shared/redis-locator.js';
import { until } from '../helpers/wait.js';
import { spawnZmcast, type ZmcastProcess } from '../helpers/zmcast-process.js';

export { BIN } from '../helpers/zmcast-process.js';
export type { ZmcastProcess } from '../helpers/zmcast-process.js';

export interface EdgeProcess extends ZmcastProcess {
  port: number;
  url: string;
}

/** Every process a test file started, so afterAll can kill what is left. */
export class Processes {
  private readonly children: ChildProcess[] = [];

  spawn(args: string[], env: NodeJS.ProcessEnv): ZmcastProcess {
    const p = spawnZmcast(args, env);
    this.children.push(p.child);
    return p;
  }

  async started(args: string[], env: NodeJS.ProcessEnv): Promise<ZmcastProcess> {
    const p = this.spawn(args, env);
    await until(() => p.stderr().includes('"msg":"started"') || p.child.exitCode !== null, 30_000, `zmcast ${args[0]} to start`);
    if (p.child.exitCode !== null) throw new Error(`zmcast ${args[0]} exited at start: ${p.stderr()}`);
    return p;
  }

  capture(redisUrl: string, monitors: string): Promise<ZmcastProcess> {
    return this.started(['capture', '--monitors', monitors], { REDIS_URL: redisUrl, ZMCAST_CAPTURE_METRICS_PORT: '0' });
  }

  /** An edge with auth off unless `env` chooses a mode; on `port` when given (a restart in place). */
  async edge(redisUrl: string, opts: { port?: number; env?: NodeJS.ProcessEnv } = {}): Promise<EdgeProcess> {
    const port = opts.port ?? (await freePort());
    const p = await this.started(['edge', '--port', String(port)], {
      REDIS_URL: redisUrl, ZMCAST_AUTH_MODE: 'none', ZMCAST_EDGE_HOST: '127.0.0.1', ZMCAST_EDGE_ADMIN_PORT: '0', ...opts.env,
    });
    return { ...p, port, url: `http://127.0.0.1:${port}` };
  }

  /** A picture worker, its /metrics on `metricsPort` (loopback). */
  worker(redisUrl: string, metricsPort: number): Promise<ZmcastProcess> {
    return this.started(['worker'], { REDIS_URL: redisUrl, ZMCAST_WORKER_METRICS_PORT: String(metricsPort), ZMCAST_EDGE_HOST: '127.0.0.1' });
  }

  killAll(): void {
    for (const c of this.children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  }
}
