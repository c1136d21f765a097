// The bench's scrape client that behaves as Prometheus does (bench.ts, netns-scrape.ts).

import { Agent, get as httpGet } from 'node:http';
import { gunzipSync } from 'node:zlib';

/** The Accept header Prometheus sends. */
export const PROMETHEUS_ACCEPT = 'application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.4,*/*;q=0.1';

/**
 * A scraper closer to Prometheus than fetch(): node:http on one kept-alive connection, asking for
 * gzip with Prometheus's Accept header; the time is to the last byte, decompressed. The bench's
 * first client (fetch(): undici, WHATWG streams, its gunzip on the thread pool, in a fresh request
 * object each time) costs the bench's own process about a millisecond of CPU per scrape on the same
 * CPUs as the exporter; its column is kept as it was measured before. Returns the body and seconds;
 * rejects on a status other than 200.
 */
export function scraperLikePrometheus(url: string, accept = PROMETHEUS_ACCEPT): { scrape: () => Promise<{ body: string; seconds: number }>; close: () => void } {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const headers = { 'accept-encoding': 'gzip', accept };
  const scrape = () =>
    new Promise<{ body: string; seconds: number }>((resolve, reject) => {
      const t = performance.now();
      httpGet(`${url}/metrics`, { agent, headers }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.once('error', reject);
        res.once('end', () => {
          const raw = Buffer.concat(chunks);
          const body = (res.headers['content-encoding'] === 'gzip' ? gunzipSync(raw) : raw).toString('utf8');
          const seconds = (performance.now() - t) / 1000;
          if (res.statusCode !== 200) reject(new Error(`/metrics answered ${res.statusCode}`));
          else resolve({ body, seconds });
        });
      }).once('error', reject);
    });
  return { scrape, close: () => agent.destroy() };
}
