// Installs what tierfs needs on a fresh Debian machine: system packages (etcd-server,
// util-linux's mount/umount for the FUSE mount) and node modules. Safe to run again: it
// only installs what is missing. The mount speaks the FUSE kernel protocol itself (fuse/):
// no libfuse and no native addon to build.
import { execFileSync, execSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const has = (cmd) => {
  try {
    execSync(`command -v ${cmd}`, { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
};
const missing = [];
if (!has('mount') || !has('umount')) missing.push('mount');
if (!existsSync('/usr/bin/etcd')) missing.push('etcd-server');
if (!has('etcdctl')) missing.push('etcd-client');

if (missing.length > 0) {
  if (process.getuid?.() !== 0) {
    console.error(`tierfs needs these Debian packages: ${missing.join(' ')}\n  sudo apt-get install -y ${missing.join(' ')}`);
    process.exit(1);
  }
  console.error(`installing ${missing.join(' ')} ...`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
  execFileSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...missing], { stdio: 'inherit', env });
}

if (!existsSync(join(root, 'node_modules', '.package-lock.json'))) {
  console.error('installing node modules (npm ci) ...');
  execFileSync('npm', ['ci', '--no-audit', '--no-fund'], { cwd: root, stdio: 'inherit' });
}
