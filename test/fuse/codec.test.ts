// The wire encoding on its own: struct offsets, 64-bit values, times before 1970, and
// directory records padded to 8 bytes (FUSE_DIRENT_ALIGN). The mount tests cover the same
// through the kernel; these pin the details the kernel would only reject as EIO.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ATTR_OUT_SIZE, DIRENTPLUS_HEADER_SIZE, DIRENT_HEADER_SIZE, ENTRY_OUT_SIZE } from '../../fuse/abi.js';
import { direntSize, msToTimespec, packDirent, readCString, readS64, readU64, writeAttrOut, writeEntryOut, writeU64 } from '../../fuse/codec.js';
import type { Attr } from '../../fuse/types.js';

const attr: Attr = {
  ino: 2 ** 40 + 5,
  size: 2 ** 33 + 1,
  blocks: 9,
  atimeMs: -1500, // 1969-12-31T23:59:58.5
  mtimeMs: 1_700_000_000_123.456,
  ctimeMs: 0,
  mode: 0o100644,
  nlink: 3,
  uid: 1000,
  gid: 1001,
  rdev: 0,
  blksize: 4096,
};

describe('fuse codec', () => {
  test('u64/s64 round trips, including values above 2^32 and negatives', () => {
    const b = Buffer.alloc(8);
    for (const v of [0, 1, 2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1]) {
      writeU64(b, 0, v);
      assert.equal(readU64(b, 0), v);
      assert.equal(b.readBigUInt64LE(0), BigInt(v));
    }
    writeU64(b, 0, -2);
    assert.equal(b.readBigInt64LE(0), -2n);
    assert.equal(readS64(b, 0), -2);
  });

  test('times split into seconds and nanoseconds, seconds floored, exact to the microsecond', () => {
    assert.deepEqual(msToTimespec(1500), [1, 500_000_000]);
    assert.deepEqual(msToTimespec(-1500), [-2, 500_000_000]);
    assert.deepEqual(msToTimespec(1_700_000_000_123.456), [1_700_000_000, 123_456_000]);
    assert.deepEqual(msToTimespec(1_700_000_000_999.9999), [1_700_000_001, 0]);
  });

  test('entry_out and attr_out: timeouts as sec+nsec, attr at its offsets', () => {
    const b = Buffer.alloc(ENTRY_OUT_SIZE);
    writeEntryOut(b, 0, { attr, entryTimeoutMs: 2500, attrTimeoutMs: 0.5, generation: 7 });
    assert.equal(b.readBigUInt64LE(0), BigInt(attr.ino)); // nodeid
    assert.equal(b.readBigUInt64LE(8), 7n); // generation
    assert.equal(b.readBigUInt64LE(16), 2n); // entry_valid
    assert.equal(b.readBigUInt64LE(24), 0n); // attr_valid
    assert.equal(b.readUInt32LE(32), 500_000_000); // entry_valid_nsec
    assert.equal(b.readUInt32LE(36), 500_000); // attr_valid_nsec
    const a = 40;
    assert.equal(b.readBigUInt64LE(a + 8), BigInt(attr.size));
    assert.equal(b.readBigInt64LE(a + 24), -2n); // atime seconds
    assert.equal(b.readUInt32LE(a + 48), 500_000_000); // atimensec
    assert.equal(b.readBigUInt64LE(a + 32), 1_700_000_000n);
    assert.equal(b.readUInt32LE(a + 60), 0o100644);
    assert.equal(b.readUInt32LE(a + 64), 3);
    assert.equal(b.readUInt32LE(a + 68), 1000);
    assert.equal(b.readUInt32LE(a + 72), 1001);
    assert.equal(b.readUInt32LE(a + 80), 4096);
    const o = Buffer.alloc(ATTR_OUT_SIZE);
    writeAttrOut(o, 0, attr, 1000);
    assert.equal(o.readBigUInt64LE(0), 1n);
    assert.equal(o.readBigUInt64LE(16), BigInt(attr.ino));
    // A negative entry: nodeid 0 with the caching timeout.
    writeEntryOut(b, 0, null, 3000);
    assert.equal(b.readBigUInt64LE(0), 0n);
    assert.equal(b.readBigUInt64LE(16), 3n);
  });

  test('dirents are padded to 8 bytes and refused when they do not fit', () => {
    assert.equal(direntSize(1, false), 32); // 24 + 1 -> 32
    assert.equal(direntSize(8, false), 32);
    assert.equal(direntSize(9, false), 40);
    assert.equal(direntSize(1, true), 160); // 152 + 1 -> 160
    const b = Buffer.alloc(64, 0xff);
    const end = packDirent(b, 0, 64, { name: 'héllo', ino: 42, type: 0o040000, offset: 9 }, false);
    assert.equal(end, 32); // 24 + 6 bytes of UTF-8 -> 32
    assert.equal(b.readBigUInt64LE(0), 42n);
    assert.equal(b.readBigUInt64LE(8), 9n);
    assert.equal(b.readUInt32LE(16), 6);
    assert.equal(b.readUInt32LE(20), 4); // DT_DIR
    assert.equal(b.toString('utf8', DIRENT_HEADER_SIZE, DIRENT_HEADER_SIZE + 6), 'héllo');
    assert.equal(b.subarray(30, 32).every((x) => x === 0), true, 'padding zeroed');
    assert.equal(packDirent(b, 32, 64, { name: 'a-name-too-long-to-fit', ino: 1, type: 0o100000, offset: 10 }, false), -1);
    const p = Buffer.alloc(DIRENTPLUS_HEADER_SIZE + 8);
    assert.equal(packDirent(p, 0, p.length, { name: 'x', ino: 5, type: 0o100000, offset: 3 }, true), 160);
    assert.equal(p.readBigUInt64LE(0), 0n, 'no entry: nodeid 0, the kernel takes no reference');
    assert.equal(p.readBigUInt64LE(ENTRY_OUT_SIZE), 5n);
  });

  test('NUL-terminated names', () => {
    const b = Buffer.from('old\0new\0');
    const [a, next] = readCString(b, 0, b.length);
    assert.equal(a, 'old');
    assert.equal(readCString(b, next, b.length)[0], 'new');
  });
});
