// Short names for the generated message types of proto/metaserver.proto (requests as the
// server receives them, responses as it sends them).
export type { GetDentryRequest__Output as GetDentryRequest } from '../proto/gen/tierfs/metaserver/GetDentryRequest.js';
export type { DentryResponse } from '../proto/gen/tierfs/metaserver/DentryResponse.js';
export type { ListDentryRequest__Output as ListDentryRequest } from '../proto/gen/tierfs/metaserver/ListDentryRequest.js';
export type { ListDentryResponse } from '../proto/gen/tierfs/metaserver/ListDentryResponse.js';
export type { CreateDentryRequest__Output as CreateDentryRequest } from '../proto/gen/tierfs/metaserver/CreateDentryRequest.js';
export type { DeleteDentryRequest__Output as DeleteDentryRequest } from '../proto/gen/tierfs/metaserver/DeleteDentryRequest.js';
export type { StatusOnlyResponse } from '../proto/gen/tierfs/metaserver/StatusOnlyResponse.js';
export type { GetInodeRequest__Output as GetInodeRequest } from '../proto/gen/tierfs/metaserver/GetInodeRequest.js';
export type { InodeResponse } from '../proto/gen/tierfs/metaserver/InodeResponse.js';
export type { BatchGetAttrRequest__Output as BatchGetAttrRequest } from '../proto/gen/tierfs/metaserver/BatchGetAttrRequest.js';
export type { BatchGetAttrResponse } from '../proto/gen/tierfs/metaserver/BatchGetAttrResponse.js';
export type { CreateInodeRequest__Output as CreateInodeRequest } from '../proto/gen/tierfs/metaserver/CreateInodeRequest.js';
export type { UpdateInodeRequest__Output as UpdateInodeRequest } from '../proto/gen/tierfs/metaserver/UpdateInodeRequest.js';
export type { DeleteInodeRequest__Output as DeleteInodeRequest } from '../proto/gen/tierfs/metaserver/DeleteInodeRequest.js';
export type { ReleaseOrphanRequest__Output as ReleaseOrphanRequest } from '../proto/gen/tierfs/metaserver/ReleaseOrphanRequest.js';
export type { GetXattrRequest__Output as GetXattrRequest } from '../proto/gen/tierfs/metaserver/GetXattrRequest.js';
export type { XattrResponse } from '../proto/gen/tierfs/metaserver/XattrResponse.js';
export type { SetXattrRequest__Output as SetXattrRequest } from '../proto/gen/tierfs/metaserver/SetXattrRequest.js';
export type { RemoveXattrRequest__Output as RemoveXattrRequest } from '../proto/gen/tierfs/metaserver/RemoveXattrRequest.js';
export type { GetOrModifyS3ChunkInfoRequest__Output as GetOrModifyS3ChunkInfoRequest } from '../proto/gen/tierfs/metaserver/GetOrModifyS3ChunkInfoRequest.js';
export type { GetOrModifyS3ChunkInfoResponse } from '../proto/gen/tierfs/metaserver/GetOrModifyS3ChunkInfoResponse.js';
export type { RenameTxRequest__Output as RenameTxRequest } from '../proto/gen/tierfs/metaserver/RenameTxRequest.js';
export type { RenameTxResponse } from '../proto/gen/tierfs/metaserver/RenameTxResponse.js';
export type { FinishRenameRequest__Output as FinishRenameRequest } from '../proto/gen/tierfs/metaserver/FinishRenameRequest.js';
export type { ResolveRenameRequest__Output as ResolveRenameRequest } from '../proto/gen/tierfs/metaserver/ResolveRenameRequest.js';
export type { PartitionStatsRequest__Output as PartitionStatsRequest } from '../proto/gen/tierfs/metaserver/PartitionStatsRequest.js';
export type { PartitionStatsResponse } from '../proto/gen/tierfs/metaserver/PartitionStatsResponse.js';
