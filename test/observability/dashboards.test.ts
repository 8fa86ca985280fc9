/**
 * Every metric a shipped dashboard or alert rule uses must exist, with the
 * labels it groups by, on a running capture + edge.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ZmcastClient } from '../../client/zmcast-client.js';
import { startEdge, PacketSource, until, type EdgeRig } from '../helpers/edge.js';
import { captureMetrics, registry } from '../../shared/metrics.js';

const labelsOf = (name: string): string[] => (registry.getSingleMetric(name) as unknown as { labelNames?: string[] } | undefined)?.labelNames ?? [];

const GRAFANA = join(import.meta.dirname, '..', '..', 'grafana');

function expressions(): string[] {
  const out: string[] = [];
  for (const file of readdirSync(GRAFANA)) {
    const text = readFileSync(join(GRAFANA, file), 'utf8');
    if (file.endsWith('.json')) {
      for (const p of JSON.parse(text).panels) for (const t of p.targets) out.push(t.expr);
    } else if (file.endsWith('.yaml')) {
      for (const m of text.matchAll(/expr:\s*(.+)/g)) out.push(m[1]);
    }
  }
  return out;
}

/** Metric names in an expression, without the histogram suffixes Prometheus adds. */
function metricNames(expr: string): string[] {
  return [...expr.matchAll(/\bzmcast_[a-z_]+/g)].map((m) => m[0].replace(/_(bucket|sum|count)$/, ''));
}

let rig: EdgeRig;
let exposition = '';
beforeAll(async () => {
  rig = await startEdge();
  const cam = new PacketSource(rig.redis, 1, { gop: 5, size: 1000 });
  await cam.register();
  const client = await ZmcastClient.connect(rig.url);
  client.subscribeStream(1);
  await client.next('ack');
  await cam.publish(10);
  await until(async () => (await (await fetch(`${rig.url}/metrics`)).text()).includes('zmcast_edge_sent_frames_total'), 5000, 'metrics');
  captureMetrics(); // capture's metrics live in the same registry in the demo
  exposition = await (await fetch(`${rig.url}/metrics`)).text();
  await client.close();
});
afterAll(() => rig.close());

describe('shipped dashboards and alerts', () => {
  const exprs = expressions();

  it('are found', () => {
    expect(exprs.length).toBeGreaterThan(20);
  });

  it('use only metrics that zmcast exports', () => {
    const declared = new Set([...exposition.matchAll(/^# TYPE (\S+)/gm)].map((m) => m[1]));
    const missing = [...new Set(exprs.flatMap(metricNames))].filter((n) => !declared.has(n));
    expect(missing).toEqual([]);
  });

  it('group only by labels those metrics carry', () => {
    for (const expr of exprs) {
      for (const by of expr.matchAll(/by \(([^)]*)\)/g)) {
        for (const label of by[1].split(',').map((s) => s.trim()).filter((l) => l !== 'le' && l !== 'instance')) {
          const carries = metricNames(expr).some((n) => labelsOf(n).includes(label));
          expect(carries, `${label} in ${expr}`).toBe(true);
        }
      }
    }
  });
});
