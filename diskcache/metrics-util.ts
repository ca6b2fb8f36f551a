// Get-or-create for prom-client metrics, so several caches/stores may share one registry
// (used by diskcache/ and s3adaptor/, which sits above it).
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

export function counter<L extends string>(registry: Registry | undefined, name: string, help: string, labelNames: L[] = []): Counter<L> {
  const existing = registry?.getSingleMetric(name);
  if (existing) return existing as Counter<L>;
  return new Counter({ name, help, labelNames, registers: registry ? [registry] : [] });
}

export function gauge<L extends string>(registry: Registry | undefined, name: string, help: string, labelNames: L[] = []): Gauge<L> {
  const existing = registry?.getSingleMetric(name);
  if (existing) return existing as Gauge<L>;
  return new Gauge({ name, help, labelNames, registers: registry ? [registry] : [] });
}

export function histogram<L extends string>(
  registry: Registry | undefined,
  name: string,
  help: string,
  labelNames: L[],
  buckets: number[],
): Histogram<L> {
  const existing = registry?.getSingleMetric(name);
  if (existing) return existing as Histogram<L>;
  return new Histogram({ name, help, labelNames, buckets, registers: registry ? [registry] : [] });
}
