// What a mount tells the MDS about itself at each session refresh (proto MountReport): its
// version, the staged backlog not in S3 yet, the upload rate and its S3 traffic since the
// previous report. The MDS leader shows the last one per mount on the status page and in
// `tierfs status`.
import { TIERFS_VERSION } from '../common/version.js';
import type { MountReport } from '../proto/gen/tierfs/mds/MountReport.js';
import type { S3AdaptorStats } from '../s3adaptor/index.js';

/** A function that builds the next report; rates are over the time since the previous call. */
export function mountReporter(data: { stats(): S3AdaptorStats }): () => MountReport {
  let last = { atMs: Date.now(), got: data.stats().s3.bytesGot, put: data.stats().s3.bytesPut };
  return () => {
    const s = data.stats();
    const now = { atMs: Date.now(), got: s.s3.bytesGot, put: s.s3.bytesPut };
    const secs = Math.max(0.001, (now.atMs - last.atMs) / 1000);
    const report: MountReport = {
      version: TIERFS_VERSION,
      staged_bytes: s.disk?.stagedBytes ?? 0,
      staged_blocks: s.disk?.stagedBlocks ?? 0,
      upload_bytes_per_sec: s.disk?.uploadBytesPerSec ?? 0,
      s3_get_bytes_per_sec: (now.got - last.got) / secs,
      s3_put_bytes_per_sec: (now.put - last.put) / secs,
      cache_used_bytes: s.disk?.usedBytes ?? 0,
      dirty_bytes: s.dirtyBytes,
      reported_ms: now.atMs,
    };
    last = now;
    return report;
  };
}
