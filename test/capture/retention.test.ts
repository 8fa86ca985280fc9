import { describe, expect, it } from 'vitest';
import { decodeHeader } from '../../shared/packet.js';
import { monitorKeys } from '../../shared/redis-keys.js';
import { captureOnRedis } from '../fixtures/capture-on-redis.js';
import { packetsOf, probeAnnexB, readMetaConfig, readVideoStream } from '../fixtures/capture-stream.js';
import { until } from '../helpers/wait.js';

const ID = 41;
const captures = captureOnRedis();

describe('stream retention', () => {
  it('trims whole GOPs at keyframes, so the stream always starts at a keyframe and keeps the newest GOP', async () => {
    // 0.2 s GOPs, two retained.
    const { capture, redis: r } = await captures.monitor({ id: ID, name: 'Short memory', source: 'synthetic:?size=160x120&fps=25&gop=5' },
      { retention: { gops: 2 } });
    await capture.start();

    // Sampled while capture keeps writing: the first packet in the stream, behind at most a config.
    const heads: boolean[] = [];
    await until(async () => {
      const head = await r.xrangeBuffer(monitorKeys(ID).video, '-', '+', 'COUNT', 2);
      const packet = head.find(([, [field]]) => field.toString() === 'p');
      if (packet) heads.push(decodeHeader(packet[1][1]).keyframe);
      return (packetsOf(await readVideoStream(r, ID)).at(-1)?.sequence ?? 0) >= 60;
    }, 10_000, 'a dozen GOPs');
    await capture.stop();
    expect(heads.length).toBeGreaterThan(10);
    expect(heads.every(Boolean)).toBe(true);

    const entries = await readVideoStream(r, ID);
    const packets = packetsOf(entries);
    // The generation's config left the stream with its GOP; the meta hash keeps it.
    expect(entries[0]).toMatchObject({ packet: { keyframe: true } });
    const keyframes = packets.filter((p) => p.keyframe);
    expect(keyframes.length).toBe(2);
    // Nothing cut out of the middle: sequences run on from the oldest retained keyframe to the newest packet.
    expect(packets.map((p) => p.sequence)).toEqual(packets.map((_, i) => packets[0].sequence + i));
    expect(packets.length).toBeGreaterThanOrEqual(6);

    const kfIndex = await r.lrange(monitorKeys(ID).keyframes, 0, -1);
    expect(kfIndex).toEqual(entries.filter((e) => 'packet' in e && e.packet.keyframe).map((e) => e.id));
    expect(await r.hget(monitorKeys(ID).meta, 'kf')).toBe(kfIndex.at(-1));

    // What is left decodes on its own with the config from the meta hash.
    const config = (await readMetaConfig(r, ID))!;
    expect(probeAnnexB(config, packets)).toMatchObject({ frames: packets.length, errors: '' });
  });
});
