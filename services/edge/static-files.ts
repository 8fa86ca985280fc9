/**
 * The montage page and the client library it is built on, read once at
 * start. The library (client/live-client.ts and what it imports, compiled) is
 * served under /lib/ with the checkout's layout, so its relative imports
 * resolve in a browser: other pages may import /lib/client/live-client.js too.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Sent with every page file. The page runs only its own scripts and talks
 * only to its own edge (CSP `'self'` covers ws:/wss: to the same host), no
 * other site may frame it (clickjacking), and no URL it was opened with
 * leaks to another site in a Referer.
 */
export const PAGE_HEADERS = {
  'content-security-policy': "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'unsafe-inline'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-frame-options': 'DENY',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
} as const;

export interface StaticFile {
  body: Buffer;
  type: string;
}

function projectRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('cannot find the zmcast checkout (package.json)');
    dir = up;
  }
  return dir;
}

const JS = 'text/javascript; charset=utf-8';
const LIBRARY = [
  'client/live-client.js', 'client/live-decoder.js', 'client/picture-view.js', 'client/edge-http.js', 'client/edge-url.js', 'client/backoff.js',
  'client/event-resume.js', 'client/retry-policy.js', 'client/typed-emitter.js', 'shared/packet.js', 'shared/protocol.js',
];

const FILES: Record<string, [path: string, type: string]> = {
  '/': ['services/edge/public/index.html', 'text/html; charset=utf-8'],
  '/montage.js': ['services/edge/public/montage.js', JS],
  '/montage.css': ['services/edge/public/montage.css', 'text/css; charset=utf-8'],
  ...Object.fromEntries(LIBRARY.map((file) => [`/lib/${file}`, [`dist/${file}`, JS]])),
};

export function loadStaticFiles(): Map<string, StaticFile> {
  const root = projectRoot();
  const files = new Map<string, StaticFile>();
  for (const [route, [path, type]] of Object.entries(FILES)) {
    const full = join(root, path);
    // dist/ exists once built (npm ci builds it); without it the page says why.
    if (existsSync(full)) files.set(route, { body: readFileSync(full), type });
  }
  return files;
}
