/**
 * Capture file readers: classic pcap (both byte orders, microsecond and
 * nanosecond variants) and pcapng (several sections with their own byte order,
 * several interfaces with their own link type and timestamp resolution, EPB,
 * SPB and OPB packet blocks). Reads the file in chunks, so captures larger
 * than memory work.
 * @module
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { Err, Ok, type Result } from '../result.js';
import { NetfenceError } from '../errors.js';

/** One captured packet. */
export interface CapturedPacket {
  /** Capture time in seconds since the epoch (fractional). */
  ts: number;
  /** Link-layer type (LINKTYPE_*) of the interface it was captured on. */
  linkType: number;
  /** Captured bytes (may be shorter than {@link CapturedPacket.origLen}). A view valid until the next packet is read. */
  data: Uint8Array;
  /** Length of the packet on the wire. */
  origLen: number;
  /** pcapng interface id (0 for classic pcap). */
  interfaceId: number;
}

/** What kind of capture file it is. */
export type CaptureFormat = 'pcap' | 'pcap-ns' | 'pcapng';

/** The file could not be read as a capture. */
export class CaptureFormatError extends NetfenceError {
  constructor(message: string, options: { hint?: string; cause?: unknown } = {}) {
    super('CAPTURE_FORMAT', message, options);
  }
}

const CHUNK = 1 << 20;

/** Sequential reader over a file descriptor with a growable window. */
class ChunkReader {
  private buf: Buffer = Buffer.alloc(0);
  private pos = 0;
  private eof = false;
  /** Absolute file offset of buf[0]. */
  private base = 0;

  constructor(private readonly fd: number) {}

  /** Ensure n bytes are available at the cursor; returns false at end of file. */
  ensure(n: number): boolean {
    if (this.buf.length - this.pos >= n) return true;
    if (this.eof) return false;
    const keep = this.buf.length - this.pos;
    const size = Math.max(CHUNK, n + CHUNK);
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, this.pos);
    this.base += this.pos;
    let filled = keep;
    while (filled < size) {
      const got = readSync(this.fd, next, filled, size - filled, null);
      if (got === 0) {
        this.eof = true;
        break;
      }
      filled += got;
      if (filled >= n) break;
    }
    this.buf = next.subarray(0, filled);
    this.pos = 0;
    return filled >= n;
  }

  /** View of n bytes at the cursor (call ensure first). */
  peek(n: number): Buffer {
    return this.buf.subarray(this.pos, this.pos + n);
  }

  skip(n: number): void {
    this.pos += n;
  }

  offset(): number {
    return this.base + this.pos;
  }
}

const PCAP_MAGIC_US = 0xa1b2c3d4;
const PCAP_MAGIC_NS = 0xa1b23c4d;
const PCAPNG_SHB = 0x0a0d0d0a;
const BOM = 0x1a2b3c4d;

interface Iface {
  linkType: number;
  snapLen: number;
  /** Units per second of timestamps. */
  tsUnits: number;
  /** Seconds to add to every timestamp (if_tsoffset). */
  tsOffset: number;
}

/**
 * Read every packet of a pcap or pcapng file, calling `onPacket` for each.
 * Returns the file format, or an error when the file cannot be opened or is
 * not a capture. A truncated last record ends the read without error
 * (`truncated: true` in the result).
 */
export function readCapture(
  path: string,
  onPacket: (packet: CapturedPacket) => void,
): Result<{ format: CaptureFormat; packets: number; truncated: boolean; linkTypes: number[] }, CaptureFormatError> {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    return Err(new CaptureFormatError(`cannot open capture ${path}: ${(e as Error).message}`, { cause: e }));
  }
  try {
    const r = new ChunkReader(fd);
    if (!r.ensure(4)) return Err(new CaptureFormatError(`${path}: file too short to be a capture`));
    const head = r.peek(4);
    const magicBe = head.readUInt32BE(0);
    const magicLe = head.readUInt32LE(0);
    if (magicBe === PCAPNG_SHB) return Ok(readPcapng(path, r, onPacket));
    if (magicLe === PCAP_MAGIC_US || magicBe === PCAP_MAGIC_US || magicLe === PCAP_MAGIC_NS || magicBe === PCAP_MAGIC_NS) {
      return readPcap(path, r, onPacket);
    }
    return Err(
      new CaptureFormatError(`${path}: not a pcap or pcapng file (magic 0x${magicBe.toString(16).padStart(8, '0')})`, {
        hint: 'give a capture written by tcpdump, tshark/dumpcap or Wireshark',
      }),
    );
  } finally {
    closeSync(fd);
  }
}

function readPcap(
  path: string,
  r: ChunkReader,
  onPacket: (packet: CapturedPacket) => void,
): Result<{ format: CaptureFormat; packets: number; truncated: boolean; linkTypes: number[] }, CaptureFormatError> {
  if (!r.ensure(24)) return Err(new CaptureFormatError(`${path}: truncated pcap header`));
  const h = r.peek(24);
  const magicLe = h.readUInt32LE(0);
  const le = magicLe === PCAP_MAGIC_US || magicLe === PCAP_MAGIC_NS;
  const ns = magicLe === PCAP_MAGIC_NS || h.readUInt32BE(0) === PCAP_MAGIC_NS;
  const rd32 = le ? (b: Buffer, o: number) => b.readUInt32LE(o) : (b: Buffer, o: number) => b.readUInt32BE(o);
  // Upper bits of the link type field carry FCS information; the type is the low 16 bits.
  const linkType = rd32(h, 20) & 0xffff;
  const units = ns ? 1e9 : 1e6;
  r.skip(24);
  let packets = 0;
  let truncated = false;
  const pkt: CapturedPacket = { ts: 0, linkType, data: new Uint8Array(0), origLen: 0, interfaceId: 0 };
  for (;;) {
    if (!r.ensure(16)) {
      truncated = r.ensure(1);
      break;
    }
    const rh = r.peek(16);
    const sec = rd32(rh, 0);
    const frac = rd32(rh, 4);
    const incl = rd32(rh, 8);
    const orig = rd32(rh, 12);
    if (incl > 0x4000000) return Err(new CaptureFormatError(`${path}: corrupt record at offset ${r.offset()} (length ${incl})`));
    r.skip(16);
    if (!r.ensure(incl)) {
      truncated = true;
      break;
    }
    pkt.ts = sec + frac / units;
    pkt.data = r.peek(incl);
    pkt.origLen = orig;
    r.skip(incl);
    packets++;
    onPacket(pkt);
  }
  return Ok({ format: ns ? 'pcap-ns' : 'pcap', packets, truncated, linkTypes: [linkType] });
}

function readPcapng(
  path: string,
  r: ChunkReader,
  onPacket: (packet: CapturedPacket) => void,
): { format: CaptureFormat; packets: number; truncated: boolean; linkTypes: number[] } {
  let le = true;
  let ifaces: Iface[] = [];
  const linkTypes = new Set<number>();
  let packets = 0;
  let truncated = false;
  let lastTs = 0;
  const pkt: CapturedPacket = { ts: 0, linkType: 0, data: new Uint8Array(0), origLen: 0, interfaceId: 0 };
  const rd32 = (b: Buffer, o: number) => (le ? b.readUInt32LE(o) : b.readUInt32BE(o));
  const rd16 = (b: Buffer, o: number) => (le ? b.readUInt16LE(o) : b.readUInt16BE(o));
  void path;
  for (;;) {
    if (!r.ensure(12)) {
      truncated = r.ensure(1);
      break;
    }
    let hdr = r.peek(12);
    if (hdr.readUInt32BE(0) === PCAPNG_SHB) {
      // New section: byte order from its byte-order magic; interfaces reset.
      const bomLe = hdr.readUInt32LE(8);
      le = bomLe === BOM;
      ifaces = [];
    }
    const type = rd32(hdr, 0);
    const len = rd32(hdr, 4);
    if (len < 12 || len % 4 !== 0 || len > 0x4000000) {
      truncated = true;
      break;
    }
    if (!r.ensure(len)) {
      truncated = true;
      break;
    }
    const blk = r.peek(len);
    hdr = blk;
    const bodyEnd = len - 4;
    switch (type) {
      case 1: {
        // Interface Description Block
        const iface: Iface = { linkType: rd16(blk, 8), snapLen: rd32(blk, 12), tsUnits: 1e6, tsOffset: 0 };
        let o = 16;
        while (o + 4 <= bodyEnd) {
          const code = rd16(blk, o);
          const olen = rd16(blk, o + 2);
          if (code === 0) break;
          const v = o + 4;
          if (code === 9 && olen >= 1) {
            const res = blk[v]!;
            iface.tsUnits = res & 0x80 ? 2 ** (res & 0x7f) : 10 ** (res & 0x7f);
          } else if (code === 14 && olen >= 8) {
            const hi = rd32(blk, le ? v + 4 : v);
            const lo = rd32(blk, le ? v : v + 4);
            iface.tsOffset = hi * 4294967296 + lo;
          }
          o = v + ((olen + 3) & ~3);
        }
        ifaces.push(iface);
        linkTypes.add(iface.linkType);
        break;
      }
      case 6: // Enhanced Packet Block: 32-bit interface id
      case 2: {
        // Obsolete Packet Block: 16-bit interface id (then 16 bits of drops); same layout otherwise
        if (len < 32) break;
        const id = type === 6 ? rd32(blk, 8) : rd16(blk, 8);
        const iface = ifaces[id];
        if (!iface) break;
        const tsHigh = rd32(blk, 12);
        const tsLow = rd32(blk, 16);
        const cap = Math.min(rd32(blk, 20), bodyEnd - 28);
        pkt.ts = (tsHigh * 4294967296 + tsLow) / iface.tsUnits + iface.tsOffset;
        lastTs = pkt.ts;
        pkt.linkType = iface.linkType;
        pkt.interfaceId = id;
        pkt.origLen = rd32(blk, 24);
        pkt.data = blk.subarray(28, 28 + Math.max(0, cap));
        packets++;
        onPacket(pkt);
        break;
      }
      case 3: {
        // Simple Packet Block: interface 0, no timestamp
        const iface = ifaces[0];
        if (!iface || len < 16) break;
        const orig = rd32(blk, 8);
        let cap = Math.min(orig, bodyEnd - 12);
        if (iface.snapLen > 0) cap = Math.min(cap, iface.snapLen);
        pkt.ts = lastTs;
        pkt.linkType = iface.linkType;
        pkt.interfaceId = 0;
        pkt.origLen = orig;
        pkt.data = blk.subarray(12, 12 + Math.max(0, cap));
        packets++;
        onPacket(pkt);
        break;
      }
      default:
        // SHB (0x0a0d0d0a), NRB, ISB, DSB, custom blocks: nothing to do
        break;
    }
    r.skip(len);
  }
  return { format: 'pcapng', packets, truncated, linkTypes: [...linkTypes] };
}
