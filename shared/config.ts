/**
 * One typed configuration for every service. Values come from (last wins):
 * defaults, an optional JSON file (`--config`/ZMCAST_CONFIG), environment
 * variables, then command-line overrides. A bad value stops start-up with an
 * error that names its key and its variable.
 */
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { TrustedProxies } from './auth/credentials.js';
import { checkTimeZone } from './zoneminder/auth-hash.js';
import { warnIfExposed } from './auth/secret-files.js';

export interface MonitorSpec {
  id: number;
  name: string;
  /** `synthetic:[?size=WxH&fps=N&gop=N&bitrate=N&codec=h264|h265]`, `rtsp://…`, or a file path/`file:` URL. */
  source: string;
  /** The camera's second, smaller stream (same forms as `source`), captured beside it as quality `sub`. */
  secondSource?: string;
}

/** A viewer of auth mode `config`. */
export interface AuthUserSpec {
  name: string;
  /** bcrypt hash (`$2a$`/`$2b$`/`$2y$`); absent: the user can only present tokens. */
  password?: string;
  /** Monitor ids this user may watch, or '*' for all. */
  monitors: number[] | '*';
  enabled: boolean;
  /** Tokens issued before this time (seconds since the epoch) are refused: per-user revocation. */
  tokensNotBefore: number;
}

export type AuthMode = 'zoneminder' | 'config' | 'jwks' | 'none';

export interface AuthConfig {
  mode: AuthMode;
  /** zoneminder: zm.conf path; conf.d/*.conf beside it is read too. ZM_DB_* in the environment win. */
  zmConf: string;
  /** zoneminder: IANA zone of the ZoneMinder server for auth= hashes; '' = this process's zone. */
  zmTimeZone: string;
  /** zoneminder: how often the Config table options are re-read. */
  zmRefreshMs: number;
  /** zoneminder: with ZM_AUTH_RELAY=none, accept a bare user= without a password (as zms does). */
  trustRelayNone: boolean;
  /** Addresses/CIDR ranges whose X-Forwarded-For is believed. */
  trustedProxies: string[];
  /** Accept user+password in the URL query (they end up in proxy logs). */
  queryPasswords: boolean;
  /** How long a connection without handshake credentials may take to send {"command":"auth"}; 0 = in-band auth off. */
  inBandTimeoutMs: number;
  /** How often the edge calls Principal.revalidate() on open connections: the bound on revocation delay. */
  revalidateMs: number;
  /** How long revalidation tolerates an unreachable identity source before it fails connections. */
  revalidateGraceMs: number;
  /** How long before a credential expires the edge tells the client. */
  expiryWarningMs: number;
  /** Failed logins allowed per client address per minute; 0 = unlimited. */
  failuresPerMinute: number;
  /** config: HS256 secret for zmcast tokens (at least 32 characters). */
  secret: string;
  /** config: lifetime of tokens minted by `zmcast token`, seconds. */
  tokenTtlSec: number;
  users: AuthUserSpec[];
  jwksUrl: string;
  jwksFile: string;
  jwksIssuer: string;
  jwksAudience: string;
  jwksAlgorithms: string[];
  jwksUserClaim: string;
  /** Claim listing permitted monitor ids (array or space/comma-separated string; '*' = all). */
  jwksMonitorsClaim: string;
  /** JWKS cache lifetime: keys are re-fetched (or the file re-read) at least this often. */
  jwksRefreshMs: number;
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
    /**
     * Browser origins allowed to open WebSockets (`https://cams.example`), compared
     * whole (scheme, host, port); `*` allows any. Requests without Origin (non-browsers)
     * pass; so does a page the edge served itself on a loopback address.
     */
    allowedOrigins: string[];
    maxConnections: number;
    maxConnectionsPerAddress: number;
    maxConnectionsPerUser: number;
    /** PEM files for native TLS (wss://); both or neither. Re-read on change and on SIGHUP. */
    tlsCert: string;
    tlsKey: string;
    /** Time allowed to send the whole upgrade request. */
    handshakeTimeoutMs: number;
    /** Ping period; a connection that misses a whole period is dropped. */
    pingIntervalMs: number;
    /** Longest a montage socket's (2+ monitors) frame waits to share one write with the others; 0 = off. */
    coalesceMs: number;
    /** Write a packet to all its plain-TCP viewers in one native call (native/fanout.c) when it is built. */
    nativeWrites: boolean;
    /** Address of the admin listener (/metrics, detailed /readyz): loopback unless Prometheus scrapes from elsewhere. */
    adminHost: string;
    /** Port of the admin listener; 0 turns it off (no metrics anywhere). */
    adminPort: number;
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
    /** With auth.mode zoneminder: how often capture re-reads ZoneMinder's Monitors table. */
    zmRefreshMs: number;
    /** A monitor's capture lease lives this long unless renewed (every fifth of it): the failover time after kill -9. */
    leaseTtlMs: number;
  };
  workers: {
    /** Snapshot jobs one worker process runs at once. */
    concurrency: number;
    /** Derived picture streams one worker process produces at most. */
    maxDerived: number;
    /** A warm decoder stops this long after its last use. */
    idleStopMs: number;
    /** Job lock and heartbeat lifetime: a dead worker's derived streams move on within about 1.5× this. */
    lockMs: number;
    /** Port of /metrics when the worker runs without an edge in the same process; 0 turns it off. */
    metricsPort: number;
  };
  /** fullHoldSeconds: after Redis refused a write for lack of memory, keep one GOP per monitor this long. */
  retention: { gops: number; seconds: number; maxEntries: number; events: number; fullHoldSeconds: number };
  log: { level: 'debug' | 'info' | 'warn' | 'error' };
  auth: AuthConfig;
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

const bool: Parser<boolean> = (raw) => {
  if (typeof raw === 'boolean') return raw;
  if (typeof raw === 'string' && /^(1|true|yes|on)$/i.test(raw.trim())) return true;
  if (typeof raw === 'string' && /^(0|false|no|off)$/i.test(raw.trim())) return false;
  throw new Error(`expected true or false, got ${JSON.stringify(raw)}`);
};
/** Comma-separated in env, an array of strings in the file. */
const list = (check: (item: string) => void = () => {}): Parser<string[]> => (raw) => {
  const items = typeof raw === 'string' ? raw.split(',') : Array.isArray(raw) ? raw : null;
  if (!items) throw new Error(`expected a list, got ${JSON.stringify(raw)}`);
  return items.map((item) => {
    if (typeof item !== 'string') throw new Error(`expected strings in the list, got ${JSON.stringify(item)}`);
    const v = item.trim();
    check(v);
    return v;
  }).filter(Boolean);
};
/** A secret: its value never appears in an error. */
const secret = (minLength: number): Parser<string> => (raw) => {
  if (typeof raw !== 'string') throw new Error('expected a string');
  if (raw !== '' && raw.length < minLength) throw new Error(`must be at least ${minLength} characters (value not shown)`);
  return raw;
};
const timeZone: Parser<string> = (raw) => {
  const tz = str(raw).trim();
  if (tz === '') return tz;
  try {
    checkTimeZone(tz);
  } catch {
    throw new Error(`unknown time zone ${JSON.stringify(tz)} (expected an IANA name such as Europe/Berlin)`);
  }
  return tz;
};
/** An origin exactly as browsers send it (`https://cams.example`, `http://10.0.0.5:8080`), or `*`. */
function checkOrigin(v: string): void {
  if (v === '*' || v === '') return;
  let origin: string;
  try {
    const u = new URL(v);
    origin = u.protocol === 'http:' || u.protocol === 'https:' ? u.origin : 'null';
  } catch {
    origin = 'null';
  }
  if (origin === 'null') throw new Error(`${JSON.stringify(v)} is not an http(s) origin such as https://cams.example`);
  if (origin !== v) throw new Error(`${JSON.stringify(v)} is not an origin as browsers send it: write ${JSON.stringify(origin)}`);
}
const ASYMMETRIC_ALGS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'];
const BCRYPT_HASH = /^\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}$/;

/** JSON text in env, an array in the file: [{name, password: "$2y$…", monitors: [1,2] | "*", enabled?, tokensNotBefore?}]. */
export const authUserList: Parser<AuthUserSpec[]> = (raw) => {
  let value = raw;
  if (typeof raw === 'string') {
    try {
      value = JSON.parse(raw);
    } catch {
      throw new Error('expected a JSON array of users');
    }
  }
  if (!Array.isArray(value)) throw new Error('expected a list of users');
  const seen = new Set<string>();
  return value.map((item, i) => {
    if (typeof item !== 'object' || item === null || Array.isArray(item)) throw new Error(`user #${i}: expected an object`);
    const o = item as Record<string, unknown>;
    if (typeof o.name !== 'string' || o.name === '' || o.name.length > 64 || /[\u0000-\u001f\u007f]/.test(o.name)) {
      throw new Error(`user #${i}: name must be 1 to 64 printable characters`);
    }
    const name = o.name;
    if (seen.has(name)) throw new Error(`user ${JSON.stringify(name)} is listed twice`);
    seen.add(name);
    if (o.password !== undefined && (typeof o.password !== 'string' || !BCRYPT_HASH.test(o.password))) {
      throw new Error(`user ${JSON.stringify(name)}: password must be a bcrypt hash ($2a$, $2b$ or $2y$), never the password itself (value not shown)`);
    }
    let monitors: number[] | '*';
    if (o.monitors === '*') monitors = '*';
    else if (Array.isArray(o.monitors)) monitors = o.monitors.map((m) => int(0, 0xffffffff)(m));
    else throw new Error(`user ${JSON.stringify(name)}: monitors must be a list of monitor ids or "*"`);
    const enabled = o.enabled === undefined ? true : bool(o.enabled);
    const tokensNotBefore = o.tokensNotBefore === undefined ? 0 : int(0, Number.MAX_SAFE_INTEGER)(o.tokensNotBefore);
    const user: AuthUserSpec = { name, monitors, enabled, tokensNotBefore };
    if (o.password !== undefined) user.password = o.password as string;
    return user;
  });
};

/**
 * `1=synthetic:,2=rtsp://cam/main|rtsp://cam/sub` in env (`|` adds the
 * second stream); an array of {id,name?,source,secondSource?} in the file.
 */
export const monitorList: Parser<MonitorSpec[]> = (raw) => {
  const items: unknown[] = typeof raw === 'string'
    ? raw.split(',').map((s) => s.trim()).filter(Boolean).map((s) => {
        const eq = s.indexOf('=');
        if (eq < 1) throw new Error(`expected ID=SOURCE or ID=SOURCE|SECOND_SOURCE, got ${JSON.stringify(s)}`);
        const [source, secondSource, ...rest] = s.slice(eq + 1).split('|');
        if (rest.length > 0) throw new Error(`monitor ${s.slice(0, eq)}: at most two sources (SOURCE|SECOND_SOURCE)`);
        return { id: s.slice(0, eq), source, secondSource };
      })
    : Array.isArray(raw) ? raw : (() => { throw new Error('expected a list of monitors'); })();
  const seen = new Set<number>();
  return items.map((item) => {
    const o = item as Record<string, unknown>;
    const id = int(0, 0xffffffff)(o.id);
    if (seen.has(id)) throw new Error(`monitor ${id} is listed twice`);
    seen.add(id);
    const spec: MonitorSpec = { id, name: o.name === undefined ? `Monitor ${id}` : str(o.name), source: sourceOf(id, 'source', o.source) };
    if (o.secondSource !== undefined && o.secondSource !== null) spec.secondSource = sourceOf(id, 'secondSource', o.secondSource);
    return spec;
  });
};

function sourceOf(id: number, field: string, raw: unknown): string {
  const source = str(raw);
  if (!/^(synthetic:|rtsp:\/\/|rtsps:\/\/|file:|\/|\.)/.test(source)) {
    throw new Error(`monitor ${id}: ${field} must be synthetic:…, rtsp://… or a file path, got ${JSON.stringify(source)}`);
  }
  return source;
}

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
    allowedOrigins: f<string[]>('ZMCAST_EDGE_ALLOWED_ORIGINS', [], list(checkOrigin)),
    maxConnections: f('ZMCAST_EDGE_MAX_CONNECTIONS', 20_000, int(1, 10_000_000)),
    maxConnectionsPerAddress: f('ZMCAST_EDGE_MAX_CONNECTIONS_PER_ADDRESS', 256, int(1, 10_000_000)),
    maxConnectionsPerUser: f('ZMCAST_EDGE_MAX_CONNECTIONS_PER_USER', 256, int(1, 10_000_000)),
    tlsCert: f('ZMCAST_EDGE_TLS_CERT', '', str),
    tlsKey: f('ZMCAST_EDGE_TLS_KEY', '', str),
    handshakeTimeoutMs: f('ZMCAST_EDGE_HANDSHAKE_TIMEOUT_MS', 10_000, int(100, 600_000)),
    pingIntervalMs: f('ZMCAST_EDGE_PING_INTERVAL_MS', 30_000, int(100, 3_600_000)),
    coalesceMs: f('ZMCAST_EDGE_COALESCE_MS', 5, int(0, 50)),
    nativeWrites: f('ZMCAST_EDGE_NATIVE_WRITES', true, bool),
    adminHost: f('ZMCAST_EDGE_ADMIN_HOST', '127.0.0.1', str),
    adminPort: f('ZMCAST_EDGE_ADMIN_PORT', 9465, int(0, 65535)),
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
    zmRefreshMs: f('ZMCAST_CAPTURE_ZM_REFRESH_MS', 30_000, int(1000, 86_400_000)),
    leaseTtlMs: f('ZMCAST_CAPTURE_LEASE_TTL_MS', 5000, int(500, 600_000)),
  },
  workers: {
    concurrency: f('ZMCAST_WORKER_CONCURRENCY', 4, int(1, 256)),
    maxDerived: f('ZMCAST_WORKER_MAX_DERIVED', 500, int(1, 100_000)),
    idleStopMs: f('ZMCAST_WORKER_IDLE_STOP_MS', 5000, int(100, 600_000)),
    lockMs: f('ZMCAST_WORKER_LOCK_MS', 3000, int(1000, 600_000)),
    metricsPort: f('ZMCAST_WORKER_METRICS_PORT', 9466, int(0, 65535)),
  },
  retention: {
    gops: f('ZMCAST_RETENTION_GOPS', 3, int(1, 1000)),
    seconds: f('ZMCAST_RETENTION_SECONDS', 30, int(1, 86_400)),
    maxEntries: f('ZMCAST_RETENTION_MAX_ENTRIES', 20_000, int(100, 10_000_000)),
    events: f('ZMCAST_RETENTION_EVENTS', 10_000, int(10, 10_000_000)),
    fullHoldSeconds: f('ZMCAST_RETENTION_FULL_HOLD_SECONDS', 60, int(1, 86_400)),
  },
  log: {
    level: f('ZMCAST_LOG_LEVEL', 'info' as Config['log']['level'], oneOf('debug', 'info', 'warn', 'error')),
  },
  auth: {
    // No default to `none`: an edge without configured auth refuses everyone (config mode, no users).
    mode: f('ZMCAST_AUTH_MODE', 'config' as AuthMode, oneOf<AuthMode>('zoneminder', 'config', 'jwks', 'none')),
    zmConf: f('ZMCAST_AUTH_ZM_CONF', '/etc/zm/zm.conf', str),
    zmTimeZone: f('ZMCAST_AUTH_ZM_TIME_ZONE', '', timeZone),
    zmRefreshMs: f('ZMCAST_AUTH_ZM_REFRESH_MS', 60_000, int(1000, 3_600_000)),
    trustRelayNone: f('ZMCAST_AUTH_TRUST_RELAY_NONE', false, bool),
    trustedProxies: f<string[]>('ZMCAST_AUTH_TRUSTED_PROXIES', [], list((v) => { if (v) new TrustedProxies([v]); })),
    queryPasswords: f('ZMCAST_AUTH_QUERY_PASSWORDS', true, bool),
    inBandTimeoutMs: f('ZMCAST_AUTH_IN_BAND_TIMEOUT_MS', 5000, int(0, 60_000)),
    revalidateMs: f('ZMCAST_AUTH_REVALIDATE_MS', 30_000, int(1000, 3_600_000)),
    revalidateGraceMs: f('ZMCAST_AUTH_REVALIDATE_GRACE_MS', 300_000, int(0, 86_400_000)),
    expiryWarningMs: f('ZMCAST_AUTH_EXPIRY_WARNING_MS', 60_000, int(0, 3_600_000)),
    failuresPerMinute: f('ZMCAST_AUTH_FAILURES_PER_MINUTE', 20, int(0, 100_000)),
    secret: f('ZMCAST_AUTH_SECRET', '', secret(32)),
    tokenTtlSec: f('ZMCAST_AUTH_TOKEN_TTL', 3600, int(60, 366 * 86_400)),
    users: f<AuthUserSpec[]>('ZMCAST_AUTH_USERS', [], authUserList),
    jwksUrl: f('ZMCAST_AUTH_JWKS_URL', '', str),
    jwksFile: f('ZMCAST_AUTH_JWKS_FILE', '', str),
    jwksIssuer: f('ZMCAST_AUTH_JWKS_ISSUER', '', str),
    jwksAudience: f('ZMCAST_AUTH_JWKS_AUDIENCE', '', str),
    jwksAlgorithms: f<string[]>('ZMCAST_AUTH_JWKS_ALGORITHMS', ['RS256', 'ES256', 'EdDSA'], list((v) => {
      if (v && !ASYMMETRIC_ALGS.includes(v)) throw new Error(`algorithm ${JSON.stringify(v)} is not allowed (asymmetric only: ${ASYMMETRIC_ALGS.join(', ')})`);
    })),
    jwksUserClaim: f('ZMCAST_AUTH_JWKS_USER_CLAIM', 'sub', str),
    jwksMonitorsClaim: f('ZMCAST_AUTH_JWKS_MONITORS_CLAIM', 'zmcast_monitors', str),
    jwksRefreshMs: f('ZMCAST_AUTH_JWKS_REFRESH_MS', 600_000, int(1000, 86_400_000)),
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
  if ((config.edge.tlsCert === '') !== (config.edge.tlsKey === '')) {
    throw new ConfigError('config edge.tlsCert / edge.tlsKey (env ZMCAST_EDGE_TLS_CERT / ZMCAST_EDGE_TLS_KEY): give both or neither');
  }
  if (config.edge.hardLimitBytes <= config.edge.softLimitBytes) {
    throw new ConfigError('config edge.hardLimitBytes (env ZMCAST_EDGE_HARD_LIMIT_BYTES): must be above edge.softLimitBytes');
  }
  checkAuth(config.auth);
  return config;
}

function checkAuth(a: AuthConfig): void {
  if (a.mode !== 'jwks') return;
  if ((a.jwksUrl === '') === (a.jwksFile === '')) {
    throw new ConfigError('config auth.jwksUrl / auth.jwksFile (env ZMCAST_AUTH_JWKS_URL / ZMCAST_AUTH_JWKS_FILE): mode jwks needs exactly one of them');
  }
  if (a.jwksUrl !== '') {
    let url: URL;
    try {
      url = new URL(a.jwksUrl);
    } catch {
      throw new ConfigError('config auth.jwksUrl (env ZMCAST_AUTH_JWKS_URL): not a URL');
    }
    const loopback = /^(localhost|127(\.\d+){3}|\[::1\])$/.test(url.hostname);
    if (url.protocol !== 'https:' && !(url.protocol === 'http:' && loopback)) {
      throw new ConfigError('config auth.jwksUrl (env ZMCAST_AUTH_JWKS_URL): must be https:// (plain http only on loopback)');
    }
  }
  if (a.jwksIssuer === '') throw new ConfigError('config auth.jwksIssuer (env ZMCAST_AUTH_JWKS_ISSUER): mode jwks needs the issuer to check');
  if (a.jwksAudience === '') throw new ConfigError('config auth.jwksAudience (env ZMCAST_AUTH_JWKS_AUDIENCE): mode jwks needs the audience to check');
  if (a.jwksAlgorithms.length === 0) throw new ConfigError('config auth.jwksAlgorithms (env ZMCAST_AUTH_JWKS_ALGORITHMS): at least one algorithm');
}

function readJson(path: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not a JSON object');
  } catch (err) {
    throw new ConfigError(`config file ${path}: ${(err as Error).message}`);
  }
  const auth = (parsed as { auth?: { secret?: unknown; users?: unknown } }).auth;
  if (auth?.secret || (Array.isArray(auth?.users) && auth.users.length > 0)) warnIfExposed(path, 'config file (holds auth.secret or password hashes)');
  return parsed as Record<string, unknown>;
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
