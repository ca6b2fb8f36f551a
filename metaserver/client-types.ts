// Short names for the generated message types the client sends and receives.
export type { PartitionRef } from '../proto/gen/tierfs/metaserver/PartitionRef.js';
export type { DentryResponse__Output as DentryResponse } from '../proto/gen/tierfs/metaserver/DentryResponse.js';
export type { ListDentryResponse__Output as ListDentryResponse } from '../proto/gen/tierfs/metaserver/ListDentryResponse.js';
export type { CreateNodeResponse__Output as CreateNodeResponse } from '../proto/gen/tierfs/metaserver/CreateNodeResponse.js';
export type { InodeResponse__Output as InodeResponse } from '../proto/gen/tierfs/metaserver/InodeResponse.js';
export type { BatchGetAttrResponse__Output as BatchGetAttrResponse } from '../proto/gen/tierfs/metaserver/BatchGetAttrResponse.js';
export type { XattrResponse__Output as XattrResponse } from '../proto/gen/tierfs/metaserver/XattrResponse.js';
export type { GetOrModifyS3ChunkInfoResponse__Output as ChunkInfoResponse } from '../proto/gen/tierfs/metaserver/GetOrModifyS3ChunkInfoResponse.js';
export type { RenameTxResponse__Output as RenameTxResponse } from '../proto/gen/tierfs/metaserver/RenameTxResponse.js';
export type { PartitionStatsResponse__Output as PartitionStatsResponse } from '../proto/gen/tierfs/metaserver/PartitionStatsResponse.js';
export type { RemoveNodeResponse__Output as RemoveNodeResponse } from '../proto/gen/tierfs/metaserver/RemoveNodeResponse.js';
export type { RenameNodeResponse__Output as RenameNodeResponse } from '../proto/gen/tierfs/metaserver/RenameNodeResponse.js';
export type { BatchResponse__Output as BatchResponse } from '../proto/gen/tierfs/metaserver/BatchResponse.js';
export type { TrashNodeResponse__Output as TrashNodeResponse } from '../proto/gen/tierfs/metaserver/TrashNodeResponse.js';
import type { UpdateInodeRequest__Output } from '../proto/gen/tierfs/metaserver/UpdateInodeRequest.js';

export type UpdateInodeFields = Omit<UpdateInodeRequest__Output, 'ref' | 'rid' | 'ino'>;
export interface WithStatus {
  status: { code: string; message: string; leader_hint: string } | null;
}
