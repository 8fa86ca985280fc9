import { describe, expect, it } from 'vitest';
import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, ConfigError } from '../../shared/config.js';

describe('configuration', () => {
  it('has working defaults', () => {
    const c = loadConfig({ env: {} });
    expect(c.edge.port).toBe(8080);
    expect(c.capture.monitors).toEqual([]);
  });

  it('reads env, then a file, with env winning and flags over both', () => {
    const dir = mkdtempSync(join(tmpdir(), 'zmcast-cfg-'));
    const file = join(dir, 'zmcast.json');
    writeFileSync(file, JSON.stringify({ edge: { port: 9000, maxSubscriptions: 5 }, capture: { monitors: [{ id: 3, source: 'synthetic:' }] } }));
    const c = loadConfig({ env: { ZMCAST_EDGE_PORT: '9100' }, file });
    expect(c.edge.port).toBe(9100);
    expect(c.edge.maxSubscriptions).toBe(5);
    expect(c.capture.monitors).toEqual([{ id: 3, name: 'Monitor 3', source: 'synthetic:' }]);
    expect(loadConfig({ env: { ZMCAST_EDGE_PORT: '9100' }, file, overrides: { edge: { port: 9200 } } }).edge.port).toBe(9200);
  });

  it('parses monitor lists from the environment', () => {
    const c = loadConfig({ env: { ZMCAST_MONITORS: '1=synthetic:?fps=10, 2=rtsp://user:pw@cam/stream' } });
    expect(c.capture.monitors.map((m) => [m.id, m.source])).toEqual([[1, 'synthetic:?fps=10'], [2, 'rtsp://user:pw@cam/stream']]);
  });

  it('reads a second stream after | in the environment, or secondSource in the file', () => {
    const env = loadConfig({ env: { ZMCAST_MONITORS: '1=rtsp://cam/main|rtsp://cam/sub,2=synthetic:?size=1280x720|synthetic:?size=640x360,3=synthetic:' } });
    expect(env.capture.monitors).toEqual([
      { id: 1, name: 'Monitor 1', source: 'rtsp://cam/main', secondSource: 'rtsp://cam/sub' },
      { id: 2, name: 'Monitor 2', source: 'synthetic:?size=1280x720', secondSource: 'synthetic:?size=640x360' },
      { id: 3, name: 'Monitor 3', source: 'synthetic:' },
    ]);
    const file = loadConfig({ env: {}, overrides: { capture: { monitors: [{ id: 4, source: 'rtsp://cam/main', secondSource: 'rtsp://cam/sub' }] as never } } });
    expect(file.capture.monitors).toEqual([{ id: 4, name: 'Monitor 4', source: 'rtsp://cam/main', secondSource: 'rtsp://cam/sub' }]);
    expect(() => loadConfig({ env: { ZMCAST_MONITORS: '1=rtsp://a|ftp://b' } })).toThrow(/secondSource must be/);
    expect(() => loadConfig({ env: { ZMCAST_MONITORS: '1=rtsp://a|rtsp://b|rtsp://c' } })).toThrow(/at most two sources/);
  });

  it('rejects a bad value with an error naming the key and its variable', () => {
    expect(() => loadConfig({ env: { ZMCAST_EDGE_PORT: 'eighty' } })).toThrow(/edge\.port \(env ZMCAST_EDGE_PORT\).*"eighty"/);
    expect(() => loadConfig({ env: { ZMCAST_LOG_LEVEL: 'loud' } })).toThrow(ConfigError);
    expect(() => loadConfig({ env: { ZMCAST_MONITORS: '1=ftp://x' } })).toThrow(/capture\.monitors/);
    expect(() => loadConfig({ env: { ZMCAST_MONITORS: '1=synthetic:,1=synthetic:' } })).toThrow(/listed twice/);
    expect(() => loadConfig({ env: { ZMCAST_EDGE_SOFT_LIMIT_BYTES: '9000000', ZMCAST_EDGE_HARD_LIMIT_BYTES: '8000000' } })).toThrow(/hardLimitBytes/);
  });

  it('names the file when it is not valid JSON', () => {
    const dir = mkdtempSync(join(tmpdir(), 'zmcast-cfg-'));
    const file = join(dir, 'bad.json');
    writeFileSync(file, '{ nope');
    expect(() => loadConfig({ env: {}, file })).toThrow(new RegExp(`config file ${file}`));
  });
});
