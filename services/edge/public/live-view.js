// The live-view page: one WebSocket to /ws for every monitor shown (montage),
// WebCodecs decoding of the passthrough H.264, one canvas per monitor.
// Packets are parsed by the same module the edge and CLI use (/lib/packet.js).
import { decodeHeader, HEADER_BYTES } from '/lib/packet.js';

const params = new URLSearchParams(location.search);
const grid = document.getElementById('grid');
const conn = document.getElementById('conn');
const notice = document.getElementById('notice');
const tiles = new Map();

// Exposed for tests and curious operators: decoded frames and latency per monitor.
window.zmcast = { tiles };

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
    this.waitingForKeyframe = true;
    this.decoded = 0;
    this.errors = 0;
    this.latencies = [];
    this.caption.textContent = `${monitor.name} — waiting for video`;
  }

  configure(codec) {
    this.decoder?.close();
    this.generation = codec.generation;
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

async function main() {
  if (typeof VideoDecoder === 'undefined') {
    say('This browser has no WebCodecs VideoDecoder (it needs a secure context: https or localhost).');
    return;
  }
  const monitors = await (await fetch('/monitors')).json();
  const wanted = params.get('monitors')?.split(',').map(Number);
  const shown = wanted ? monitors.filter((m) => wanted.includes(m.id)) : monitors;
  if (shown.length === 0) say('No monitors are registered yet: is a capture service running?');
  for (const m of shown) tiles.set(m.id, new Tile(m));

  const url = new URL('/ws', location.href);
  url.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
  if (params.get('token')) url.searchParams.set('token', params.get('token'));
  const ws = new WebSocket(url);
  ws.binaryType = 'arraybuffer';
  ws.onopen = () => {
    conn.textContent = `connected to ${location.host}`;
    for (const id of tiles.keys()) ws.send(JSON.stringify({ command: 'subscribe', topic: 'stream', monitor_id: id, codec: 'auto' }));
  };
  ws.onclose = (e) => {
    conn.textContent = `disconnected (${e.code}); reconnecting…`;
    setTimeout(() => location.reload(), 2000);
  };
  ws.onmessage = (e) => {
    if (typeof e.data === 'string') {
      const msg = JSON.parse(e.data);
      const tile = tiles.get(msg.monitor_id);
      if (msg.type === 'codec' && tile) tile.configure(msg);
      else if (msg.type === 'error') say(`${msg.code}: ${msg.message}`);
      return;
    }
    const bytes = new Uint8Array(e.data);
    const header = decodeHeader(bytes);
    tiles.get(header.monitorId)?.packet(bytes, header);
  };
}

main().catch((err) => say(`Live view failed: ${err.message}`));
