/** Reads a V8 .cpuprofile and says where the time went: self time by function, largest first. */
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface HotSpot {
  fn: string;
  where: string;
  selfMs: number;
  selfPercent: number;
}

export function summarizeProfile(path: string, top = 20): { totalMs: number; idlePercent: number; hot: HotSpot[] } {
  const p = JSON.parse(readFileSync(path, 'utf8')) as CpuProfile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map<string, { fn: string; where: string; us: number }>();
  let total = 0;
  let idle = 0;
  for (let i = 0; i < p.samples.length; i++) {
    const dt = p.timeDeltas[i + 1] ?? 0;
    const node = byId.get(p.samples[i]);
    if (!node) continue;
    total += dt;
    const { functionName, url, lineNumber } = node.callFrame;
    if (functionName === '(idle)') { idle += dt; continue; }
    const file = url.replace(/^.*\/(dist|node_modules)\//, '$1/').replace(/^node:/, 'node:');
    const key = `${functionName}|${file}|${lineNumber}`;
    const e = self.get(key) ?? { fn: functionName || '(anonymous)', where: file ? `${file}:${lineNumber + 1}` : '', us: 0 };
    e.us += dt;
    self.set(key, e);
  }
  const busy = total - idle;
  const hot = [...self.values()]
    .sort((a, b) => b.us - a.us)
    .slice(0, top)
    .map((e) => ({ fn: e.fn, where: e.where, selfMs: e.us / 1000, selfPercent: busy > 0 ? (100 * e.us) / busy : 0 }));
  return { totalMs: total / 1000, idlePercent: total > 0 ? (100 * idle) / total : 0, hot };
}
