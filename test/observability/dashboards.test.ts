/**
 * Every metric the shipped Grafana dashboard and alert rules use must exist,
 * with every label they group by, filter on or print, in what a running
 * capture and edge export on /metrics.
 *
 * The real `zmcast capture`, `zmcast edge` and `zmcast worker` run as their own processes on a
 * private Redis (this file pauses it, fills it and cuts its connections), and
 * are scraped over HTTP the way Prometheus scrapes them. A viewer watches the
 * synthetic camera, and the test makes happen what the panels and alerts are
 * there for: a refused login, a forbidden subscription, a slow viewer skipped
 * and closed, a JWKS file that cannot be read, a camera that cannot be opened,
 * a Redis too slow for capture, one that refuses writes, lost Redis
 * connections, a lease taken by another capture process, and pictures: two
 * snapshots at once through the edge (one joins the other) and a derived
 * stream slow enough for keyframes only. A labelled
 * series only exists once it has been counted, so without these the labels
 * could not be checked.
 *
 * The metrics and labels are read from grafana/, never listed here: a metric
 * added to a panel is checked by this test as it is.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ZmcastClient } from '../../client/zmcast-client.js';
import { monitorKeys } from '../../shared/redis-keys.js';
import { freePort, spawnRedis, type LocatedRedis } from '../../shared/redis-locator.js';
import { PictureClient } from '../../shared/pictures/picture-client.js';
import { parsePictureSpec } from '../../shared/pictures/picture-spec.js';
import { startCapture, startEdge, zmcast, type Zmcast } from '../faults/rig.js';
import { PacketSource } from '../helpers/edge.js';
import { parseExposition, sampleSum, type Exposition } from '../helpers/metrics.js';
import { sleep, until } from '../helpers/wait.js';
import { upgradeRefusal } from '../security/rig.js';

const GRAFANA = join(import.meta.dirname, '..', '..', 'grafana');
/** Labels Prometheus adds to every series it scrapes: never on /metrics. */
const TARGET_LABELS = new Set(['instance', 'job']);

// ---------------------------------------------------------------------------
// What grafana/ uses

interface Use {
  /** Where: file and panel title or alert name. */
  where: string;
  expr: string;
  /** Labels printed by a legend or an alert annotation. */
  printed: string[];
}

function uses(): Use[] {
  const out: Use[] = [];
  for (const file of readdirSync(GRAFANA).sort()) {
    const text = readFileSync(join(GRAFANA, file), 'utf8');
    if (file.endsWith('.json')) {
      const walk = (panels: { title?: string; panels?: unknown[]; targets?: { expr?: string; legendFormat?: string }[] }[] = []) => {
        for (const p of panels) {
          for (const t of p.targets ?? []) {
            if (t.expr) out.push({ where: `${file}: ${p.title}`, expr: t.expr, printed: templateLabels(t.legendFormat ?? '') });
          }
          walk(p.panels as typeof panels);
        }
      };
      walk(JSON.parse(text).panels);
    } else if (/\.ya?ml$/.test(file)) {
      for (const block of text.split(/^\s*- alert:\s*/m).slice(1)) {
        out.push({ where: `${file}: ${block.split('\n')[0].trim()}`, expr: yamlValue(block, 'expr'), printed: templateLabels(block) });
      }
    }
  }
  return out;
}

/** `{{monitor}}` in a legend, `{{ $labels.monitor }}` in an annotation. */
function templateLabels(text: string): string[] {
  return [...text.matchAll(/\{\{\s*(?:\$labels\.)?([a-zA-Z_]\w*)\s*\}\}/g)].map((m) => m[1]).filter((l) => !TARGET_LABELS.has(l));
}

/** A key's value in a YAML block: on its line, or a `|`/`>` block below it. */
function yamlValue(block: string, key: string): string {
  const lines = block.split('\n');
  const i = lines.findIndex((l) => new RegExp(`^\\s*${key}:`).test(l));
  if (i < 0) throw new Error(`no ${key}: in ${block.split('\n')[0]}`);
  const value = lines[i].replace(new RegExp(`^\\s*${key}:\\s*`), '');
  if (!/^[|>][-+]?$/.test(value)) return value.replace(/^(["'])(.*)\1$/, '$2');
  const indent = lines[i].search(/\S/);
  const body: string[] = [];
  for (const l of lines.slice(i + 1)) {
    if (l.trim() !== '' && l.search(/\S/) <= indent) break;
    body.push(l.trim());
  }
  return body.join(' ');
}

/** Metric names in an expression, as written (a histogram's _bucket included). */
const metricsIn = (expr: string) => [...new Set([...expr.matchAll(/\bzmcast_[a-zA-Z0-9_]+/g)].map((m) => m[0]))];

/** Labels an expression groups or matches by: `by (…)`, `without (…)`, `on (…)`, `ignoring (…)`, `group_left (…)`. */
const groupingLabels = (expr: string) =>
  [...expr.matchAll(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)/g)]
    .flatMap((m) => m[1].split(',').map((s) => s.trim()).filter(Boolean))
    .filter((l) => !TARGET_LABELS.has(l));

/**
 * Labels an expression's result still carries: all of its series' labels
 * unless it aggregates (sum, min, max, …), then only those it aggregates
 * `by`, or all but those it aggregates `without`. `null` for "all".
 */
function resultLabels(expr: string): { keep: Set<string> | null; drop: Set<string> } {
  const aggregates = /\b(sum|min|max|avg|count|group|stddev|stdvar|topk|bottomk|quantile|count_values)\s*(\(|\bby\b|\bwithout\b)/.test(expr);
  const lists = (word: string) => [...expr.matchAll(new RegExp(`\\b${word}\\s*\\(([^)]*)\\)`, 'g'))].flatMap((m) => m[1].split(',').map((l) => l.trim()));
  const by = lists('by');
  return { keep: aggregates && !/\bwithout\b/.test(expr) ? new Set(by) : null, drop: new Set(lists('without')) };
}

/** `metric{label="value", …}` selectors. */
function matchersIn(expr: string): { metric: string; label: string; op: string; value: string }[] {
  return [...expr.matchAll(/\b(zmcast_[a-zA-Z0-9_]+)\s*\{([^}]*)\}/g)].flatMap((sel) =>
    [...sel[2].matchAll(/([a-zA-Z_]\w*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"/g)].map((m) => ({ metric: sel[1], label: m[1], op: m[2], value: m[3] })));
}

// ---------------------------------------------------------------------------
// The running system

const ISSUER = 'https://idp.test/realms/cams';
const AUDIENCE = 'zmcast-edge';
const dir = mkdtempSync(join(tmpdir(), 'zmcast-dashboards-'));
const jwksFile = join(dir, 'jwks.json');

interface Key { kid: string; privateKey: CryptoKey; jwks: string }

async function makeKey(kid: string): Promise<Key> {
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
  return { kid, privateKey, jwks: JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' }] }) };
}

function sign(key: Key, monitors: number[]): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ iss: ISSUER, aud: AUDIENCE, sub: 'dashboard-viewer', iat: now, exp: now + 600, zmcast_monitors: monitors })
    .setProtectedHeader({ alg: 'ES256', kid: key.kid })
    .sign(key.privateKey);
}

/** A running zmcast process and where it serves /metrics. */
interface Service {
  name: string;
  proc: Zmcast;
  metricsUrl: string;
}

/** One scrape of a service's /metrics, over HTTP, as text. */
async function scrapeText(s: Service): Promise<string> {
  if (s.proc.child.exitCode !== null) {
    throw new Error(`zmcast ${s.name} exited with ${s.proc.child.exitCode}: ${JSON.stringify(s.proc.logs().slice(-5))}`);
  }
  const res = await fetch(s.metricsUrl);
  if (res.status !== 200) throw new Error(`${s.metricsUrl}: HTTP ${res.status}`);
  return res.text();
}

const scrape = async (s: Service): Promise<Exposition> => parseExposition(await scrapeText(s));

/** Waits until `s` answers on /metrics (and fails at once if it exits). */
function serving(s: Service): Promise<true> {
  return until(() => scrapeText(s).then(() => true as const, (err: Error) => {
    if (s.proc.child.exitCode !== null) throw err;
    return false;
  }), 30_000, `zmcast ${s.name} to serve /metrics`);
}

/**
 * Waits, at most `timeoutMs`, until a scrape of `s` shows `name` counted in a
 * series with `labels`, doing `action` before each look. Giving up is not
 * fatal here: the tests below say what is missing (a metric, a label, a value)
 * more precisely than a timeout would.
 */
async function counted(s: Service, name: string, labels: Record<string, string>, timeoutMs: number, action?: () => Promise<unknown>): Promise<void> {
  await until(async () => {
    await action?.();
    return sampleSum(await scrape(s), name, labels) > 0;
  }, timeoutMs, `${name}${JSON.stringify(labels)} on zmcast ${s.name}`).catch((err: Error) => {
    if (!err.message.startsWith('timed out')) throw err;
  });
}

let located: LocatedRedis;
let admin: Redis;
let capture: Service;
let edge: Service;
let worker: Service;
let edgeUrl: string;
let viewer: ZmcastClient;
let viewerPackets = 0;
const clients: ZmcastClient[] = [];
/** Scrapes with the viewer watching and every failure but the last two counted. */
let captureScrape: Exposition;
let edgeScrape: Exposition;
let workerScrape: Exposition;
/** Scrapes at the end, after Redis connections were cut and a lease was lost: each alone, and both together. */
let captureAfter: Exposition;
let edgeAfter: Exposition;
let scraped: Exposition;

beforeAll(async () => {
  located = await spawnRedis();
  admin = new Redis(located.url);
  const key = await makeKey('k1');
  writeFileSync(jwksFile, key.jwks);
  const capturePort = await freePort();
  // The Redis of this file wins over any in the environment the suite runs in.
  const common = { ZMCAST_REDIS_URL: located.url, ZMCAST_EDGE_HOST: '127.0.0.1', ZMCAST_LOG_LEVEL: 'warn' };
  // Monitor 1 is a camera at 100 fps (capture falls behind a paused Redis
  // quickly); monitor 2 cannot be opened, so capture keeps reconnecting it.
  capture = {
    name: 'capture',
    proc: startCapture(located.url, '1=synthetic:?size=160x96&fps=100&gop=50&bitrate=100000,2=/nonexistent/zmcast-camera.mp4', {
      ...common, ZMCAST_CAPTURE_METRICS_PORT: String(capturePort), ZMCAST_RECONNECT_MIN_MS: '100', ZMCAST_RECONNECT_MAX_MS: '500',
    }),
    metricsUrl: `http://127.0.0.1:${capturePort}/metrics`,
  };
  const edgeProc = await startEdge(located.url, {
    ...common,
    ZMCAST_AUTH_MODE: 'jwks', ZMCAST_AUTH_JWKS_FILE: jwksFile, ZMCAST_AUTH_JWKS_ISSUER: ISSUER, ZMCAST_AUTH_JWKS_AUDIENCE: AUDIENCE,
    ZMCAST_AUTH_JWKS_REFRESH_MS: '1000', ZMCAST_AUTH_REVALIDATE_MS: '1000', ZMCAST_AUTH_FAILURES_PER_MINUTE: '0', ZMCAST_AUTH_IN_BAND_TIMEOUT_MS: '0',
    ZMCAST_EDGE_SOFT_LIMIT_BYTES: String(256 * 1024), ZMCAST_EDGE_HARD_LIMIT_BYTES: String(1024 * 1024), ZMCAST_EDGE_HARD_LIMIT_MS: '1500',
  });
  edgeUrl = edgeProc.url;
  edge = { name: 'edge', proc: edgeProc, metricsUrl: `${edgeProc.adminUrl}/metrics` };
  const workerPort = await freePort();
  worker = { name: 'worker', proc: zmcast(['worker'], { ...common, ZMCAST_WORKER_METRICS_PORT: String(workerPort), ZMCAST_WORKER_IDLE_STOP_MS: '1000' }), metricsUrl: `http://127.0.0.1:${workerPort}/metrics` };
  await serving(capture);
  await counted(capture, 'zmcast_capture_packets_total', { monitor: '1' }, 30_000);

  // A viewer of the camera.
  viewer = await ZmcastClient.connect(edgeUrl, { token: await sign(key, [1, 3]) });
  clients.push(viewer);
  viewer.on('packet', () => viewerPackets++);
  viewer.subscribeStream(1);
  await viewer.next('ack');
  await until(() => viewerPackets >= 20, 15_000, 'the viewer to get 20 packets');
  // A subscription the token does not grant, and a token of a key the edge does not know.
  viewer.subscribeStream(2);
  const [refusal] = await viewer.next('errorReply');
  expect(refusal).toMatchObject({ code: 'forbidden', monitor_id: 2 });
  expect(await upgradeRefusal(edgeUrl, `/ws?token=${await sign(await makeKey('k1'), [1])}`)).toEqual({ status: 401, body: 'Invalid token\n' });

  // Pictures: two snapshots at once through the edge (the second joins the first), and a
  // derived stream at 0.5 fps, below the camera's keyframe rate: keyframes only.
  await serving(worker);
  const snapshot = async () => (await fetch(`${edgeUrl}/monitors/1/snapshot.jpg?token=${await sign(key, [1])}`)).arrayBuffer();
  await counted(edge, 'zmcast_pictures_coalesced_total', {}, 15_000, () => Promise.all([snapshot(), snapshot()]));
  // Wanted every second, as an edge does while anyone subscribes; once the snapshots' warm decoder
  // has gone idle (1 s here), the monitor is decoded at keyframes only.
  const pictures = new PictureClient(admin);
  // Half the keyframe rate: keyframes a little late under load must not tip the producer into full decoding.
  const want = () => pictures.want(1, parsePictureSpec({ format: 'jpeg', width: 80 }), 0.5);
  await want();
  const wanting = setInterval(() => {
    want().catch((err: Error) => console.error(`want() failed: ${err.message}`));
  }, 1000);
  try {
    await counted(worker, 'zmcast_worker_decoded_frames_total', { mode: 'keyframe' }, 15_000);
    await counted(worker, 'zmcast_worker_pictures_total', { source: 'derived' }, 15_000);
    await counted(worker, 'zmcast_worker_queue_jobs', { state: 'active' }, 5000);
    workerScrape = await scrape(worker);
  } finally {
    clearInterval(wanting);
    await pictures.close();
  }

  // A viewer that stops reading a busy monitor: skipped to keyframes, then closed.
  // The busy monitor is published from here (with capture's Publisher): 6 MB/s
  // fills the loopback socket buffers in a second, a synthetic camera would not.
  const publisher = new Redis(located.url);
  const busy = new PacketSource(publisher, 3, { gop: 10, size: 60_000, retention: { gops: 3 } });
  await busy.register();
  const slow = await ZmcastClient.connect(edgeUrl, { token: await sign(key, [1, 3]) });
  clients.push(slow);
  slow.subscribeStream(3);
  await slow.next('ack');
  slow.ws.pause();
  busy.start(100);
  try {
    await counted(edge, 'zmcast_edge_dropped_clients_total', {}, 30_000);
  } finally {
    await busy.stop();
    slow.ws.resume();
    publisher.disconnect();
  }

  // The JWKS file turns unreadable: the edge keeps its keys and counts the failure.
  writeFileSync(jwksFile, 'not a key set');
  await counted(edge, 'zmcast_auth_source_errors_total', {}, 15_000, async () => {
    await sleep(300); // the file is looked at again at most once a second, when a token is checked
    const c = await ZmcastClient.connect(edgeUrl, { token: await sign(key, [1]) });
    await c.close();
  });
  writeFileSync(jwksFile, key.jwks);

  // Redis stops taking writes for a while: capture has too many in flight and drops.
  await admin.call('CLIENT', 'PAUSE', '20000', 'WRITE');
  try {
    await counted(capture, 'zmcast_capture_dropped_packets_total', { monitor: '1' }, 15_000);
  } finally {
    await admin.call('CLIENT', 'UNPAUSE');
  }
  // Redis refuses writes (out of memory): capture counts failed writes.
  await admin.config('SET', 'maxmemory', '1');
  try {
    await counted(capture, 'zmcast_capture_publish_errors_total', { monitor: '1' }, 15_000);
  } finally {
    await admin.config('SET', 'maxmemory', '0');
  }

  // Open connections are revalidated (every second here), and the camera reconnect was counted.
  await counted(edge, 'zmcast_auth_revalidations_total', {}, 10_000);
  await counted(capture, 'zmcast_capture_reconnects_total', { monitor: '2' }, 10_000);
  [captureScrape, edgeScrape] = [await scrape(capture), await scrape(edge)];

  // Every Redis connection is cut: capture and edge reconnect by themselves.
  await admin.call('CLIENT', 'KILL', 'TYPE', 'normal', 'SKIPME', 'yes');
  await counted(capture, 'zmcast_redis_reconnects_total', {}, 15_000);
  await counted(edge, 'zmcast_redis_reconnects_total', {}, 15_000);
  // Another capture process holds monitor 1's lease, as one would after this
  // one stalled past it: capture's writes are fenced, it learns the lease is
  // lost, and takes the monitor back as a failover once that lease runs out.
  await admin.set(monitorKeys(1).lease, '999999:another-capture-process', 'PX', 1500);
  await counted(capture, 'zmcast_capture_fenced_writes_total', { monitor: '1' }, 10_000);
  await counted(capture, 'zmcast_capture_lease_losses_total', { monitor: '1' }, 10_000);
  await counted(capture, 'zmcast_capture_failovers_total', { monitor: '1' }, 15_000);

  const [captureText, edgeText] = [await scrapeText(capture), await scrapeText(edge)];
  [captureAfter, edgeAfter] = [parseExposition(captureText), parseExposition(edgeText)];
  scraped = parseExposition(`${captureText}\n${edgeText}\n${await scrapeText(worker)}`);
}, 180_000);

afterAll(async () => {
  // The zmcast processes are killed by test/faults/rig.ts when the file ends.
  await Promise.all(clients.map((c) => c.close()));
  admin?.disconnect();
  await located?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('shipped dashboards and alerts, on a running capture, edge and worker', () => {
  const used = uses();

  it('are found', () => {
    expect(used.length).toBeGreaterThan(20);
    expect(used.filter((u) => u.where.startsWith('alerts')).length).toBeGreaterThan(3);
  });

  it('use only metrics the capture, edge and worker export', () => {
    const missing = used.flatMap((u) => metricsIn(u.expr).filter((n) => !familyOf(n)).map((n) => `${n} (${u.where})`));
    expect(missing).toEqual([]);
  });

  it('group by, select by and print only labels the scraped series carry (and the result keeps), and select values that occurred', () => {
    const problems: string[] = [];
    for (const u of used) {
      const families = metricsIn(u.expr).map(familyOf).filter((f): f is string => f !== undefined);
      const unseen = families.filter((f) => scraped.get(f)!.samples.length === 0);
      for (const f of unseen) problems.push(`${f}: no series in the scrape, so its labels cannot be checked (make the test count one) (${u.where})`);
      if (unseen.length > 0) continue;
      for (const label of new Set([...groupingLabels(u.expr), ...u.printed])) {
        if (!families.some((f) => carries(f, label))) problems.push(`no series of ${families.join(', ')} carries label ${label} (${u.where})`);
      }
      const result = resultLabels(u.expr);
      for (const label of u.printed) {
        if ((result.keep && !result.keep.has(label)) || result.drop.has(label)) problems.push(`prints label ${label}, which \`${u.expr}\` aggregates away (${u.where})`);
      }
      for (const m of matchersIn(u.expr)) {
        const f = familyOf(m.metric);
        if (!f) continue;
        if (!carries(f, m.label)) problems.push(`no series of ${f} carries label ${m.label} (${u.where})`);
        else if (m.op === '=' && !scraped.get(f)!.samples.some((s) => s.labels[m.label] === m.value)) {
          problems.push(`${f} has no series with ${m.label}="${m.value}" (${u.where})`);
        }
      }
    }
    expect(problems).toEqual([]);
  });

  it('show a camera published, a viewer served, and each failure counted where it happened', () => {
    const c = (name: string, labels: Record<string, string> = {}) => sampleSum(captureScrape, name, labels);
    const e = (name: string, labels: Record<string, string> = {}) => sampleSum(edgeScrape, name, labels);
    const checks: Record<string, boolean> = {
      'capture: packets published (monitor 1)': c('zmcast_capture_packets_total', { monitor: '1' }) > 0,
      'capture: bytes published (monitor 1)': c('zmcast_capture_bytes_total', { monitor: '1' }) > 0,
      'capture: camera 1 connected': c('zmcast_capture_connected', { monitor: '1' }) === 1,
      'capture: camera 2 not connected': c('zmcast_capture_connected', { monitor: '2' }) === 0,
      'capture: camera 2 reconnects': c('zmcast_capture_reconnects_total', { monitor: '2' }) > 0,
      'capture: packets dropped (monitor 1)': c('zmcast_capture_dropped_packets_total', { monitor: '1' }) > 0,
      'capture: failed writes (monitor 1)': c('zmcast_capture_publish_errors_total', { monitor: '1' }) > 0,
      'edge: packets read (monitor 1)': e('zmcast_edge_packets_total', { monitor: '1' }) > 0,
      'edge: frames sent': e('zmcast_edge_sent_frames_total') > 0,
      'edge: bytes sent': e('zmcast_edge_sent_bytes_total') > 0,
      'edge: a client connected': e('zmcast_edge_clients') >= 1,
      'edge: a subscriber of monitor 1': e('zmcast_edge_stream_subscribers', { monitor: '1' }) >= 1,
      'edge: capture-to-send latency observed': e('zmcast_edge_capture_to_send_seconds_count') > 0,
      'edge: time to first frame observed': e('zmcast_edge_first_frame_seconds_count') > 0,
      'edge: token logins': e('zmcast_auth_attempts_total', { method: 'token', result: 'ok' }) >= 2,
      'edge: the stranger token refused': e('zmcast_edge_refused_total', { reason: 'auth_invalid_token' }) >= 1,
      'edge: the forbidden subscription answered': e('zmcast_edge_errors_total', { code: 'forbidden' }) >= 1,
      'edge: slow viewer skipped (monitor 3)': e('zmcast_edge_dropped_frames_total', { monitor: '3' }) > 0,
      'edge: slow viewer closed': e('zmcast_edge_dropped_clients_total', { reason: 'slow_consumer' }) >= 1,
      'edge: connections revalidated': e('zmcast_auth_revalidations_total', { result: 'ok' }) >= 1,
      'edge: JWKS read failures': e('zmcast_auth_source_errors_total', { source: 'jwks' }) >= 1,
      'capture: Redis connection restored': sampleSum(captureAfter, 'zmcast_redis_reconnects_total') >= 1,
      'edge: Redis connection restored': sampleSum(edgeAfter, 'zmcast_redis_reconnects_total') >= 1,
      'capture: writes fenced (monitor 1)': sampleSum(captureAfter, 'zmcast_capture_fenced_writes_total', { monitor: '1' }) >= 1,
      'capture: lease lost (monitor 1)': sampleSum(captureAfter, 'zmcast_capture_lease_losses_total', { monitor: '1' }) >= 1,
      'capture: monitor 1 taken over again': sampleSum(captureAfter, 'zmcast_capture_failovers_total', { monitor: '1' }) >= 1,
      'edge: a snapshot joined another one': e('zmcast_pictures_coalesced_total') >= 1,
      'edge: snapshots served': e('zmcast_pictures_requests_total', { result: 'ok' }) >= 2,
      'worker: a snapshot made': sampleSum(workerScrape, 'zmcast_worker_pictures_total', { source: 'snapshot' }) >= 1,
      'worker: derived pictures from keyframes only': sampleSum(workerScrape, 'zmcast_worker_decoded_frames_total', { mode: 'keyframe' }) >= 1,
      'worker: one derived stream': sampleSum(workerScrape, 'zmcast_worker_derived_streams') === 1,
      'worker: decode and encode timed': sampleSum(workerScrape, 'zmcast_worker_decode_seconds_count') > 0 && sampleSum(workerScrape, 'zmcast_worker_encode_seconds_count', { format: 'jpeg' }) > 0,
    };
    const failed = Object.entries(checks).filter(([, ok]) => !ok).map(([what]) => what);
    expect(failed, `capture's last log lines: ${JSON.stringify(capture.proc.logs().slice(-8))}`).toEqual([]);
  });
});

/** The scraped family a metric name of an expression belongs to (`x_bucket` → histogram `x`). */
function familyOf(name: string): string | undefined {
  if (scraped.has(name)) return name;
  const base = name.replace(/_(bucket|sum|count)$/, '');
  return ['histogram', 'summary'].includes(scraped.get(base)?.type ?? '') ? base : undefined;
}

function carries(family: string, label: string): boolean {
  return scraped.get(family)!.samples.some((s) => label in s.labels);
}
