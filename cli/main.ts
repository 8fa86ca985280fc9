/**
 * The one zmcast command line: `zmcast demo|capture|edge|watch|token|hash-password`.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import '../shared/polyfills.js';
import { loadConfig, describeConfig, ConfigError, type AuthMode, type Config, type ConfigOverrides } from '../shared/config.js';
import { checkRedisVersion, createRedis, RedisVersionError } from '../shared/redis.js';
import { locateRedis, RedisNotFoundError } from '../shared/redis-locator.js';
import { setLogLevel, logger } from '../shared/log.js';
import { createAuthenticator, hashPassword, mintToken } from '../shared/auth/index.js';
import { ZmDatabase, zmDbSettings, zmServerIdentity, zmVariables } from '../shared/zoneminder/index.js';
import { EdgeServer } from '../services/edge/edge-server.js';
import { CaptureService } from '../services/capture/capture-service.js';
import { WorkerService } from '../services/workers/worker-service.js';
import { ZmMonitorSource } from '../services/capture/zm-monitor-source.js';
import { serveMetrics } from '../shared/metrics-server.js';
import { readSecret } from './read-secret.js';
import { watch, WatchConnectError } from './watch.js';

const USAGE = `zmcast — live view for camera clusters

Usage:
  zmcast demo    [--port P] [--monitors N] [--auth MODE] [--zm-conf PATH] [--config FILE]
                 capture + edge + picture worker on N synthetic cameras (default 4), edge on P (default 8080);
                 Redis from REDIS_URL, else 127.0.0.1:6379, else a private redis-server;
                 auth off (mode none) unless --auth, ZMCAST_AUTH_MODE or the config file choose one
  zmcast capture [--monitors "1=rtsp://cam/stream,2=synthetic:"] [--auth MODE] [--zm-conf PATH]
                 [--zm-refresh SECONDS] [--config FILE]
                 with --auth zoneminder: the monitors ZoneMinder captures on this server, from its
                 Monitors table, re-read every --zm-refresh seconds (capture.zmRefreshMs, default 30)
  zmcast edge    [--port P] [--auth MODE] [--zm-conf PATH] [--config FILE]
  zmcast worker  [--config FILE]
                 picture worker: snapshots and derived JPEG/raw streams for edges (BullMQ queues
                 in Redis); run one or more anywhere, /metrics on workers.metricsPort
  zmcast watch   URL[,URL...] --monitor N [--out FILE|-] [--duration SECONDS] [--token-file FILE | --token T] [--quiet]
                 writes the camera's codec (Annex-B H.264/H.265) to FILE or stdout; reconnects by itself
                 (backoff with jitter, the next URL on each attempt) and stops on refused credentials;
                 the token comes from --token-file (re-read on every attempt), else ZMCAST_TOKEN, else
                 --token (which every user of the machine can read in the process list)
  zmcast token   --user NAME [--ttl SECONDS] [--config FILE]
                 prints an access token for a user of auth mode config (signed with auth.secret)
  zmcast hash-password
                 reads a password on stdin, prints its bcrypt hash for auth.users[].password
  zmcast --help

  --auth MODE     zoneminder | config | jwks | none (auth.mode); see docs/security.md
  --zm-conf PATH  ZoneMinder's zm.conf, conf.d/*.conf beside it is read too (auth.zmConf);
                  ZM_DB_HOST, ZM_DB_NAME, ZM_DB_USER, ZM_DB_PASS, ZM_SERVER_ID/NAME in the environment win

Configuration: a JSON file (--config or ZMCAST_CONFIG) and these environment variables:
${describeConfig().join('\n')}
  REDIS_URL is read when ZMCAST_REDIS_URL is unset.
`;

const log = logger('cli');
const SHUTDOWN_LIMIT_MS = 10_000;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (!command || command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(USAGE);
    return command ? 0 : 2;
  }
  const { values, positionals } = parseCommandLine(command, rest);
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const overrides: ConfigOverrides = {};
  if (values.port !== undefined) overrides.edge = { port: values.port as unknown as number };
  // Flags go through the config schema, so a bad value is refused naming its key.
  if (values.auth !== undefined || values['zm-conf'] !== undefined) {
    overrides.auth = { mode: values.auth as AuthMode | undefined, zmConf: values['zm-conf'] };
  }

  switch (command) {
    case 'watch': {
      const url = positionals[0];
      const monitor = Number(values.monitor);
      if (!url || !Number.isInteger(monitor) || monitor < 0) throw new UsageError('watch needs URL and --monitor N');
      const summary = await watch({
        url,
        monitor,
        out: values.out,
        durationSec: values.duration ? Number(values.duration) : undefined,
        token: watchToken(values['token-file'], process.env.ZMCAST_TOKEN, values.token),
        quiet: values.quiet,
      });
      process.stderr.write(`${JSON.stringify(summary)}\n`);
      return summary.packets > 0 ? 0 : 1;
    }
    case 'demo': {
      const n = values.monitors === undefined ? 4 : Number(values.monitors);
      if (!Number.isInteger(n) || n < 1 || n > 64) throw new UsageError('--monitors must be 1..64 for the demo');
      overrides.capture = {
        // A 720p main stream and a 360p sub-stream, as cameras offer them; 15 fps keeps 4 monitors near half a core.
        monitors: Array.from({ length: n }, (_, i) => ({ id: i + 1, name: `Synthetic ${i + 1}`, source: DEMO_MAIN, secondSource: DEMO_SUB })),
      };
      // The demo is for trying zmcast out: no credentials (said loudly at start and on /readyz),
      // unless the operator chose a mode by flag, environment or config file.
      if (values.auth === undefined && !authModeChosen(values.config, process.env)) overrides.auth = { ...overrides.auth, mode: 'none' };
      return runServices(() => loadConfig({ file: values.config, overrides }), { capture: true, edge: true, worker: true, demo: true });
    }
    case 'capture': {
      if (values.monitors !== undefined) overrides.capture = { monitors: values.monitors as unknown as Config['capture']['monitors'] };
      if (values['zm-refresh'] !== undefined) overrides.capture = { ...overrides.capture, zmRefreshMs: seconds('--zm-refresh', values['zm-refresh'], 1, 86_400) * 1000 };
      return runServices(() => loadConfig({ file: values.config, overrides }), { capture: true, edge: false, worker: false, demo: false });
    }
    case 'edge':
      return runServices(() => loadConfig({ file: values.config, overrides }), { capture: false, edge: true, worker: false, demo: false });
    case 'worker':
      return runServices(() => loadConfig({ file: values.config, overrides }), { capture: false, edge: false, worker: true, demo: false });
    case 'token':
      return token(values.user, values.ttl, values.config);
    case 'hash-password':
      return hashPasswordCommand();
    default:
      throw new UsageError(`unknown command ${JSON.stringify(command)}`);
  }
}

/** Which flags each command takes; anything else is refused rather than silently ignored. */
const COMMAND_OPTIONS: Record<string, string[]> = {
  demo: ['port', 'monitors', 'auth', 'zm-conf', 'config'],
  capture: ['monitors', 'auth', 'zm-conf', 'zm-refresh', 'config'],
  edge: ['port', 'auth', 'zm-conf', 'config'],
  worker: ['config'],
  watch: ['monitor', 'out', 'duration', 'token', 'token-file', 'quiet'],
  token: ['user', 'ttl', 'config'],
  'hash-password': [],
};

function parseCommandLine(command: string, args: string[]) {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      options: {
        help: { type: 'boolean', short: 'h' },
        config: { type: 'string' },
        port: { type: 'string' },
        monitors: { type: 'string' },
        monitor: { type: 'string' },
        out: { type: 'string' },
        duration: { type: 'string' },
        token: { type: 'string' },
        'token-file': { type: 'string' },
        quiet: { type: 'boolean' },
        auth: { type: 'string' },
        'zm-conf': { type: 'string' },
        'zm-refresh': { type: 'string' },
        user: { type: 'string' },
        ttl: { type: 'string' },
      },
    });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const allowed = COMMAND_OPTIONS[command];
  if (allowed && !parsed.values.help) {
    const extra = Object.keys(parsed.values).find((k) => k !== 'help' && !allowed.includes(k));
    if (extra) throw new UsageError(`--${extra} is not an option of zmcast ${command}`);
  }
  return parsed;
}

function seconds(flag: string, raw: string, min: number, max: number): number {
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || n < min || n > max) throw new UsageError(`${flag} must be a whole number of seconds from ${min} to ${max}, got ${JSON.stringify(raw)}`);
  return n;
}

/** Whether the environment or the config file chose auth.mode (the demo defaults to none only when neither did). */
function authModeChosen(file: string | undefined, env: NodeJS.ProcessEnv): boolean {
  if (env.ZMCAST_AUTH_MODE) return true;
  const path = file ?? env.ZMCAST_CONFIG;
  if (!path) return false;
  try {
    return (JSON.parse(readFileSync(path, 'utf8')) as { auth?: { mode?: unknown } }).auth?.mode !== undefined;
  } catch {
    return false; // loadConfig reports what is wrong with the file
  }
}

/**
 * The token `watch` presents. A file is read at start (a wrong path stops
 * there) and again before every connection attempt, so a token refreshed on
 * disk is picked up on reconnect; an attempt whose read fails is retried.
 */
function watchToken(file: string | undefined, env: string | undefined, flag: string | undefined): string | (() => string) | undefined {
  if (file === undefined) return env || flag;
  const read = () => {
    try {
      return readFileSync(file, 'utf8').trim();
    } catch (err) {
      throw new UsageError(`cannot read --token-file ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  };
  read();
  return read;
}

/** `zmcast token`: an access token for a config-mode user, on stdout. */
async function token(user: string | undefined, ttl: string | undefined, file: string | undefined): Promise<number> {
  if (!user) throw new UsageError('token needs --user NAME');
  const config = loadConfig({ file, overrides: ttl === undefined ? {} : { auth: { tokenTtlSec: ttl as unknown as number } } });
  const a = config.auth;
  if (a.mode !== 'config') {
    throw new ConfigError(`config auth.mode (env ZMCAST_AUTH_MODE) is ${a.mode}: zmcast token mints tokens for mode config only` +
      (a.mode === 'zoneminder' ? ' (in zoneminder mode, clients use the tokens ZoneMinder issues)' : ''));
  }
  if (a.secret === '') throw new ConfigError('config auth.secret (env ZMCAST_AUTH_SECRET) is empty: set a secret of at least 32 characters to sign tokens');
  const u = a.users.find((x) => x.name === user);
  if (!u) throw new ConfigError(`user ${JSON.stringify(user)} is not in auth.users (env ZMCAST_AUTH_USERS): no token minted`);
  if (!u.enabled) throw new ConfigError(`user ${JSON.stringify(user)} is disabled in auth.users: no token minted`);
  const now = Date.now();
  if (u.tokensNotBefore > Math.floor(now / 1000)) {
    throw new ConfigError(`user ${JSON.stringify(user)} refuses tokens issued before tokensNotBefore ${u.tokensNotBefore}: no token minted`);
  }
  process.stdout.write(`${await mintToken(u.name, a.secret, a.tokenTtlSec, now)}\n`);
  return 0;
}

/** `zmcast hash-password`: the password on stdin (typed without echo on a terminal), its bcrypt hash on stdout. */
async function hashPasswordCommand(): Promise<number> {
  const plain = await readSecret('Password: ');
  if (plain === '') throw new UsageError('hash-password read an empty password from stdin');
  // bcrypt looks at the first 72 bytes only: a longer password would match anything sharing them.
  if (Buffer.byteLength(plain) > 72) throw new UsageError('bcrypt uses only the first 72 bytes of a password: choose a shorter one');
  process.stdout.write(`${await hashPassword(plain)}\n`);
  return 0;
}

/** `load` reads the configuration; it runs at start and again on SIGHUP. */
async function runServices(
  load: () => Config,
  what: { capture: boolean; edge: boolean; worker: boolean; demo: boolean },
): Promise<number> {
  const config = load();
  setLogLevel(config.log.level);
  // In ZoneMinder mode, capture takes its monitors from ZoneMinder (the demo keeps its synthetic ones).
  const fromZoneMinder = what.capture && !what.demo && config.auth.mode === 'zoneminder';
  if (fromZoneMinder && config.capture.monitors.length > 0) {
    throw new ConfigError('config capture.monitors (env ZMCAST_MONITORS, --monitors) cannot be combined with auth.mode zoneminder: ' +
      'capture then reads its monitors from ZoneMinder\'s Monitors table');
  }
  const located = what.demo ? await locateRedis(config.redis.url) : { url: config.redis.url || 'redis://127.0.0.1:6379', how: 'configured', stop: async () => {} };
  const redis = createRedis(located.url, 'zmcast');
  // Bounded: a process may start before Redis does, and then says so on /readyz.
  await Promise.race([checkRedisVersion(redis), new Promise((r) => setTimeout(r, 3000).unref())]);
  // ZoneMinder's ServerId says which server captures a monitor; without it, capture processes share them as a pool.
  const capture = what.capture ? new CaptureService(redis, config, { balance: !fromZoneMinder }) : null;
  const auth = what.edge ? await createAuthenticator(config.auth) : null;
  const edge = auth ? new EdgeServer(redis, config, auth) : null;
  // SIGHUP re-reads the configuration: config-mode users, grants and secret follow without a
  // restart, checked on open connections at once (the TLS certificate is reloaded by the edge itself).
  const reload = () => {
    try {
      edge?.reload(load());
      log.info('configuration reloaded');
    } catch (err) {
      log.error('configuration reload failed; keeping the previous one', { error: (err as Error).message });
    }
  };
  process.on('SIGHUP', reload);
  if (what.capture && !fromZoneMinder && config.capture.monitors.length === 0) log.warn('no monitors configured (ZMCAST_MONITORS or --monitors)');
  await capture?.start();
  const worker = what.worker ? new WorkerService(redis, config.workers) : null;
  await worker?.start();
  let zmdb: ZmDatabase | null = null;
  let zmMonitors: ZmMonitorSource | null = null;
  if (capture && fromZoneMinder) {
    const vars = zmVariables(process.env, config.auth.zmConf);
    const db = (zmdb = ZmDatabase.connect(zmDbSettings(vars)));
    zmMonitors = await ZmMonitorSource.start({
      db, capture, redis, server: zmServerIdentity(vars), refreshMs: config.capture.zmRefreshMs,
    }).catch((err: Error) => {
      throw new StartError(`cannot load the monitors from ZoneMinder's database: ${err.message}`);
    });
  }
  const port = edge ? await edge.listen() : null;
  // Metrics and detailed readiness, on an address of their own (loopback unless configured).
  const adminPort = edge && config.edge.adminPort > 0 ? await edge.listenAdmin(config.edge.adminPort) : null;
  const admin = adminPort === null ? null : `${config.edge.adminHost}:${adminPort}`;
  // Without an edge in this process, capture still needs a /metrics of its own: on the admin address, like the edge's.
  const metrics = capture && !edge && config.capture.metricsPort > 0 ? await serveMetrics(config.capture.metricsPort, config.edge.adminHost) : null;
  // A worker alone serves its own; beside an edge or capture, theirs include the worker's metrics (one registry).
  const workerMetricsServer = worker && !edge && !capture && config.workers.metricsPort > 0 ? await serveMetrics(config.workers.metricsPort, config.edge.adminHost) : null;
  log.info('started', {
    redis: redactUrl(located.url), redis_source: located.how, auth: config.auth.mode,
    capture: capture?.monitorIds.length ?? 0, monitors_from: capture ? (fromZoneMinder ? 'zoneminder' : 'config') : undefined, edge_port: port,
    edge_admin: edge ? admin ?? 'off' : undefined,
    worker: worker ? worker.node : undefined, worker_metrics_port: workerMetricsServer ? config.workers.metricsPort : undefined,
  });
  if (what.demo && port !== null) printDemoHelp(port, admin, config.capture.monitors.map((m) => m.id), located.how === 'spawned' ? located.url : null);

  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  process.off('SIGHUP', reload);
  log.info('stopping');
  // Draining and flushing are bounded each; this bounds them all, whatever Redis does.
  setTimeout(() => {
    log.error('stopping took too long; exiting anyway');
    process.exit(1);
  }, SHUTDOWN_LIMIT_MS).unref();
  await edge?.close();
  await auth?.close();
  metrics?.close();
  workerMetricsServer?.close();
  await worker?.stop();
  await zmMonitors?.close();
  await capture?.stop();
  await zmdb?.close();
  redis.disconnect();
  await located.stop();
  return 0;
}

/** The demo's synthetic camera: main stream and sub-stream (docs/performance.md has their capture CPU). */
const DEMO_MAIN = 'synthetic:?size=1280x720&fps=15&gop=30&bitrate=1500000';
const DEMO_SUB = 'synthetic:?size=640x360&fps=15&gop=30&bitrate=300000';

function printDemoHelp(port: number, admin: string | null, monitors: number[], privateRedis: string | null): void {
  const base = `http://localhost:${port}`;
  const metrics = admin ? `curl http://${admin}/metrics   curl http://${admin}/readyz` : '(metrics are off: edge.adminPort is 0)';
  process.stdout.write(`
zmcast demo is running: ${monitors.length} synthetic cameras, edge on ${base}${privateRedis ? `, private Redis at ${privateRedis}` : ''}

  Live view in a browser (WebCodecs, H.264):
    ${base}/

  Watch monitor ${monitors[0]} (writes H.264 to a file, prints fps/latency):
    npx zmcast watch ${base} --monitor ${monitors[0]} --out monitor${monitors[0]}.h264 --duration 10
  Pipe it into a player:
    npx zmcast watch ${base} --monitor ${monitors[0]} --out - | ffplay -f h264 -
  Monitors:
    curl ${base}/monitors
  A snapshot of monitor ${monitors[0]} (JPEG, made by the demo's picture worker):
    curl -o monitor${monitors[0]}.jpg ${base}/monitors/${monitors[0]}/snapshot.jpg
  Metrics and detailed readiness (the admin listener, edge.adminHost:edge.adminPort):
    ${metrics}
  WebSocket endpoints: ws://localhost:${port}/ws  and  ws://localhost:${port}/monitors/<id>/ws (ZoneMinder draft)

Press Ctrl-C to stop.
`);
}

/** Masks the userinfo of a URL: everything between `//` and the last `@` before the path (a password may hold `@`). */
function redactUrl(url: string): string {
  return url.replace(/\/\/[^/?#]*@/, '//***@');
}

class UsageError extends Error {}
/** Start-up could not complete for a reason outside the command line (a database that cannot be read…). */
class StartError extends Error {}

/** Errors of ZoneMinder's configuration (zm.conf unreadable, ZM_DB_* missing, an unknown ZM_SERVER_NAME…). */
const ZM_SETUP_ERRORS = new Set(['bad_zm_conf', 'zm_schema']);

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    if (err instanceof StartError || err instanceof WatchConnectError || err instanceof RedisVersionError) {
      process.stderr.write(`zmcast: ${err.message}\n`);
      process.exit(1);
    }
    if (err instanceof ConfigError || err instanceof RedisNotFoundError || err instanceof UsageError || ZM_SETUP_ERRORS.has((err as { code?: string }).code ?? '')) {
      process.stderr.write(`zmcast: ${err.message}\n`);
      if (err instanceof UsageError) process.stderr.write('Run `zmcast --help` for usage.\n');
      process.exit(2);
    }
    process.stderr.write(`zmcast: ${(err as Error).stack ?? err}\n`);
    process.exit(1);
  },
);
