/**
 * Offline classification: read a pcap/pcapng file, run the DPI engine over
 * every packet, and return the flow table.
 * @module
 */
import { z } from 'zod';
import { Err, Ok, type Result } from '../result.js';
import { fromZodIssues, type NetfenceError } from '../errors.js';
import { DpiEngine, type DpiEngineOptions } from './classifiers/engine.js';
import type { Flow } from './flow.js';
import { decodeFrame } from './packet.js';
import { readCapture, type CaptureFormat } from './pcap.js';
import type { Endpoint, Transport, VerdictKind } from './types.js';

/** One flow of an offline classification. */
export interface ClassifiedFlow {
  /** `tcp` or `udp`. */
  transport: Transport;
  /** IP version. */
  family: 4 | 6;
  /** Initiator endpoint. */
  client: Endpoint;
  /** Responder endpoint. */
  server: Endpoint;
  /** Final verdict. */
  verdict: VerdictKind;
  /** Why. */
  reason: string;
  /** Detection family (`handshake`, `dht`, `utp`, `cache`, ... or `ended` / `budget` / `settled` for benign flows). */
  detection: string | undefined;
  /** Classifier that decided. */
  classifier: string | undefined;
  /** Info-hash when seen. */
  infoHash: string | undefined;
  /** Client software when known. */
  clientSoftware: string | undefined;
  /** Packets (both directions). */
  packets: number;
  /** IP bytes (both directions). */
  bytes: number;
  /** Packets per direction [client→server, server→client]. */
  packetsByDirection: [number, number];
  /** IP bytes per direction. */
  bytesByDirection: [number, number];
  /** Packets carrying payload, per direction. */
  payloadPacketsByDirection: [number, number];
  /** Packet of the flow (1-based) at which the verdict was reached, for decided flows. */
  decidedAtPacket: number | undefined;
  /** First and last packet time (seconds). */
  firstTs: number;
  /** Last packet time (seconds). */
  lastTs: number;
}

/** Result of {@link classifyPcap}. */
export interface PcapClassification {
  /** The file read. */
  file: string;
  /** pcap, pcap-ns or pcapng. */
  format: CaptureFormat;
  /** Link types seen (interfaces). */
  linkTypes: number[];
  /** Packets in the file. */
  packets: number;
  /** Packets decoded to TCP or UDP and fed to the engine. */
  inspectedPackets: number;
  /** Packets that were not TCP/UDP over IP or could not be decoded (ARP, ICMP, non-first fragments, ...). */
  otherPackets: number;
  /** True when the file ended in the middle of a record. */
  truncated: boolean;
  /** Flows in order of first packet. */
  flows: ClassifiedFlow[];
  /** Wall time spent, milliseconds. */
  elapsedMs: number;
}

/** Options of {@link classifyPcap}: the engine's options. */
export type ClassifyPcapOptions = DpiEngineOptions;

const PathSchema = z.string().min(1, 'a capture file path is required').max(4096);

function toRecord(f: Flow): ClassifiedFlow {
  return {
    transport: f.transport,
    family: f.family,
    client: f.client,
    server: f.server,
    verdict: f.verdict.verdict,
    reason: f.verdict.reason,
    detection: f.verdict.detection,
    classifier: f.verdict.classifier,
    infoHash: f.verdict.infoHash,
    clientSoftware: f.verdict.client,
    packets: f.packets[0] + f.packets[1],
    bytes: f.bytes[0] + f.bytes[1],
    packetsByDirection: [f.packets[0], f.packets[1]],
    bytesByDirection: [f.bytes[0], f.bytes[1]],
    payloadPacketsByDirection: [f.payloadPackets[0], f.payloadPackets[1]],
    decidedAtPacket: f.decidedAtPacket,
    firstTs: f.firstTs,
    lastTs: f.lastTs,
  };
}

/**
 * Classify every flow of a pcap or pcapng capture.
 *
 * @example
 * ```ts
 * const r = await classifyPcap('capture.pcapng');
 * if (r.ok) for (const f of r.val.flows) if (f.verdict === 'bittorrent') console.log(f.client, f.server, f.reason);
 * ```
 */
export async function classifyPcap(path: string, options: ClassifyPcapOptions = {}): Promise<Result<PcapClassification, NetfenceError>> {
  return classifyPcapSync(path, options);
}

/** Synchronous form of {@link classifyPcap} (for benchmarks and tools). */
export function classifyPcapSync(path: string, options: ClassifyPcapOptions = {}): Result<PcapClassification, NetfenceError> {
  const parsed = PathSchema.safeParse(path);
  if (!parsed.success) return Err(fromZodIssues('capture path', parsed.error.issues));
  const started = performance.now();
  const ended: Flow[] = [];
  const userEnd = options.onFlowEnd;
  const engine = new DpiEngine({
    ...options,
    onFlowEnd: (flow, why) => {
      ended.push(flow);
      userEnd?.(flow, why);
    },
  });
  let inspected = 0;
  let other = 0;
  const read = readCapture(parsed.data, (pkt) => {
    const d = decodeFrame(pkt.linkType, pkt.data);
    if (!d || (d.protocol !== 6 && d.protocol !== 17)) {
      other++;
      return;
    }
    inspected++;
    engine.process(d, pkt.ts);
  });
  if (read.err) return read;
  engine.finish();
  const flows = ended.sort((a, b) => a.firstTs - b.firstTs).map(toRecord);
  return Ok({
    file: parsed.data,
    format: read.val.format,
    linkTypes: read.val.linkTypes,
    packets: read.val.packets,
    inspectedPackets: inspected,
    otherPackets: other,
    truncated: read.val.truncated,
    flows,
    elapsedMs: performance.now() - started,
  });
}
