/**
 * What the security suites share: WebSocket attempts that report either the
 * open connection or the refused upgrade (status and body, no 101), raw TCP
 * for what a WebSocket client cannot send, the edge's refusal counters, a
 * healthy viewer whose packets are checked for gaps, and a zm.conf pointing
 * an edge at a throwaway ZoneMinder database.
 */
import { connect as tcpConnect } from 'node:net';
import WebSocket from 'ws';
import { ZmcastClient, type ReceivedPacket } from '../../client/zmcast-client.js';
import { metricValue } from '../helpers/metrics.js';
import { until } from '../helpers/wait.js';

export type Msg = Record<string, unknown>;

export interface Conn {
  ws: WebSocket;
  /** The subprotocol the edge echoed ('' for none). */
  protocol: string;
  /** JSON text frames, in order. */
  messages: Msg[];
  /** Binary frames, in order. */
  binary: Buffer[];
  closed: Promise<{ code: number; reason: string; at: number }>;
  send(o: unknown): void;
  /** The first message (already received or still to come) that matches. */
  waitFor(match: (m: Msg) => boolean, timeoutMs?: number, what?: string): Promise<Msg>;
}

export interface Refusal {
  status: number;
  body: string;
}

export class Refused extends Error {
  constructor(readonly status: number, readonly body: string) {
    super(`HTTP ${status}: ${body.trim()}`);
  }
}

export interface AttemptOptions {
  headers?: Record<string, string>;
  protocols?: string[];
  /** For wss:// with a test certificate. */
  ca?: Buffer | string;
}

function wsUrl(base: string, path: string): string {
  return base.replace(/^http/, 'ws') + path;
}

/** Opens a WebSocket; rejects with `Refused` when the edge answers the upgrade with anything but 101. */
export function open(base: string, path: string, o: AttemptOptions = {}): Promise<Conn> {
  const ws = new WebSocket(wsUrl(base, path), o.protocols ?? [], { headers: o.headers, ca: o.ca, perMessageDeflate: false });
  const messages: Msg[] = [];
  const binary: Buffer[] = [];
  const waiters: { match: (m: Msg) => boolean; resolve: (m: Msg) => void }[] = [];
  ws.on('message', (data, isBinary) => {
    if (isBinary) {
      binary.push(data as Buffer);
      return;
    }
    const m = JSON.parse(String(data)) as Msg;
    messages.push(m);
    for (const w of waiters.splice(0)) {
      if (w.match(m)) w.resolve(m);
      else waiters.push(w);
    }
  });
  const closed = new Promise<{ code: number; reason: string; at: number }>((resolve) =>
    ws.once('close', (code, reason) => resolve({ code, reason: String(reason), at: Date.now() })));
  const conn: Conn = {
    ws,
    get protocol() {
      return ws.protocol;
    },
    messages,
    binary,
    closed,
    send: (x) => ws.send(typeof x === 'string' || Buffer.isBuffer(x) ? x : JSON.stringify(x)),
    waitFor(match, timeoutMs = 5000, what = 'message') {
      const seen = messages.find(match);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no ${what} within ${timeoutMs} ms; got ${JSON.stringify(messages).slice(0, 400)}`)), timeoutMs);
        waiters.push({ match, resolve: (m) => { clearTimeout(timer); resolve(m); } });
      });
    },
  };
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(conn));
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (c) => { body += c; });
      res.on('end', () => reject(new Refused(res.statusCode ?? 0, body)));
      res.on('error', () => reject(new Refused(res.statusCode ?? 0, body)));
    });
    ws.on('error', (err) => reject(err));
  });
}

/**
 * The refusal (status and body) of a WebSocket upgrade that must not succeed.
 * For an AuthError from an authenticator called directly, see authErrorFrom in
 * test/helpers/auth-error.ts.
 */
export async function upgradeRefusal(base: string, path: string, o: AttemptOptions = {}): Promise<Refusal> {
  try {
    const c = await open(base, path, o);
    c.ws.terminate();
  } catch (err) {
    if (err instanceof Refused) return { status: err.status, body: err.body };
    throw err;
  }
  throw new Error(`upgrade of ${path} was accepted; expected a refusal`);
}

export const isType = (type: string) => (m: Msg) => m.type === type;
export const isError = (code: string) => (m: Msg) => m.type === 'error' && m.code === code;

/** Sends raw bytes over TCP and collects whatever comes back until the edge closes. */
export function rawExchange(port: number, payload: string | Buffer, o: { timeoutMs?: number; keepSending?: boolean } = {}): Promise<{ response: string; closedAfterMs: number }> {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const sock = tcpConnect(port, '127.0.0.1', () => {
      if (payload.length) sock.write(payload);
    });
    let response = '';
    sock.on('data', (d) => { response += d.toString('latin1'); });
    sock.on('error', () => {});
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`connection still open after ${o.timeoutMs} ms; got ${JSON.stringify(response.slice(0, 200))}`));
    }, o.timeoutMs ?? 10_000);
    sock.on('close', () => {
      clearTimeout(timer);
      resolve({ response, closedAfterMs: Date.now() - t0 });
    });
  });
}

/** Current value of zmcast_edge_refused_total{reason}. */
export async function refused(reason: string): Promise<number> {
  return metricValue('zmcast_edge_refused_total', { reason });
}

/** Current value of zmcast_edge_dropped_clients_total{reason}. */
export async function dropped(reason: string): Promise<number> {
  return metricValue('zmcast_edge_dropped_clients_total', { reason });
}

/** A viewer of one monitor on /ws that must see every packet, in order, without a gap. */
export class HealthyViewer {
  readonly packets: ReceivedPacket[] = [];
  closedWith: number | null = null;

  private constructor(readonly client: ZmcastClient, readonly monitorId: number) {
    client.on('packet', (p) => this.packets.push(p));
    client.on('close', (code) => { this.closedWith = code; });
  }

  static async start(base: string, monitorId: number, headers: Record<string, string>): Promise<HealthyViewer> {
    const client = await ZmcastClient.connect(base, { headers });
    const v = new HealthyViewer(client, monitorId);
    client.subscribeStream(monitorId);
    await client.next('ack');
    return v;
  }

  /** Waits for `lastSequence`, then checks that every sequence since the first arrived exactly once, in order. */
  async assertNoGap(lastSequence: number, timeoutMs = 10_000): Promise<{ first: number; count: number }> {
    await until(() => this.packets.at(-1)?.sequence === lastSequence || this.closedWith !== null, timeoutMs, `packet ${lastSequence}`);
    if (this.closedWith !== null) throw new Error(`healthy viewer was closed with ${this.closedWith}`);
    const seqs = this.packets.map((p) => p.sequence);
    const first = seqs[0];
    const expected = Array.from({ length: lastSequence - first + 1 }, (_, i) => first + i);
    if (seqs.length !== expected.length || seqs.some((s, i) => s !== expected[i])) {
      const gap = seqs.findIndex((s, i) => s !== expected[i]);
      throw new Error(`healthy viewer has a gap or reordering at index ${gap}: got ${seqs.slice(Math.max(0, gap - 3), gap + 3)} (from ${first} to ${lastSequence})`);
    }
    for (const p of this.packets) if (p.monitorId !== this.monitorId) throw new Error(`packet of monitor ${p.monitorId}`);
    return { first, count: seqs.length };
  }
}


export const q = encodeURIComponent;
