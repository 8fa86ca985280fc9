/**
 * `zmcast watch`: subscribes to one monitor and writes its video as the
 * camera's codec (Annex-B for H.264/H.265) to a file or stdout, printing fps,
 * bitrate, capture→receive latency and drops to stderr. It reconnects by
 * itself, to the next edge when given several (`URL,URL2`), and the file
 * stays decodable across reconnects.
 */
import { createWriteStream, type WriteStream } from 'node:fs';
import { ReconnectingClient, type Ending } from '../client/reconnecting-client.js';
import { AnnexBRecorder } from '../client/annexb-recorder.js';
import { logger } from '../shared/log.js';
import { percentile } from './stats.js';

export interface WatchOptions {
  /** One edge URL, or several separated by commas. */
  url: string;
  monitor: number;
  out?: string;
  durationSec?: number;
  /** A token, or where to get one before each connection attempt. */
  token?: string | (() => string);
  quiet?: boolean;
}

export interface WatchSummary {
  packets: number;
  keyframes: number;
  bytes: number;
  dropped: number;
  /** `dropped` by the reason the edge gave (slow_consumer, upstream, stale, history_lost). */
  droppedByReason: Record<string, number>;
  firstFrameMs: number | null;
  /** Capture → receive, over packets captured after the latest subscribe (not the replayed GOP). */
  latencyP50Ms: number | null;
  latencyP99Ms: number | null;
  closeCode: number | null;
  /** Connections re-established after one was lost. */
  reconnects: number;
}

/** The edge could not be reached or refused the viewer (401/403/503…): said in one line, no stack. */
export class WatchConnectError extends Error {
  readonly code = 'watch_connect';
}

const log = logger('watch');

export async function watch(opts: WatchOptions): Promise<WatchSummary> {
  const urls = opts.url.split(',').map((u) => u.trim()).filter((u) => u !== '');
  let client: ReconnectingClient;
  try {
    client = ReconnectingClient.start(urls, { token: opts.token });
  } catch (err) {
    throw new WatchConnectError(`cannot watch ${shown(opts.url)}: ${(err as Error).message}`);
  }
  const out: WriteStream | NodeJS.WriteStream | null = opts.out === '-' || (!opts.out && !process.stdout.isTTY)
    ? process.stdout
    : opts.out ? createWriteStream(opts.out) : null;
  const recorder = new AnnexBRecorder(out);
  const started = performance.now();
  let subscribedAt = Date.now();
  const summary: WatchSummary = {
    packets: 0, keyframes: 0, bytes: 0, dropped: 0, droppedByReason: {}, firstFrameMs: null,
    latencyP50Ms: null, latencyP99Ms: null, closeCode: null, reconnects: 0,
  };
  const latencies: number[] = [];
  let window = { packets: 0, bytes: 0, latencies: [] as number[] };
  // Each outage is told once when it starts and once when it ends.
  let connectedTo: string | null = null;
  let everUp = false;
  let outage = false;
  client.on('connected', ({ url }) => {
    if (outage) log.info('connected', { url: shown(url) });
    connectedTo = url;
    everUp = true;
    outage = false;
  });
  client.on('reconnecting', (r) => {
    if (!outage) {
      const fields = { code: r.code, reason: r.reason, next: shown(r.url), delay_ms: r.delayMs };
      if (everUp) log.warn('connection lost; reconnecting', { url: shown(connectedTo ?? r.url), ...fields });
      else log.warn('edge unreachable; retrying', fields);
    }
    outage = true;
  });
  client.on('reconnected', ({ url, downtimeMs }) => {
    log.info('reconnected', { url: shown(url), downtime_ms: downtimeMs, reconnects: client.reconnects });
    connectedTo = url;
    outage = false;
    subscribedAt = Date.now();
  });
  client.on('codec', (c) => {
    recorder.codec(c);
    if (!opts.quiet) {
      process.stderr.write(`codec ${c.codec} ${c.codec_string} ${c.width}x${c.height} generation ${c.generation}${c.epoch ? ` epoch ${c.epoch}` : ''}\n`);
    }
  });
  client.on('errorReply', (e) => process.stderr.write(`error ${e.code}: ${e.message}\n`));
  client.on('dropped', (d) => {
    summary.dropped += d.count;
    summary.droppedByReason[d.reason] = (summary.droppedByReason[d.reason] ?? 0) + d.count;
  });
  client.on('packet', (p) => {
    if (!recorder.packet(p)) return;
    if (summary.firstFrameMs === null) summary.firstFrameMs = performance.now() - started;
    window.packets++;
    window.bytes += p.data.length;
    // The GOP replayed at each subscribe was captured earlier on purpose; latency is about live packets.
    if (p.captureTime >= subscribedAt) {
      const latency = p.receivedAt - p.captureTime;
      latencies.push(latency);
      window.latencies.push(latency);
    }
    summary.packets++;
    summary.bytes += p.data.length;
    if (p.keyframe) summary.keyframes++;
  });

  const ticker = setInterval(() => {
    if (!opts.quiet) {
      process.stderr.write(
        `fps ${window.packets} | ${((window.bytes * 8) / 1000).toFixed(0)} kbit/s | latency p50 ${fmt(percentile(window.latencies, 50))} ms ` +
          `p99 ${fmt(percentile(window.latencies, 99))} ms | dropped ${summary.dropped}${reasons(summary.droppedByReason)}\n`,
      );
    }
    window = { packets: 0, bytes: 0, latencies: [] };
  }, 1000);

  client.subscribeStream(opts.monitor);
  const stop = new Promise<void>((resolve) => {
    if (opts.durationSec) setTimeout(resolve, opts.durationSec * 1000);
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
  const ending: Ending | null = await Promise.race([client.ended, stop.then(() => null)]);
  clearInterval(ticker);
  if (!ending) await client.close();
  if (out && out !== process.stdout) await new Promise<void>((resolve) => (out as WriteStream).end(() => resolve()));
  if (ending?.kind === 'refused') {
    // Refused before anything was watched: the command's one-line error, no summary.
    if (!everUp) throw new WatchConnectError(`cannot watch ${shown(ending.url)}: ${ending.error.message}`);
    log.error('edge refused the connection; giving up', { url: shown(ending.url), status: ending.error.status });
  }
  if (ending?.kind === 'closed') summary.closeCode = ending.code;
  summary.reconnects = client.reconnects;
  summary.latencyP50Ms = percentile(latencies, 50);
  summary.latencyP99Ms = percentile(latencies, 99);
  return summary;
}

/** The URL may carry a token or userinfo: only where it points is repeated. */
const shown = (url: string) => url.split('?')[0].replace(/\/\/[^@/]*@/, '//');
const fmt = (v: number | null) => (v === null ? '-' : v.toFixed(0));
const reasons = (by: Record<string, number>) => {
  const parts = Object.entries(by).map(([reason, n]) => `${reason} ${n}`);
  return parts.length > 0 ? ` (${parts.join(', ')})` : '';
};
