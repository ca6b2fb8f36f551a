// Patches fuse-native 2.2.6 in node_modules (CI runs a fresh `npm ci`, so the build runs this
// every time; each step is idempotent):
//  1. index.js: `opts.extraOptions` (array of strings) is appended to the `-o` mount options.
//     fuse-native has no way to pass big_writes/use_ino/max_write; without big_writes every
//     write reaches us in 4 KiB pieces (64 MB/s instead of ~1.2 GB/s).
//  2. fuse-native.c: utimens hands atime to JS in both argument slots (mtime is lost). We fix
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

const cPath = join(pkg, 'fuse-native.c');
let csrc = readFileSync(cPath, 'utf8');
const buggy = 'FUSE_UINT64_TO_INTS_ARGV(l->atime, 5)';
const addon = join(pkg, 'build', 'Release', 'fuse.node');
if (csrc.includes(buggy)) {
  csrc = csrc.replace(buggy, 'FUSE_UINT64_TO_INTS_ARGV(l->mtime, 5)');
  writeFileSync(cPath, csrc);
  console.error('patch-fuse: fuse-native.c passes mtime to utimens');
}
if (!existsSync(addon) || readFileSync(cPath, 'utf8').includes(buggy)) {
  const npmDir = join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm');
  const nodeGyp = join(npmDir, 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
  const headers = join(dirname(process.execPath), '..');
  if (!existsSync(nodeGyp)) throw new Error(`patch-fuse: node-gyp not found at ${nodeGyp}`);
  console.error('patch-fuse: rebuilding the fuse-native addon (node-gyp) ...');
  execFileSync(process.execPath, [nodeGyp, 'rebuild', `--nodedir=${headers}`, '--loglevel=warn'], {
    cwd: pkg,
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  if (!existsSync(addon)) throw new Error('patch-fuse: node-gyp finished but build/Release/fuse.node is missing');
}
