/**
 * Reading Prometheus metrics in tests: from this process's registry (for a
 * service running in the test process), and from `/metrics` text scraped
 * over HTTP (for a service running as its own process).
 */
import { registry } from '../../shared/metrics.js';

/**
 * Current value of a counter or gauge in this process, summed over the series
 * whose labels include `labels` (0 while no such series exists). Read it before
 * and after an action and compare: series live as long as the process.
 */
export async function metricValue(name: string, labels: Record<string, string> = {}): Promise<number> {
  const metric = registry.getSingleMetric(name);
  if (!metric) return 0;
  const { values } = await metric.get();
  return values
    .filter((v) => Object.entries(labels).every(([k, want]) => String(v.labels[k]) === want))
    .reduce((sum, v) => sum + v.value, 0);
}

/** One sample of a scrape: `name{labels} value`. */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** A scrape, by metric family (`# TYPE` name; a histogram's _bucket/_sum/_count samples under its family). */
export type Exposition = Map<string, { type: string; samples: Sample[] }>;

/** Parses the Prometheus text format (what prom-client writes; one or more scrapes concatenated). */
export function parseExposition(text: string): Exposition {
  const families: Exposition = new Map();
  const familyOf = (name: string): string | undefined => {
    if (families.has(name)) return name;
    const base = name.replace(/_(bucket|sum|count)$/, '');
    return ['histogram', 'summary'].includes(families.get(base)?.type ?? '') ? base : undefined;
  };
  for (const line of text.split('\n')) {
    const type = /^# TYPE (\S+) (\S+)/.exec(line);
    if (type) {
      if (!families.has(type[1])) families.set(type[1], { type: type[2], samples: [] });
      continue;
    }
    if (line === '' || line.startsWith('#')) continue;
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!sample) throw new Error(`not a Prometheus sample: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (sample[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2].replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    const family = familyOf(sample[1]);
    if (!family) throw new Error(`sample of an undeclared metric: ${line}`);
    families.get(family)!.samples.push({ name: sample[1], labels, value: Number(sample[3]) });
  }
  return families;
}

/** Sum of the samples named `name` (`x_count` of a histogram `x` too) whose labels include `labels`. */
export function sampleSum(scrape: Exposition, name: string, labels: Record<string, string> = {}): number {
  const family = scrape.get(name) ?? scrape.get(name.replace(/_(bucket|sum|count)$/, ''));
  return (family?.samples ?? [])
    .filter((s) => s.name === name && Object.entries(labels).every(([k, want]) => s.labels[k] === want))
    .reduce((sum, s) => sum + s.value, 0);
}
