/**
 * A private three-master Redis Cluster on free ports, from the redis-server
 * and redis-cli binaries. Fails loudly when they are missing.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, pingRedis } from '../../shared/redis-locator.js';

export interface LocalCluster {
  url: string;
  stop(): Promise<void>;
}

export async function startCluster(): Promise<LocalCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'zmcast-cluster-'));
  const nodes: { port: number; child: ChildProcess }[] = [];
  for (let i = 0; i < 3; i++) {
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
  for (const n of nodes) {
    for (let i = 0; !(await pingRedis('127.0.0.1', n.port, 200)); i++) {
      if (i > 100) throw new Error(`cluster node on ${n.port} did not start`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  const create = spawnSync('redis-cli', ['--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', '0', '--cluster-yes'], { encoding: 'utf8' });
  if (create.status !== 0) throw new Error(`redis-cli --cluster create failed: ${create.error?.message ?? create.stdout + create.stderr}`);
  for (let i = 0; ; i++) {
    const info = spawnSync('redis-cli', ['-p', String(nodes[0].port), 'cluster', 'info'], { encoding: 'utf8' }).stdout;
    if (info.includes('cluster_state:ok')) break;
    if (i > 100) throw new Error('cluster did not reach cluster_state:ok');
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url: `redis-cluster://${nodes.map((n) => `127.0.0.1:${n.port}`).join(',')}`,
    stop: async () => {
      await Promise.all(nodes.map((n) => new Promise<void>((resolve) => {
        if (n.child.exitCode !== null) return resolve();
        n.child.once('exit', () => resolve());
        n.child.kill('SIGTERM');
      })));
    },
  };
}
