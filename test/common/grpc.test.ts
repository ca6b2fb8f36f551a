import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startGrpcServer, LeaderFollower } from '../../common/grpc.js';
import { healthService, ping } from '../../common/health.js';
import { TierfsError } from '../../common/status.js';

test('a gRPC server on loopback answers Ping with its role', async () => {
  const srv = await startGrpcServer('127.0.0.1:0', [healthService('test')]);
  try {
    const res = await ping(srv.address);
    assert.equal(res.status?.code, 'OK');
    assert.equal(res.role, 'test');
    assert.equal(res.pid, process.pid);
  } finally {
    await srv.close();
  }
});

test('a call to a dead address fails as UNAVAILABLE or TIMEOUT, not a hang', async () => {
  const srv = await startGrpcServer('127.0.0.1:0', [healthService('test')]);
  const address = srv.address;
  await srv.close();
  await assert.rejects(ping(address, 1000), (err: unknown) => err instanceof TierfsError && ['UNAVAILABLE', 'TIMEOUT'].includes(err.code));
});

test('LeaderFollower follows NOT_LEADER hints and skips dead peers', async () => {
  const seen: string[] = [];
  const f = new LeaderFollower<string>(['a', 'b', 'c'], (addr) => addr, 5000);
  const res = await f.call(async (addr) => {
    seen.push(addr);
    if (addr === 'a') throw new TierfsError('UNAVAILABLE', 'down');
    if (addr === 'b') return { status: { code: 'NOT_LEADER', message: '', leader_hint: 'c' } };
    return { status: { code: 'OK', message: '', leader_hint: '' }, value: 42 };
  });
  assert.deepEqual(seen, ['a', 'b', 'c']);
  assert.equal((res as unknown as { value: number }).value, 42);
  assert.equal(f.current, 'c');
});
