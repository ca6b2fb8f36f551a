import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Counter } from 'prom-client';
import { createRegistry, startMetricsServer } from '../../common/metrics.js';

test('metrics are served on 127.0.0.1 in Prometheus text format', async () => {
  const registry = createRegistry('test');
  const c = new Counter({ name: 'tierfs_test_total', help: 'test counter', registers: [registry] });
  c.inc(3);
  const srv = await startMetricsServer(registry);
  try {
    const body = await (await fetch(`http://127.0.0.1:${srv.port}/metrics`)).text();
    assert.match(body, /tierfs_test_total\{component="test"\} 3/);
    assert.equal((await fetch(`http://127.0.0.1:${srv.port}/other`)).status, 404);
  } finally {
    await srv.close();
  }
});
