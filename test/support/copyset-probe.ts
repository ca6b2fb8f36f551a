// Run inside a network namespace (`ip netns exec NS node copyset-probe.js ADDRESS POOL COPYSET
// KEYFILE`): prints the copyset's status as that metaserver itself sees it, as one JSON line.
// The partition drill uses it to see a cut-off leader step down, which nobody outside can ask.
import * as grpc from '@grpc/grpc-js';
import { CHANNEL_OPTIONS, clientCredentials, loadProto, unary } from '../../common/grpc.js';
import { loadClusterAuth, useClusterAuth } from '../../common/cluster-auth.js';
import type { ProtoGrpcType } from '../../proto/gen/copyset.js';

const [address, pool, copyset, keyFile] = process.argv.slice(2);
useClusterAuth(loadClusterAuth({ clusterKeyFile: keyFile }));
const Ctor = loadProto<ProtoGrpcType>('copyset.proto').tierfs.copyset.CopysetService;
const client: grpc.Client = new Ctor(address!, clientCredentials(), CHANNEL_OPTIONS);
const res = await unary<object, { copyset: unknown }>(client, 'GetCopysetStatus', { pool_id: Number(pool), copyset_id: Number(copyset) }, 3000);
process.stdout.write(`${JSON.stringify(res.copyset)}\n`);
client.close();
