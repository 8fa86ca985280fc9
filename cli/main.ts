/**
 * The one zmcast command line: `zmcast capture|edge|demo|watch`.
 */
import { parseArgs } from 'node:util';
import '../shared/polyfills.js';
import { loadConfig, describeConfig, ConfigError, type Config, type ConfigOverrides } from '../shared/config.js';
import { createRedis } from '../shared/redis.js';
import { locateRedis, RedisNotFoundError } from '../shared/redis-locator.js';
import { setLogLevel, logger } from '../shared/log.js';
import { EdgeServer } from '../services/edge/edge-server.js';
import { createAuthenticator } from '../shared/auth/index.js';
import { CaptureService } from '../services/capture/capture-service.js';
import { serveMetrics } from '../shared/metrics-server.js';
import { watch } from './watch.js';

const USAGE = `zmcast — live view for camera clusters

Usage:
  zmcast demo    [--port P] [--monitors N] [--config FILE]
                 capture + edge on N synthetic cameras (default 4), edge on P (default 8080);
                 Redis from REDIS_URL, else 127.0.0.1:6379, else a private redis-server
  zmcast capture [--monitors "1=rtsp://cam/stream,2=synthetic:"] [--config FILE]
  zmcast edge    [--port P] [--config FILE]
  zmcast watch   URL --monitor N [--out FILE|-] [--duration SECONDS] [--token T] [--quiet]
                 writes the camera's codec (Annex-B H.264/H.265) to FILE or stdout
  zmcast --help

Configuration: a JSON file (--config or ZMCAST_CONFIG) and these environment variables:
${describeConfig().join('\n')}
  REDIS_URL is read when ZMCAST_REDIS_URL is unset.
`;

const log = logger('cli');

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (!command || command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(USAGE);
    return command ? 0 : 2;
  }
  const { values, positionals } = parseArgs({
    args: rest,
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
      quiet: { type: 'boolean' },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const overrides: ConfigOverrides = {};
  if (values.port !== undefined) overrides.edge = { port: values.port as unknown as number };

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
        token: values.token,
        quiet: values.quiet,
      });
      process.stderr.write(`${JSON.stringify(summary)}\n`);
      return summary.packets > 0 ? 0 : 1;
    }
    case 'demo': {
      const n = values.monitors === undefined ? 4 : Number(values.monitors);
      if (!Number.isInteger(n) || n < 1 || n > 64) throw new UsageError('--monitors must be 1..64 for the demo');
      // The demo is for trying zmcast out: no credentials, said loudly at start and on /readyz.
      overrides.auth = { mode: 'none' };
      overrides.capture = {
        monitors: Array.from({ length: n }, (_, i) => ({ id: i + 1, name: `Synthetic ${i + 1}`, source: 'synthetic:?size=640x360&fps=25&gop=50' })),
      };
      return runServices(loadConfig({ file: values.config, overrides }), { capture: true, edge: true, demo: true });
    }
    case 'capture':
      if (values.monitors !== undefined) overrides.capture = { monitors: values.monitors as unknown as Config['capture']['monitors'] };
      return runServices(loadConfig({ file: values.config, overrides }), { capture: true, edge: false, demo: false });
    case 'edge':
      return runServices(loadConfig({ file: values.config, overrides }), { capture: false, edge: true, demo: false });
    default:
      throw new UsageError(`unknown command ${JSON.stringify(command)}`);
  }
}

async function runServices(config: Config, what: { capture: boolean; edge: boolean; demo: boolean }): Promise<number> {
  setLogLevel(config.log.level);
  const located = what.demo ? await locateRedis(config.redis.url) : { url: config.redis.url || 'redis://127.0.0.1:6379', how: 'configured', stop: async () => {} };
  const redis = createRedis(located.url, 'zmcast');
  const capture = what.capture ? new CaptureService(redis, config) : null;
  const auth = what.edge ? await createAuthenticator(config.auth) : null;
  const edge = auth ? new EdgeServer(redis, config, auth) : null;
  if (what.capture && config.capture.monitors.length === 0) log.warn('no monitors configured (ZMCAST_MONITORS or --monitors)');
  await capture?.start();
  const port = edge ? await edge.listen() : null;
  // Without an edge in this process, capture still needs a /metrics of its own.
  const metrics = capture && !edge && config.capture.metricsPort > 0 ? await serveMetrics(config.capture.metricsPort, config.edge.host) : null;
  log.info('started', { redis: redactUrl(located.url), redis_source: located.how, capture: config.capture.monitors.length, edge_port: port });
  if (what.demo && port !== null) printDemoHelp(port, config.capture.monitors.map((m) => m.id), located.how === 'spawned' ? located.url : null);

  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  log.info('stopping');
  await edge?.close();
  await auth?.close();
  metrics?.close();
  await capture?.stop();
  redis.disconnect();
  await located.stop();
  return 0;
}

function printDemoHelp(port: number, monitors: number[], privateRedis: string | null): void {
  const base = `http://localhost:${port}`;
  process.stdout.write(`
zmcast demo is running: ${monitors.length} synthetic cameras, edge on ${base}${privateRedis ? `, private Redis at ${privateRedis}` : ''}

  Live view in a browser (WebCodecs, H.264):
    ${base}/

  Watch monitor ${monitors[0]} (writes H.264 to a file, prints fps/latency):
    npx zmcast watch ${base} --monitor ${monitors[0]} --out monitor${monitors[0]}.h264 --duration 10
  Pipe it into a player:
    npx zmcast watch ${base} --monitor ${monitors[0]} --out - | ffplay -f h264 -
  Status and metrics:
    curl ${base}/monitors   curl ${base}/metrics
  WebSocket endpoints: ws://localhost:${port}/ws  and  ws://localhost:${port}/monitors/<id>/ws (ZoneMinder draft)

Press Ctrl-C to stop.
`);
}

function redactUrl(url: string): string {
  return url.replace(/\/\/[^@/]*@/, '//***@');
}

class UsageError extends Error {}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    if (err instanceof ConfigError || err instanceof RedisNotFoundError || err instanceof UsageError) {
      process.stderr.write(`zmcast: ${err.message}\n`);
      if (err instanceof UsageError) process.stderr.write('Run `zmcast --help` for usage.\n');
      process.exit(2);
    }
    process.stderr.write(`zmcast: ${(err as Error).stack ?? err}\n`);
    process.exit(1);
  },
);
