import { afterEach, describe, expect, it } from 'vitest';
import { parsePictureSpec } from '../../shared/pictures/picture-spec.js';
import { decodePicture } from '../../shared/pictures/picture.js';
import { WORKER_NODES_KEY } from '../../shared/redis-keys.js';
import { metricValue } from '../helpers/metrics.js';
import type { RedisClient } from '../../shared/redis.js';
import { spawnZmcast, type ZmcastProcess } from '../helpers/zmcast-process.js';
import { sleep, until } from '../helpers/wait.js';
import { pictureRig } from './picture-rig.js';

const start = pictureRig();
const processes: ZmcastProcess[] = [];
afterEach(async () => {
  for (const p of processes.splice(0)) await p.kill('SIGKILL');
});

function workerProcess(redisUrl: string): ZmcastProcess {
  const p = spawnZmcast(['worker'], { ZMCAST_REDIS_URL: redisUrl, ZMCAST_WORKER_LOCK_MS: '2000', ZMCAST_WORKER_METRICS_PORT: '0', ZMCAST_LOG_LEVEL: 'info' });
  processes.push(p);
  return p;
}

async function liveWorkers(redis: RedisClient): Promise<number> {
  return redis.zcount(WORKER_NODES_KEY, Date.now(), '+inf');
}

/** Arrival times (ms, Redis clock) and pictures of a derived stream, read every 100 ms. */
function follow(redis: RedisClient, key: string) {
  const seen: { at: number; sequence: number; width: number }[] = [];
  let last = '0-0';
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      const entries = (await redis.xrangeBuffer(key, `(${last}`, '+')) as [Buffer, Buffer[]][];
      for (const [id, fields] of entries) {
        last = id.toString();
        const p = decodePicture(fields[1]);
        seen.push({ at: Number(last.split('-')[0]), sequence: p.sequence, width: p.width });
      }
      await sleep(100);
    }
  })();
  return { seen, stop: async () => { stopped = true; await loop; } };
}

describe('derived picture streams', () => {
  it('keep coming after the worker producing them is killed: another worker takes over', async () => {
    const rig = await start([{ id: 1, name: 'Camera', source: 'synthetic:?size=640x360&fps=25&gop=25' }]);
    await rig.packets(1, 5);
    const a = workerProcess(rig.url);
    await until(async () => (await liveWorkers(rig.redis)) >= 1, 20_000, 'worker A');

    const client = rig.client();
    const spec = parsePictureSpec({ format: 'jpeg', width: 160 });
    const key = await client.want(1, spec, 5);
    // As an edge does while anyone subscribes.
    const renew = rig.keepWanting(() => client.want(1, spec, 5));
    const stream = follow(rig.redis, key);
    try {
      await until(() => stream.seen.length >= 5, 20_000, 'pictures from worker A');
      expect(stream.seen.every((p) => p.width === 160)).toBe(true);

      const b = workerProcess(rig.url);
      await until(async () => (await liveWorkers(rig.redis)) >= 2, 20_000, 'worker B');
      await a.kill('SIGKILL');
      // Measured once A is gone for sure: nothing it sent can arrive after this.
      const [sec, usec] = await rig.redis.time();
      const killedAt = Number(sec) * 1000 + Math.floor(Number(usec) / 1000);

      await until(() => stream.seen.filter((p) => p.at > killedAt + 500).length >= 5, 20_000, 'pictures after worker A died');
      const firstAfter = stream.seen.find((p) => p.at > killedAt)!;
      // Lock 2 s + the stalled check (every 1 s) + a cold decoder start: well under 10 s.
      console.log(`drill worker-kill: derived pictures again ${firstAfter.at - killedAt} ms after the producing worker was killed`);
      expect(firstAfter.at - killedAt).toBeLessThan(10_000);
      expect(b.logs().some((l) => l.msg === 'derived stream started')).toBe(true);
    } finally {
      await stream.stop();
      await renew.stop();
    }
  });

  it('of one monitor at several rates run side by side, and stop a few seconds after the last want()', async () => {
    const rig = await start([{ id: 2, name: 'Camera', source: 'synthetic:?size=320x180&fps=25&gop=25' }]);
    await rig.packets(2, 5);
    await rig.worker();
    const client = rig.client();
    // Same size at two rates: both share the monitor's decoder and the worker's encoder.
    const spec = parsePictureSpec({ format: 'jpeg', width: 160 });
    const wantBoth = async () => [await client.want(2, spec, 10), await client.want(2, spec, 4)];
    const [key, slower] = await wantBoth();
    // Renewed as an edge does while anyone subscribes: a worker's cold start on a busy machine can outlast one want().
    const renew = rig.keepWanting(wantBoth);
    await until(async () => (await rig.redis.xlen(key)) >= 3 && (await rig.redis.xlen(slower)) >= 3, 20_000, 'pictures of both streams');
    await renew.stop();
    await until(async () => {
      const [newest] = (await rig.redis.xrevrange(key, '+', '-', 'COUNT', 1)) as [string, string[]][];
      const now = Number((await rig.redis.time())[0]) * 1000;
      return now - Number(newest[0].split('-')[0]) > 2000;
    }, 10_000, 'the stream to stop');
  });

  it('at or below the keyframe rate decode keyframes only', async () => {
    const rig = await start([{ id: 3, name: 'Camera', source: 'synthetic:?size=320x180&fps=25&gop=25' }]);
    await rig.packets(3, 30);
    await rig.worker();
    const client = rig.client();
    const spec = parsePictureSpec({ format: 'jpeg', width: 160 });
    const [keyframes, full] = [await metricValue('zmcast_worker_decoded_frames_total', { mode: 'keyframe' }), await metricValue('zmcast_worker_decoded_frames_total', { mode: 'full' })];
    const key = await client.want(3, spec, 1);
    const renew = rig.keepWanting(() => client.want(3, spec, 1));
    await until(async () => (await rig.redis.xlen(key)) >= 3, 20_000, 'three pictures');
    await renew.stop();
    const decoded = (await metricValue('zmcast_worker_decoded_frames_total', { mode: 'keyframe' })) - keyframes;
    // Three pictures at one a second took about three keyframes, not 75 packets.
    expect(decoded).toBeGreaterThanOrEqual(3);
    expect(decoded).toBeLessThanOrEqual(6);
    expect(await metricValue('zmcast_worker_decoded_frames_total', { mode: 'full' })).toBe(full);
    const pictures = (await rig.redis.xrangeBuffer(key, '-', '+')) as [Buffer, Buffer[]][];
    expect(pictures.map(([, f]) => decodePicture(f[1]).width)).toEqual(pictures.map(() => 160));
  });
});
