/**
 * Pictures: what a worker core buys.
 *
 * 1. Cost per picture at 720p and 1080p, in CPU ms (process.cpuUsage, so the
 *    libuv threads node-av and sharp use are counted): keyframe decode (with
 *    and without the deblocking filter), P-frame decode (the warm decoder's
 *    steady cost), and scale + encode (JPEG 640 wide and full size through
 *    node-av's Scaler, rgba through swscale, and RGBA + sharp for comparison).
 * 2. Monitors one worker core keeps at 1, 5 and 15 fps of 640-wide JPEG,
 *    from those costs: keyframes only where the rate allows it (1 fps with a
 *    keyframe a second), the warm decoder otherwise.
 *    Then checked for real: N monitors (a looped 720p clip, a keyframe a
 *    second, through the real capture) each with a 1 fps 320-wide derived
 *    stream from one `zmcast worker`, whose CPU is read from /proc; and side
 *    by side, the same N monitors with a 360p sub-stream, whose thumbnails the
 *    worker decodes from the sub-stream.
 * 3. Snapshot latency, side by side in one run against one synthetic 720p
 *    camera (real `zmcast capture` and `zmcast worker` processes, the
 *    PictureClient in this process): warm decoder, cold decoder, and what a
 *    naive service does, Debian `ffmpeg` spawned per request on the newest GOP.
 */
import '../../shared/polyfills.js';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { AV_LOG_ERROR, Decoder, Demuxer, Encoder, FF_ENCODER_LIBX264, Log, Scaler } from 'node-av';
import sharp from 'sharp';
import { FrameDecoder } from '../../services/workers/frame-decoder.js';
import { PictureEncoder } from '../../services/workers/picture-encoder.js';
import { configFromJson, parameterSetsOf, type CodecConfigJson } from '../../shared/codec.js';
import { registry } from '../../shared/metrics.js';
import { packetPayload } from '../../shared/packet.js';
import { PictureClient } from '../../shared/pictures/picture-client.js';
import { parsePictureSpec, type PictureSpec } from '../../shared/pictures/picture-spec.js';
import { monitorKeys, WORKER_NODES_KEY, type Quality } from '../../shared/redis-keys.js';
import { createRedis } from '../../shared/redis.js';
import { freePort } from '../../shared/redis-locator.js';
import { makeClip } from '../lib/media.js';
import { procCpuSeconds } from '../lib/proc.js';
import { RedisServer } from '../lib/redis-server.js';
import { sleep } from '../lib/rig.js';
import type { BenchOptions } from './options.js';

const BIN = fileURLToPath(new URL('../../../bin/zmcast.js', import.meta.url));
const ITERATIONS = 40;
/** The camera of the cost and density figures: 25 fps, a keyframe a second. */
const FPS = 25;
const GOP = 25;

export interface CostRow {
  resolution: string;
  /** CPU ms per operation. */
  keyframeDecodeMs: number;
  keyframeDecodeNoDeblockMs: number;
  pframeDecodeMs: number;
  jpeg640Ms: number;
  jpegFullMs: number;
  rgba640Ms: number;
  sharpJpeg640Ms: number;
  jpeg640Bytes: number;
}

export interface DensityRow {
  resolution: string;
  fps: number;
  mode: 'keyframe' | 'full';
  cpuMsPerMonitorSecond: number;
  monitorsPerCore: number;
}

export interface LatencyRow {
  path: 'warm decoder' | 'cold decoder' | 'ffmpeg per request';
  requests: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** CPU ms per request of the process doing the work (worker, or the ffmpeg children); null when not separable. */
  cpuMsPerRequest: number | null;
  /** Requests answered from another request's work (cache or joined job): none should be, here. */
  coalesced: number;
}

/** A 1 fps 320-wide thumbnail of a 720p camera, from keyframes only: decoded from main, or from a 360p sub-stream. */
export interface ThumbnailRow {
  stream: Quality;
  resolution: string;
  /** CPU ms: one keyframe decoded without deblocking, one 320-wide JPEG. */
  keyframeDecodeMs: number;
  jpeg320Ms: number;
  monitorsPerCore: number;
}

export interface MontageRow {
  /** The stream the worker decoded the thumbnails from: `sub` when the monitors have a 360p sub-stream. */
  stream: Quality;
  monitors: number;
  fps: number;
  width: number;
  /** Pictures the worker made per second, all streams together (expected: monitors × fps). */
  picturesPerSecond: number;
  workerPercentOfCore: number;
  monitorsPerCore: number;
}

export interface PicturesResult {
  camera: { fps: number; gop: number };
  costs: CostRow[];
  density: DensityRow[];
  /** Computed from per-picture costs, main and sub measured one after the other. */
  thumbnails: ThumbnailRow[];
  montage: MontageRow;
  /** The same montage of monitors that have a 360p sub-stream, measured right after `montage`. */
  montageSub: MontageRow;
  latency: LatencyRow[];
  /** The machine's 1-minute load average when the latency series started and ended (2 cores). */
  loadAverage: [number, number];
  targets: { montage100At1fps: boolean; warmP99Under50ms: boolean };
}

export async function pictures(o: BenchOptions): Promise<PicturesResult> {
  // libx264 reports its statistics at every close: not results.
  Log.setLevel(AV_LOG_ERROR);
  const costs: CostRow[] = [];
  for (const [w, h] of [[1280, 720], [1920, 1080]] as const) {
    const row = await measureCosts(w, h);
    costs.push(row);
    o.log(`  ${row.resolution}: keyframe decode ${row.keyframeDecodeMs.toFixed(2)} ms (${row.keyframeDecodeNoDeblockMs.toFixed(2)} without deblocking), ` +
      `P-frame ${row.pframeDecodeMs.toFixed(2)} ms; JPEG 640 ${row.jpeg640Ms.toFixed(2)} ms (sharp ${row.sharpJpeg640Ms.toFixed(2)}), full ${row.jpegFullMs.toFixed(2)} ms, rgba 640 ${row.rgba640Ms.toFixed(2)} ms`);
  }
  const density = costs.flatMap(densityOf);
  for (const d of density) o.log(`  ${d.resolution} ${d.fps} fps (${d.mode}): ${d.cpuMsPerMonitorSecond.toFixed(1)} CPU ms per monitor-second, ${d.monitorsPerCore.toFixed(0)} monitors per core`);
  const thumbnails = [await measureThumbnail('main', 1280, 720), await measureThumbnail('sub', 640, 360)];
  for (const t of thumbnails) {
    o.log(`  1 fps 320-wide thumbnail from ${t.stream} (${t.resolution}): keyframe ${t.keyframeDecodeMs.toFixed(2)} ms + JPEG ${t.jpeg320Ms.toFixed(2)} ms, ${t.monitorsPerCore.toFixed(0)} monitors per core`);
  }
  const montage = await measureMontage(o, MONTAGE_MONITORS, false);
  const montageSub = await measureMontage(o, MONTAGE_MONITORS, true);
  for (const m of [montage, montageSub]) {
    o.log(`  montage from ${m.stream}: ${m.monitors} monitors × ${m.fps} fps ${m.width}-wide JPEG: ${m.picturesPerSecond.toFixed(1)} pictures/s, ` +
      `worker ${m.workerPercentOfCore.toFixed(0)}% of a core, ${m.monitorsPerCore.toFixed(0)} monitors per core`);
  }
  const loadBefore = loadavg()[0];
  const latency = await measureLatency(o);
  const loadAverage: [number, number] = [loadBefore, loadavg()[0]];
  for (const l of latency) {
    o.log(`  snapshot, ${l.path}: p50 ${l.p50Ms.toFixed(1)} ms, p99 ${l.p99Ms.toFixed(1)} ms, max ${l.maxMs.toFixed(1)} ms (${l.requests} requests` +
      `${l.cpuMsPerRequest === null ? '' : `, ${l.cpuMsPerRequest.toFixed(1)} CPU ms each`}, ${l.coalesced} coalesced)`);
  }
  const thumbs = density.find((d) => d.resolution === '1280x720' && d.fps === 1)!;
  const warm = latency.find((l) => l.path === 'warm decoder')!;
  return {
    camera: { fps: FPS, gop: GOP }, costs, density, thumbnails, montage, montageSub, latency, loadAverage,
    targets: { montage100At1fps: thumbs.monitorsPerCore >= 100 && montage.monitorsPerCore >= 100, warmP99Under50ms: warm.p99Ms < 50 },
  };
}

interface EncodedPacket { data: Buffer; keyframe: boolean }

/** Two GOPs of testsrc2 in H.264 as a camera sends it (no B-frames, parameter sets inline). */
async function encodeClip(width: number, height: number): Promise<EncodedPacket[]> {
  const demuxer = await Demuxer.open(`testsrc2=size=${width}x${height}:rate=${FPS},format=yuv420p`, { format: 'lavfi' });
  const decoder = await Decoder.create(demuxer.video()!);
  const encoder = await Encoder.create(FF_ENCODER_LIBX264, {
    gopSize: GOP, maxBFrames: 0, bitrate: Math.round(width * height * 2.2), options: { preset: 'veryfast', tune: 'zerolatency', 'x264-params': `scenecut=0:min-keyint=${GOP}` },
  });
  const out: EncodedPacket[] = [];
  for await (const raw of demuxer.packets()) {
    if (!raw) break;
    for (const frame of await decoder.decodeAll(raw)) {
      for (const p of await encoder.encodeAll(frame)) {
        out.push({ data: Buffer.from(p.data!), keyframe: p.isKeyframe });
        p.free();
      }
      frame.free();
    }
    if (out.length >= 2 * GOP) break;
  }
  decoder.close();
  encoder.close();
  await demuxer.close();
  return out;
}

/** CPU ms per call of `op`, over ITERATIONS calls after one warm-up. */
async function cpuMs(op: () => Promise<unknown>, iterations = ITERATIONS): Promise<number> {
  await op();
  const before = process.cpuUsage();
  for (let i = 0; i < iterations; i++) await op();
  const used = process.cpuUsage(before);
  return (used.user + used.system) / 1000 / iterations;
}

async function measureCosts(width: number, height: number): Promise<CostRow> {
  const clip = await encodeClip(width, height);
  const config = { codec: 'h264' as const, codecString: '', width, height, extradata: parameterSetsOf('h264', clip[0].data), generation: 1 };
  const info = { generation: 1, sequence: 0, captureTime: Date.now() };
  const key = clip[0];

  const keyframeDecode = async (skipLoopFilter: boolean) => {
    const d = await FrameDecoder.open(config, { skipLoopFilter });
    const ms = await cpuMs(() => d.decode(key.data, info, true));
    d.close();
    return ms;
  };
  const keyframeDecodeMs = await keyframeDecode(false);
  const keyframeDecodeNoDeblockMs = await keyframeDecode(true);

  // The warm decoder's steady cost: every packet of a GOP, less its keyframe.
  const warm = await FrameDecoder.open(config);
  const gop = clip.slice(0, GOP);
  const gopMs = await cpuMs(async () => {
    for (const p of gop) await warm.decode(p.data, info, p.keyframe);
  }, 8);
  const pframeDecodeMs = (gopMs - keyframeDecodeMs) / (GOP - 1);

  const frame = warm.takeLatest()!;
  const encoder = new PictureEncoder();
  const encode = (spec: PictureSpec) => cpuMs(() => encoder.encode(1, 'main', frame, spec));
  const jpeg640Ms = await encode(parsePictureSpec({ format: 'jpeg', width: 640 }));
  const jpegFullMs = await encode(parsePictureSpec({ format: 'jpeg' }));
  const rgba640Ms = await encode(parsePictureSpec({ format: 'rgba', width: 640 }));
  const jpeg640Bytes = (await encoder.encode(1, 'main', frame, parsePictureSpec({ format: 'jpeg', width: 640 }))).data.length;
  // The alternative: RGBA at full size from swscale, resized and encoded by sharp (libvips).
  const scaler = new Scaler();
  const sharpJpeg640Ms = await cpuMs(async () => {
    const rgba = await scaler.toBuffer(frame.frame, { format: 'rgba' });
    await sharp(rgba, { raw: { width, height, channels: 4 } }).resize(640).jpeg({ quality: 80 }).toBuffer();
  });
  scaler.close();
  frame.frame.free();
  encoder.close();
  warm.close();
  return { resolution: `${width}x${height}`, keyframeDecodeMs, keyframeDecodeNoDeblockMs, pframeDecodeMs, jpeg640Ms, jpegFullMs, rgba640Ms, sharpJpeg640Ms, jpeg640Bytes };
}

async function measureThumbnail(stream: Quality, width: number, height: number): Promise<ThumbnailRow> {
  const clip = await encodeClip(width, height);
  const config = { codec: 'h264' as const, codecString: '', width, height, extradata: parameterSetsOf('h264', clip[0].data), generation: 1 };
  const info = { generation: 1, sequence: 0, captureTime: Date.now() };
  const decoder = await FrameDecoder.open(config, { skipLoopFilter: true });
  const keyframeDecodeMs = await cpuMs(() => decoder.decode(clip[0].data, info, true));
  const frame = decoder.takeLatest()!;
  const encoder = new PictureEncoder();
  const jpeg320Ms = await cpuMs(() => encoder.encode(1, stream, frame, parsePictureSpec({ format: 'jpeg', width: 320 })));
  frame.frame.free();
  encoder.close();
  decoder.close();
  return { stream, resolution: `${width}x${height}`, keyframeDecodeMs, jpeg320Ms, monitorsPerCore: 1000 / (keyframeDecodeMs + jpeg320Ms) };
}

/** CPU per monitor-second at each rate, and monitors per core (1000 CPU ms per second). */
function densityOf(c: CostRow): DensityRow[] {
  return [1, 5, 15].map((fps) => {
    // At or below the keyframe rate (one a second here), keyframes only, without deblocking.
    const keyframeOnly = fps * GOP <= FPS;
    const decodeMs = keyframeOnly ? fps * c.keyframeDecodeNoDeblockMs : c.keyframeDecodeMs * (FPS / GOP) + c.pframeDecodeMs * (FPS - FPS / GOP);
    const cpuMsPerMonitorSecond = decodeMs + fps * c.jpeg640Ms;
    return { resolution: c.resolution, fps, mode: keyframeOnly ? 'keyframe' : 'full', cpuMsPerMonitorSecond, monitorsPerCore: 1000 / cpuMsPerMonitorSecond };
  });
}

const MONTAGE_MONITORS = 40;
const MONTAGE_MEASURE_S = 10;

/** N monitors of a 720p clip, with a 360p sub-stream or without, each with a 1 fps 320-wide derived stream. */
async function measureMontage(o: BenchOptions, n: number, withSub: boolean): Promise<MontageRow> {
  const clip = makeClip({ width: 1280, height: 720, fps: FPS, gop: GOP, kbps: 2000, seconds: 10 });
  const subClip = makeClip({ width: 640, height: 360, fps: FPS, gop: GOP, kbps: 500, seconds: 10 });
  const stream: Quality = withSub ? 'sub' : 'main';
  const redisServer = await RedisServer.start();
  const metricsPort = await freePort();
  const env = { ...cleanEnv(), ZMCAST_REDIS_URL: redisServer.url, ZMCAST_LOG_LEVEL: 'warn' };
  const monitors = Array.from({ length: n }, (_, i) => `${i + 1}=${clip.path}${withSub ? `|${subClip.path}` : ''}`).join(',');
  const capture = spawn(process.execPath, [BIN, 'capture', '--monitors', monitors], { env: { ...env, ZMCAST_CAPTURE_METRICS_PORT: '0' }, stdio: 'ignore' });
  const worker = spawn(process.execPath, [BIN, 'worker'], { env: { ...env, ZMCAST_WORKER_METRICS_PORT: String(metricsPort) }, stdio: 'ignore' });
  const redis = createRedis(redisServer.url, 'bench-montage');
  const client = new PictureClient(redis);
  const spec = parsePictureSpec({ format: 'jpeg', width: 320 });
  const fps = 1;
  const wantAll = () => Promise.all(Array.from({ length: n }, (_, i) => client.want(i + 1, spec, fps)));
  const made = async () => {
    const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    // Only pictures of the stream this run is about: a picture of the other would be a wrong result, not a picture.
    const series = new RegExp(`^zmcast_worker_pictures_total\\{(?=[^}]*source="derived")(?=[^}]*quality="${stream}")[^}]*\\} (\\S+)$`, 'm');
    return Number(series.exec(text)?.[1] ?? 0);
  };
  try {
    for (let i = 0; i < 300; i++) {
      const ready = (await redis.zcard(WORKER_NODES_KEY)) > 0 && (await Promise.all(Array.from({ length: n }, (_, m) => redis.xlen(monitorKeys(m + 1, stream).video)))).every((l) => l > 30);
      if (ready) break;
      await sleep(200);
    }
    await wantAll();
    // Settle: every producer started, every decoder past its first keyframe.
    for (let i = 0; i < 5; i++) {
      await sleep(1000);
      await wantAll();
    }
    const [cpu0, made0, t0] = [procCpuSeconds(worker.pid!), await made(), performance.now()];
    for (let i = 0; i < MONTAGE_MEASURE_S; i++) {
      await sleep(1000);
      await wantAll();
    }
    const [cpu1, made1, seconds] = [procCpuSeconds(worker.pid!), await made(), (performance.now() - t0) / 1000];
    const workerPercentOfCore = ((cpu1 - cpu0) / seconds) * 100;
    o.log(`  (montage from ${stream} measured over ${seconds.toFixed(1)} s)`);
    return { stream, monitors: n, fps, width: 320, picturesPerSecond: (made1 - made0) / seconds, workerPercentOfCore, monitorsPerCore: n / (workerPercentOfCore / 100) };
  } finally {
    await client.close();
    redis.disconnect();
    worker.kill('SIGTERM');
    capture.kill('SIGTERM');
    await Promise.all([exited(worker), exited(capture)]);
    await redisServer.stop();
  }
}

async function measureLatency(o: BenchOptions): Promise<LatencyRow[]> {
  const redisServer = await RedisServer.start();
  const env = { ...cleanEnv(), ZMCAST_REDIS_URL: redisServer.url, ZMCAST_LOG_LEVEL: 'warn' };
  const capture = spawn(process.execPath, [BIN, 'capture', '--monitors', '1=synthetic:?size=1280x720&fps=25&gop=50'], { env: { ...env, ZMCAST_CAPTURE_METRICS_PORT: '0' }, stdio: 'ignore' });
  // The decoder goes cold 500 ms after its last use: the cold series waits longer than that between requests.
  const worker = spawn(process.execPath, [BIN, 'worker'], { env: { ...env, ZMCAST_WORKER_METRICS_PORT: '0', ZMCAST_WORKER_IDLE_STOP_MS: '500' }, stdio: 'ignore' });
  const redis = createRedis(redisServer.url, 'bench-pictures');
  const client = new PictureClient(redis);
  try {
    for (let i = 0; i < 200 && ((await redis.zcard(WORKER_NODES_KEY)) === 0 || (await redis.xlen(monitorKeys(1).video)) < 60); i++) await sleep(100);
    const spec = parsePictureSpec({ format: 'jpeg', width: 640 });
    const rows: LatencyRow[] = [];
    const series = async (path: LatencyRow['path'], n: number, pauseMs: number, one: () => Promise<unknown>, cpu: () => number | null) => {
      const coalescedBefore = await coalesced();
      const times: number[] = [];
      const cpuBefore = cpu();
      for (let i = 0; i < n; i++) {
        const t = performance.now();
        await one();
        times.push(performance.now() - t);
        await sleep(pauseMs);
      }
      const cpuAfter = cpu();
      const q = percentiles(times);
      rows.push({
        path, requests: n, p50Ms: q.p50, p99Ms: q.p99, maxMs: q.max,
        cpuMsPerRequest: cpuBefore === null || cpuAfter === null ? null : ((cpuAfter - cpuBefore) * 1000) / n,
        coalesced: (await coalesced()) - coalescedBefore,
      });
    };
    await client.snapshot(1, spec, 10_000);
    // 100 ms apart: the camera has moved on by two frames, so every request is a job of its own.
    await series('warm decoder', o.seconds >= 20 ? 600 : 300, 100, () => client.snapshot(1, spec, 10_000), () => procCpuSeconds(worker.pid!));
    await series('cold decoder', 30, 1200, () => client.snapshot(1, spec, 10_000), () => null);
    await series('ffmpeg per request', 30, 100, () => ffmpegSnapshot(redis, 1, 640), childrenCpuSeconds);
    return rows;
  } finally {
    await client.close();
    redis.disconnect();
    worker.kill('SIGTERM');
    capture.kill('SIGTERM');
    await Promise.all([exited(worker), exited(capture)]);
    await redisServer.stop();
  }
}

/** What a naive service does: the newest GOP from Redis into a fresh `ffmpeg`, the last frame out as a JPEG. */
async function ffmpegSnapshot(redis: ReturnType<typeof createRedis>, monitorId: number, width: number): Promise<Buffer> {
  const k = monitorKeys(monitorId);
  const [config, kf] = (await redis.hmget(k.meta, 'config', 'kf')) as [string, string];
  const entries = (await redis.xrangeBuffer(k.video, kf, '+')) as [Buffer, Buffer[]][];
  const packets = entries.filter(([, f]) => f[0].toString() === 'p').map(([, f]) => packetPayload(f[1]));
  const input = Buffer.concat([configFromJson(JSON.parse(config) as CodecConfigJson).extradata, ...packets]);
  return new Promise((resolve, reject) => {
    const ff = spawn('ffmpeg', ['-loglevel', 'error', '-f', 'h264', '-i', 'pipe:0', '-vf', `select='eq(n\\,${packets.length - 1})',scale=${width}:-2`,
      '-frames:v', '1', '-q:v', '5', '-f', 'mjpeg', 'pipe:1'], { stdio: ['pipe', 'pipe', 'inherit'] });
    const chunks: Buffer[] = [];
    ff.stdout.on('data', (c: Buffer) => chunks.push(c));
    ff.once('error', reject);
    ff.once('exit', (code) => (code === 0 && chunks.length > 0 ? resolve(Buffer.concat(chunks)) : reject(new Error(`ffmpeg exited with ${code}`))));
    ff.stdin.end(input);
  });
}

/** CPU seconds of this process's finished children (cutime + cstime). */
function childrenCpuSeconds(): number {
  const fields = readFileSync('/proc/self/stat', 'utf8').split(') ')[1].split(' ');
  return (Number(fields[13]) + Number(fields[14])) / 100;
}

async function coalesced(): Promise<number> {
  const m = registry.getSingleMetric('zmcast_pictures_coalesced_total');
  return m ? (await m.get()).values.reduce((s, v) => s + v.value, 0) : 0;
}

function percentiles(values: number[]): { p50: number; p99: number; max: number } {
  const s = [...values].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)];
  return { p50: at(0.5), p99: at(0.99), max: s[s.length - 1] };
}

function cleanEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('ZMCAST_')));
}

function exited(child: ReturnType<typeof spawn>): Promise<void> {
  return child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise((r) => child.once('exit', () => r()));
}


