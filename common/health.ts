// The Health service every daemon serves (proto/common.proto).
import type * as grpc from '@grpc/grpc-js';
import { loadProto, handler, CHANNEL_OPTIONS, clientCredentials, unary } from './grpc.js';
import type { ProtoGrpcType } from '../proto/gen/common.js';
import type { PingResponse__Output } from '../proto/gen/tierfs/common/PingResponse.js';
import { ok } from './status.js';

const proto = () => loadProto<ProtoGrpcType>('common.proto').tierfs.common;

export function healthService(role: string): [grpc.ServiceDefinition, grpc.UntypedServiceImplementation] {
  return [
    proto().Health.service,
    { Ping: handler(async () => ({ status: ok(), role, version: '0.1.0', pid: process.pid })) },
  ];
}

export async function ping(address: string, timeoutMs = 2000): Promise<PingResponse__Output> {
  const Ctor = proto().Health;
  const client = new Ctor(address, clientCredentials(), CHANNEL_OPTIONS);
  try {
    return await unary(client, 'Ping', {}, timeoutMs);
  } finally {
    client.close();
  }
}
