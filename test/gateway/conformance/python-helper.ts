// Node has no xattr, mkfifo or mmap API; a long-lived python3 helper does those calls.
// One JSON request per line in, one JSON answer per line out.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createInterface } from 'node:readline';

const HELPER = String.raw`
import sys, os, json, errno, ctypes, mmap
libc = ctypes.CDLL(None, use_errno=True)
libc.getxattr.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_void_p, ctypes.c_size_t]
libc.getxattr.restype = ctypes.c_ssize_t
libc.listxattr.argtypes = [ctypes.c_char_p, ctypes.c_void_p, ctypes.c_size_t]
libc.listxattr.restype = ctypes.c_ssize_t
def sized(fn, *args, size):
    buf = ctypes.create_string_buffer(max(size, 1))
    n = fn(*args, buf if size > 0 else None, size)
    if n < 0:
        e = ctypes.get_errno(); raise OSError(e, os.strerror(e))
    return n, buf.raw[:n] if size > 0 else b''
def run(r):
    op = r['op']; p = r.get('path', '').encode()
    if op == 'setxattr':
        os.setxattr(p, r['name'], bytes.fromhex(r['value']), r.get('flags', 0)); return None
    if op == 'getxattr':
        if r.get('size') is not None:
            n, v = sized(libc.getxattr, p, r['name'].encode(), size=r['size']); return {'n': n, 'value': v.hex()}
        return os.getxattr(p, r['name']).hex()
    if op == 'listxattr':
        if r.get('size') is not None:
            n, v = sized(libc.listxattr, p, size=r['size']); return {'n': n}
        return sorted(n for n in os.listxattr(p) if not n.startswith('security.') and not n.startswith('system.'))
    if op == 'removexattr':
        os.removexattr(p, r['name']); return None
    if op == 'mkfifo':
        os.mkfifo(p, r.get('mode', 0o644)); return None
    if op == 'mmapWrite':
        fd = os.open(p, os.O_RDWR)
        try:
            size = os.fstat(fd).st_size
            m = mmap.mmap(fd, size)
            data = bytes.fromhex(r['data']); m[r['offset']:r['offset'] + len(data)] = data; m.flush(); m.close()
        finally:
            os.close(fd)
        return None
    if op == 'mmapRead':
        fd = os.open(p, os.O_RDONLY)
        try:
            m = mmap.mmap(fd, 0, prot=mmap.PROT_READ); v = m[r['offset']:r['offset'] + r['length']]; m.close()
        finally:
            os.close(fd)
        return v.hex()
    raise ValueError('unknown op ' + op)
for line in sys.stdin:
    r = json.loads(line)
    try:
        out = {'ok': run(r)}
    except OSError as e:
        out = {'err': errno.errorcode.get(e.errno, str(e.errno))}
    sys.stdout.write(json.dumps(out) + '\n'); sys.stdout.flush()
`;

export interface HelperAnswer {
  ok?: unknown;
  err?: string;
}

export class PythonHelper {
  private readonly proc: ChildProcessWithoutNullStreams;
  private readonly waiting: Array<(a: HelperAnswer) => void> = [];

  constructor() {
    this.proc = spawn('python3', ['-c', HELPER], { stdio: ['pipe', 'pipe', 'pipe'] });
    createInterface({ input: this.proc.stdout }).on('line', (line) => this.waiting.shift()?.(JSON.parse(line) as HelperAnswer));
    this.proc.stderr.on('data', (c: Buffer) => process.stderr.write(`python helper: ${c.toString()}`));
  }

  call(req: Record<string, unknown>): Promise<HelperAnswer> {
    return new Promise((resolve, reject) => {
      if (this.proc.exitCode !== null) return reject(new Error('python helper exited'));
      this.waiting.push(resolve);
      this.proc.stdin.write(JSON.stringify(req) + '\n');
    });
  }

  close(): void {
    this.proc.stdin.end();
    this.proc.kill();
  }
}
