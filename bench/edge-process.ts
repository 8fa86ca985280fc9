/**
 * The server under test, alone in its own process so its CPU and memory are
 * its own: the real zmcast EdgeServer, one of the baselines, or (`ref`) the
 * EdgeServer of another build of zmcast (`--ref DIR`: a checkout built with
 * tsc, e.g. the commit before a change), to compare two versions in one run.
 */
import { Session } from 'node:inspector/promises';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createAuthenticator } from '../shared/auth/index.js';
import { EdgeServer } from '../services/edge/edge-server.js';
import { loadConfig } from '../shared/config.js';
import { createRedis } from '../shared/redis.js';
import { setLogLevel } from '../shared/log.js';
import { edgeMetrics } from '../shared/metrics.js';
import { serve } from './lib/child.js';
import { NaiveEdge } from './baselines/naive-edge.js';
import { SocketIoEdge } from './baselines/socketio-edge.js';
import { FloorEdge } from './baselines/floor-edge.js';
import { NchanServer } from './baselines/nchan.js';

export type EdgeKind = 'zmcast' | 'sockwrite' | 'ref' | 'naive' | 'socketio' | 'floor' | 'nchan';

interface EdgeModules {
  EdgeServer: typeof EdgeServer;
  loadConfig: typeof loadConfig;
  createRedis: typeof createRedis;
  createAuthenticator: typeof createAuthenticator;
}

/** The same modules from the reference build in ZMCAST_BENCH_REF (its dist/). */
async function refModules(dir: string): Promise<EdgeModules> {
  const load = (path: string) => import(pathToFileURL(join(dir, 'dist', path)).href);
  const [edge, config, redis, auth] = await Promise.all([
    load('services/edge/edge-server.js'), load('shared/config.js'), load('shared/redis.js'), load('shared/auth/index.js'),
  ]);
  (await load('shared/log.js')).setLogLevel('warn');
  return { EdgeServer: edge.EdgeServer, loadConfig: config.loadConfig, createRedis: redis.createRedis, createAuthenticator: auth.createAuthenticator };
}

const [kind, redisUrl] = process.argv.slice(2) as [EdgeKind, string];
setLogLevel('warn');

let close: () => Promise<void> = async () => {};
/** Where the zmcast edge serves /metrics: its admin listener (the baselines have none). */
let adminPort: number | null = null;
/** For `nchan` the edge is nginx (master + worker): its CPU and memory are what this process reports. */
let nginx: NchanServer | null = null;

async function start(): Promise<number> {
  if (kind === 'zmcast' || kind === 'sockwrite' || kind === 'ref') {
    const z: EdgeModules = kind === 'ref' ? await refModules(process.env.ZMCAST_BENCH_REF ?? '') : { EdgeServer, loadConfig, createRedis, createAuthenticator };
    const config = z.loadConfig({ env: {}, overrides: {
      // Every bench viewer comes from 127.0.0.1: the per-address and per-user caps would cut the load.
      edge: {
        host: '127.0.0.1', port: 0, maxConnections: 1_000_000, maxConnectionsPerAddress: 1_000_000, maxConnectionsPerUser: 1_000_000,
        ...(process.env.ZMCAST_BENCH_COALESCE_MS ? { coalesceMs: Number(process.env.ZMCAST_BENCH_COALESCE_MS) } : {}),
        // `sockwrite`: this edge with one socket.write per viewer, to measure what the native writer buys.
        ...(kind === 'sockwrite' ? { nativeWrites: false } : {}),
      },
      auth: { mode: 'none' },
    } });
    const redis = z.createRedis(redisUrl, 'zmcast-edge');
    const auth = await z.createAuthenticator(config.auth);
    const edge = new z.EdgeServer(redis, config, auth);
    close = async () => { await edge.close(); await auth.close(); redis.disconnect(); };
    const port = await edge.listen();
    adminPort = await edge.listenAdmin(0, '127.0.0.1');
    return port;
  }
  if (kind === 'nchan') {
    nginx = await NchanServer.start('edge', redisUrl, Number(process.env.ZMCAST_BENCH_CONNECTIONS ?? 5000));
    close = () => nginx!.stop();
    process.on('exit', () => nginx?.stopNow()); // the coordinator's `exit` does not wait for close()
    return nginx.port;
  }
  const edge = kind === 'naive' ? new NaiveEdge(redisUrl) : kind === 'floor' ? new FloorEdge(redisUrl) : new SocketIoEdge(redisUrl);
  close = () => edge.close();
  return edge.listen();
}

/** Profiles exactly the measurement window (what `node --cpu-prof` would give, minus start-up and connects). */
let session: Session | null = null;

async function profileStart(): Promise<void> {
  session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: 200 });
  await session.post('Profiler.start');
}

async function profileStop(path: string): Promise<void> {
  if (!session) return;
  const { profile } = await session.post('Profiler.stop');
  writeFileSync(path, JSON.stringify(profile));
  session.disconnect();
  session = null;
}

/** CPU seconds by thread name (main loop, GC helpers, libuv pool…), to tell the event loop's work from the rest. */
function threads(): Record<string, number> {
  const out: Record<string, number> = {};
  for (const t of readdirSync('/proc/self/task')) {
    try {
      const stat = readFileSync(`/proc/self/task/${t}/stat`, 'utf8');
      const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out[name] = (out[name] ?? 0) + (Number(f[11]) + Number(f[12])) / 100;
    } catch {
      // the thread ended between the listing and the read
    }
  }
  return out;
}

serve({
  threads: () => threads(),
  ...(kind === 'nchan' ? { usage: () => nginx!.usage(), gc: () => nginx!.usage() } : {}),
  start: () => start(),
  close: () => close(),
  adminPort: () => adminPort,
  profileStart: () => profileStart(),
  profileStop: (path: string) => profileStop(path),
  /** What the zmcast edge itself counted about slow clients (zero for the baselines, which have no budget). */
  slowCounters: async () => {
    if (kind !== 'zmcast') return { closedSlow: 0, skippedFrames: 0 };
    const m = edgeMetrics();
    const closed = (await m.droppedClients.get()).values.filter((v) => v.labels.reason === 'slow_consumer');
    const skipped = (await m.droppedFrames.get()).values;
    return { closedSlow: closed.reduce((a, v) => a + v.value, 0), skippedFrames: skipped.reduce((a, v) => a + v.value, 0) };
  },
});
