/**
 * LiveClient's connections in Node, on `ws`, with what only Node can do: the
 * token in `Authorization: Bearer` (or the subprotocol, as browsers send it),
 * extra headers, a handshake timeout, the HTTP status of a refused upgrade
 * (so 401 is final instead of retried), and the edge's pings counted as life.
 * `close()` without a code terminates at once: a frozen edge would never
 * finish a close handshake.
 */
import WebSocket from 'ws';
import type { SocketFactory, SocketLike } from './live-client.js';

export interface NodeSocketOptions {
  /** `header` (default) sends `Authorization: Bearer`; `subprotocol` offers `zmcast.token.<token>` as browsers do. */
  tokenVia?: 'header' | 'subprotocol';
  headers?: Record<string, string>;
  /** An upgrade unanswered this long is a failed attempt. */
  handshakeTimeoutMs?: number;
}

export function nodeSocketFactory(opts: NodeSocketOptions = {}): SocketFactory {
  return (url, token) => {
    const viaProtocol = token !== undefined && opts.tokenVia === 'subprotocol';
    const ws = new WebSocket(url, viaProtocol ? ['zmcast', `zmcast.token.${token}`] : ['zmcast'], {
      headers: token !== undefined && !viaProtocol ? { ...opts.headers, Authorization: `Bearer ${token}` } : opts.headers,
      perMessageDeflate: false,
      handshakeTimeout: opts.handshakeTimeoutMs,
    });
    return new NodeSocket(ws);
  };
}

class NodeSocket implements SocketLike {
  onopen: SocketLike['onopen'] = null;
  onmessage: SocketLike['onmessage'] = null;
  onclose: SocketLike['onclose'] = null;
  onerror: SocketLike['onerror'] = null;
  onping: SocketLike['onping'] = null;
  private ended = false;

  constructor(private readonly ws: WebSocket) {
    ws.binaryType = 'arraybuffer';
    ws.on('open', () => this.onopen?.(undefined));
    ws.on('message', (data, isBinary) => this.onmessage?.({ data: isBinary ? data : data.toString() }));
    ws.on('ping', () => this.onping?.());
    ws.on('error', (err) => this.onerror?.(err));
    ws.on('close', (code, reason) => this.end({ code, reason: reason.toString() }));
    ws.on('unexpected-response', (req, res) => {
      // The one-line body is not needed: the status says what to do. Freeing the socket now.
      req.destroy();
      this.end({ code: 1006, reason: `edge refused the connection: HTTP ${res.statusCode ?? 0}`, status: res.statusCode ?? 0 });
    });
  }

  get binaryType(): string {
    return this.ws.binaryType;
  }

  set binaryType(type: string) {
    this.ws.binaryType = type as WebSocket['binaryType'];
  }

  get readyState(): number {
    return this.ws.readyState;
  }

  send(data: string): void {
    this.ws.send(data);
  }

  close(code?: number, reason?: string): void {
    if (code === undefined) this.ws.terminate();
    else this.ws.close(code, reason);
  }

  private end(ev: { code: number; reason: string; status?: number }): void {
    if (this.ended) return;
    this.ended = true;
    this.onclose?.(ev);
  }
}
