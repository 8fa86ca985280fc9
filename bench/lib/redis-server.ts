/**
 * A private redis-server for one bench run, on a free port, with nothing
 * else talking to it: its INFO counters and CPU are the load's alone.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { freePort, pingRedis } from '../../shared/redis-locator.js';
import { procCpuSeconds } from './proc.js';

export interface RedisSample {
  at: number;
  commands: number;
  /** used_cpu_user + used_cpu_sys from INFO (getrusage, µs resolution). */
  cpuSeconds: number;
  /** utime + stime from /proc/<pid>/stat (clock-tick resolution), as a cross-check. */
  procCpuSeconds: number;
  usedMemory: number;
  connectedClients: number;
}

export class RedisServer {
  private constructor(
    readonly url: string,
    readonly pid: number,
    private readonly proc: ChildProcess,
    private readonly dir: string,
    private readonly admin: Redis,
  ) {}

  static async start(maxClients = 20_000): Promise<RedisServer> {
    const port = await freePort();
    const dir = mkdtempSync(join(tmpdir(), 'zmcast-bench-redis-'));
    const proc = spawn('redis-server', [
      '--bind', '127.0.0.1', '--port', String(port), '--save', '', '--appendonly', 'no', '--dir', dir,
      '--maxclients', String(maxClients), '--protected-mode', 'no',
    ], { stdio: 'ignore' });
    await new Promise<void>((resolve, reject) => {
      proc.once('error', (err) => reject(new Error(`cannot start redis-server (is it installed?): ${err.message}`)));
      proc.once('spawn', () => resolve());
    });
    for (let i = 0; i < 100 && !(await pingRedis('127.0.0.1', port, 200)); i++) await new Promise((r) => setTimeout(r, 50));
    const url = `redis://127.0.0.1:${port}`;
    return new RedisServer(url, proc.pid!, proc, dir, new Redis(url, { connectionName: 'bench-admin' }));
  }

  async sample(): Promise<RedisSample> {
    const info = parseInfo(await this.admin.info('all'));
    return {
      at: performance.now(),
      commands: Number(info.total_commands_processed),
      cpuSeconds: Number(info.used_cpu_user) + Number(info.used_cpu_sys),
      procCpuSeconds: procCpuSeconds(this.pid),
      usedMemory: Number(info.used_memory),
      connectedClients: Number(info.connected_clients),
    };
  }

  /** Commands by name since the last reset (INFO commandstats). */
  async commandStats(): Promise<Record<string, number>> {
    const info = parseInfo(await this.admin.info('commandstats'));
    const out: Record<string, number> = {};
    for (const [k, v] of Object.entries(info)) {
      const m = /^cmdstat_(.+)$/.exec(k);
      const calls = /calls=(\d+)/.exec(v);
      if (m && calls) out[m[1]] = Number(calls[1]);
    }
    return out;
  }

  async reset(): Promise<void> {
    await this.admin.flushall();
    await this.admin.config('RESETSTAT');
  }

  async stop(): Promise<void> {
    this.admin.disconnect();
    if (this.proc.exitCode === null) {
      const exited = new Promise((r) => this.proc.once('exit', r));
      this.proc.kill('SIGTERM');
      await exited;
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

function parseInfo(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\r\n')) {
    const i = line.indexOf(':');
    if (i > 0 && !line.startsWith('#')) out[line.slice(0, i)] = line.slice(i + 1);
  }
  return out;
}

export function redisDelta(a: RedisSample, b: RedisSample) {
  const seconds = (b.at - a.at) / 1000;
  return {
    seconds,
    commands: b.commands - a.commands,
    commandsPerSecond: (b.commands - a.commands) / seconds,
    cpuSeconds: b.cpuSeconds - a.cpuSeconds,
    procCpuSeconds: b.procCpuSeconds - a.procCpuSeconds,
  };
}
