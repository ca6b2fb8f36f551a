// Key layout of the metaserver's level database. One database per metaserver; every copyset
// owns the keys under its prefix, so a copyset's snapshot is one range scan and its removal
// one range delete. Numbers are fixed-width hex so byte order is numeric order; dentry names
// follow their parent, so a directory listing is one ordered range (names in byte order).
//
//   c{pool}{copyset}/~applied                      {index, term}
//   c{pool}{copyset}/~p/{partition}                PartitionRecord
//   c{pool}{copyset}/~r/{client}/{seq}             recorded result of a request
//   c{pool}{copyset}/~w/{client}                   seq below which that client's results are gone
//   c{pool}{copyset}/~x/{txId}/{src|dst}           rename transaction record
//   c{pool}{copyset}/~f/{fs}                       DumpFenceRecord (dump-fence.ts)
//   c{pool}{copyset}/{partition}/i/{ino}           InodeRecord
//   c{pool}{copyset}/{partition}/s/{ino}/{chunk}   SliceRecord[] of one chunk
//   c{pool}{copyset}/{partition}/d/{parent}/{name} DentryRecord
//   c{pool}{copyset}/{partition}/l/{parent}/{name} txId holding the name
//   c{pool}{copyset}/{partition}/t/{ino}           TrashRecord (deletion queue)
//   c{pool}{copyset}/{partition}/q/{ino}           QuotaRecord (root partition only; quota.ts)

const hex8 = (n: number): string => n.toString(16).padStart(8, '0');
const hex16 = (n: number): string => n.toString(16).padStart(16, '0');

/** The first key after every key that starts with `prefix` ('/' + 1 = '0'). */
export function rangeEnd(prefix: string): string {
  return prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1);
}

export class CopysetKeys {
  readonly prefix: string;

  constructor(
    readonly poolId: number,
    readonly copysetId: number,
  ) {
    this.prefix = `c${hex8(poolId)}${hex8(copysetId)}/`;
  }

  applied(): string {
    return `${this.prefix}~applied`;
  }
  partitionPrefix(): string {
    return `${this.prefix}~p/`;
  }
  partition(pid: number): string {
    return `${this.prefix}~p/${hex8(pid)}`;
  }
  requestPrefix(clientId: string): string {
    return `${this.prefix}~r/${clientId}/`;
  }
  request(clientId: string, seq: number): string {
    return `${this.requestPrefix(clientId)}${hex16(seq)}`;
  }
  /** The client's prune watermark: every recorded result below it is deleted. */
  requestWatermark(clientId: string): string {
    return `${this.prefix}~w/${clientId}`;
  }
  txPrefix(): string {
    return `${this.prefix}~x/`;
  }
  /** A transaction's record at its source partition (the outcome) and at its destination (prepared). */
  txSource(txId: string): string {
    return `${this.prefix}~x/${txId}/src`;
  }
  txDestination(txId: string): string {
    return `${this.prefix}~x/${txId}/dst`;
  }
  /** The dump fence of filesystem `fsId`. */
  dumpFence(fsId: number): string {
    return `${this.prefix}~f/${hex8(fsId)}`;
  }
  /** Every key of one partition's data. */
  partitionData(pid: number): string {
    return `${this.prefix}${hex8(pid)}/`;
  }
  inode(pid: number, ino: number): string {
    return `${this.partitionData(pid)}i/${hex16(ino)}`;
  }
  inodePrefix(pid: number): string {
    return `${this.partitionData(pid)}i/`;
  }
  /** Every inode's slices in the partition. */
  allSlicesPrefix(pid: number): string {
    return `${this.partitionData(pid)}s/`;
  }
  slicesPrefix(pid: number, ino: number): string {
    return `${this.partitionData(pid)}s/${hex16(ino)}/`;
  }
  slices(pid: number, ino: number, chunkIndex: number): string {
    return `${this.slicesPrefix(pid, ino)}${hex16(chunkIndex)}`;
  }
  /** Every name in the partition. */
  allDentriesPrefix(pid: number): string {
    return `${this.partitionData(pid)}d/`;
  }
  dentryPrefix(pid: number, parent: number): string {
    return `${this.partitionData(pid)}d/${hex16(parent)}/`;
  }
  dentry(pid: number, parent: number, name: string): string {
    return `${this.dentryPrefix(pid, parent)}${name}`;
  }
  lockPrefix(pid: number, parent: number): string {
    return `${this.partitionData(pid)}l/${hex16(parent)}/`;
  }
  /** Every rename lock in the partition. */
  allLocksPrefix(pid: number): string {
    return `${this.partitionData(pid)}l/`;
  }
  lock(pid: number, parent: number, name: string): string {
    return `${this.partitionData(pid)}l/${hex16(parent)}/${name}`;
  }
  /** Whether `key` is a rename lock of this copyset (`{partition}/l/...`). */
  isLock(key: string): boolean {
    const rest = key.startsWith(this.prefix) ? key.slice(this.prefix.length) : '';
    return rest.length > 11 && rest[8] === '/' && rest[9] === 'l' && rest[10] === '/' && /^[0-9a-f]{8}$/.test(rest.slice(0, 8));
  }
  trashPrefix(pid: number): string {
    return `${this.partitionData(pid)}t/`;
  }
  trash(pid: number, ino: number): string {
    return `${this.trashPrefix(pid)}${hex16(ino)}`;
  }
}

export function parseHex(s: string): number {
  return parseInt(s, 16);
}
