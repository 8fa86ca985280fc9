/**
 * Native TLS for the edge. The certificate and key are re-read when either
 * file changes and on SIGHUP, so a renewed certificate needs no restart; a
 * bad pair is logged and the previous one stays in use.
 */
import { readFileSync, watchFile, unwatchFile } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createSecureContext } from 'node:tls';
import { logger } from '../../shared/log.js';
import { warnIfExposed } from '../../shared/auth/secret-files.js';

const log = logger('tls');
const WATCH_INTERVAL_MS = 5000;

export interface TlsServer {
  server: Server;
  reload(): void;
  close(): void;
}

/** Limits for the handshakes: the TLS one gets the same time as the HTTP request (Node's default is 120 s). */
export interface HandshakeTimeouts {
  headersTimeout: number;
  requestTimeout: number;
  connectionsCheckingInterval: number;
}

export function createTlsServer(certFile: string, keyFile: string, timeouts: HandshakeTimeouts, handler: (req: IncomingMessage, res: ServerResponse) => void): TlsServer {
  const read = () => {
    warnIfExposed(keyFile, 'TLS private key');
    return { cert: readFileSync(certFile), key: readFileSync(keyFile) };
  };
  const server = createServer({ ...read(), ...timeouts, handshakeTimeout: timeouts.requestTimeout }, handler);
  const reload = () => {
    try {
      const pair = read();
      createSecureContext(pair); // throws on a mismatched or malformed pair
      server.setSecureContext(pair);
      log.info('certificate reloaded', { cert: certFile });
    } catch (err) {
      log.error('certificate reload failed; keeping the previous one', { cert: certFile, error: (err as Error).message });
    }
  };
  const onChange = () => reload();
  watchFile(certFile, { interval: WATCH_INTERVAL_MS, persistent: false }, onChange);
  watchFile(keyFile, { interval: WATCH_INTERVAL_MS, persistent: false }, onChange);
  process.on('SIGHUP', onChange);
  return {
    server: server as unknown as Server,
    reload,
    close: () => {
      unwatchFile(certFile, onChange);
      unwatchFile(keyFile, onChange);
      process.off('SIGHUP', onChange);
    },
  };
}
