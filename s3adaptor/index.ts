// The file data path: file ranges -> chunks -> slices -> block objects in S3 (DESIGN.md §2-3).
export type { Slice, ChunkSlices, SliceStore, ChunkIdAllocator } from './types.js';
export { S3Adaptor, type S3AdaptorOptions, type S3AdaptorStats } from './adaptor.js';
export { createObjectStore, listAll, S3ObjectStore, type ObjectStore, type ObjectStoreOptions, type ObjectInfo, type ListPage, type ObjectStoreStats } from './object-store.js';
export { blockKey, parseBlockKey, sliceBlockKey, type BlockKeyParts } from './keys.js';
export { sliceObjects, type BlockObject } from './layout.js';
export { sliceKeys } from './compaction.js';
export { MemorySliceStore, MemoryChunkIdAllocator } from './memory-slice-store.js';
export { DiskCache, type DiskCacheOptions, type DiskCacheStats } from '../diskcache/index.js';
export { startEmbeddedS3, EMBEDDED_ACCESS_KEY, EMBEDDED_SECRET_KEY, type EmbeddedS3 } from './embedded-server.js';
