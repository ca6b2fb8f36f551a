// Patches fuse-native 2.2.6 in node_modules (CI runs a fresh `npm ci`, so the build runs this
// every time; each step is idempotent):
//  1. index.js: `opts.extraOptions` (array of strings) is appended to the `-o` mount options.
//     fuse-native has no way to pass big_writes/use_ino/max_write; without big_writes every
//     write reaches us in 4 KiB pieces (64 MB/s instead of ~1.2 GB/s).
//  2. fuse-native.c (steps 6-9 below): utimens mtime, nullpath_ok, caller uid/gid, UTIME_OMIT. We fix
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
