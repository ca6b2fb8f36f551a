// The Prometheus endpoint every daemon serves (prom-client), bound to 127.0.0.1 by default.
import { createServer, type Server } from 'node:http';
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

export async function startMetricsServer(registry: Registry, host = '127.0.0.1', port = 0): Promise<MetricsServer> {
  const server: Server = createServer((req, res) => {
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
