/** Plain-text HTTP answers: one line, its length, nothing else to parse. */
import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';

export function textReply(res: ServerResponse, status: number, body: string, headers: OutgoingHttpHeaders = {}): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body), ...headers });
  res.end(body);
}
