// The local disk cache: staged writes (write/) and cached reads (read/) in front of S3.
export { DiskCache, type DiskCacheOptions, type DiskCacheStats, type DiskCacheLimits, type BlockSink } from './disk-cache.js';
