/**
 * The command a user types: the real `zmcast` binary, as a child process.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import bcrypt from 'bcryptjs';
import { createAuthenticator, type Authenticator } from '../../shared/auth/index.js';
import { loadConfig } from '../../shared/config.js';
import { freePort } from '../../shared/redis-locator.js';
import { freshRedisUrl } from '../helpers/redis.js';
import { until } from '../helpers/wait.js';

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'zmcast.js');
const children: ChildProcess[] = [];
afterAll(() => children.forEach((c) => c.kill('SIGKILL')));

const run = (args: string[], env: NodeJS.ProcessEnv = {}, input?: string) =>
  spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 60_000, input });

const SECRET = 'cli-test-secret-cli-test-secret-0123';

/** A config file for auth mode config with the given users (and secret unless told otherwise). */
function authConfigFile(auth: Record<string, unknown>): string {
  const file = join(mkdtempSync(join(tmpdir(), 'zmcast-auth-')), 'zmcast.json');
  // Readable by its owner only, as a file with a secret should be (zmcast warns otherwise).
  writeFileSync(file, JSON.stringify({ auth: { mode: 'config', secret: SECRET, ...auth } }), { mode: 0o600 });
  return file;
}

/** Authenticates as the edge would, with the authenticator built from that same config file. */
async function login(file: string, presented: { token?: string; user?: string; password?: string }) {
  const auth: Authenticator = await createAuthenticator(loadConfig({ env: {}, file }).auth);
  try {
    return await auth.authenticate({ ...presented, via: 'handshake' }, '192.0.2.7');
  } finally {
    await auth.close();
  }
}

/** Starts the demo and resolves once it is serving, with its log lines so far. */
async function startDemo(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ demo: ChildProcess; port: number; adminPort: number; out: () => string; logs: () => Record<string, unknown>[] }> {
  const port = await freePort();
  const adminPort = await freePort();
  const redisUrl = await freshRedisUrl();
  const demo = spawn(process.execPath, [BIN, 'demo', '--port', String(port), ...args], {
    env: { ...process.env, ZMCAST_AUTH_MODE: '', ZMCAST_EDGE_ADMIN_PORT: String(adminPort), ...env, REDIS_URL: redisUrl },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(demo);
  let out = '';
  let err = '';
  demo.stdout!.on('data', (d) => (out += d));
  demo.stderr!.on('data', (d) => (err += d));
  await until(() => out.includes('Press Ctrl-C'), 30_000, 'demo to start');
  const logs = () => err.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
  return { demo, port, adminPort, out: () => out, logs };
}

async function stop(child: ChildProcess, signal: NodeJS.Signals = 'SIGINT'): Promise<number | null> {
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  child.kill(signal);
  return exited;
}

describe('zmcast command line', () => {
  it('prints usage with every command and configuration variable', () => {
    const r = run(['--help']);
    expect(r.status).toBe(0);
    for (const word of [
      'zmcast demo', 'zmcast capture', 'zmcast edge', 'zmcast worker', 'zmcast watch', 'zmcast token', 'zmcast hash-password', 'ZMCAST_WORKER_CONCURRENCY',
      '--auth MODE', '--zm-conf PATH', '--zm-refresh', 'ZMCAST_EDGE_PORT', 'ZMCAST_MONITORS', 'ZMCAST_AUTH_MODE',
    ]) expect(r.stdout).toContain(word);
  });

  it('refuses a bad --auth value, naming the key', () => {
    for (const command of ['edge', 'capture', 'demo']) {
      const r = run([command, '--auth', 'open-sesame']);
      expect(r.status).toBe(2);
      expect(r.stderr).toContain('auth.mode (env ZMCAST_AUTH_MODE): expected one of zoneminder, config, jwks, none, got "open-sesame"');
    }
  });

  it('refuses a flag the command does not take, and an unknown flag', () => {
    const r = run(['edge', '--user', 'alice']);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('--user is not an option of zmcast edge');
    expect(run(['capture', '--frobnicate']).stderr).toMatch(/Unknown option '--frobnicate'/);
  });

  it('refuses a bad configuration value, naming the key', () => {
    const r = run(['edge'], { ZMCAST_EDGE_PORT: 'eighty' });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('edge.port (env ZMCAST_EDGE_PORT)');
  });

  it('refuses an unknown command', () => {
    const r = run(['fly']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/unknown command "fly"/);
  });

  it('runs the demo with no auth setup (mode none), and `zmcast watch` records a stream that ffprobe decodes', async () => {
    const { demo, port, adminPort, out, logs } = await startDemo(['--monitors', '2']);
    expect(out()).toContain(`zmcast watch http://localhost:${port} --monitor 1`);
    expect(out()).toContain(`curl http://127.0.0.1:${adminPort}/metrics`);
    expect(logs().find((l) => l.msg === 'started')).toMatchObject({ auth: 'none', capture: 2, edge_admin: `127.0.0.1:${adminPort}` });
    expect(await fetch(`http://127.0.0.1:${adminPort}/readyz`).then((r) => r.text())).toContain('auth: none');
    expect(await fetch(`http://127.0.0.1:${adminPort}/metrics`).then((r) => r.text())).toContain('zmcast_capture_packets_total');
    // The demo runs a picture worker too: snapshots work out of the box.
    expect(logs().find((l) => l.msg === 'started')).toHaveProperty('worker');
    // Just started, the camera or the worker may not be ready: 503 with Retry-After says so, and a client asks again.
    const snapshot = await until(async () => {
      const r = await fetch(`http://127.0.0.1:${port}/monitors/1/snapshot.jpg`);
      if (r.status !== 503) return r;
      expect(r.headers.get('retry-after')).toBeTruthy();
      await r.arrayBuffer();
      return undefined;
    }, 15_000, 'a snapshot');
    expect([snapshot.status, snapshot.headers.get('content-type')]).toEqual([200, 'image/jpeg']);
    expect(Buffer.from(await snapshot.arrayBuffer()).subarray(0, 2)).toEqual(Buffer.from([0xff, 0xd8]));

    const file = join(mkdtempSync(join(tmpdir(), 'zmcast-watch-')), 'm1.h264');
    const watch = spawnSync(process.execPath, [BIN, 'watch', `http://127.0.0.1:${port}`, '--monitor', '1', '--out', file, '--duration', '3', '--quiet'], {
      encoding: 'utf8', timeout: 30_000,
    });
    expect(watch.status).toBe(0);
    const summary = JSON.parse(watch.stderr.trim().split('\n').pop()!);
    expect(summary.packets).toBeGreaterThan(30); // 3 s of the demo's 15 fps main stream
    expect(summary.dropped).toBe(0);
    expect(statSync(file).size).toBeGreaterThan(summary.bytes); // payloads plus the parameter sets in front
    const probe = spawnSync('ffprobe', ['-v', 'error', '-count_frames', '-f', 'h264', '-show_entries', 'stream=codec_name,nb_read_frames', '-of', 'json', file], { encoding: 'utf8' });
    expect(probe.stderr).toBe('');
    const stream = JSON.parse(probe.stdout).streams[0];
    expect(stream.codec_name).toBe('h264');
    expect(Number(stream.nb_read_frames)).toBe(summary.packets);

    expect(await stop(demo)).toBe(0);
  });

  it('runs the demo with the auth mode chosen by --auth or the config file instead of none', async () => {
    const flag = await startDemo(['--monitors', '1', '--auth', 'config']);
    expect(flag.logs().find((l) => l.msg === 'started')).toMatchObject({ auth: 'config' });
    expect(await fetch(`http://127.0.0.1:${flag.adminPort}/readyz`).then((r) => r.text())).toContain('auth: config');
    expect(await stop(flag.demo)).toBe(0);
    const file = await startDemo(['--monitors', '1', '--config', authConfigFile({ users: [] })]);
    expect(file.logs().find((l) => l.msg === 'started')).toMatchObject({ auth: 'config' });
    expect(await stop(file.demo)).toBe(0);
  });

  it('runs capture on its own with a /metrics of its own', async () => {
    const port = await freePort();
    const redisUrl = await freshRedisUrl();
    const capture = spawn(process.execPath, [BIN, 'capture', '--monitors', '9=synthetic:?size=160x120&fps=10'], {
      env: { ...process.env, REDIS_URL: redisUrl, ZMCAST_CAPTURE_METRICS_PORT: String(port) },
      stdio: 'ignore',
    });
    children.push(capture);
    await until(async () => {
      const text = await fetch(`http://127.0.0.1:${port}/metrics`).then((r) => r.text(), () => '');
      return /zmcast_capture_packets_total\{monitor="9"\} [1-9]/.test(text);
    }, 30_000, 'capture metrics');
    capture.kill('SIGTERM');
    expect(await new Promise((resolve) => capture.once('exit', resolve))).toBe(0);
  });
});

describe('zmcast token and hash-password', () => {
  const users = [
    { name: 'alice', monitors: [1, 2] },
    { name: 'gone', monitors: '*', enabled: false },
  ];

  it('mints a token that the config-mode authenticator accepts for that user and their monitors', async () => {
    const file = authConfigFile({ users });
    const r = run(['token', '--user', 'alice', '--ttl', '600', '--config', file]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const token = r.stdout.trim();
    expect(token).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/);
    const p = await login(file, { token });
    expect(p).toMatchObject({ user: 'alice', method: 'token' });
    expect([1, 2, 3].map((m) => p.canView(m))).toEqual([true, true, false]);
    const expiresIn = p.expiresAt! - Date.now();
    expect(expiresIn).toBeGreaterThan(590_000);
    expect(expiresIn).toBeLessThanOrEqual(600_000);
  });

  it('refuses a user that is not configured, or disabled, and prints no token', () => {
    const file = authConfigFile({ users });
    const unknown = run(['token', '--user', 'mallory', '--config', file]);
    expect(unknown.status).toBe(2);
    expect(unknown.stdout).toBe('');
    expect(unknown.stderr).toContain('user "mallory" is not in auth.users');
    const disabled = run(['token', '--user', 'gone', '--config', file]);
    expect(disabled.status).toBe(2);
    expect(disabled.stderr).toContain('user "gone" is disabled');
  });

  it('refuses without a signing secret, outside mode config, and without --user', () => {
    const noSecret = run(['token', '--user', 'alice', '--config', authConfigFile({ users, secret: '' })]);
    expect(noSecret.status).toBe(2);
    expect(noSecret.stdout).toBe('');
    expect(noSecret.stderr).toContain('auth.secret (env ZMCAST_AUTH_SECRET) is empty');
    const zm = run(['token', '--user', 'alice', '--config', authConfigFile({ users, mode: 'zoneminder' })]);
    expect(zm.status).toBe(2);
    expect(zm.stderr).toContain('zmcast token mints tokens for mode config only');
    expect(run(['token']).stderr).toContain('token needs --user NAME');
    expect(run(['token', '--user', 'alice', '--ttl', '5', '--config', authConfigFile({ users })]).stderr).toContain('auth.tokenTtlSec');
  });

  it('hashes a password read from stdin into a bcrypt hash the config file accepts', async () => {
    const r = run(['hash-password'], {}, 'correct horse battery staple\n');
    expect(r.status).toBe(0);
    const hash = r.stdout.trim();
    expect(hash).toMatch(/^\$2b\$12\$[./A-Za-z0-9]{53}$/);
    expect(await bcrypt.compare('correct horse battery staple', hash)).toBe(true);
    const file = authConfigFile({ users: [{ name: 'bob', password: hash, monitors: [7] }] });
    expect(await login(file, { user: 'bob', password: 'correct horse battery staple' })).toMatchObject({ user: 'bob', method: 'password' });
    expect(run(['hash-password'], {}, '').stderr).toContain('empty password');
  });
});
