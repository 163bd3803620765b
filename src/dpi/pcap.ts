/**
 * Capture file readers: classic pcap (both byte orders, microsecond and
 * nanosecond variants) and pcapng (several sections with their own byte order,
 * several interfaces with their own link type and timestamp resolution, EPB,
 * SPB and OPB packet blocks). Reads the file in chunks, so captures larger
 * than memory work.
 * @module
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
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
  /** The same bytes as a plain Uint8Array (its subarray() is cheaper than Buffer's) and a DataView. */
  private u8: Uint8Array = new Uint8Array(0);
  private dv: DataView = new DataView(new ArrayBuffer(0));
  private pos = 0;
  private eof = false;
  private base = 0;
  /** Bytes of the file not read yet (regular files), or -1 when unknown. */
  private left: number;

  constructor(
    private readonly fd: number,
    size: number,
  ) {
    this.left = size > 0 ? size : -1;
  }

  ensure(n: number): boolean {
    if (this.buf.length - this.pos >= n) return true;
    if (this.eof) return false;
    const keep = this.buf.length - this.pos;
    // A chunk of 1 MiB, or less when the rest of the file is smaller (most captures are).
    let size = Math.max(CHUNK, n + CHUNK);
    if (this.left >= 0) size = Math.max(n, Math.min(size, keep + this.left));
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
      if (this.left >= 0) this.left = Math.max(0, this.left - got);
      if (filled >= n) break;
    }
    this.buf = next.subarray(0, filled);
    this.u8 = new Uint8Array(next.buffer, next.byteOffset, filled);
    this.dv = new DataView(next.buffer, next.byteOffset, filled);
    this.pos = 0;
    return filled >= n;
  }

  /** `n` bytes at `off` from the read position (a view, valid until the next ensure()). */
  view(off: number, n: number): Uint8Array {
    return this.u8.subarray(this.pos + off, this.pos + off + n);
  }

  u32(off: number, le: boolean): number {
    return this.dv.getUint32(this.pos + off, le);
  }

  u16(off: number, le: boolean): number {
    return this.dv.getUint16(this.pos + off, le);
  }

  u8at(off: number): number {
    return this.u8[this.pos + off]!;
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
    let size = -1;
    try {
      const st = fstatSync(fd);
      if (st.isFile()) size = st.size;
    } catch {
      /* size unknown: read in 1 MiB chunks */
    }
    const r = new ChunkReader(fd, size);
    if (!r.ensure(4)) return Err(new CaptureFormatError(`${path}: file too short to be a capture`));
    const magicBe = r.u32(0, false);
    const magicLe = r.u32(0, true);
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
  const magicLe = r.u32(0, true);
  const le = magicLe === PCAP_MAGIC_US || magicLe === PCAP_MAGIC_NS;
  const ns = magicLe === PCAP_MAGIC_NS || r.u32(0, false) === PCAP_MAGIC_NS;
  // Upper bits of the link type field carry FCS information; the type is the low 16 bits.
  const linkType = r.u32(20, le) & 0xffff;
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
    const sec = r.u32(0, le);
    const frac = r.u32(4, le);
    const incl = r.u32(8, le);
    const orig = r.u32(12, le);
    if (incl > 0x4000000) return Err(new CaptureFormatError(`${path}: corrupt record at offset ${r.offset()} (length ${incl})`));
    r.skip(16);
    if (!r.ensure(incl)) {
      truncated = true;
      break;
    }
    pkt.ts = sec + frac / units;
    pkt.data = r.view(0, incl);
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
  // Reads at offsets within the current block (the reader's position is the block's start).
  const rd32 = (o: number): number => r.u32(o, le);
  const rd16 = (o: number): number => r.u16(o, le);
  void path;
  for (;;) {
    if (!r.ensure(12)) {
      truncated = r.ensure(1);
      break;
    }
    if (r.u32(0, false) === PCAPNG_SHB) {
      // New section: byte order from its byte-order magic; interfaces reset.
      const bomLe = r.u32(8, true);
      le = bomLe === BOM;
      ifaces = [];
    }
    const type = rd32(0);
    const len = rd32(4);
    if (len < 12 || len % 4 !== 0 || len > 0x4000000) {
      truncated = true;
      break;
    }
    if (!r.ensure(len)) {
      truncated = true;
      break;
    }
    const bodyEnd = len - 4;
    switch (type) {
      case 1: {
        // Interface Description Block
        const iface: Iface = { linkType: rd16(8), snapLen: rd32(12), tsUnits: 1e6, tsOffset: 0 };
        let o = 16;
        while (o + 4 <= bodyEnd) {
          const code = rd16(o);
          const olen = rd16(o + 2);
          if (code === 0) break;
          const v = o + 4;
          if (code === 9 && olen >= 1) {
            const res = r.u8at(v);
            iface.tsUnits = res & 0x80 ? 2 ** (res & 0x7f) : 10 ** (res & 0x7f);
          } else if (code === 14 && olen >= 8) {
            const hi = rd32(le ? v + 4 : v);
            const lo = rd32(le ? v : v + 4);
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
        const id = type === 6 ? rd32(8) : rd16(8);
        const iface = ifaces[id];
        if (!iface) break;
        const tsHigh = rd32(12);
        const tsLow = rd32(16);
        const cap = Math.min(rd32(20), bodyEnd - 28);
        pkt.ts = (tsHigh * 4294967296 + tsLow) / iface.tsUnits + iface.tsOffset;
        lastTs = pkt.ts;
        pkt.linkType = iface.linkType;
        pkt.interfaceId = id;
        pkt.origLen = rd32(24);
        pkt.data = r.view(28, Math.max(0, cap));
        packets++;
        onPacket(pkt);
        break;
      }
      case 3: {
        // Simple Packet Block: interface 0, no timestamp
        const iface = ifaces[0];
        if (!iface || len < 16) break;
        const orig = rd32(8);
        let cap = Math.min(orig, bodyEnd - 12);
        if (iface.snapLen > 0) cap = Math.min(cap, iface.snapLen);
        pkt.ts = lastTs;
        pkt.linkType = iface.linkType;
        pkt.interfaceId = 0;
        pkt.origLen = orig;
        pkt.data = r.view(12, Math.max(0, cap));
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
