/**
 * A private three-master Redis Cluster on free ports (optionally with one
 * replica per master, for failover drills), from the redis-server and
 * redis-cli binaries. Fails loudly when they are missing.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, pingRedis } from '../../shared/redis-locator.js';
import { until } from './wait.js';

export interface LocalCluster {
  url: string;
  /** The port of the master serving `key` now. */
  masterOf(key: string): number;
  /** kill -9 of one node; its replica (if any) is promoted by the cluster itself. */
  kill(port: number): Promise<void>;
  stop(): Promise<void>;
}

export async function startCluster(opts: { replicas?: 0 | 1 } = {}): Promise<LocalCluster> {
  const replicas = opts.replicas ?? 0;
  const dir = mkdtempSync(join(tmpdir(), 'zmcast-cluster-'));
  const nodes: { port: number; child: ChildProcess }[] = [];
  for (let i = 0; i < 3 * (1 + replicas); i++) {
    const port = await freePort();
    const bus = await freePort();
    const child = spawn('redis-server', [
      '--bind', '127.0.0.1', '--port', String(port), '--cluster-enabled', 'yes', '--cluster-port', String(bus),
      '--cluster-config-file', join(dir, `nodes-${port}.conf`), '--cluster-node-timeout', '2000',
      '--save', '', '--appendonly', 'no', '--dir', dir,
    ], { stdio: 'ignore' });
    child.once('error', (err) => { throw new Error(`redis-server is needed for the cluster tests: ${err.message}`); });
    nodes.push({ port, child });
  }
  for (const n of nodes) await until(() => pingRedis('127.0.0.1', n.port, 200), 15_000, `cluster node on ${n.port} to start`);
  const create = spawnSync('redis-cli', ['--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', String(replicas), '--cluster-yes'], { encoding: 'utf8' });
  if (create.status !== 0) throw new Error(`redis-cli --cluster create failed: ${create.error?.message ?? create.stdout + create.stderr}`);
  const cli = (port: number, ...args: string[]) => spawnSync('redis-cli', ['-p', String(port), ...args], { encoding: 'utf8' }).stdout;
  const alive = () => nodes.filter((n) => n.child.exitCode === null && n.child.signalCode === null);
  const ok = () => alive().every((n) => cli(n.port, 'cluster', 'info').includes('cluster_state:ok'));
  await until(ok, 20_000, 'the cluster to reach cluster_state:ok');
  // A replica can only be promoted once it has synced with its master.
  const synced = () => nodes.filter((n) => /master_link_status:up/.test(cli(n.port, 'info', 'replication'))).length === 3 * replicas;
  await until(synced, 30_000, 'every replica to sync with its master');
  return {
    url: `redis-cluster://${nodes.slice(0, 3).map((n) => `127.0.0.1:${n.port}`).join(',')}`,
    masterOf(key) {
      const slot = Number(cli(alive()[0].port, 'cluster', 'keyslot', key).trim());
      for (const line of cli(alive()[0].port, 'cluster', 'nodes').split('\n')) {
        const f = line.split(' ');
        if (!f[2]?.includes('master') || f[2].includes('fail')) continue;
        const owns = f.slice(8).some((r) => {
          const [lo, hi] = r.split('-').map(Number);
          return slot >= lo && slot <= (hi ?? lo);
        });
        if (owns) return Number(f[1].split(':')[1].split('@')[0]);
      }
      throw new Error(`no master serves ${key}`);
    },
    async kill(port) {
      const n = nodes.find((x) => x.port === port)!;
      const exited = new Promise((r) => n.child.once('exit', r));
      n.child.kill('SIGKILL');
      await exited;
    },
    stop: async () => {
      await Promise.all(nodes.map((n) => new Promise<void>((resolve) => {
        if (n.child.exitCode !== null || n.child.signalCode !== null) return resolve();
        n.child.once('exit', () => resolve());
        n.child.kill('SIGTERM');
      })));
    },
  };
}
