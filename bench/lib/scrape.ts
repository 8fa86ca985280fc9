/** Reads a server's Prometheus `/metrics` from outside, as a monitoring system would. */
import { get } from 'node:http';

/**
 * Every sample of the exposition, by metric name (series with labels summed).
 * The connection is not kept alive, so no socket of the scrape lingers in the
 * server's descriptors between two scrapes.
 */
export function scrapeMetrics(port: number, timeoutMs = 10_000): Promise<Record<string, number>> {
  return new Promise((resolve, reject) => {
    const req = get({ host: '127.0.0.1', port, path: '/metrics', agent: false, headers: { connection: 'close' } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => { body += chunk; });
      res.on('end', () => {
        if (res.statusCode !== 200) return reject(new Error(`/metrics answered ${res.statusCode}`));
        const out: Record<string, number> = {};
        for (const line of body.split('\n')) {
          const m = /^([a-zA-Z_:][\w:]*)(?:\{[^}]*\})?\s+(\S+)/.exec(line);
          if (m) out[m[1]] = (out[m[1]] ?? 0) + Number(m[2]);
        }
        resolve(out);
      });
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error('/metrics timed out')));
    req.on('error', reject);
  });
}
