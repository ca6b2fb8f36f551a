// A throwaway PKI for TLS tests, made with the openssl command (Node's crypto can make key
// pairs but cannot sign X.509 certificates): a CA, server and client certificates for
// 127.0.0.1/localhost signed by it, and a stranger's CA with a certificate of its own.
import { execFileSync } from 'node:child_process';
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** A CA and two leaf certificates for 127.0.0.1, plus a stranger's CA and leaf (openssl). */
export function makePki(dir: string): Record<string, string> {
  const sh = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  const ext = join(dir, 'san.ext');
  writeFileSync(ext, 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  for (const ca of ['ca', 'evil-ca']) {
    sh('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', `/CN=${ca}`, '-keyout', `${ca}.key`, '-out', `${ca}.pem`);
  }
  for (const [leaf, ca] of [['server', 'ca'], ['client', 'ca'], ['evil', 'evil-ca']] as const) {
    sh('req', '-newkey', 'rsa:2048', '-nodes', '-subj', `/CN=${leaf}`, '-keyout', `${leaf}.key`, '-out', `${leaf}.csr`);
    sh('x509', '-req', '-in', `${leaf}.csr`, '-CA', `${ca}.pem`, '-CAkey', `${ca}.key`, '-CAcreateserial', '-days', '2', '-extfile', ext, '-out', `${leaf}.pem`);
    chmodSync(join(dir, `${leaf}.key`), 0o600);
  }
  return Object.fromEntries(['ca', 'evil-ca', 'server', 'client', 'evil'].flatMap((n) => [[`${n}.pem`, join(dir, `${n}.pem`)], [`${n}.key`, join(dir, `${n}.key`)]]));
}

