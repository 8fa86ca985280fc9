// The live-view page: one WebSocket to /ws for every monitor shown (montage),
// WebCodecs decoding of the passthrough H.264, one canvas per monitor.
// Packets are parsed by the same module the edge and CLI use (/lib/packet.js).
// A lost connection comes back by itself, as the reference client's does
// (client/reconnecting-client.ts, docs/protocol.md "Reconnecting").
import { decodeHeader, HEADER_BYTES } from '/lib/packet.js';

const params = new URLSearchParams(location.search);
// The viewer's token: from the URL fragment (#token=…), which the browser never sends to a
// server, so it stays out of access logs; ?token= works too but reaches them. It is sent
// in the Authorization header and the WebSocket subprotocol, never in a URL.
const token = new URLSearchParams(location.hash.slice(1)).get('token') ?? params.get('token');
const grid = document.getElementById('grid');
const conn = document.getElementById('conn');
const notice = document.getElementById('notice');
const tiles = new Map();

// Capped exponential backoff with full jitter: the viewers of a drained or
// crashed edge spread their reconnects instead of arriving all at once.
const BACKOFF = { minMs: 250, maxMs: 10_000, rateLimitedMinMs: 5_000 };
// Close codes after which a new connection can succeed; the others (refused
// or expired credentials, revoked access…) need the user.
const RETRY_CLOSE = new Set([1001, 1006, 1011, 1012, 1013, 4008, 4029]);
const RATE_LIMITED = 4029;
const connection = { state: 'connecting', reconnects: 0, lastClose: null };
let everOpen = false;

// Exposed for tests and curious operators: decoded frames and latency per monitor, the connection.
window.zmcast = { tiles, connection };

function say(text) {
  notice.hidden = false;
  notice.textContent = text;
}

class Tile {
  constructor(monitor) {
    this.monitor = monitor;
    this.figure = document.createElement('figure');
    this.canvas = document.createElement('canvas');
    this.caption = document.createElement('figcaption');
    this.figure.append(this.canvas, this.caption);
    grid.append(this.figure);
    this.ctx = this.canvas.getContext('2d');
    this.decoder = null;
    this.generation = -1;
    this.configurations = 0;
    this.waitingForKeyframe = true;
    this.decoded = 0;
    this.errors = 0;
    this.latencies = [];
    this.caption.textContent = `${monitor.name} — waiting for video`;
  }

  // Every codec message, including the one that starts each (re)subscription, gets a fresh
  // decoder: a new generation or epoch needs one, and after a reconnect it costs nothing.
  configure(codec) {
    if (this.decoder?.state !== 'closed') this.decoder?.close();
    this.generation = codec.generation;
    this.configurations++;
    this.figure.classList.remove('offline');
    this.waitingForKeyframe = true;
    if (codec.codec !== 'h264') {
      this.caption.textContent = `${this.monitor.name} — ${codec.codec} cannot be decoded by this browser`;
      this.decoder = null;
      return;
    }
    this.decoder = new VideoDecoder({
      output: (frame) => this.draw(frame),
      error: (e) => { this.errors++; this.caption.textContent = `${this.monitor.name} — decoder error: ${e.message}`; },
    });
    // Annex-B in, no description: parameter sets travel in-band with keyframes.
    this.decoder.configure({ codec: codec.codec_string, codedWidth: codec.width, codedHeight: codec.height, optimizeForLatency: true });
    this.extradata = Uint8Array.from(atob(codec.extradata), (c) => c.charCodeAt(0));
  }

  packet(bytes, header) {
    if (!this.decoder || this.decoder.state !== 'configured') return;
    if (this.waitingForKeyframe && !header.keyframe) return;
    let data = bytes.subarray(HEADER_BYTES);
    if (this.waitingForKeyframe && this.extradata.length) data = concat(this.extradata, data);
    this.waitingForKeyframe = false;
    this.pending = header.captureTime;
    this.decoder.decode(new EncodedVideoChunk({
      type: header.keyframe ? 'key' : 'delta',
      timestamp: Number(header.sequence) * 1000,
      data,
    }));
  }

  /** Keeps the last frame on screen and says the video is paused until the connection is back. */
  lost() {
    this.figure.classList.add('offline');
    this.caption.textContent = `${this.monitor.name} — reconnecting…`;
  }

  draw(frame) {
    if (this.canvas.width !== frame.displayWidth) {
      this.canvas.width = frame.displayWidth;
      this.canvas.height = frame.displayHeight;
    }
    this.ctx.drawImage(frame, 0, 0);
    frame.close();
    this.decoded++;
    const latency = Date.now() - this.pending;
    this.latencies.push(latency);
    if (this.latencies.length > 100) this.latencies.shift();
    if (this.decoded % 5 === 1) {
      const sorted = [...this.latencies].sort((a, b) => a - b);
      this.caption.textContent = `${this.monitor.name} — ${this.canvas.width}×${this.canvas.height}, latency p50 ${sorted[sorted.length >> 1]} ms`;
    }
  }
}

function concat(a, b) {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

function backoffDelay(attempt, rateLimited) {
  const window = Math.min(BACKOFF.maxMs, BACKOFF.minMs * 2 ** Math.min(attempt - 1, 30));
  return Math.round((rateLimited ? BACKOFF.rateLimitedMinMs : 0) + Math.random() * window);
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** The monitor list, retried like the socket: the page may load while its edge restarts. */
async function loadMonitors() {
  for (let attempt = 1; ; attempt++) {
    try {
      const res = await fetch('/monitors', { headers: token ? { Authorization: `Bearer ${token}` } : {} });
      if (res.ok) return await res.json();
      if (res.status === 401 || res.status === 403) {
        throw new Error(`${(await res.text()).trim()}. Open this page with #token=<access token> at the end of its address.`);
      }
      if (res.status < 500 && res.status !== 429) throw new Error(`/monitors answered HTTP ${res.status}`);
    } catch (err) {
      if (!(err instanceof TypeError)) throw err; // TypeError: the network failed, worth retrying
    }
    const delay = backoffDelay(attempt, false);
    conn.textContent = `edge unreachable; retrying in ${(delay / 1000).toFixed(1)} s…`;
    await sleep(delay);
  }
}

function wsUrl() {
  const url = new URL('/ws', location.href);
  url.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return url;
}

/** One connection; when it ends with a code worth retrying, the next one after the backoff. */
function connect(attempt) {
  const ws = new WebSocket(wsUrl(), token ? ['zmcast', `zmcast.token.${token}`] : []);
  ws.binaryType = 'arraybuffer';
  // Anything beyond `hello` shows this edge serves us: the backoff starts over.
  let delivered = false;
  ws.onopen = () => {
    if (everOpen) connection.reconnects++;
    everOpen = true;
    connection.state = 'open';
    conn.textContent = `connected to ${location.host}`;
    for (const id of tiles.keys()) ws.send(JSON.stringify({ command: 'subscribe', topic: 'stream', monitor_id: id, codec: 'auto' }));
  };
  ws.onclose = (e) => {
    connection.lastClose = { code: e.code, reason: e.reason };
    for (const tile of tiles.values()) tile.lost();
    if (!RETRY_CLOSE.has(e.code)) {
      connection.state = 'closed';
      conn.textContent = `disconnected (${e.code})`;
      say(`The edge closed the connection: ${e.reason || `code ${e.code}`}. Reload the page to try again.`);
      return;
    }
    connection.state = 'reconnecting';
    const next = delivered ? 1 : attempt + 1;
    const delay = backoffDelay(next, e.code === RATE_LIMITED);
    conn.textContent = `connection lost (${e.code}); reconnecting in ${(delay / 1000).toFixed(1)} s…`;
    setTimeout(() => connect(next), delay);
  };
  ws.onmessage = (e) => {
    if (typeof e.data === 'string') {
      const msg = JSON.parse(e.data);
      if (msg.type !== 'hello') delivered = true;
      const tile = tiles.get(msg.monitor_id);
      if (msg.type === 'codec' && tile) tile.configure(msg);
      else if (msg.type === 'error') say(`${msg.code}: ${msg.message}`);
      return;
    }
    delivered = true;
    const bytes = new Uint8Array(e.data);
    const header = decodeHeader(bytes);
    tiles.get(header.monitorId)?.packet(bytes, header);
  };
}

async function main() {
  if (typeof VideoDecoder === 'undefined') {
    say('This browser has no WebCodecs VideoDecoder (it needs a secure context: https or localhost).');
    return;
  }
  const monitors = await loadMonitors();
  const wanted = params.get('monitors')?.split(',').map(Number);
  const shown = wanted ? monitors.filter((m) => wanted.includes(m.id)) : monitors;
  if (shown.length === 0) say('No monitors are registered yet: is a capture service running?');
  for (const m of shown) tiles.set(m.id, new Tile(m));
  connect(1);
}

main().catch((err) => say(`Live view failed: ${err.message}`));
