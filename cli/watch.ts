/**
 * `zmcast watch`: subscribes to one monitor and writes its video as the
 * camera's codec (Annex-B for H.264/H.265) to a file or stdout, printing fps,
 * bitrate, capture→receive latency and drops to stderr.
 */
import { createWriteStream, type WriteStream } from 'node:fs';
import { ZmcastClient } from '../client/zmcast-client.js';
import { percentile } from './stats.js';

export interface WatchOptions {
  url: string;
  monitor: number;
  out?: string;
  durationSec?: number;
  token?: string;
  quiet?: boolean;
}

export interface WatchSummary {
  packets: number;
  keyframes: number;
  bytes: number;
  dropped: number;
  firstFrameMs: number | null;
  /** Capture → receive, over packets captured after the subscribe (not the replayed GOP). */
  latencyP50Ms: number | null;
  latencyP99Ms: number | null;
  closeCode: number | null;
}

/** The edge could not be reached or refused the viewer (401/403/503…): said in one line, no stack. */
export class WatchConnectError extends Error {
  readonly code = 'watch_connect';
}

export async function watch(opts: WatchOptions): Promise<WatchSummary> {
  const out: WriteStream | NodeJS.WriteStream | null = opts.out === '-' || (!opts.out && !process.stdout.isTTY)
    ? process.stdout
    : opts.out ? createWriteStream(opts.out) : null;
  const client = await ZmcastClient.connect(opts.url, { token: opts.token }).catch((err: Error) => {
    // The URL may carry a token or userinfo: only where it points is repeated.
    throw new WatchConnectError(`cannot watch ${opts.url.split('?')[0].replace(/\/\/[^@/]*@/, '//')}: ${err.message}`);
  });
  const started = performance.now();
  const subscribedAt = Date.now();
  const summary: WatchSummary = { packets: 0, keyframes: 0, bytes: 0, dropped: 0, firstFrameMs: null, latencyP50Ms: null, latencyP99Ms: null, closeCode: null };
  const latencies: number[] = [];
  let window = { packets: 0, bytes: 0, latencies: [] as number[] };
  let extradata: Buffer | null = null;
  let wroteExtradata = false;
  let sawKeyframe = false;

  client.on('codec', (c) => {
    extradata = Buffer.from(c.extradata, 'base64');
    wroteExtradata = false;
    if (!opts.quiet) process.stderr.write(`codec ${c.codec} ${c.codec_string} ${c.width}x${c.height} generation ${c.generation}\n`);
  });
  client.on('errorReply', (e) => process.stderr.write(`error ${e.code}: ${e.message}\n`));
  client.on('dropped', (d) => { summary.dropped += d.count; });
  client.on('packet', (p) => {
    if (!sawKeyframe && !p.keyframe) return; // never write an undecodable head
    sawKeyframe = true;
    if (summary.firstFrameMs === null) summary.firstFrameMs = performance.now() - started;
    if (out) {
      // Parameter sets before the first keyframe of each generation: the file decodes from its first byte.
      if (p.keyframe && extradata && !wroteExtradata && extradata.length > 0) out.write(extradata);
      if (p.keyframe) wroteExtradata = true;
      out.write(p.data);
    }
    window.packets++;
    window.bytes += p.data.length;
    // The GOP replayed at subscribe was captured earlier on purpose; latency is about live packets.
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
          `p99 ${fmt(percentile(window.latencies, 99))} ms | dropped ${summary.dropped}\n`,
      );
    }
    window = { packets: 0, bytes: 0, latencies: [] };
  }, 1000);

  client.subscribeStream(opts.monitor);
  const closed = new Promise<number>((resolve) => client.once('close', (code) => resolve(code)));
  const stop = new Promise<void>((resolve) => {
    if (opts.durationSec) setTimeout(resolve, opts.durationSec * 1000);
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
  const winner = await Promise.race([closed.then((code) => ({ code })), stop.then(() => null)]);
  clearInterval(ticker);
  if (winner) summary.closeCode = winner.code;
  else await client.close();
  if (out && out !== process.stdout) await new Promise<void>((resolve) => (out as WriteStream).end(() => resolve()));
  summary.latencyP50Ms = percentile(latencies, 50);
  summary.latencyP99Ms = percentile(latencies, 99);
  return summary;
}

const fmt = (v: number | null) => (v === null ? '-' : v.toFixed(0));
