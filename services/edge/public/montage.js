// The montage page: every monitor the viewer may watch, over one socket, built
// only on the client library the edge serves under /lib/ (client/*.ts):
// LiveClient for the connection, LiveDecoder for WebCodecs, edge-http for
// sign-in and the monitor list.
//
// What streams: a tile streams only while it is on screen (IntersectionObserver)
// and the tab is visible; the grid shows each monitor's sub-stream, the focused
// tile its main stream. Above KEYFRAMES_ONLY_ABOVE tiles the grid asks for
// keyframes only. `?grid_quality=main|sub` and `?keyframes_only=0|1` override.
// A monitor whose streams this browser cannot decode (H.265 in many Chromium
// builds) is shown as JPEG pictures (MJPEG from the picture workers, PictureView).
import { LiveClient } from '/lib/client/live-client.js';
import { LiveDecoder } from '/lib/client/live-decoder.js';
import { PictureView } from '/lib/client/picture-view.js';
import { listMonitors, passwordSignInOffered, refreshToken, signIn } from '/lib/client/edge-http.js';

/** More tiles than this in the grid: keyframes only (a picture per GOP), see docs/operations.md. */
const KEYFRAMES_ONLY_ABOVE = 16;
/** Pictures per second for a monitor no stream of which decodes here: in the grid (1 with keyframes only), in the large view. */
const PICTURE_FPS = { grid: 5, gridKeyframesOnly: 1, focused: 10 };
/** Picture widths are the tile's (device pixels) rounded up to this step, so small resizes share one derived stream. */
const PICTURE_WIDTH_STEP = 160;
const PICTURE_MAX_WIDTH = 1920;
/** A token closer than this to its end is exchanged for a fresh one before it is presented. */
const REFRESH_BEFORE_MS = 120_000;
/** At most one exchange this often, whatever the edge's warning and the token's life are set to. */
const REFRESH_AT_MOST_EVERY_MS = 10_000;
const TOKEN_KEY = 'zmcast.token';
const EVENTS_SHOWN = 50;
/** The events panel starts with the last hour (event ids are Redis stream ids: ms-seq). */
const EVENTS_SINCE_MS = 3_600_000;
const FAILURES = new Set(['connection_failed', 'capture_failed', 'capture_failover']);
const RECOVERIES = new Set(['connected', 'connection_restored', 'capture_resumed']);

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const edge = location.origin;
const tiles = new Map();
const connection = { state: 'connecting', reconnects: 0, lastClose: null, refreshes: 0 };
let client = null;
let focused = null;
let session = null; // { token, expiresAt, issuedAt, user } or null without auth
let refreshedAt = 0;

// Test hooks and a window for curious operators.
window.zmcast = { tiles, connection, get client() { return client; }, get focused() { return focused; } };

function say(text) {
  $('notice').hidden = !text;
  $('notice').textContent = text ?? '';
}

// ---- Credentials ----------------------------------------------------------

/** The token from the address fragment (#token=…, never sent to a server), else from this tab's sign-in. */
function storedSession() {
  const fromFragment = new URLSearchParams(location.hash.slice(1)).get('token');
  if (fromFragment) return { token: fromFragment, expiresAt: null, issuedAt: null, user: null };
  const kept = sessionStorage.getItem(TOKEN_KEY);
  return kept ? JSON.parse(kept) : null;
}

function keep(next) {
  session = next;
  if (next) sessionStorage.setItem(TOKEN_KEY, JSON.stringify(next));
  else sessionStorage.removeItem(TOKEN_KEY);
}

/**
 * LiveClient asks before each connection (a token near its end is exchanged
 * first) and on `auth_expiring` (always exchanged: the edge warns once).
 */
async function currentToken(why = 'connect') {
  if (!session) return '';
  // A pasted token's life is unknown here: it is exchanged when the edge says it is expiring (where /login can).
  const near = session.expiresAt !== null
    && session.expiresAt - Date.now() < Math.min(REFRESH_BEFORE_MS, (session.expiresAt - session.issuedAt) / 2);
  if (why === 'expiring' || near) {
    const wait = refreshedAt + REFRESH_AT_MOST_EVERY_MS - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    refreshedAt = Date.now();
    const fresh = await refreshToken(edge, session.token);
    keep({ token: fresh.token, expiresAt: fresh.expiresAt, user: fresh.user, issuedAt: refreshedAt });
  }
  return session.token;
}

async function showSignIn(reason) {
  stop();
  keep(null);
  $('layout').hidden = true;
  $('signin').hidden = false;
  $('signin-error').textContent = reason ?? '';
  $('password-fields').hidden = !(await passwordSignInOffered(edge).catch(() => false));
  $('signin-form').querySelector('input:not([hidden])')?.focus();
}

$('signin-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const form = new FormData(e.target);
  const user = String(form.get('user') ?? '').trim();
  const password = String(form.get('password') ?? '');
  const token = String(form.get('token') ?? '').trim();
  $('signin-error').textContent = 'Signing in…';
  const attempt = token ? Promise.resolve({ token, expiresAt: null }) : signIn(edge, user, password);
  attempt
    .then(async (s) => {
      keep({ token: s.token, expiresAt: s.expiresAt ?? null, user: s.user, issuedAt: Date.now() });
      e.target.reset();
      await start();
    })
    .catch((err) => ($('signin-error').textContent = err.message));
});

$('signout').addEventListener('click', () => {
  history.replaceState(null, '', location.pathname + location.search);
  showSignIn('Signed out.').catch((err) => say(err.message));
});

// ---- Tiles ----------------------------------------------------------------

class Tile {
  constructor(monitor) {
    this.monitor = monitor;
    this.figure = document.createElement('figure');
    this.figure.className = 'tile';
    this.figure.tabIndex = 0;
    this.figure.setAttribute('role', 'button');
    this.figure.dataset.monitor = String(monitor.id);
    this.canvas = document.createElement('canvas');
    this.canvas.setAttribute('role', 'img');
    this.canvas.setAttribute('aria-label', `${monitor.name}, live`);
    const caption = document.createElement('figcaption');
    this.fields = {};
    for (const name of ['name', 'state', 'fps', 'latency', 'drops', 'quality']) {
      const span = document.createElement('span');
      span.className = name;
      this.fields[name] = span;
      caption.append(span);
    }
    this.fields.name.textContent = monitor.name;
    this.messageEl = document.createElement('div');
    this.messageEl.className = 'message';
    this.figure.append(this.canvas, caption, this.messageEl);
    this.decoder = new LiveDecoder({
      canvas: this.canvas,
      onFrame: (f) => this.onFrame(f),
      onUnsupported: (codec, reason) => this.onUnsupported(codec, reason),
      onError: (message) => this.message(message),
    });
    this.pictures = new PictureView({
      canvas: this.canvas,
      onFrame: (f) => this.onFrame({ ...f, quality: 'mjpeg' }),
      onError: (message) => this.message(message),
    });
    this.visible = false;
    // What is subscribed: { quality, keyframesOnly } (video), { pictures: true, fps, width } (MJPEG) or null.
    this.stream = null;
    this.unsupported = new Map(); // quality -> reason
    this.sourceWidth = 0; // the main stream's, from status
    this.dropped = 0;
    this.bytes = 0; // received on the wire, headers included
    this.latencies = [];
    this.frameTimes = [];
    this.firstFrameMs = null; // first subscribe → first picture
    this.resumeMs = null; // last (re)subscribe → its first picture
    this.requestedAt = null;
    this.width = 0;
    this.height = 0;
    this.quality = null;
    this.figure.addEventListener('click', () => toggleFocus(this));
    this.figure.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); toggleFocus(this); }
      if (e.key === 'Escape' && focused === this) toggleFocus(this);
    });
    this.label();
  }

  get decoded() { return this.decoder.stats.drawn + this.pictures.stats.drawn; }
  get errors() { return this.decoder.stats.errors + this.pictures.stats.errors; }
  get configurations() { return this.decoder.stats.configurations; }

  label() {
    this.figure.setAttribute('aria-label', `${this.monitor.name}: ${focused === this ? 'close the large view' : 'open in a large view'}`);
    this.figure.setAttribute('aria-pressed', String(focused === this));
  }

  /** The stream this tile should have now, or null. */
  wanted() {
    if (!this.visible || document.hidden || !client) return null;
    if (focused && focused !== this) return null; // covered by the focused view
    const preferred = focused === this ? 'main' : gridQuality();
    const quality = this.unsupported.has(preferred) ? (preferred === 'main' ? 'sub' : 'main') : preferred;
    if (!this.unsupported.has(quality)) return { quality, keyframesOnly: focused === this ? false : gridKeyframesOnly() };
    // Neither quality decodes here: JPEG pictures, made from any codec by the picture workers.
    const fps = focused === this ? PICTURE_FPS.focused : gridKeyframesOnly() ? PICTURE_FPS.gridKeyframesOnly : PICTURE_FPS.grid;
    return { pictures: true, fps, width: this.pictureWidth() };
  }

  /** The tile's width in device pixels, rounded up to a step; never wider than the camera (0 until its status says). */
  pictureWidth() {
    const px = Math.max(1, this.canvas.clientWidth * (window.devicePixelRatio || 1));
    return Math.min(this.sourceWidth || PICTURE_MAX_WIDTH, PICTURE_MAX_WIDTH, Math.ceil(px / PICTURE_WIDTH_STEP) * PICTURE_WIDTH_STEP);
  }

  sync() {
    const want = this.wanted();
    const have = this.stream;
    if (want && have && JSON.stringify(want) === JSON.stringify(have)) return;
    // One stream subscription per monitor: subscribing again (video or pictures) replaces it on the edge.
    // The canvas keeps the last picture until the next one is drawn; video to video keeps decoding until the new codec.
    if (!want?.quality) this.decoder.close();
    if (!want?.pictures) this.pictures.close();
    this.stream = want;
    if (!want) {
      if (have) client?.unsubscribe(this.monitor.id, 'stream');
      return;
    }
    this.requestedAt = performance.now();
    if (want.pictures) {
      this.message(this.pictureLabel());
      client.subscribePictures(this.monitor.id, { fps: want.fps, width: want.width });
    } else {
      client.subscribeStream(this.monitor.id, want);
    }
  }

  /** What the tile says while it shows pictures. */
  pictureLabel() {
    const reason = this.unsupported.get(this.stream?.quality ?? 'main') ?? [...this.unsupported.values()][0];
    return `MJPEG ${this.stream?.fps} fps: ${reason}.`;
  }

  picture(p) {
    if (!this.stream?.pictures) return; // a picture still in flight after switching back to video
    this.bytes += p.wireBytes;
    this.pictures.push(p);
  }

  codec(c) {
    if (!this.unsupported.has(c.quality === 'main' ? 'sub' : 'main')) this.message('');
    this.decoder.configure(c);
  }

  onFrame(f) {
    const now = performance.now();
    if (this.requestedAt !== null) {
      this.resumeMs = Math.round(now - this.requestedAt);
      this.firstFrameMs ??= this.resumeMs;
      this.requestedAt = null;
    }
    this.width = f.width;
    this.height = f.height;
    this.quality = f.quality;
    // Pictures again after an error the edge reported (camera down, no worker): say what is shown.
    if (this.stream?.pictures) this.message(this.pictureLabel());
    this.latencies.push(f.latencyMs);
    if (this.latencies.length > 50) this.latencies.shift();
    this.frameTimes.push(now);
    while (this.frameTimes[0] < now - 1000) this.frameTimes.shift();
  }

  onUnsupported(codec, reason) {
    this.unsupported.set(codec.quality, reason);
    // Asked for sub, served main (no sub-stream): that quality does not decode either.
    if (this.stream?.quality && this.stream.quality !== codec.quality) this.unsupported.set(this.stream.quality, reason);
    const other = this.wanted();
    // The other quality may decode (an H.265 main stream with an H.264 sub-stream); else pictures.
    if (other && !other.pictures) this.message(`${reason}: showing the ${other.quality}-stream.`);
    this.sync();
  }

  status(s) {
    this.online = s.online;
    this.sourceWidth = s.width;
    this.figure.classList.toggle('offline', !s.online);
    this.fields.state.textContent = s.online ? s.capture_state : 'offline';
    // A new generation may bring a codec this browser decodes: try again.
    if (this.unsupported.size > 0 && this.generation !== undefined && s.generation !== this.generation) {
      this.unsupported.clear();
      this.sync();
    }
    this.generation = s.generation;
  }

  message(text) {
    this.messageEl.textContent = text;
  }

  /** Refreshes the numbers under the picture (once a second). */
  render() {
    const sorted = [...this.latencies].sort((a, b) => a - b);
    this.fields.fps.textContent = this.stream ? `${this.frameTimes.length} fps` : 'paused';
    this.fields.latency.textContent = sorted.length ? `${Math.round(sorted[sorted.length >> 1])} ms` : '';
    this.fields.latency.title = 'capture to screen, median';
    this.fields.drops.textContent = `drops ${this.dropped + this.decoder.stats.late}`;
    this.fields.quality.textContent = this.quality ? `${this.quality} ${this.width}×${this.height}` : '';
  }
}

function gridQuality() {
  return params.get('grid_quality') === 'main' ? 'main' : 'sub';
}

function gridKeyframesOnly() {
  const forced = params.get('keyframes_only');
  if (forced !== null) return forced === '1';
  return tiles.size > KEYFRAMES_ONLY_ABOVE;
}

function syncAll() {
  for (const tile of tiles.values()) tile.sync();
}

function toggleFocus(tile) {
  const previous = focused;
  focused = focused === tile ? null : tile;
  document.body.classList.toggle('has-focus', focused !== null);
  previous?.figure.classList.remove('focused');
  focused?.figure.classList.add('focused');
  for (const t of tiles.values()) t.label();
  syncAll();
  (focused ?? previous)?.figure.focus();
}

const observer = new IntersectionObserver((entries) => {
  for (const entry of entries) {
    const tile = tiles.get(Number(entry.target.dataset.monitor));
    if (!tile) continue;
    tile.visible = entry.isIntersecting;
    tile.sync();
  }
});
document.addEventListener('visibilitychange', syncAll);

// ---- Events panel -----------------------------------------------------------

function addEvent(e) {
  const li = document.createElement('li');
  if (FAILURES.has(e.event)) li.className = 'failure';
  else if (RECOVERIES.has(e.event)) li.className = 'recovery';
  const name = tiles.get(e.monitor_id)?.monitor.name ?? `monitor ${e.monitor_id}`;
  const time = new Date(e.time).toLocaleTimeString();
  li.textContent = `${time} ${name}: ${e.event.replaceAll('_', ' ')}${e.message ? ` (${e.message})` : ''}`;
  const list = $('event-list');
  list.prepend(li);
  while (list.children.length > EVENTS_SHOWN) list.lastElementChild.remove();
}

// ---- Connection -------------------------------------------------------------

function stop() {
  const closing = client;
  client = null; // first: the `closed` state of our own close is not news
  closing?.close();
  focused = null;
  document.body.classList.remove('has-focus');
  observer.disconnect();
  for (const tile of tiles.values()) {
    tile.decoder.close();
    tile.pictures.close();
  }
  tiles.clear();
  $('grid').replaceChildren();
  $('event-list').replaceChildren();
}

function onState(change) {
  connection.state = change.state;
  connection.reconnects = client?.reconnects ?? connection.reconnects;
  if (change.state === 'open') {
    $('conn').textContent = `connected to ${location.host}`;
    for (const tile of tiles.values()) tile.figure.classList.toggle('offline', tile.online === false);
    say(null);
    return;
  }
  for (const tile of tiles.values()) tile.figure.classList.add('offline');
  if (change.state === 'reconnecting') {
    connection.lastClose = { code: change.code, reason: change.reason };
    $('conn').textContent = `connection lost (${change.code}); reconnecting in ${(change.delayMs / 1000).toFixed(1)} s…`;
    // A browser cannot tell a refused upgrade from a lost edge: ask /monitors whether the credentials still hold.
    if (change.attempt >= 3 && session) {
      listMonitors(edge, session.token).catch((err) => {
        if (err.signInNeeded) showSignIn(`Signed out by the edge: ${err.message}`).catch((e) => say(e.message));
      });
    }
    return;
  }
  if (change.state === 'closed' && client) {
    connection.lastClose = { code: change.code, reason: change.reason };
    if (change.code === 4401 || change.code === 4403) showSignIn(change.reason || 'Please sign in again.').catch((e) => say(e.message));
    else say(`The edge closed the connection: ${change.reason || `code ${change.code}`}. Reload the page to try again.`);
  }
}

/** The monitor list, retried like the socket: the page may load while its edge restarts. */
async function loadMonitors() {
  for (let attempt = 1; ; attempt++) {
    try {
      return await listMonitors(edge, session ? await currentToken() : undefined);
    } catch (err) {
      if (err.status !== 0 && err.status !== 429 && err.status < 500) throw err;
      $('conn').textContent = `edge unreachable; retrying…`;
      await new Promise((r) => setTimeout(r, Math.min(10_000, 250 * 2 ** attempt) * Math.random()));
    }
  }
}

async function start() {
  stop();
  let monitors;
  try {
    monitors = await loadMonitors();
  } catch (err) {
    if (err.signInNeeded) return showSignIn(session ? err.message : '');
    throw err;
  }
  $('signin').hidden = true;
  $('layout').hidden = false;
  $('signout').hidden = !session;
  $('who').textContent = session?.user ?? '';
  const wanted = params.get('monitors')?.split(',').map(Number);
  const shown = wanted ? monitors.filter((m) => wanted.includes(m.id)) : monitors;
  if (shown.length === 0) say('No monitors to show: none registered yet (is a capture running?), or none you may watch.');
  client = new LiveClient({ urls: edge, getToken: currentToken, idleTimeoutMs: 10_000 });
  client.on('state', onState);
  client.on('codec', (c) => tiles.get(c.monitor_id)?.codec(c));
  client.on('picture', (p) => tiles.get(p.monitorId)?.picture(p));
  client.on('packet', (p) => {
    const tile = tiles.get(p.header.monitorId);
    if (!tile) return;
    tile.bytes += p.wireBytes;
    tile.decoder.push(p);
  });
  client.on('status', (s) => tiles.get(s.monitor_id)?.status(s));
  client.on('dropped', (d) => { const t = tiles.get(d.monitor_id); if (t) t.dropped += d.count; });
  client.on('event', addEvent);
  client.on('auth', (a) => {
    connection.refreshes++;
    $('who').textContent = a.user;
  });
  client.on('error', (e) => {
    if (e.code === 'events_expired' || e.code === 'history_lost') return; // the events panel starts from now anyway
    if (e.monitor_id !== undefined && tiles.has(e.monitor_id)) tiles.get(e.monitor_id).message(`${e.code}: ${e.message}`);
    else say(`${e.code}: ${e.message}`);
  });
  for (const m of shown) {
    const tile = new Tile(m);
    tiles.set(m.id, tile);
    $('grid').append(tile.figure);
    client.subscribeStatus(m.id, 1000);
    client.subscribeEvents(m.id, `${Date.now() - EVENTS_SINCE_MS}-0`);
    observer.observe(tile.figure);
  }
}

setInterval(() => { for (const tile of tiles.values()) tile.render(); }, 1000);

session = storedSession();
start().catch((err) => say(`Montage failed: ${err.message}`));
