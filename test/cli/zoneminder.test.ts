/**
 * `zmcast capture --auth zoneminder` as an operator runs it next to an
 * existing ZoneMinder: the real binary, reading a zm.conf (and conf.d) that
 * points at a real MariaDB with ZoneMinder's tables, capturing into Redis.
 */
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { MONITORS_KEY } from '../../shared/redis-keys.js';
import { freePort } from '../../shared/redis-locator.js';
import { createZmTestDatabase, writeZmConf, type TestDatabase } from '../helpers/mariadb.js';
import { freshRedisUrl } from '../helpers/redis.js';
import { until } from '../helpers/wait.js';
import { SECRET, ZmFixture, zmToken } from '../zoneminder/fixtures.js';

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'zmcast.js');
const CAM = 'synthetic:?size=160x120&fps=10&gop=10';
const children: ChildProcess[] = [];
afterAll(() => children.forEach((c) => c.kill('SIGKILL')));

let db: TestDatabase;
let zm: ZmFixture;
let redis: Redis | null = null;

beforeEach(async () => {
  db = await createZmTestDatabase();
  zm = new ZmFixture(db);
  await db.sql.query("INSERT INTO Servers (Id, Name, Hostname) VALUES (1, 'cam-a', 'a.local'), (2, 'cam-b', 'b.local')");
});

afterEach(async () => {
  redis?.disconnect();
  redis = null;
  await db.drop();
});

/** zm.conf with the database settings, and conf.d/ naming this server, as a ZoneMinder host has them. */
const zmConf = (serverName?: string): string => writeZmConf(db, serverName);

/** This process's environment without anything that would steer zmcast or ZoneMinder settings. */
function cleanEnv(extra: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('ZM_') && !k.startsWith('ZMCAST_')) env[k] = v;
  return { ...env, ZMCAST_CAPTURE_METRICS_PORT: '0', ZMCAST_EDGE_ADMIN_PORT: '0', ...extra };
}

/** Starts a long-running zmcast command and resolves once it logged `started`. */
async function startZmcast(args: string[], env: NodeJS.ProcessEnv): Promise<{ child: ChildProcess; log: () => string }> {
  const child = spawn(process.execPath, [BIN, ...args], { env: cleanEnv(env), stdio: ['ignore', 'ignore', 'pipe'] });
  children.push(child);
  let log = '';
  child.stderr!.on('data', (d) => (log += d));
  await until(() => log.includes('"msg":"started"'), 30_000, `zmcast ${args[0]} to start`);
  return { child, log: () => log };
}

async function stopZmcast(child: ChildProcess): Promise<number | null> {
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  return exited;
}

async function registered(): Promise<number[]> {
  return (await redis!.smembers(MONITORS_KEY)).map(Number).sort((a, b) => a - b);
}

describe('zmcast capture --auth zoneminder', () => {
  it('captures the monitors ZoneMinder runs on this server and follows the Monitors table while running', async () => {
    await zm.addMonitor({ id: 1, name: 'Front', path: CAM, serverId: 1 });
    await zm.addMonitor({ id: 2, name: 'Back', path: CAM, serverId: 1, capturing: 'Ondemand' });
    await zm.addMonitor({ id: 3, name: 'Off', path: CAM, serverId: 1, capturing: 'None' });
    await zm.addMonitor({ id: 4, name: 'Deleted', path: CAM, serverId: 1, deleted: 1 });
    await zm.addMonitor({ id: 5, name: 'Web page', path: CAM, serverId: 1, type: 'WebSite' });
    await zm.addMonitor({ id: 6, name: 'Other server', path: CAM, serverId: 2 });
    const url = await freshRedisUrl();
    redis = new Redis(url);
    const capture = spawn(process.execPath, [BIN, 'capture', '--auth', 'zoneminder', '--zm-conf', zmConf('cam-a'), '--zm-refresh', '1'], {
      env: cleanEnv({ REDIS_URL: url }),
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    children.push(capture);
    let log = '';
    capture.stderr!.on('data', (d) => (log += d));

    await until(() => log.includes('"msg":"started"'), 30_000, 'capture to start');
    expect(JSON.parse(log.split('\n').find((l) => l.includes('"msg":"started"'))!)).toMatchObject({ auth: 'zoneminder', capture: 2, monitors_from: 'zoneminder' });
    expect(await registered()).toEqual([1, 2]);
    expect(await redis.hgetall('zmcast:monitor-names')).toEqual({ 1: 'Front', 2: 'Back' });

    await zm.addMonitor({ id: 7, name: 'New', path: CAM, serverId: 1 });
    await until(async () => (await registered()).includes(7), 10_000, 'monitor 7 added');
    await db.sql.query('UPDATE Monitors SET Deleted = 1 WHERE Id = 1');
    await until(async () => !(await registered()).includes(1), 10_000, 'monitor 1 removed');
    expect(await registered()).toEqual([2, 7]);
    expect(log).not.toContain('"level":"error"');

    const exited = new Promise((resolve) => capture.once('exit', resolve));
    capture.kill('SIGTERM');
    expect(await exited).toBe(0);
  });

  it('reads ZM_DB_* from the environment over zm.conf', () => {
    const r = spawnSync(process.execPath, [BIN, 'capture', '--auth', 'zoneminder', '--zm-conf', zmConf()], {
      env: cleanEnv({ ZM_DB_USER: 'nobody-here', ZM_DB_PASS: 'wrong', REDIS_URL: 'redis://127.0.0.1:1' }),
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/cannot load the monitors from ZoneMinder's database: Access denied for user 'nobody-here'/);
    expect(r.stderr).not.toContain('wrong');
  });

  it('refuses without database settings, with an unknown ZM_SERVER_NAME, and beside a configured monitor list', () => {
    const run = (args: string[], env: NodeJS.ProcessEnv = {}) =>
      spawnSync(process.execPath, [BIN, 'capture', '--auth', 'zoneminder', ...args], { env: cleanEnv({ REDIS_URL: 'redis://127.0.0.1:1', ...env }), encoding: 'utf8', timeout: 30_000 });
    const none = run(['--zm-conf', join(mkdtempSync(join(tmpdir(), 'zmcast-empty-')), 'zm.conf')]);
    expect(none.status).toBe(2);
    expect(none.stderr).toContain('ZoneMinder database settings not found');
    const unknown = run(['--zm-conf', zmConf('cam-z')]);
    expect(unknown.status).toBe(1);
    expect(unknown.stderr).toContain('ZM_SERVER_NAME "cam-z" is not in the Servers table');
    const both = run(['--zm-conf', zmConf(), '--monitors', '1=synthetic:']);
    expect(both.status).toBe(2);
    expect(both.stderr).toContain('capture.monitors (env ZMCAST_MONITORS, --monitors) cannot be combined with auth.mode zoneminder');
  });

  it('with `zmcast edge --auth zoneminder` beside it, serves a viewer holding a ZoneMinder access token, and only that viewer', async () => {
    await zm.standardOptions();
    await zm.addUser({ username: 'viewer', stream: 'View', monitors: 'View' });
    await zm.addUser({ username: 'blind', stream: 'None', monitors: 'View' });
    await zm.addMonitor({ id: 1, name: 'Front', path: CAM });
    const url = await freshRedisUrl();
    const conf = zmConf();
    const capture = await startZmcast(['capture', '--auth', 'zoneminder', '--zm-conf', conf], { REDIS_URL: url });
    const port = await freePort();
    const adminPort = await freePort();
    const edge = await startZmcast(['edge', '--auth', 'zoneminder', '--zm-conf', conf, '--port', String(port)], { REDIS_URL: url, ZMCAST_EDGE_ADMIN_PORT: String(adminPort) });
    expect(await fetch(`http://127.0.0.1:${adminPort}/readyz`).then((r) => r.text())).toContain('auth: zoneminder');

    const watch = (token: string) => spawnSync(process.execPath, [BIN, 'watch', `http://127.0.0.1:${port}`, '--monitor', '1', '--token', token, '--duration', '2', '--quiet', '--out', '/dev/null'], {
      encoding: 'utf8', timeout: 30_000,
    });
    const ok = watch(zmToken(SECRET, 'viewer'));
    expect(ok.status).toBe(0);
    expect(JSON.parse(ok.stderr.trim().split('\n').pop()!).packets).toBeGreaterThan(5);
    // Signed with another key, or a refresh token: refused at the upgrade.
    for (const token of [zmToken('some-other-secret-some-other-secret', 'viewer'), zmToken(SECRET, 'viewer', { type: 'refresh' })]) {
      const refused = watch(token);
      expect(refused.status).toBe(1);
      expect(refused.stderr).toMatch(/^zmcast: cannot watch http:\/\/127\.0\.0\.1:\d+: edge refused the connection: HTTP 401\n$/);
    }
    // A real user without Stream permission: signed in, but the monitor is refused.
    const blind = watch(zmToken(SECRET, 'blind'));
    expect(blind.status).toBe(1);
    expect(blind.stderr).toContain('error forbidden');
    expect(JSON.parse(blind.stderr.trim().split('\n').pop()!).packets).toBe(0);

    expect(await stopZmcast(edge.child)).toBe(0);
    expect(await stopZmcast(capture.child)).toBe(0);
  });
});
