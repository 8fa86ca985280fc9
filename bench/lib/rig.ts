/** A Redis, an edge and a publisher, for scenarios that drive viewers themselves. */
import { Child, type Usage } from './child.js';
import { RedisServer } from './redis-server.js';
import type { EdgeKind } from '../edge-process.js';
import type { PublishSpec } from '../publisher-process.js';

const here = new URL('..', import.meta.url);
export const benchModule = (name: string) => new URL(name, here);

export class Rig {
  readonly children: Child[] = [];
  private constructor(
    readonly redis: RedisServer,
    readonly edge: Child,
    readonly port: number,
    /** The zmcast edge's admin listener (/metrics); null for the baselines. */
    readonly adminPort: number | null,
  ) {}

  static async start(system: EdgeKind, files = 2000): Promise<Rig> {
    const redis = await RedisServer.start(files);
    const edge = Child.start('edge', benchModule('edge-process.js'), [system, redis.url], { files, execArgv: ['--expose-gc'] });
    const ports = (async () => [await edge.call<number>('start'), await edge.call<number | null>('adminPort')] as const)();
    const [port, adminPort] = await ports.catch(async (err) => { await edge.stop(); await redis.stop(); throw err; });
    const rig = new Rig(redis, edge, port, adminPort);
    rig.children.push(edge);
    return rig;
  }

  async publisher(system: EdgeKind, spec: PublishSpec): Promise<Child> {
    const p = Child.start('publisher', benchModule('publisher-process.js'), [system === 'socketio' ? 'socketio' : 'zmcast', this.redis.url]);
    this.children.push(p);
    await p.call('setup', spec);
    return p;
  }

  viewers(count: number, filesEach = 1000): Child[] {
    const list = Array.from({ length: count }, (_, i) => Child.start(`viewers-${i}`, benchModule('viewer-process.js'), [], { files: filesEach }));
    this.children.push(...list);
    return list;
  }

  edgeGc(): Promise<Usage> {
    return this.edge.call<Usage>('gc');
  }

  async stop(): Promise<void> {
    await Promise.all(this.children.map((c) => c.stop().catch(() => {})));
    await this.redis.stop();
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function quantiles(values: number[]): { n: number; p50: number; p90: number; max: number; mean: number } {
  const v = [...values].sort((a, b) => a - b);
  const at = (q: number) => v[Math.min(v.length - 1, Math.max(0, Math.ceil(q * v.length) - 1))];
  return { n: v.length, p50: at(0.5), p90: at(0.9), max: v[v.length - 1], mean: v.reduce((a, b) => a + b, 0) / v.length };
}
