/**
 * What the picture suites share: the whole slice (capture of a synthetic
 * camera, an edge, a real picture worker) in this process, a WebSocket client
 * that keeps text and binary frames in one ordered list (a payload is a
 * metadata frame followed by its bytes), and a reader of
 * `multipart/x-mixed-replace` streams as an MJPEG viewer sees them.
 */
import WebSocket from 'ws';
import { loadConfig, type Config, type ConfigOverrides, type MonitorSpec } from '../../shared/config.js';
import { createRedis, type RedisClient } from '../../shared/redis.js';
import { CaptureService } from '../../services/capture/capture-service.js';
import type { EdgeServer } from '../../services/edge/edge-server.js';
import { WorkerService } from '../../services/workers/worker-service.js';
import { captureConfig } from '../fixtures/capture-config.js';
import { listenEdge } from '../helpers/edge.js';
import { freshRedisUrl } from '../helpers/redis.js';
import { until } from '../helpers/wait.js';

export interface ServedEdge {
  edge: EdgeServer;
  url: string;
  adminUrl: string;
  close(): Promise<void>;
}

export interface PictureSlice {
  /** Made as the zmcast command makes it (createRedis): BullMQ needs its options. */
  redis: RedisClient;
  config: Config;
  capture: CaptureService;
  worker: WorkerService;
  /** The first edge's base URL. */
  url: string;
  edges: ServedEdge[];
  /** Another edge on the same Redis, closed with the slice. */
  addEdge(): Promise<ServedEdge>;
  close(): Promise<void>;
}

/** Capture, one edge and one picture worker in this process, on a Redis database of their own. */
export async function startPictureSlice(monitors: MonitorSpec[], overrides: ConfigOverrides = { auth: { mode: 'none' } }): Promise<PictureSlice> {
  const redisUrl = await freshRedisUrl();
  const redis = createRedis(redisUrl, 'zmcast-test');
  const config = captureConfig(redisUrl, monitors, overrides);
  const capture = new CaptureService(redis, config);
  await capture.start();
  const worker = new WorkerService(redis, loadConfig({ env: {}, overrides: { workers: { metricsPort: 0, ...overrides.workers } } }).workers);
  await worker.start();
  const edges: ServedEdge[] = [];
  const addEdge = async () => {
    const served = await listenEdge(redis, config);
    edges.push(served);
    return served;
  };
  await addEdge();
  return {
    redis,
    config,
    capture,
    worker,
    url: edges[0].url,
    edges,
    addEdge,
    async close() {
      for (const e of edges.splice(0)) await e.close();
      await worker.stop();
      await capture.stop();
      redis.disconnect();
    },
  };
}

export type Frame = { text: Record<string, unknown> } | { binary: Buffer };

export interface Payload {
  meta: Record<string, unknown>;
  bytes: Buffer;
}

export interface FrameClient {
  ws: WebSocket;
  frames: Frame[];
  send(o: object): void;
  /** The first text message (received or to come) matching. */
  waitText(match: (m: Record<string, unknown>) => boolean, timeoutMs?: number, what?: string): Promise<Record<string, unknown>>;
  /** Metadata frames matching, each with the binary frame right after it. */
  payloads(match?: (m: Record<string, unknown>) => boolean): Payload[];
  close(): void;
}

export async function frameClient(base: string, path: string): Promise<FrameClient> {
  const ws = new WebSocket(base.replace(/^http/, 'ws') + path, { perMessageDeflate: false });
  const frames: Frame[] = [];
  ws.on('message', (data, isBinary) => frames.push(isBinary ? { binary: data as Buffer } : { text: JSON.parse(String(data)) as Record<string, unknown> }));
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  const texts = () => frames.flatMap((f) => ('text' in f ? [f.text] : []));
  return {
    ws,
    frames,
    send: (o) => ws.send(JSON.stringify(o)),
    waitText: (match, timeoutMs = 10_000, what = 'message') => until(() => texts().find(match), timeoutMs, what),
    payloads: (match = () => true) => {
      const out: Payload[] = [];
      frames.forEach((f, i) => {
        const next = frames[i + 1];
        if ('text' in f && (f.text.type === 'image' || f.text.type === 'stream') && match(f.text) && next && 'binary' in next) {
          out.push({ meta: f.text, bytes: next.binary });
        }
      });
      return out;
    },
    close: () => ws.terminate(),
  };
}

export interface Part {
  headers: Record<string, string>;
  body: Buffer;
  /** When the part was complete, ms since the epoch. */
  at: number;
}

export interface MultipartStream {
  status: number;
  headers: Headers;
  parts: Part[];
  /** Stops reading (closes the connection). */
  close(): void;
}

/**
 * GETs `url` and, when it answers a multipart stream, splits it on the
 * boundary its Content-Type names, part by part as they arrive.
 */
export async function readMultipart(url: string): Promise<MultipartStream> {
  const abort = new AbortController();
  const res = await fetch(url, { signal: abort.signal });
  const parts: Part[] = [];
  const stream: MultipartStream = { status: res.status, headers: res.headers, parts, close: () => abort.abort() };
  const boundary = /boundary=([^;]+)/.exec(res.headers.get('content-type') ?? '')?.[1];
  if (!boundary || !res.body) return stream;
  const delimiter = Buffer.from(`--${boundary}\r\n`);
  let buf = Buffer.alloc(0);
  const reader = res.body.getReader();
  const pump = async () => {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buf = Buffer.concat([buf, Buffer.from(value)]);
      for (;;) {
        const start = buf.indexOf(delimiter);
        if (start < 0) break;
        const headerEnd = buf.indexOf('\r\n\r\n', start);
        if (headerEnd < 0) break;
        const headers: Record<string, string> = {};
        for (const line of buf.subarray(start + delimiter.length, headerEnd).toString().split('\r\n')) {
          const colon = line.indexOf(':');
          headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
        }
        const length = Number(headers['content-length']);
        const bodyStart = headerEnd + 4;
        if (buf.length < bodyStart + length + 2) break;
        parts.push({ headers, body: Buffer.from(buf.subarray(bodyStart, bodyStart + length)), at: Date.now() });
        buf = buf.subarray(bodyStart + length + 2);
      }
    }
  };
  pump().catch(() => undefined); // ends with an AbortError when the test closes the stream
  return stream;
}
