// Patches fuse-native 2.2.6 in node_modules (CI runs a fresh `npm ci`, so the build runs this
// every time; each step is idempotent):
//  1. index.js: `opts.extraOptions` (array of strings) is appended to the `-o` mount options.
//     fuse-native has no way to pass big_writes/use_ino/max_write; without big_writes every
//     write reaches us in 4 KiB pieces (64 MB/s instead of ~1.2 GB/s).
//  2. fuse-native.c (steps 6-9 and 11 below): utimens mtime, nullpath_ok, caller uid/gid, UTIME_OMIT. We fix
//     the C source and rebuild the addon with npm's bundled node-gyp against the installed
//     Node headers (no download). node-gyp-build prefers build/Release over the prebuild.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const pkg = join(root, 'node_modules', 'fuse-native');
if (!existsSync(join(pkg, 'index.js'))) {
  console.error('patch-fuse: node_modules/fuse-native missing; run npm ci first');
  process.exit(1);
}

const MARK = '// tierfs-patch: extraOptions';
const indexPath = join(pkg, 'index.js');
let index = readFileSync(indexPath, 'utf8');
if (!index.includes(MARK)) {
  const anchor = "    if (this.opts.modules) options.push('modules=' + this.opts.modules)\n";
  if (!index.includes(anchor)) throw new Error('patch-fuse: fuse-native/index.js changed; cannot find the options anchor');
  index = index.replace(
    anchor,
    `${anchor}    ${MARK}\n    if (Array.isArray(this.opts.extraOptions)) options.push(...this.opts.extraOptions)\n`,
  );
  writeFileSync(indexPath, index);
  console.error('patch-fuse: index.js accepts extraOptions');
}

// 3. getxattr/listxattr: a value longer than the caller's buffer must fail with ERANGE; the
//    stock code copies a truncated value and reports the full length.
const RANGE_MARK = '// tierfs-patch: xattr ERANGE';
if (!index.includes(RANGE_MARK)) {
  const getAnchor = '        value.copy(valueBuf)\n';
  const listAnchor = '        let ptr = 0\n';
  if (!index.includes(getAnchor) || !index.includes(listAnchor)) throw new Error('patch-fuse: cannot find the xattr anchors');
  index = index.replace(
    getAnchor,
    `        ${RANGE_MARK}\n        if (valueBuf.length && value.length > valueBuf.length) return signal(-34, valueBuf.buffer)\n${getAnchor}`,
  );
  index = index.replace(
    listAnchor,
    `        let need = 0\n        for (const name of list) need += Buffer.byteLength(name) + 1\n        if (need > listBuf.length) return signal(-34, listBuf.buffer)\n${listAnchor}`,
  );
  writeFileSync(indexPath, index);
  console.error('patch-fuse: getxattr/listxattr answer ERANGE for short buffers');
}

// 4. getattr: nlink 0 (a file unlinked while open, seen through fstat) must stay 0; the stock
//    code turns every falsy nlink into 1.
const NLINK_MARK = '// tierfs-patch: nlink 0';
if (!index.includes(NLINK_MARK)) {
  const nlinkAnchor = '  ints[6] = (stat && stat.nlink) || 1\n';
  if (!index.includes(nlinkAnchor)) throw new Error('patch-fuse: cannot find the nlink anchor');
  index = index.replace(nlinkAnchor, `  ${NLINK_MARK}\n  ints[6] = (stat && typeof stat.nlink === 'number') ? stat.nlink : 1\n`);
  writeFileSync(indexPath, index);
  console.error('patch-fuse: getattr keeps nlink 0');
}

// 5. fgetattr: call ops.fgetattr with the file handle (stock code calls getattr by path,
//    which is empty for a file whose directory was removed while it was open; see 7).
const FGETATTR_MARK = '// tierfs-patch: fgetattr by handle';
if (!index.includes(FGETATTR_MARK)) {
  const anchor = '    this.ops.getattr(path, (err, stat) => {\n      if (err) return signal(err)\n';
  if (!index.includes(anchor)) throw new Error('patch-fuse: cannot find the fgetattr anchor');
  index = index.replace(anchor, `    ${FGETATTR_MARK}\n    this.ops.fgetattr(path, fd, (err, stat) => {\n      if (err) return signal(err)\n`);
  writeFileSync(indexPath, index);
  console.error('patch-fuse: fgetattr gets the file handle');
}

// 10. The JS side of 8: create/mknod/mkdir/symlink get a trailing `caller` argument after the
//     callback, {uid, gid} (undefined when the stock prebuilt addon runs: no context).
const CALLER_JS_MARK = '// tierfs-patch: caller context';
if (!index.includes(CALLER_JS_MARK)) {
  const ops = [
    ['  _op_create (signal, path, mode) {\n    this.ops.create(path, mode, (err, fd) => {\n      return signal(err, fd)\n    })\n',
      '  _op_create (signal, path, mode, uid, gid) {\n    this.ops.create(path, mode, (err, fd) => {\n      return signal(err, fd)\n    }, tierfsCaller(uid, gid))\n'],
    ['  _op_mknod (signal, path, mode, dev) {\n    this.ops.mknod(path, mode, dev, err => {\n      return signal(err)\n    })\n',
      '  _op_mknod (signal, path, mode, dev, uid, gid) {\n    this.ops.mknod(path, mode, dev, err => {\n      return signal(err)\n    }, tierfsCaller(uid, gid))\n'],
    ['  _op_symlink (signal, src, dest) {\n    this.ops.symlink(src, dest, err => {\n      return signal(err)\n    })\n',
      '  _op_symlink (signal, src, dest, uid, gid) {\n    this.ops.symlink(src, dest, err => {\n      return signal(err)\n    }, tierfsCaller(uid, gid))\n'],
    ['  _op_mkdir (signal, path, mode) {\n    this.ops.mkdir(path, mode, err => {\n      return signal(err)\n    })\n',
      '  _op_mkdir (signal, path, mode, uid, gid) {\n    this.ops.mkdir(path, mode, err => {\n      return signal(err)\n    }, tierfsCaller(uid, gid))\n'],
  ];
  for (const [from, to] of ops) index = replaceOnce(index, from, to);
  index += `\n${CALLER_JS_MARK}\nfunction tierfsCaller (uid, gid) {\n  return typeof uid === 'number' && typeof gid === 'number' ? { uid, gid } : undefined\n}\n`;
  writeFileSync(indexPath, index);
  console.error('patch-fuse: index.js passes the caller to create/mknod/mkdir/symlink');
}

const cPath = join(pkg, 'fuse-native.c');
let csrc = readFileSync(cPath, 'utf8');
const addon = join(pkg, 'build', 'Release', 'fuse.node');
let cChanged = false;
// 6. utimens: mtime went out as a second copy of atime.
const buggy = 'FUSE_UINT64_TO_INTS_ARGV(l->atime, 5)';
if (csrc.includes(buggy)) {
  csrc = csrc.replace(buggy, 'FUSE_UINT64_TO_INTS_ARGV(l->mtime, 5)');
  cChanged = true;
  console.error('patch-fuse: fuse-native.c passes mtime to utimens');
}
// 7. nullpath_ok: libfuse cannot build a path for an open file whose (hidden) name sits in a
//    directory that was removed; without the flag such reads fail with ENOENT before they
//    reach us. With it, ops that carry a file handle get an empty path, which we never use.
const NULLPATH_MARK = '/* tierfs-patch: nullpath_ok */';
if (!csrc.includes(NULLPATH_MARK)) {
  csrc = csrc.replaceAll('l->path, NAPI_AUTO_LENGTH', 'l->path ? l->path : "", NAPI_AUTO_LENGTH');
  csrc = csrc.replace('  struct fuse_operations ops = { };\n', `  struct fuse_operations ops = { };\n  ${NULLPATH_MARK} ops.flag_nullpath_ok = 1;\n`);
  cChanged = true;
  console.error('patch-fuse: fuse-native.c sets flag_nullpath_ok');
}
// 8. Caller context: fuse-native hands JS no uid/gid, so new nodes got the mount process's
//    owner. The FUSE thread captures fuse_get_context() with each op (the JS call happens
//    later on the JS thread, when the context is gone), and create/mknod/mkdir/symlink get
//    the caller's uid and gid as two extra arguments (see 10 for the JS side).
const CALLER_MARK = '/* tierfs-patch: caller context */';
if (!csrc.includes(CALLER_MARK)) {
  csrc = replaceOnce(csrc, '  gid_t gid;\n  size_t atime;\n', `  gid_t gid;\n  ${CALLER_MARK} uid_t caller_uid; gid_t caller_gid;\n  size_t atime;\n`);
  csrc = replaceOnce(
    csrc,
    '  l->op_fn = fuse_native_dispatch_##name;\\\n  blk\\\n',
    '  l->op_fn = fuse_native_dispatch_##name;\\\n' +
      '  { struct fuse_context *tierfs_fc = fuse_get_context(); l->caller_uid = tierfs_fc->uid; l->caller_gid = tierfs_fc->gid; }\\\n' +
      '  blk\\\n',
  );
  csrc = addCallerArgs(csrc, 'FUSE_METHOD(create, ', 2);
  csrc = addCallerArgs(csrc, 'FUSE_METHOD_VOID(mknod, ', 3);
  csrc = addCallerArgs(csrc, 'FUSE_METHOD_VOID(symlink, ', 2);
  csrc = addCallerArgs(csrc, 'FUSE_METHOD_VOID(mkdir, ', 2);
  cChanged = true;
  console.error('patch-fuse: fuse-native.c passes the caller uid/gid to create/mknod/mkdir/symlink');
}
// 9. utimens with one time omitted (touch -m / touch -a): libfuse 2 drops the call unless
//    flag_utime_omit_ok is set. UTIME_NOW and UTIME_OMIT both came out as 1073 ms; they now
//    reach JS as 2^53-1 (now) and 2^53-2 (omit), which no real time in ms can be.
const UTIME_MARK = '/* tierfs-patch: utime omit */';
if (!csrc.includes(UTIME_MARK)) {
  csrc = replaceOnce(
    csrc,
    'FUSE_METHOD_VOID(utimens, ',
    `${UTIME_MARK}\nstatic size_t tierfs_utime_arg (const struct timespec* ts) {\n` +
      '  if (ts->tv_nsec == UTIME_NOW) return 9007199254740991ULL;\n' +
      '  if (ts->tv_nsec == UTIME_OMIT) return 9007199254740990ULL;\n' +
      '  return timespec_to_uint64(ts);\n}\n\nFUSE_METHOD_VOID(utimens, ',
  );
  csrc = replaceOnce(csrc, '  l->atime = timespec_to_uint64(&tv[0]);\n  l->mtime = timespec_to_uint64(&tv[1]);\n',
    '  l->atime = tierfs_utime_arg(&tv[0]);\n  l->mtime = tierfs_utime_arg(&tv[1]);\n');
  csrc = replaceOnce(csrc, '  struct fuse_operations ops = { };\n', '  struct fuse_operations ops = { };\n  ops.flag_utime_omit_ok = 1;\n');
  cChanged = true;
  console.error('patch-fuse: fuse-native.c passes UTIME_NOW/UTIME_OMIT and sets flag_utime_omit_ok');
}
// 11. 1 MiB requests: libfuse 2 reads /dev/fuse into 132 KiB buffers and its INIT reply
//     (protocol 7.19) has no max_pages, so the kernel caps every write at 32 pages (128 KiB)
//     and a sequential writer waits for one round trip per 128 KiB. The mount gets its own
//     channel on the same fd with 1 MiB + 8 KiB buffers (libfuse then accepts max_write up to
//     1 MiB), and the INIT reply is extended with FUSE_MAX_PAGES / max_pages=256 when the
//     kernel offers it (7.28+; the kernel reads those fields whatever minor we answer with).
const BIGREQ_MARK = '/* tierfs-patch: big requests */';
if (!csrc.includes(BIGREQ_MARK)) {
  const chan = `${BIGREQ_MARK}
#include <sys/uio.h>
#include <errno.h>
#define TIERFS_MAX_PAGES 256
#define TIERFS_CHAN_BUFSIZE ((TIERFS_MAX_PAGES + 2) * 4096)
#define TIERFS_FUSE_INIT 26
#define TIERFS_FUSE_MAX_PAGES (1u << 22)
#define TIERFS_IN_HEADER 40
#define TIERFS_OUT_HEADER 16
#define TIERFS_INIT_OUT 64

typedef struct {
  uint64_t init_unique;
  uint32_t kernel_flags;
  int init_seen;
} tierfs_chan_state_t;

static int tierfs_chan_receive (struct fuse_chan **chp, char *buf, size_t size) {
  struct fuse_chan *ch = *chp;
  struct fuse_session *se = fuse_chan_session(ch);
  tierfs_chan_state_t *st = (tierfs_chan_state_t *) fuse_chan_data(ch);
  ssize_t res;
  int err;
restart:
  res = read(fuse_chan_fd(ch), buf, size);
  err = errno;
  if (fuse_session_exited(se)) return 0;
  if (res == -1) {
    if (err == ENOENT) goto restart; /* the request was interrupted */
    if (err == ENODEV) { fuse_session_exit(se); return 0; } /* unmounted */
    if (err != EINTR && err != EAGAIN) perror("fuse: reading device");
    return -err;
  }
  if ((size_t) res < TIERFS_IN_HEADER) {
    fprintf(stderr, "short read on fuse device\\n");
    return -EIO;
  }
  uint32_t opcode;
  memcpy(&opcode, buf + 4, 4);
  if (opcode == TIERFS_FUSE_INIT && !st->init_seen && (size_t) res >= TIERFS_IN_HEADER + 16) {
    memcpy(&st->init_unique, buf + 8, 8);
    memcpy(&st->kernel_flags, buf + TIERFS_IN_HEADER + 12, 4);
    st->init_seen = 1;
  }
  return res;
}

static int tierfs_chan_send (struct fuse_chan *ch, const struct iovec iov[], size_t count) {
  if (!iov) return 0;
  tierfs_chan_state_t *st = (tierfs_chan_state_t *) fuse_chan_data(ch);
  struct iovec patched[2];
  unsigned char hdr[TIERFS_OUT_HEADER];
  unsigned char out[TIERFS_INIT_OUT];
  if (st->init_unique != 0 && count == 2 && iov[0].iov_len == TIERFS_OUT_HEADER && iov[1].iov_len >= 24 && iov[1].iov_len <= TIERFS_INIT_OUT) {
    uint64_t unique;
    int32_t error;
    memcpy(hdr, iov[0].iov_base, TIERFS_OUT_HEADER);
    memcpy(&error, hdr + 4, 4);
    memcpy(&unique, hdr + 8, 8);
    if (unique == st->init_unique) {
      st->init_unique = 0;
      if (error == 0 && (st->kernel_flags & TIERFS_FUSE_MAX_PAGES)) {
        uint32_t flags, len = TIERFS_OUT_HEADER + TIERFS_INIT_OUT;
        uint16_t pages = TIERFS_MAX_PAGES;
        memset(out, 0, sizeof out);
        memcpy(out, iov[1].iov_base, iov[1].iov_len);
        memcpy(&flags, out + 12, 4);
        flags |= TIERFS_FUSE_MAX_PAGES;
        memcpy(out + 12, &flags, 4);
        memcpy(out + 28, &pages, 2); /* fuse_init_out.max_pages */
        memcpy(hdr, &len, 4);
        patched[0].iov_base = hdr;
        patched[0].iov_len = TIERFS_OUT_HEADER;
        patched[1].iov_base = out;
        patched[1].iov_len = TIERFS_INIT_OUT;
        iov = patched;
      }
    }
  }
  ssize_t res = writev(fuse_chan_fd(ch), iov, count);
  int err = errno;
  if (res == -1) {
    struct fuse_session *se = fuse_chan_session(ch);
    if (!fuse_session_exited(se) && err != ENOENT) perror("fuse: writing device");
    return -err;
  }
  return 0;
}

static void tierfs_chan_destroy (struct fuse_chan *ch) {
  int fd = fuse_chan_fd(ch);
  if (fd != -1) close(fd);
  free(fuse_chan_data(ch));
}

static struct fuse_chan_ops tierfs_chan_ops = {
  .receive = tierfs_chan_receive,
  .send = tierfs_chan_send,
  .destroy = tierfs_chan_destroy,
};

/* The kernel channel stays allocated (never destroyed: that would close the shared fd). */
static struct fuse_chan *tierfs_big_chan (struct fuse_chan *kch) {
  if (kch == NULL) return NULL;
  tierfs_chan_state_t *st = (tierfs_chan_state_t *) calloc(1, sizeof(tierfs_chan_state_t));
  if (st == NULL) return kch;
  struct fuse_chan *ch = fuse_chan_new(&tierfs_chan_ops, fuse_chan_fd(kch), TIERFS_CHAN_BUFSIZE, st);
  if (ch == NULL) {
    free(st);
    return kch;
  }
  return ch;
}

NAPI_METHOD(fuse_native_mount) {`;
  csrc = replaceOnce(csrc, 'NAPI_METHOD(fuse_native_mount) {', chan);
  csrc = replaceOnce(csrc, '  struct fuse_chan *ch = fuse_mount(mnt, &args);\n', '  struct fuse_chan *ch = tierfs_big_chan(fuse_mount(mnt, &args));\n');
  cChanged = true;
  console.error('patch-fuse: fuse-native.c reads 1 MiB requests (own channel, max_pages in INIT)');
}
if (cChanged) writeFileSync(cPath, csrc);
if (!existsSync(addon) || cChanged) {
  const npmDir = join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm');
  const nodeGyp = join(npmDir, 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
  const prefix = join(dirname(process.execPath), '..');
  // The installed Node's headers (Debian/NodeSource ship them) keep node-gyp offline.
  const headers = existsSync(join(prefix, 'include', 'node', 'node_api.h')) ? [`--nodedir=${prefix}`] : [];
  try {
    if (!existsSync(nodeGyp)) throw new Error(`node-gyp not found at ${nodeGyp}`);
    console.error('patch-fuse: rebuilding the fuse-native addon (node-gyp) ...');
    execFileSync(process.execPath, [nodeGyp, 'rebuild', ...headers, '--loglevel=warn'], { cwd: pkg, stdio: ['ignore', 'ignore', 'inherit'] });
    if (!existsSync(addon)) throw new Error('node-gyp finished but build/Release/fuse.node is missing');
  } catch (err) {
    // Keep the rest of the project building; the mount then runs on the stock prebuilt addon,
    // where utimens loses mtime and reads of a file hidden in a removed directory fail.
    console.error(`patch-fuse: WARNING: could not rebuild fuse-native (${err instanceof Error ? err.message : String(err)});`);
    console.error('patch-fuse: the mount falls back to the prebuilt addon. Needs: make, g++, python3, Node headers.');
  }
}

function replaceOnce(src, from, to) {
  if (!src.includes(from)) throw new Error(`patch-fuse: fuse-native changed; cannot find ${JSON.stringify(from.slice(0, 60))}`);
  return src.replace(from, to);
}

// FUSE_METHOD(name, callbackArgs, ...): bumps callbackArgs by 2 and appends the caller's uid and
// gid to the end of the callback block (the second block; JS args start at argv[2]).
function addCallerArgs(src, header, callbackArgs) {
  const at = src.indexOf(`${header}${callbackArgs}, `);
  if (at < 0) throw new Error(`patch-fuse: cannot find ${header}${callbackArgs}`);
  const callEnd = src.indexOf('\n}, {\n', at);
  const cbEnd = src.indexOf('\n}', callEnd + 6);
  if (callEnd < 0 || cbEnd < 0) throw new Error(`patch-fuse: cannot find the blocks of ${header}`);
  const extra = `\n  napi_create_uint32(env, l->caller_uid, &(argv[${callbackArgs + 2}]));` +
    `\n  napi_create_uint32(env, l->caller_gid, &(argv[${callbackArgs + 3}]));`;
  const patched = src.slice(0, cbEnd) + extra + src.slice(cbEnd);
  return patched.slice(0, at) + `${header}${callbackArgs + 2}, ` + patched.slice(at + header.length + String(callbackArgs).length + 2);
}
