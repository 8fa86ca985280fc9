/**
 * Time to the first decodable frame: a viewer subscribes at a random moment
 * in the GOP and waits for a keyframe (zmcast sends the codec config and the
 * cached GOP at once; a system without a GOP cache waits for the camera's next
 * keyframe). "Warm": the edge already follows the monitor; "cold": this
 * viewer is the edge's first for it, so the GOP comes from Redis.
 */
import { Rig, sleep, quantiles } from '../lib/rig.js';
import type { FirstFrame } from '../viewer-process.js';
import type { BenchOptions } from './options.js';

export interface FirstFrameResult {
  system: string;
  gopSeconds: number;
  edgeState: 'warm' | 'cold';
  joins: number;
  failed: number;
  /** Subscribe → first keyframe, ms. */
  firstKeyframeMs: ReturnType<typeof quantiles>;
  /** Every join's first frame was a keyframe with the codec config before it. */
  allDecodableAtOnce: boolean;
}

const WARM_JOINS = 20;
const COLD_JOINS = 10;

export async function firstFrame(o: BenchOptions): Promise<FirstFrameResult[]> {
  const out: FirstFrameResult[] = [];
  const gops = [o.fps, 4 * o.fps];
  for (const system of o.systems) {
    const rig = await Rig.start(system);
    try {
      // Monitor g (1 or 2) is watched throughout; monitors 100·g+i are each joined once, cold.
      const monitors = gops.flatMap((gop, g) => [
        { id: g + 1, gop },
        ...(system === 'zmcast' ? Array.from({ length: COLD_JOINS }, (_, i) => ({ id: 100 * (g + 1) + i, gop })) : []),
      ]);
      const publisher = await rig.publisher(system, { monitors, size: o.size, fps: o.fps });
      const [keeper, joiner] = rig.viewers(2);
      await keeper.call('connect', {
        port: rig.port, protocol: system === 'socketio' ? 'socketio' : 'zmcast', throttleBytesPerSecond: 0, concurrency: 2,
        groups: gops.map((_, g) => ({ monitorId: g + 1, count: 1, slow: 'none' })),
      });
      await publisher.call('start');
      await sleep(gops[1] / o.fps * 1000 + 500); // a full long GOP on the wire before anyone joins
      for (const [g, gop] of gops.entries()) {
        const gopMs = (gop / o.fps) * 1000;
        const states: ('warm' | 'cold')[] = system === 'zmcast' ? ['warm', 'cold'] : ['warm'];
        for (const state of states) {
          const ids = state === 'warm' ? Array(WARM_JOINS).fill(g + 1) : Array.from({ length: COLD_JOINS }, (_, i) => 100 * (g + 1) + i);
          // Joins start at uniformly spread moments over one GOP, so every phase is sampled.
          const results = await Promise.all(ids.map(async (id: number, i: number) => {
            await sleep((i / ids.length) * gopMs + Math.random() * (gopMs / ids.length));
            return joiner.call<FirstFrame>('firstFrame', rig.port, system === 'socketio' ? 'socketio' : 'zmcast', id, gopMs * 3).catch(() => null);
          }));
          const ok = results.filter((r): r is FirstFrame => r !== null);
          const r: FirstFrameResult = {
            system, gopSeconds: gop / o.fps, edgeState: state, joins: ids.length, failed: ids.length - ok.length,
            firstKeyframeMs: quantiles(ok.map((x) => x.firstKeyframeMs)),
            allDecodableAtOnce: ok.length === ids.length && ok.every((x) => x.firstWasKeyframe && (system === 'socketio' || x.codecBeforeKeyframe)),
          };
          o.log(`  ${system} GOP ${r.gopSeconds} s ${state}: first keyframe p50 ${r.firstKeyframeMs.p50.toFixed(1)} ms, ` +
            `p90 ${r.firstKeyframeMs.p90.toFixed(1)} ms, max ${r.firstKeyframeMs.max.toFixed(1)} ms over ${ok.length} joins` +
            `${r.allDecodableAtOnce ? ', every first frame decodable' : ''}`);
          out.push(r);
        }
      }
    } finally {
      await rig.stop();
    }
  }
  return out;
}
