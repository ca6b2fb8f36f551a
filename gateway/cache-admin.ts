// The cache-tuning commands of the admin socket: warmup and evict of files named by their
// paths on this mount, and the disk cache limits. Arguments come from another process, so
// they are validated here (zod) and mistakes answer with a message naming the argument.
import { posix as posixPath } from 'node:path';
import { z } from 'zod';
import { StatusCode, TierfsError } from '../common/status.js';
import type { FileData } from './file-data.js';
import type { Vfs } from './vfs.js';

const S_IFMT = 0o170000;
const S_IFREG = 0o100000;

const pathsArgs = z.object({ paths: z.array(z.string().min(1)).max(10_000), group: z.boolean().optional() }).strict();
const evictArgs = z.object({ paths: z.array(z.string().min(1)).max(10_000).optional(), group: z.boolean().optional() }).strict();
const configArgs = z
  .object({
    capacityBytes: z.number().int().positive(),
    maxFiles: z.number().int().positive(),
    stageWatermark: z.number().gt(0).max(1),
    trimHighWatermark: z.number().gt(0).max(1),
    trimLowWatermark: z.number().gt(0).max(1),
    uploadConcurrency: z.number().int().min(1).max(256),
  })
  .strict()
  .partial();

function parse<T>(schema: z.ZodType<T>, args: unknown, cmd: string): T {
  const r = schema.safeParse(args ?? {});
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  throw new TierfsError(StatusCode.INVALID_ARGUMENT, `${cmd}: ${issue.path.join('.') || 'arguments'}: ${issue.message}`);
}

export interface PathResult<T> {
  path: string;
  result?: T;
  error?: string;
}

export class CacheAdmin {
  constructor(
    private readonly fs: Vfs,
    private readonly data: FileData,
    private readonly mountpoint: string,
  ) {}

  /** An absolute path under the mountpoint (or already relative to the mount root) -> the mount's path. */
  private inMount(path: string): string {
    const abs = posixPath.resolve('/', path);
    const root = posixPath.resolve(this.mountpoint);
    if (abs === root) return '/';
    if (abs.startsWith(root + '/')) return abs.slice(root.length);
    throw new TierfsError(StatusCode.INVALID_ARGUMENT, `${path} is not under the mount ${this.mountpoint}`);
  }

  /** Runs `fn` on the regular file at each path; one path's failure does not stop the others. */
  private async eachFile<T>(paths: string[], fn: (ino: number, size: number) => Promise<T>): Promise<Array<PathResult<T>>> {
    const out: Array<PathResult<T>> = [];
    for (const path of paths) {
      try {
        const inode = await this.fs.resolvePath(this.inMount(path));
        if ((inode.mode & S_IFMT) !== S_IFREG) throw new TierfsError(StatusCode.INVALID_ARGUMENT, 'not a regular file');
        out.push({ path, result: await fn(inode.ino, inode.size) });
      } catch (err) {
        out.push({ path, error: err instanceof Error ? err.message : String(err) });
      }
    }
    return out;
  }

  warmup(args: unknown) {
    const { paths, group } = parse(pathsArgs, args, 'warmup');
    return this.eachFile(paths, (ino, size) => (group ? this.data.warmup(ino, size, { group }) : this.data.warmup(ino, size)));
  }

  async evict(args: unknown) {
    const { paths, group } = parse(evictArgs, args, 'evict');
    if (paths === undefined) {
      if (group) throw new TierfsError(StatusCode.INVALID_ARGUMENT, 'evict --group: name the files to drop from the cache group');
      return { all: await this.data.evict(null) };
    }
    return this.eachFile(paths, (ino) => (group ? this.data.evict(ino, { group }) : this.data.evict(ino)));
  }

  config(args: unknown) {
    const limits = this.data.cacheLimits(parse(configArgs, args, 'config'));
    if (limits === null) throw new TierfsError(StatusCode.NOT_SUPPORTED, 'this mount has no disk cache (--cache-size 0)');
    return limits;
  }
}
