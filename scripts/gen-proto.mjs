// Generates TypeScript types for every .proto file in proto/ into proto/gen/.
// Generated files are never edited by hand; they are rebuilt on every build.
import { execFileSync } from 'node:child_process';
import { readdirSync, rmSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const protoDir = join(root, 'proto');
const outDir = join(protoDir, 'gen');
rmSync(outDir, { recursive: true, force: true });
mkdirSync(outDir, { recursive: true });
const files = readdirSync(protoDir).filter((f) => f.endsWith('.proto'));
const bin = join(root, 'node_modules', '@grpc', 'proto-loader', 'build', 'bin', 'proto-loader-gen-types.js');
// Options must match common/grpc.ts PROTO_OPTIONS.
execFileSync(process.execPath, [bin, '--keepCase', '--longs=Number', '--enums=String', '--defaults', '--oneofs',
  '--grpcLib=@grpc/grpc-js', '-I', protoDir, '-O', outDir, ...files], { stdio: 'inherit' });

// NodeNext resolution wants explicit extensions on relative imports.
import { readFileSync, writeFileSync, statSync } from 'node:fs';
function walk(dir) {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p);
    else if (p.endsWith('.ts')) {
      const src = readFileSync(p, 'utf8').replace(/from '(\.{1,2}\/[^']+)'/g, "from '$1.js'")
        .replace(/^\/\/ Original file: .*$/gm, '// Generated from proto/ by scripts/gen-proto.mjs');
      writeFileSync(p, src);
    }
  }
}
walk(outDir);
