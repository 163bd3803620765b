/**
 * Batched bpf(2) element operations on one map of a blocklist (see maps.ts):
 * the undo of a partial load, batched deletes, batched dumps, each falling
 * back to per-element calls on kernels without batch support.
 * @module
 */
import { BpfCmd, CMem, Errno, batchRaw, deleteElemRaw, lookupElemRaw, nextKeyRaw, updateElemRaw } from '../host/bpf.js';
import { KEY_SIZE, VALUE_SIZE, type ListKind } from './entries.js';

/** Elements per batch call. */
export const BATCH = 65_536;

/** Why a map operation failed. */
export class MapOpError extends Error {
  constructor(
    message: string,
    readonly errno: number,
  ) {
    super(message);
    this.name = 'MapOpError';
  }
}

/** Whether a batch call failed because the kernel has no batch operation for this map type. */
export function noBatch(ret: number): boolean {
  return ret === -Errno.EINVAL || ret === -Errno.ENOTSUPP || ret === -95 /* EOPNOTSUPP */;
}

export function capacityMessage(kind: ListKind, ret: number): string {
  const e = -ret;
  if (e === Errno.E2BIG || e === Errno.ENOSPC || e === 12 /* ENOMEM */) {
    return `the ${kind === 'v4' ? 'IPv4 address' : kind === 'v6' ? 'IPv6 address' : kind === 'p4' ? 'IPv4 prefix' : 'IPv6 prefix'} list is full (errno ${e}); create the blocklist with a larger maxEntries`;
  }
  return `map update failed: errno ${e}`;
}

/** Undo the update of keys `from`..`to` (exclusive): restore the values in `existing` (by key index), delete the others. */
export function undoUpsert(fd: number, ks: number, keys: CMem, from: number, to: number, existing: Map<number, Buffer>): void {
  const v = new CMem(VALUE_SIZE);
  try {
    for (let i = from; i < to; i++) {
      const old = existing.get(i);
      if (old) {
        old.copy(v.buf);
        updateElemRaw(fd, keys.addr + BigInt(i * ks), v.addr);
      } else deleteElemRaw(fd, keys.addr + BigInt(i * ks));
    }
  } finally {
    v.free();
  }
}

export function deleteKeys(fd: number, keys: CMem, ks: number, n: number, progress?: (done: number) => void): number {
  let i = 0;
  let deleted = 0;
  while (i < n) {
    const c = Math.min(BATCH, n - i);
    const r = batchRaw(BpfCmd.MAP_DELETE_BATCH, fd, { keys: keys.addr + BigInt(i * ks), count: c });
    deleted += r.count;
    i += r.count;
    if (r.ret === 0) {
      // chunk done
    } else if (r.ret === -Errno.ENOENT) {
      i++; // absent: skip it
    } else if (noBatch(r.ret) && r.count === 0) {
      for (; i < n; i++) if (deleteElemRaw(fd, keys.addr + BigInt(i * ks)) === 0) deleted++;
    } else throw new MapOpError(`delete failed: errno ${-r.ret}`, -r.ret);
    if (progress && n > 4096) progress(i);
  }
  return deleted;
}

/** Every key and value of one map (batched lookups; element walk when unsupported). */
export function dumpMap(fd: number, kind: ListKind, name: string): { keys: Buffer; vals: Buffer; count: number } {
    const ks = KEY_SIZE[kind];
  const chunk = 16_384;
  const keyParts: Buffer[] = [];
  const valParts: Buffer[] = [];
  let count = 0;
  const keys = new CMem(chunk * ks);
  const vals = new CMem(chunk * VALUE_SIZE);
  const inB = new CMem(Math.max(8, ks));
  const outB = new CMem(Math.max(8, ks));
  try {
    let first = true;
    let batchOk = true;
    for (;;) {
      const r = batchRaw(BpfCmd.MAP_LOOKUP_BATCH, fd, { inBatch: first ? 0n : inB.addr, outBatch: outB.addr, keys: keys.addr, values: vals.addr, count: chunk });
      if (r.ret < 0 && r.ret !== -Errno.ENOENT) {
        if (first && noBatch(r.ret)) batchOk = false;
        else throw new MapOpError(`lookup batch on ${name} failed: errno ${-r.ret}`, -r.ret);
        break;
      }
      if (r.count) {
        keyParts.push(Buffer.from(keys.buf.subarray(0, r.count * ks)));
        valParts.push(Buffer.from(vals.buf.subarray(0, r.count * VALUE_SIZE)));
        count += r.count;
      }
      if (r.ret === -Errno.ENOENT) break;
      outB.buf.copy(inB.buf, 0, 0, Math.max(8, ks));
      first = false;
    }
    if (!batchOk) {
      // element walk
      const cur = new CMem(ks);
      const next = new CMem(ks);
      const v = new CMem(VALUE_SIZE);
      try {
        let r = nextKeyRaw(fd, 0n, next.addr);
        while (r === 0) {
          if (lookupElemRaw(fd, next.addr, v.addr) === 0) {
            keyParts.push(Buffer.from(next.buf.subarray(0, ks)));
            valParts.push(Buffer.from(v.buf.subarray(0, VALUE_SIZE)));
            count++;
          }
          next.buf.copy(cur.buf, 0, 0, ks);
          r = nextKeyRaw(fd, cur.addr, next.addr);
        }
      } finally {
        cur.free();
        next.free();
        v.free();
      }
    }
  } finally {
    keys.free();
    vals.free();
    inB.free();
    outB.free();
  }
  return { keys: Buffer.concat(keyParts), vals: Buffer.concat(valParts), count };
}
