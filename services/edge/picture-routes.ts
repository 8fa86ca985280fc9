/**
 * Pictures over plain HTTP, with the credentials and permissions of the
 * WebSocket (docs/operations.md, "HTTP pictures" and "zms-compatible URLs"):
 *
 *   GET /monitors/:id/snapshot.jpg?width=&height=&scale=&quality=
 *   GET /monitors/:id/mjpeg?maxfps=&width=&height=&scale=&quality=
 *   GET …/cgi-bin/nph-zms?mode=single|jpeg&monitor=N&scale=&maxfps=&width=&height=
 *       with token= | auth=&user= | user=&pass= as zms takes them
 *
 * A monitor the caller may not watch and one that does not exist both get
 * 404. Wrong credentials get what the WebSocket upgrade gets (401, 400…), and
 * 403 on the zms path, as zms answers every refusal.
 */
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { isAuthError, type Authenticator, type Principal } from '../../shared/auth/index.js';
import type { CodecConfig } from '../../shared/codec.js';
import type { Picture } from '../../shared/pictures/picture.js';
import { parsePictureSpec, PictureError, type PictureSpec } from '../../shared/pictures/picture-spec.js';
import { logger } from '../../shared/log.js';
import type { ConnectionCounter } from './connection-counter.js';
import type { MonitorDirectory } from './monitor-directory.js';
import type { PictureHub } from './picture-channel.js';
import { pictureHttpError } from './picture-errors.js';
import { MjpegResponse } from './mjpeg-response.js';
import { textReply } from './http-reply.js';
import { xTimestamp } from './cached-picture.js';
import type { SendLimits } from './send-budget.js';
import { parseZmsQuery, ZMS_MAX_SCALE, ZMS_PATH } from './zms-request.js';

const SNAPSHOT_PATH = /^\/monitors\/(\d{1,9})\/snapshot\.jpg$/;
const MJPEG_PATH = /^\/monitors\/(\d{1,9})\/mjpeg$/;
/** MJPEG rate: the default when `maxfps` is absent, and the most served (a higher one is served at this). */
export const MJPEG_FPS = { default: 5, max: 10 } as const;
/** A stream whose first picture has not come by then is answered with an error. */
const FIRST_PICTURE_MS = 6000;
const ZMS_SERVER = 'ZoneMinder Video Server/zmcast';
const NO_CACHE: OutgoingHttpHeaders = {
  'cache-control': 'no-cache, no-store, must-revalidate',
  pragma: 'no-cache',
  expires: '0',
  'x-content-type-options': 'nosniff',
};
const log = logger('picture-routes');

export interface PictureRoutesDeps {
  auth: Authenticator;
  directory: MonitorDirectory;
  pictures: PictureHub;
  /** The monitor's codec config (its size, for `scale`), if known. */
  currentConfig(monitorId: number): Promise<CodecConfig | null>;
  /** MJPEG streams hold a connection slot like WebSocket clients. */
  counter: ConnectionCounter;
  limits: SendLimits;
  /** How often a long stream re-checks its principal (auth.revalidateMs). */
  revalidateMs: number;
}

/** Where the request's answer is shaped: native routes, or zms' way. */
type Style = 'native' | 'zms';

interface Size {
  width?: unknown;
  height?: unknown;
  /** Percent of the camera's size. */
  scale?: number;
  quality?: unknown;
}

export class PictureRoutes {
  constructor(private readonly d: PictureRoutesDeps) {}

  /** Answers the request if it is a picture route; false when it is not one. */
  async handle(req: IncomingMessage, res: ServerResponse, url: URL): Promise<boolean> {
    const path = url.pathname;
    let match = SNAPSHOT_PATH.exec(path);
    if (match) {
      await this.native(req, res, url, Number(match[1]), 'single');
      return true;
    }
    match = MJPEG_PATH.exec(path);
    if (match) {
      await this.native(req, res, url, Number(match[1]), 'jpeg');
      return true;
    }
    if (ZMS_PATH.test(path)) {
      await this.zms(req, res, url);
      return true;
    }
    return false;
  }

  private async native(req: IncomingMessage, res: ServerResponse, url: URL, monitorId: number, mode: 'single' | 'jpeg'): Promise<void> {
    const q = url.searchParams;
    const scale = q.get('scale');
    if (scale !== null && !/^\d{1,4}$/.test(scale)) return textReply(res, 400, 'scale must be a percentage from 1 to 1600\n');
    const maxfps = q.get('maxfps');
    if (maxfps !== null && !(Number(maxfps) > 0)) return textReply(res, 400, 'maxfps must be a positive number\n');
    const principal = await this.authorize(req, res, url, monitorId, 'native');
    if (!principal) return;
    const size: Size = { width: q.get('width') ?? undefined, height: q.get('height') ?? undefined, quality: q.get('quality') ?? undefined };
    if (scale !== null) size.scale = Math.min(Math.max(1, Number(scale)), ZMS_MAX_SCALE);
    const fps = maxfps === null ? undefined : Number(maxfps);
    await this.serve(req, res, principal, monitorId, mode, size, fps, {}, 'native');
  }

  private async zms(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const z = parseZmsQuery(url.search);
    const headers = { server: ZMS_SERVER };
    if (!z.mode) return textReply(res, 400, `Unsupported ${z.unsupported}: this server streams live monitors (source=monitor, mode=jpeg or single)\n`, headers);
    if (z.monitorId === null) return textReply(res, 400, 'monitor is required\n', headers);
    const credentials = new URL(`http://edge.invalid/?${z.credentials.toString()}`);
    const principal = await this.authorize(req, res, credentials, z.monitorId, 'zms');
    if (!principal) return;
    await this.serve(req, res, principal, z.monitorId, z.mode, { width: z.width, height: z.height, scale: z.scale }, z.maxfps, headers, 'zms');
  }

  /** The principal, or null once the refusal has been answered. */
  private async authorize(req: IncomingMessage, res: ServerResponse, credentials: URL, monitorId: number, style: Style): Promise<Principal | null> {
    const headers: OutgoingHttpHeaders = style === 'zms' ? { server: ZMS_SERVER } : {};
    let principal: Principal;
    try {
      const { presented, clientAddress } = this.d.auth.fromRequest(req, credentials);
      principal = await this.d.auth.authenticate(presented, clientAddress);
    } catch (err) {
      if (!isAuthError(err)) throw err;
      // zms writes 403 for every refusal; being told to slow down or come back later is still worth a true status.
      if (style === 'zms' && err.status !== 429 && err.status !== 503) textReply(res, 403, 'Forbidden\n', headers);
      else textReply(res, err.status, `${err.publicReason}\n`, err.status === 401 ? { ...headers, 'www-authenticate': 'Bearer' } : headers);
      return null;
    }
    if (!(await this.visible(principal, monitorId))) {
      textReply(res, 404, 'Unknown monitor\n', headers);
      return null;
    }
    return principal;
  }

  /** Not permitted and nonexistent look the same, so ids cannot be probed. */
  private async visible(principal: Principal, monitorId: number): Promise<boolean> {
    return principal.canView(monitorId) && (await this.d.directory.exists(monitorId).catch(() => false));
  }

  private async serve(
    req: IncomingMessage, res: ServerResponse, principal: Principal, monitorId: number, mode: 'single' | 'jpeg',
    size: Size, maxfps: number | undefined, headers: OutgoingHttpHeaders, style: Style,
  ): Promise<void> {
    let spec: PictureSpec;
    try {
      spec = await this.spec(monitorId, size);
    } catch (err) {
      return this.fail(res, err, monitorId, headers);
    }
    if (mode === 'single') return this.single(req, res, principal, monitorId, spec, headers);
    const fps = Math.round(Math.min(maxfps ?? MJPEG_FPS.default, MJPEG_FPS.max) * 100) / 100 || 0.01;
    return this.stream(req, res, principal, monitorId, spec, fps, headers, style);
  }

  /** width/height as given; else `scale` percent of the camera's size (never above it: upscaling adds bytes, not detail). */
  private async spec(monitorId: number, size: Size): Promise<PictureSpec> {
    let { width, height } = size;
    if (width === undefined && height === undefined && size.scale !== undefined && size.scale < 100) {
      const config = await this.d.currentConfig(monitorId);
      if (config && config.width > 0 && config.height > 0) {
        width = Math.max(1, Math.round((config.width * size.scale) / 100));
        height = Math.max(1, Math.round((config.height * size.scale) / 100));
      }
    }
    return parsePictureSpec({ format: 'jpeg', width, height, quality: size.quality });
  }

  private async single(req: IncomingMessage, res: ServerResponse, principal: Principal, monitorId: number, spec: PictureSpec, headers: OutgoingHttpHeaders): Promise<void> {
    let picture: Picture;
    try {
      picture = await this.d.pictures.snapshot(monitorId, spec);
    } catch (err) {
      return this.fail(res, err, monitorId, headers);
    }
    // The right may have gone while the picture was made.
    if (!principal.canView(monitorId)) return textReply(res, 404, 'Unknown monitor\n', headers);
    res.writeHead(200, {
      ...NO_CACHE,
      ...headers,
      'content-type': picture.contentType,
      'content-length': picture.data.length,
      'x-timestamp': xTimestamp(picture.captureTime),
    });
    res.end(req.method === 'HEAD' ? undefined : picture.data);
  }

  private async stream(
    req: IncomingMessage, res: ServerResponse, principal: Principal, monitorId: number, spec: PictureSpec, fps: number,
    headers: OutgoingHttpHeaders, style: Style,
  ): Promise<void> {
    const address = this.d.auth.clientAddress(req);
    const slot = this.d.counter.reserve(address);
    if (typeof slot === 'string') return textReply(res, 503, 'Too many connections\n', headers);
    if (!slot.admitUser(principal.user)) {
      slot.release();
      return textReply(res, 503, 'Too many connections for this user\n', headers);
    }
    const use = this.d.pictures.acquire(monitorId, spec, fps);
    const out = new MjpegResponse(res, { ...NO_CACHE, ...headers }, this.d.limits, monitorId);
    let revalidation: NodeJS.Timeout | undefined;
    let ended = false;
    const end = () => {
      if (ended) return;
      ended = true;
      clearInterval(revalidation);
      use.channel.remove(out);
      use.release();
      slot.release();
    };
    // A closed connection stops this viewer's want() at once (the channel's, when it was the last).
    res.once('close', end);
    use.channel.add(out);
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<{ ok: false; error: unknown }>((resolve) => {
      timer = setTimeout(() => resolve({ ok: false, error: new PictureError('timeout', 'no picture in time') }), FIRST_PICTURE_MS);
    });
    const first = await Promise.race([out.first, late]);
    clearTimeout(timer);
    if (!first.ok) {
      end();
      if (!res.headersSent) this.fail(res, first.error, monitorId, headers);
      return;
    }
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    // A long stream follows revocation like a WebSocket does.
    revalidation = setInterval(() => {
      principal.revalidate()
        .then(() => { if (!principal.canView(monitorId)) res.destroy(); }, () => res.destroy())
        .catch((err) => log.error('revalidating an MJPEG viewer failed', { error: (err as Error).stack }));
    }, this.d.revalidateMs);
    revalidation.unref();
    log.debug('mjpeg viewer', { monitor: monitorId, fps, style, user: principal.user });
  }

  private fail(res: ServerResponse, err: unknown, monitorId: number, headers: OutgoingHttpHeaders): void {
    const { status, text, retryAfter } = pictureHttpError(err, monitorId);
    textReply(res, status, `${text}\n`, retryAfter ? { ...headers, 'retry-after': '1' } : headers);
  }
}
