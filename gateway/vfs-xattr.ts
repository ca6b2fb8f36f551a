// Extended attributes by inode. The kernel asks for security.capability before every write
// (unless the inode is known to have none), so the names are cached with the attributes and
// a missing name is answered without a metaserver call.
import type { RequestContext } from '../fuse/types.js';
import { E, posix } from './errors.js';
import type { VfsCore } from './vfs-core.js';

const XATTR_NAME_MAX = 255;
const XATTR_SIZE_MAX = 65536;

/**
 * Names this mount does not support, answered EOPNOTSUPP as ext4 mounted `noacl` would:
 * POSIX ACLs (the kernel enforces them only with FUSE_POSIX_ACL, which we do not ask for, so
 * a stored ACL would mislead) and SELinux labels (the kernel labels FUSE mounts by genfscon,
 * not from xattrs). ENODATA would make `ls -l` ask both of every entry; EOPNOTSUPP tells it
 * once per listing that the filesystem has neither (coreutils caches "unsupported" per st_dev).
 */
const UNSUPPORTED = new Set(['system.posix_acl_access', 'system.posix_acl_default', 'security.selinux']);

function refuseUnsupported(name: string): void {
  if (UNSUPPORTED.has(name)) throw posix(E.EOPNOTSUPP, `${name} is not supported on this filesystem`);
}

export class VfsXattr {
  constructor(private readonly core: VfsCore) {}

  private async names(ino: number): Promise<Set<string>> {
    const cache = this.core.table.xattrNames;
    const hit = cache.get(ino);
    if (hit) return hit;
    const names = new Set(await this.core.meta.listXattr(ino));
    cache.set(ino, names);
    return names;
  }

  async getxattr(_ctx: RequestContext, ino: number, name: string): Promise<Buffer> {
    refuseUnsupported(name);
    if (!(await this.names(ino)).has(name)) throw posix(E.ENODATA, `no attribute ${name}`);
    return this.core.meta.getXattr(ino, name);
  }

  async listxattr(_ctx: RequestContext, ino: number): Promise<string[]> {
    return [...(await this.names(ino))].filter((n) => !UNSUPPORTED.has(n));
  }

  async setxattr(_ctx: RequestContext, ino: number, name: string, value: Buffer, flags: number): Promise<void> {
    this.core.assertWritable();
    refuseUnsupported(name);
    if (Buffer.byteLength(name) > XATTR_NAME_MAX) throw posix(E.ERANGE, `attribute name longer than ${XATTR_NAME_MAX} bytes`);
    if (value.length > XATTR_SIZE_MAX) throw posix(E.E2BIG, `attribute value longer than ${XATTR_SIZE_MAX} bytes`);
    // The server's buffer is reused after we answer; the metaserver client may queue it.
    await this.core.meta.setXattr(ino, name, Buffer.from(value), flags);
    this.core.table.xattrNames.delete(ino);
    await this.core.table.refresh(ino);
  }

  async removexattr(_ctx: RequestContext, ino: number, name: string): Promise<void> {
    this.core.assertWritable();
    refuseUnsupported(name);
    await this.core.meta.removeXattr(ino, name);
    this.core.table.xattrNames.delete(ino);
    await this.core.table.refresh(ino);
  }
}
