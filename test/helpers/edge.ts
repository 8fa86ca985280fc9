/**
 * Test rig: a real edge on a real Redis, and a packet source that publishes
 * the way capture does (same Publisher, same script), at a chosen rate.
 */
import { Redis } from 'ioredis';
import { loadConfig, type Config, type ConfigOverrides } from '../../shared/config.js';
import { EdgeServer } from '../../services/edge/edge-server.js';
import { Publisher } from '../../services/capture/publisher.js';
import { freshRedisUrl } from './redis.js';
import { createAuthenticator } from '../../shared/auth/index.js';
import type { RedisClient } from '../../shared/redis.js';

export interface EdgeRig {
  url: string;
  /** The admin listener: /metrics and the detailed /readyz. */
  adminUrl: string;
  redisUrl: string;
  redis: Redis;
  edge: EdgeServer;
  config: Config;
  close(): Promise<void>;
}

/** An edge on loopback with its authenticator (mode `none` unless the config says otherwise), and its admin listener. */
export async function listenEdge(redis: RedisClient, config: Config): Promise<{ edge: EdgeServer; url: string; adminUrl: string; close(): Promise<void> }> {
  const auth = await createAuthenticator(config.auth);
  const edge = new EdgeServer(redis, config, auth);
  const port = await edge.listen(0, '127.0.0.1');
  const adminPort = await edge.listenAdmin(0, '127.0.0.1');
  return {
    edge,
    url: `http://127.0.0.1:${port}`,
    adminUrl: `http://127.0.0.1:${adminPort}`,
    async close() {
      await edge.close();
      await auth.close();
    },
  };
}

export async function startEdge(overrides: ConfigOverrides = {}, redisUrl?: string): Promise<EdgeRig> {
  const url = redisUrl ?? (await freshRedisUrl());
  const config = loadConfig({ env: {}, overrides: { auth: { mode: 'none' }, ...overrides, edge: { host: '127.0.0.1', port: 0, ...overrides.edge } } });
  const redis = new Redis(url);
  const served = await listenEdge(redis, config);
  return {
    url: served.url,
    adminUrl: served.adminUrl,
    redisUrl: url,
    redis,
    edge: served.edge,
    config,
    async close() {
      await served.close();
      redis.disconnect();
    },
  };
}

/** A fake H.264-shaped camera: numbered packets, a keyframe every `gop`. */
export class PacketSource {
  readonly publisher: Publisher;
  sequence = 0;
  generation = 1;
  private timer: NodeJS.Timeout | null = null;

  constructor(readonly redis: Redis, readonly monitorId: number, readonly opts: { gop: number; size: number; retention?: Partial<Config['retention']> }) {
    // Tests publish in bursts faster than any camera, so keep more GOPs than the default.
    const retention = { ...loadConfig({ env: {} }).retention, gops: 100, ...opts.retention };
    // Its own lease token: the first write takes the monitor's free lease, as a lone capture would.
    this.publisher = new Publisher(redis, monitorId, retention, { token: `test-source-${monitorId}-${process.pid}`, ttlMs: 60_000 });
  }

  async register(): Promise<void> {
    await this.publisher.register(`Test ${this.monitorId}`);
    this.publisher.publishConfig({ codec: 'h264', codecString: 'avc1.42E01E', width: 320, height: 240, extradata: Buffer.from([0, 0, 0, 1, 0x67, 0x42, 0xe0, 0x1e, 0, 0, 0, 1, 0x68, 0xce]), generation: this.generation });
    await this.publisher.flush();
  }

  /** Publishes one packet; its payload starts with its sequence number. */
  publishOne(): number {
    const seq = this.sequence++;
    const data = Buffer.alloc(this.opts.size, seq & 0xff);
    data.writeUInt32BE(seq, 0);
    this.publisher.publishPacket({
      data,
      keyframe: seq % this.opts.gop === 0,
      generation: this.generation,
      sequence: seq,
      captureTime: Date.now(),
      pts: BigInt(seq * 40_000),
      dts: BigInt(seq * 40_000),
      duration: 40_000,
    });
    return seq;
  }

  async publish(count: number): Promise<void> {
    for (let i = 0; i < count; i++) this.publishOne();
    await this.publisher.flush();
  }

  start(fps: number): void {
    this.timer = setInterval(() => this.publishOne(), 1000 / fps);
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.publisher.flush();
  }
}
