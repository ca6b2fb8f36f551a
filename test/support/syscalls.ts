// Syscalls Node does not offer (renameat2, fallocate modes, SEEK_DATA/SEEK_HOLE,
// copy_file_range, O_DIRECT with an aligned buffer), run through a short python3 script.
// Each call prints one JSON value; an OSError comes back as { errno: "ENAME" }.
import { execFileSync } from 'node:child_process';

const PRELUDE = String.raw`
import sys, os, json, errno, ctypes, mmap
libc = ctypes.CDLL(None, use_errno=True)
def check(r):
    if r < 0:
        e = ctypes.get_errno(); raise OSError(e, os.strerror(e))
    return r
def renameat2(a, b, flags):
    libc.renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    return check(libc.renameat2(-100, a.encode(), -100, b.encode(), flags))
def fallocate(path, mode, off, length):
    libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_long, ctypes.c_long]
    fd = os.open(path, os.O_RDWR)
    try: return check(libc.fallocate(fd, mode, off, length))
    finally: os.close(fd)
def seek(path, off, whence):
    fd = os.open(path, os.O_RDONLY)
    try: return os.lseek(fd, off, whence)
    finally: os.close(fd)
def copy_range(src, dst, off_in, off_out, length):
    a = os.open(src, os.O_RDONLY); b = os.open(dst, os.O_WRONLY | os.O_CREAT, 0o644)
    try: return os.copy_file_range(a, b, length, off_in, off_out)
    finally: os.close(a); os.close(b)
def direct_write(path, off, length):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_DIRECT, 0o644)
    buf = mmap.mmap(-1, max(length, 4096))
    try: return os.pwrite(fd, memoryview(buf)[:length], off)
    finally: os.close(fd)
def pwrite(path, data, off):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    try: return os.pwrite(fd, data, off)
    finally: os.close(fd)
try:
    out = eval(sys.argv[1])
except OSError as e:
    out = {'errno': errno.errorcode.get(e.errno, str(e.errno))}
print(json.dumps(out))
`;

export type SyscallResult = number | { errno: string };

/** Evaluates one expression of the prelude's functions, e.g. `renameat2('/m/a', '/m/b', 2)`. */
export function syscall(expr: string): SyscallResult {
  return JSON.parse(execFileSync('python3', ['-c', PRELUDE, expr], { encoding: 'utf8', timeout: 60_000 })) as SyscallResult;
}

export const RENAME_NOREPLACE = 1;
export const RENAME_EXCHANGE = 2;
export const FALLOC_FL_KEEP_SIZE = 1;
export const FALLOC_FL_PUNCH_HOLE = 2;
export const FALLOC_FL_ZERO_RANGE = 0x10;
export const SEEK_DATA = 3;
export const SEEK_HOLE = 4;

/** A JS string as a python literal. */
export const py = (s: string): string => JSON.stringify(s);
