/**
 * One typed configuration for every service. Values come from (last wins):
 * defaults, an optional JSON file (`--config`/ZMCAST_CONFIG), environment
 * variables, then command-line overrides. A bad value stops start-up with an
 * error that names its key and its variable.
 */
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';

export interface MonitorSpec {
  id: number;
  name: string;
  /** `synthetic:[?size=WxH&fps=N&gop=N&bitrate=N&codec=h264|h265]`, `rtsp://…`, or a file path/`file:` URL. */
  source: string;
}

export interface Config {
  redis: { url: string };
  edge: {
    host: string;
    port: number;
    maxPayload: number;
    softLimitBytes: number;
    hardLimitBytes: number;
    hardLimitMs: number;
    maxSubscriptions: number;
    commandsPerSecond: number;
  };
  capture: {
    monitors: MonitorSpec[];
    node: string;
    statusIntervalMs: number;
    statusTtlMs: number;
    reconnectMinMs: number;
    reconnectMaxMs: number;
    rtspTimeoutMs: number;
    /** Port of /metrics when capture runs without an edge in the same process; 0 turns it off. */
    metricsPort: number;
  };
  retention: { gops: number; seconds: number; maxEntries: number; events: number };
  log: { level: 'debug' | 'info' | 'warn' | 'error' };
}

export class ConfigError extends Error {
  readonly code = 'bad_config';
}

type Parser<T> = (raw: unknown) => T;
interface Field<T> {
  env: string;
  def: T;
  parse: Parser<T>;
}

const int = (min: number, max: number): Parser<number> => (raw) => {
  const n = typeof raw === 'string' && raw.trim() !== '' ? Number(raw) : raw;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < min || n > max) {
    throw new Error(`expected an integer from ${min} to ${max}, got ${JSON.stringify(raw)}`);
  }
  return n;
};
const str: Parser<string> = (raw) => {
  if (typeof raw !== 'string') throw new Error(`expected a string, got ${JSON.stringify(raw)}`);
  return raw;
};
const oneOf = <T extends string>(...values: T[]): Parser<T> => (raw) => {
  if (typeof raw !== 'string' || !values.includes(raw as T)) {
    throw new Error(`expected one of ${values.join(', ')}, got ${JSON.stringify(raw)}`);
  }
  return raw as T;
};

/** `1=synthetic:,2=rtsp://cam/stream` in env; an array of {id,name?,source} in the file. */
export const monitorList: Parser<MonitorSpec[]> = (raw) => {
  const items: unknown[] = typeof raw === 'string'
    ? raw.split(',').map((s) => s.trim()).filter(Boolean).map((s) => {
        const eq = s.indexOf('=');
        if (eq < 1) throw new Error(`expected ID=SOURCE, got ${JSON.stringify(s)}`);
        return { id: s.slice(0, eq), source: s.slice(eq + 1) };
      })
    : Array.isArray(raw) ? raw : (() => { throw new Error('expected a list of monitors'); })();
  const seen = new Set<number>();
  return items.map((item) => {
    const o = item as Record<string, unknown>;
    const id = int(0, 0xffffffff)(o.id);
    if (seen.has(id)) throw new Error(`monitor ${id} is listed twice`);
    seen.add(id);
    const source = str(o.source);
    if (!/^(synthetic:|rtsp:\/\/|rtsps:\/\/|file:|\/|\.)/.test(source)) {
      throw new Error(`monitor ${id}: source must be synthetic:…, rtsp://… or a file path, got ${JSON.stringify(source)}`);
    }
    return { id, name: o.name === undefined ? `Monitor ${id}` : str(o.name), source };
  });
};

const f = <T>(env: string, def: T, parse: Parser<T>): Field<T> => ({ env, def, parse });

const SCHEMA = {
  redis: {
    url: f('ZMCAST_REDIS_URL', '', str),
  },
  edge: {
    host: f('ZMCAST_EDGE_HOST', '0.0.0.0', str),
    port: f('ZMCAST_EDGE_PORT', 8080, int(0, 65535)),
    maxPayload: f('ZMCAST_EDGE_MAX_PAYLOAD', 64 * 1024, int(128, 16 * 1024 * 1024)),
    softLimitBytes: f('ZMCAST_EDGE_SOFT_LIMIT_BYTES', 2 * 1024 * 1024, int(16 * 1024, 1 << 30)),
    hardLimitBytes: f('ZMCAST_EDGE_HARD_LIMIT_BYTES', 8 * 1024 * 1024, int(32 * 1024, 1 << 30)),
    hardLimitMs: f('ZMCAST_EDGE_HARD_LIMIT_MS', 5000, int(100, 600_000)),
    maxSubscriptions: f('ZMCAST_EDGE_MAX_SUBSCRIPTIONS', 64, int(1, 10_000)),
    commandsPerSecond: f('ZMCAST_EDGE_COMMANDS_PER_SECOND', 50, int(1, 100_000)),
  },
  capture: {
    monitors: f<MonitorSpec[]>('ZMCAST_MONITORS', [], monitorList),
    node: f('ZMCAST_CAPTURE_NODE', hostname(), str),
    statusIntervalMs: f('ZMCAST_STATUS_INTERVAL_MS', 1000, int(100, 60_000)),
    statusTtlMs: f('ZMCAST_STATUS_TTL_MS', 5000, int(500, 600_000)),
    reconnectMinMs: f('ZMCAST_RECONNECT_MIN_MS', 500, int(10, 600_000)),
    reconnectMaxMs: f('ZMCAST_RECONNECT_MAX_MS', 30_000, int(10, 3_600_000)),
    rtspTimeoutMs: f('ZMCAST_RTSP_TIMEOUT_MS', 5000, int(100, 600_000)),
    metricsPort: f('ZMCAST_CAPTURE_METRICS_PORT', 9464, int(0, 65535)),
  },
  retention: {
    gops: f('ZMCAST_RETENTION_GOPS', 3, int(1, 1000)),
    seconds: f('ZMCAST_RETENTION_SECONDS', 30, int(1, 86_400)),
    maxEntries: f('ZMCAST_RETENTION_MAX_ENTRIES', 20_000, int(100, 10_000_000)),
    events: f('ZMCAST_RETENTION_EVENTS', 10_000, int(10, 10_000_000)),
  },
  log: {
    level: f('ZMCAST_LOG_LEVEL', 'info' as Config['log']['level'], oneOf('debug', 'info', 'warn', 'error')),
  },
};

/** A partial Config, as given by a file or command-line flags. */
export type ConfigOverrides = { [S in keyof Config]?: Partial<Config[S]> };

export interface LoadOptions {
  env?: NodeJS.ProcessEnv;
  file?: string;
  overrides?: ConfigOverrides;
}

export function loadConfig(opts: LoadOptions = {}): Config {
  const env = opts.env ?? process.env;
  const file = opts.file ?? env.ZMCAST_CONFIG;
  const fromFile = file ? readJson(file) : {};
  const out: Record<string, Record<string, unknown>> = {};
  for (const [section, fields] of Object.entries(SCHEMA)) {
    out[section] = {};
    const fileSection = (fromFile[section] ?? {}) as Record<string, unknown>;
    const overSection = ((opts.overrides as Record<string, Record<string, unknown>> | undefined)?.[section] ?? {});
    for (const [key, field] of Object.entries(fields as Record<string, Field<unknown>>)) {
      const name = `${section}.${key}`;
      let value: unknown = field.def;
      try {
        if (fileSection[key] !== undefined) value = field.parse(fileSection[key]);
        const envValue = env[field.env] ?? (name === 'redis.url' ? env.REDIS_URL : undefined);
        if (envValue !== undefined && envValue !== '') value = field.parse(envValue);
        if (overSection[key] !== undefined) value = field.parse(overSection[key]);
      } catch (err) {
        throw new ConfigError(`config ${name} (env ${field.env}): ${(err as Error).message}`);
      }
      out[section][key] = value;
    }
  }
  const config = out as unknown as Config;
  if (config.edge.hardLimitBytes <= config.edge.softLimitBytes) {
    throw new ConfigError('config edge.hardLimitBytes (env ZMCAST_EDGE_HARD_LIMIT_BYTES): must be above edge.softLimitBytes');
  }
  return config;
}

function readJson(path: string): Record<string, unknown> {
  try {
    const parsed = JSON.parse(readFileSync(path, 'utf8'));
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not a JSON object');
    return parsed;
  } catch (err) {
    throw new ConfigError(`config file ${path}: ${(err as Error).message}`);
  }
}

/** Every variable the schema reads, for --help. */
export function describeConfig(): string[] {
  const lines: string[] = [];
  for (const [section, fields] of Object.entries(SCHEMA)) {
    for (const [key, field] of Object.entries(fields as Record<string, Field<unknown>>)) {
      const def = Array.isArray(field.def) ? '[]' : JSON.stringify(field.def);
      lines.push(`  ${field.env.padEnd(32)} ${section}.${key} (default ${def})`);
    }
  }
  return lines;
}
