// Patches fuse-native 2.2.6 in node_modules (CI runs a fresh `npm ci`, so the build runs this
// every time; each step is idempotent):
//  1. index.js: `opts.extraOptions` (array of strings) is appended to the `-o` mount options.
//     fuse-native has no way to pass big_writes/use_ino/max_write; without big_writes every
//     write reaches us in 4 KiB pieces (64 MB/s instead of ~1.2 GB/s).
//  2. fuse-native.c (steps 6, 7 below): utimens hands atime to JS in both argument slots (mtime is lost). We fix
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
