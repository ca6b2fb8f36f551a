// How a CLI command finds the cluster key, the way it finds the cluster: --cluster-key-file,
// else TIERFS_CLUSTER_KEY_FILE, else cluster.key in the data dir of `tierfs up` (the
// command's --data-dir, default .tierfs). TLS material likewise from --tls-* / TIERFS_TLS_*.
// Daemons (mds, metaserver) replace this with the files named in their config.
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { loadClusterAuth, useClusterAuth, type TlsFiles } from '../common/cluster-auth.js';
import { StatusCode, TierfsError } from '../common/status.js';

export const CLUSTER_KEY_FILE_NAME = 'cluster.key';

export function clusterKeyPath(dataDir: string): string {
  return join(resolve(dataDir), CLUSTER_KEY_FILE_NAME);
}

interface GlobalAuthOptions {
  clusterKeyFile?: string;
  tlsCert?: string;
  tlsKey?: string;
  tlsCa?: string;
}

let keyFileInUse: string | undefined;

/** The cluster key file this command found (for the processes it starts), if any. */
export function clusterKeyFileInUse(): string | undefined {
  return keyFileInUse;
}

export function addGlobalAuthOptions(program: Command): void {
  program
    .option('--cluster-key-file <file>', 'file holding the cluster key (default: TIERFS_CLUSTER_KEY_FILE, else cluster.key in --data-dir)')
    .option('--tls-cert <file>', 'TLS certificate for calls between hosts (TIERFS_TLS_CERT)')
    .option('--tls-key <file>', 'TLS private key (TIERFS_TLS_KEY)')
    .option('--tls-ca <file>', 'CA that signed the cluster\'s certificates (TIERFS_TLS_CA)');
  program.hook('preAction', (root, command) => {
    const g = root.opts<GlobalAuthOptions>();
    const dataDir = (command.opts() as { dataDir?: unknown }).dataDir;
    const inDataDir = clusterKeyPath(typeof dataDir === 'string' ? dataDir : '.tierfs');
    const keyFile = g.clusterKeyFile ?? process.env.TIERFS_CLUSTER_KEY_FILE ?? (existsSync(inDataDir) ? inDataDir : undefined);
    const cert = g.tlsCert ?? process.env.TIERFS_TLS_CERT;
    const key = g.tlsKey ?? process.env.TIERFS_TLS_KEY;
    const ca = g.tlsCa ?? process.env.TIERFS_TLS_CA;
    if ((cert || key || ca) && !(cert && key && ca)) throw new TierfsError(StatusCode.INVALID_ARGUMENT, 'TLS needs all three of --tls-cert, --tls-key and --tls-ca');
    const tls: TlsFiles | undefined = cert && key && ca ? { cert, key, ca } : undefined;
    useClusterAuth(loadClusterAuth({ clusterKeyFile: keyFile, tls }));
    keyFileInUse = keyFile;
  });
}

/**
 * The S3 secret from --secret-key-file, else AWS_SECRET_ACCESS_KEY, else --secret-key. The
 * last is kept for existing scripts only: `ps` shows a command line to every user, so it
 * warns, and overwrites the secret in this process's own command line at once (as mysql
 * does with a password given that way).
 */
export function s3SecretFrom(o: { secretKey?: string; secretKeyFile?: string }): string | undefined {
  if (o.secretKey !== undefined && o.secretKeyFile !== undefined) {
    throw new TierfsError(StatusCode.INVALID_ARGUMENT, 'give --secret-key-file or --secret-key, not both');
  }
  if (o.secretKeyFile !== undefined) return readSecretKeyFile(o.secretKeyFile);
  if (o.secretKey === undefined) return process.env.AWS_SECRET_ACCESS_KEY;
  process.stderr.write('tierfs: warning: --secret-key shows the secret to every user of this host (ps); use --secret-key-file or AWS_SECRET_ACCESS_KEY\n');
  const secret = o.secretKey;
  process.title = process.argv.map((a) => (a === secret ? 'xxx' : a.replace(`=${secret}`, '=xxx'))).join(' ');
  return secret;
}

/** An S3 secret from a file: the first line, without surrounding whitespace. */
export function readSecretKeyFile(file: string): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new TierfsError(StatusCode.INVALID_ARGUMENT, `--secret-key-file ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  const key = text.split('\n')[0]!.trim();
  if (!key) throw new TierfsError(StatusCode.INVALID_ARGUMENT, `--secret-key-file ${file} is empty`);
  return key;
}
