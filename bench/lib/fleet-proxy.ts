/**
 * A recording pass-through in front of the S3 test server, for bench/fleet.ts: one listener per
 * worker, so every request is known by worker, AWS operation (the server's own classifier),
 * key area (`state/leases`, `work/sleep`, ...) and latency. The server's `stats()` only counts
 * by operation; this says which part of the protocol sent each request.
 *
 * It adds a hop (and CPU on the bench process), so fleet.ts uses it only for an extra,
 * untimed attribution run.
 */
import { Agent, createServer, request } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { classify } from '../../test/servers/s3/ops.js';

/** One request as the proxy saw it. */
export interface ProxiedRequest {
  /** Index of the listener (= worker) it came through. */
  worker: number;
  /** AWS operation, `PutObject(create-only)` for `If-None-Match: *` puts. */
  op: string;
  /** The first two segments of the key (or listing prefix) under the bucket. */
  area: string;
  /** Key or listing prefix under the bucket, whole. */
  key: string;
  status: number;
  /** Date.now() when the request arrived and when its response ended. */
  start: number;
  end: number;
}

export interface RecordingProxy {
  /** One endpoint per worker, `http://127.0.0.1:PORT`. */
  endpoints: string[];
  requests: ProxiedRequest[];
  close(): Promise<void>;
}

/** `state/leases/sleep/L00/x/e00000000.json` → `state/leases`. */
export function areaOf(key: string): string {
  const parts = key.split('/').filter((p) => p !== '');
  return parts.slice(0, 2).join('/') || '(bucket)';
}

/** Starts `workers` listeners forwarding to `target` (the S3 test server's endpoint). */
export async function startRecordingProxy(
  target: string,
  workers: number,
): Promise<RecordingProxy> {
  const upstream = new URL(target);
  const agent = new Agent({ keepAlive: true, maxSockets: 256 });
  const requests: ProxiedRequest[] = [];
  const servers: Server[] = [];
  const endpoints: string[] = [];
  for (let w = 0; w < workers; w++) {
    const server = createServer((req, res) => {
      forward(w, req, res);
    });
    server.keepAliveTimeout = 60_000;
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    servers.push(server);
    endpoints.push(`http://127.0.0.1:${String((server.address() as AddressInfo).port)}`);
  }

  function forward(worker: number, req: IncomingMessage, res: ServerResponse): void {
    const start = Date.now();
    const url = new URL(req.url ?? '/', upstream);
    const query = Object.fromEntries(url.searchParams);
    const { op, bucket, key } = classify(req.method ?? 'GET', url.pathname, query, req.headers);
    const where = key ?? query.prefix ?? '';
    const named =
      op === 'PutObject' && req.headers['if-none-match'] === '*' ? 'PutObject(create-only)' : op;
    const up = request(
      {
        host: upstream.hostname,
        port: upstream.port,
        method: req.method,
        path: req.url,
        headers: req.headers,
        agent,
      },
      (r) => {
        res.writeHead(r.statusCode ?? 502, r.headers);
        r.pipe(res);
        r.on('end', () => {
          requests.push({
            worker,
            op: named,
            area: bucket === undefined ? '(service)' : areaOf(where),
            key: where,
            status: r.statusCode ?? 0,
            start,
            end: Date.now(),
          });
        });
      },
    );
    up.on('error', () => {
      res.destroy();
    });
    req.pipe(up);
  }

  return {
    endpoints,
    requests,
    async close() {
      await Promise.all(
        servers.map(
          (s) =>
            new Promise<void>((resolve) => {
              s.closeAllConnections();
              s.close(() => {
                resolve();
              });
            }),
        ),
      );
      agent.destroy();
    },
  };
}
