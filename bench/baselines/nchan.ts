/**
 * Baseline (c): nginx with the nchan module in Redis mode, what a seasoned
 * operator would pick instead of zmcast: C, one event loop, fan-out through
 * Redis. Two nginx instances share the point's Redis, as two hosts of an
 * nchan cluster would: the publisher's (which takes an HTTP POST per packet,
 * its CPU is the publisher's) and the edge's (viewers subscribe by WebSocket
 * to `/sub/m<id>`; it gets messages only through Redis, so its CPU is the
 * fan-out's alone, comparable with the zmcast edge process).
 *
 * Both run from Debian's packages (`nginx`, `libnginx-mod-nchan`); the
 * bench installs them with apt-get when missing.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../shared/redis-locator.js';
import type { Usage } from '../lib/child.js';
import { procRssBytes } from '../lib/proc.js';

const NGINX = '/usr/sbin/nginx';
const MODULE = '/usr/lib/nginx/modules/ngx_nchan_module.so';
const PACKAGES = ['nginx', 'libnginx-mod-nchan'];

export type NchanRole = 'edge' | 'publisher';

/** Installs nginx + nchan from the distribution when missing (the bench runs as root on the standard machine). */
export function ensureNchan(log: (line: string) => void): void {
  if (existsSync(NGINX) && existsSync(MODULE)) return;
  log(`  installing ${PACKAGES.join(' ')} (apt-get)`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  execFileSync('apt-get', ['update', '-q'], { stdio: 'ignore', env });
  execFileSync('apt-get', ['install', '-y', '-q', '--no-install-recommends', ...PACKAGES], { stdio: 'ignore', env });
  if (!existsSync(NGINX) || !existsSync(MODULE)) throw new Error(`apt-get ran but ${NGINX} or ${MODULE} is still missing`);
}

/** `nginx version: nginx/1.22.1, libnginx-mod-nchan 1:1.3.6+dfsg-2`, or 'not installed'. */
export function nchanVersions(): string {
  try {
    const nginx = execFileSync('/bin/sh', ['-c', `${NGINX} -v 2>&1`], { encoding: 'utf8' }).trim(); // nginx -v writes to stderr
    const nchan = execFileSync('dpkg-query', ['-W', '-f', '${Version}', 'libnginx-mod-nchan'], { encoding: 'utf8' }).trim();
    return `${nginx}, libnginx-mod-nchan ${nchan}`;
  } catch {
    return 'not installed';
  }
}

function config(dir: string, port: number, redisUrl: string, role: NchanRole, connections: number): string {
  const location = role === 'edge'
    ? `location ~ ^/sub/(\\w+)$ { nchan_subscriber websocket; nchan_channel_id $1; nchan_redis_pass redis; }`
    // Packets are 20-60 KB: keep request bodies in memory, never in temp files.
    : `location ~ ^/pub/(\\w+)$ { nchan_publisher; nchan_channel_id $1; nchan_redis_pass redis;
         nchan_message_buffer_length 10; client_max_body_size 4m; client_body_buffer_size 4m; }`;
  return `load_module ${MODULE};
daemon off;
master_process on;
worker_processes 1;
worker_rlimit_nofile ${connections + 1000};
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections ${connections + 1000}; multi_accept on; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  upstream redis { nchan_redis_server ${redisUrl}; }
  server {
    listen 127.0.0.1:${port} backlog=4096;
    ${location}
  }
}
`;
}

/** One nginx (master + one worker) running nchan on a private config. */
export class NchanServer {
  private constructor(
    readonly port: number,
    private readonly proc: ChildProcess,
    private readonly dir: string,
  ) {}

  static async start(role: NchanRole, redisUrl: string, connections = 5000): Promise<NchanServer> {
    const port = await freePort();
    const dir = mkdtempSync(join(tmpdir(), `zmcast-bench-nchan-${role}-`));
    const conf = join(dir, 'nginx.conf');
    writeFileSync(conf, config(dir, port, redisUrl, role, connections));
    const proc = spawn(NGINX, ['-c', conf, '-p', dir], { stdio: ['ignore', 'ignore', 'inherit'] });
    const server = new NchanServer(port, proc, dir);
    const deadline = Date.now() + 10_000;
    while (server.workerPids().length === 0 || !(await listening(port))) {
      if (proc.exitCode !== null || Date.now() > deadline) {
        const errors = existsSync(join(dir, 'error.log')) ? readFileSync(join(dir, 'error.log'), 'utf8').slice(-2000) : '';
        await server.stop();
        throw new Error(`nginx (${role}) did not start: ${errors}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    return server;
  }

  /** Master and worker CPU and memory, as the zmcast edge reports its own process's. */
  usage(): Usage {
    const pids = [this.proc.pid!, ...this.workerPids()];
    let userUs = 0, systemUs = 0, rss = 0;
    for (const pid of pids) {
      const { user, system } = procTimes(pid);
      userUs += user;
      systemUs += system;
      rss += procRssBytes(pid) || 0;
    }
    return { userUs, systemUs, rss, heapUsed: 0, external: 0 };
  }

  async stop(): Promise<void> {
    if (this.proc.exitCode === null && this.proc.signalCode === null) {
      const exited = new Promise((r) => this.proc.once('exit', r));
      this.proc.kill('SIGTERM'); // fast shutdown: the master stops its worker
      const timer = setTimeout(() => this.proc.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** For a process about to exit (no awaiting there): signals nginx to stop and leaves the rest to it. */
  stopNow(): void {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill('SIGTERM');
  }

  private workerPids(): number[] {
    const pid = this.proc.pid;
    if (pid === undefined) return [];
    try {
      return readdirSync(`/proc/${pid}/task`).flatMap((t) => readFileSync(`/proc/${pid}/task/${t}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number));
    } catch {
      return [];
    }
  }
}

/**
 * CPU of a process in µs, user and kernel: the total from /proc/<pid>/schedstat
 * (ns, exact, like getrusage for the zmcast edge), split in the proportion of
 * utime:stime from /proc/<pid>/stat (clock ticks, too coarse alone for a light load).
 */
function procTimes(pid: number): { user: number; system: number } {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const [utime, stime] = [Number(f[11]), Number(f[12])];
    const totalUs = Number(readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[0]) / 1000;
    const systemShare = utime + stime > 0 ? stime / (utime + stime) : 0;
    return { user: totalUs * (1 - systemShare), system: totalUs * systemShare };
  } catch {
    return { user: 0, system: 0 };
  }
}

async function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port }, () => { s.destroy(); resolve(true); });
    s.on('error', () => resolve(false));
  });
}
