// The Prometheus endpoint every daemon serves (prom-client), bound to 127.0.0.1 by default.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { AddressInfo } from 'node:net';
import { Registry, collectDefaultMetrics } from 'prom-client';

export interface MetricsServer {
  readonly port: number;
  readonly registry: Registry;
  close(): Promise<void>;
}

export function createRegistry(component: string, defaults = true): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ component });
  if (defaults) collectDefaultMetrics({ register: registry, prefix: 'tierfs_process_' });
  return registry;
}

/** Extra pages a daemon serves beside /metrics (the MDS status page), by path. */
export type HttpRoutes = Map<string, (req: IncomingMessage, res: ServerResponse) => void>;

export async function startMetricsServer(registry: Registry, host = '127.0.0.1', port = 0, routes: HttpRoutes = new Map()): Promise<MetricsServer> {
  const server: Server = createServer((req, res) => {
    const route = routes.get((req.url ?? '').split('?')[0]!);
    if (route) {
      route(req, res);
      return;
    }
    if (req.url !== '/metrics') {
      res.writeHead(404).end('not found\n');
      return;
    }
    registry.metrics().then(
      (body) => res.writeHead(200, { 'content-type': registry.contentType }).end(body),
      (err: unknown) => res.writeHead(500).end(String(err)),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    registry,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
