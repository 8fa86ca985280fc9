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
