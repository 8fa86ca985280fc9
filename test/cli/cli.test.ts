/**
 * The command a user types: the real `zmcast` binary, as a child process.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../shared/redis-locator.js';
import { freshRedisUrl } from '../helpers/redis.js';
import { until } from '../helpers/edge.js';

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'zmcast.js');
const children: ChildProcess[] = [];
afterAll(() => children.forEach((c) => c.kill('SIGKILL')));

const run = (args: string[], env: NodeJS.ProcessEnv = {}) =>
  spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 60_000 });

describe('zmcast command line', () => {
  it('prints usage with every command and configuration variable', () => {
    const r = run(['--help']);
    expect(r.status).toBe(0);
    for (const word of ['zmcast demo', 'zmcast capture', 'zmcast edge', 'zmcast watch', 'ZMCAST_EDGE_PORT', 'ZMCAST_MONITORS']) expect(r.stdout).toContain(word);
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

  it('runs the demo, and `zmcast watch` records a stream that ffprobe decodes', async () => {
    const port = await freePort();
    const redisUrl = await freshRedisUrl();
    const demo = spawn(process.execPath, [BIN, 'demo', '--port', String(port), '--monitors', '2'], {
      env: { ...process.env, REDIS_URL: redisUrl },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(demo);
    let out = '';
    demo.stdout!.on('data', (d) => (out += d));
    demo.stderr!.resume();
    await until(() => out.includes('Press Ctrl-C'), 30_000, 'demo to start');
    expect(out).toContain(`zmcast watch http://localhost:${port} --monitor 1`);

    const file = join(mkdtempSync(join(tmpdir(), 'zmcast-watch-')), 'm1.h264');
    const watch = spawnSync(process.execPath, [BIN, 'watch', `http://127.0.0.1:${port}`, '--monitor', '1', '--out', file, '--duration', '3', '--quiet'], {
      encoding: 'utf8', timeout: 30_000,
    });
    expect(watch.status).toBe(0);
    const summary = JSON.parse(watch.stderr.trim().split('\n').pop()!);
    expect(summary.packets).toBeGreaterThan(40);
    expect(summary.dropped).toBe(0);
    expect(statSync(file).size).toBeGreaterThan(summary.bytes); // payloads plus the parameter sets in front
    const probe = spawnSync('ffprobe', ['-v', 'error', '-count_frames', '-f', 'h264', '-show_entries', 'stream=codec_name,nb_read_frames', '-of', 'json', file], { encoding: 'utf8' });
    expect(probe.stderr).toBe('');
    const stream = JSON.parse(probe.stdout).streams[0];
    expect(stream.codec_name).toBe('h264');
    expect(Number(stream.nb_read_frames)).toBe(summary.packets);

    demo.kill('SIGINT');
    const code = await new Promise<number | null>((resolve) => demo.once('exit', resolve));
    expect(code).toBe(0);
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
