/**
 * A queue reader: binds one NFQUEUE number on its own netlink socket, reads
 * packets without blocking the event loop (poll on the thread pool, then
 * non-blocking reads until the socket is empty), asks a handler for a
 * decision, and sends verdicts — consecutive equal plain verdicts as one
 * NFQNL_MSG_VERDICT_BATCH. Runs inside a worker process.
 * @module
 */
import { AF_INET, AF_INET6, EAGAIN, ENOBUFS, EOPNOTSUPP, NFQA_CFG_F, NLMSG_ERROR, NLMSG_OVERRUN } from './constants.js';
import { parseError, parseMessages, type NlMessage } from './netlink.js';
import { buildBatchVerdict, buildConfigCmd, buildConfigParams, buildVerdict, parsePacket, type QueuedPacket, type Verdict, type VerdictKind } from './protocol.js';
import { NetlinkError, NetlinkSocket } from './socket.js';
import { Err, Ok, type Result } from '../../result.js';
import { DEFAULT_FLOW_MARKS, type FlowMarks } from './marks.js';
import { planVerdicts, type Decision, type PacketHandler, type ReadyVerdict } from './verdicts.js';

export { DEFAULT_FLOW_MARKS, type FlowMarks };
export { planVerdicts, type Decision, type PacketHandler, type PlannedVerdict, type ReadyVerdict } from './verdicts.js';

/** How flow decisions reach the conntrack mark. */
export type ConnmarkVia = 'auto' | 'ct' | 'repeat';

/** Options of a {@link QueueReader}. */
export interface QueueReaderOptions {
  /** Queue number to bind. */
  queue: number;
  /** Bytes of each packet to copy to userspace (default 0xffff). */
  copyRange?: number | undefined;
  /** Kernel queue length (default 4096). */
  maxLen?: number | undefined;
  /** When the queue is full: accept (true) or drop (false) further packets. Also the verdict when the handler throws. */
  failOpen: boolean;
  /** Let GSO super-packets through unsegmented (default true: cheaper; payload may exceed the MTU). */
  gso?: boolean | undefined;
  /** Ask for conntrack attributes with each packet: true, false (default), or `auto` (when the kernel supports it). */
  conntrack?: boolean | 'auto' | undefined;
  /** Socket receive buffer in bytes (default 8 MiB). */
  rcvbuf?: number | undefined;
  /** Merge consecutive equal plain verdicts into one batch verdict (default true). */
  batchVerdicts?: boolean | undefined;
  /** Marks for `benign` / `bad` decisions (default {@link DEFAULT_FLOW_MARKS}). */
  marks?: FlowMarks | undefined;
  /**
   * How `benign`/`bad` set the conntrack mark: `ct` puts CTA_MARK in the verdict
   * (needs CONFIG_NETFILTER_NETLINK_GLUE_CT), `repeat` sets the packet mark and
   * returns NF_REPEAT so that the steering rules copy it to the conntrack mark,
   * `auto` (default) uses `ct` where the kernel has it. Both need the steering rules.
   */
  connmarkVia?: ConnmarkVia | undefined;
  /** Largest number of packets handled before yielding to the event loop (default 1024). */
  budget?: number | undefined;
}

/** Counters of one reader. */
export interface ReaderStats {
  queue: number;
  /** Packets received. */
  packets: number;
  /** Payload bytes received. */
  bytes: number;
  /** Verdicts by kind (per packet, batch verdicts included). */
  accepted: number;
  dropped: number;
  repeated: number;
  /** Flows marked benign / bad. */
  benign: number;
  bad: number;
  /** Verdict messages sent (single). */
  verdictMessages: number;
  /** Batch verdict messages sent. */
  batchMessages: number;
  /** Receive-buffer overruns (ENOBUFS): queued packets whose message was lost. */
  enobufs: number;
  /** Errors the kernel returned for verdicts (e.g. unknown packet id). */
  kernelErrors: number;
  /** Handler threw or rejected (the failOpen verdict was used). */
  handlerErrors: number;
  /** GSO super-packets seen. */
  gso: number;
  /** Packets longer than the copy range. */
  truncated: number;
  /** Packets that came back already carrying a benign/bad mark (steering rules missing). */
  repeatLoops: number;
  /** Decisions still pending (async handlers). */
  pending: number;
  /** Which mechanism sets conntrack marks. */
  connmarkVia: 'ct' | 'repeat';
  /** Packets arrive with their conntrack attributes (direction, id): asked for and supported by the kernel. */
  conntrack: boolean;
  /** Receive buffer size in bytes as reported by the kernel. */
  rcvbuf: number;
  /** Last error text from the kernel, if any. */
  lastError?: string;
}

const MAX_SEND = 60 * 1024;

/** Reads one NFQUEUE. Create with {@link QueueReader.open}, then `run()`; `stop()` ends it. */
export class QueueReader {
  private readonly sock: NetlinkSocket;
  private readonly opts: QueueReaderOptions;
  private readonly handler: PacketHandler;
  private readonly marks: FlowMarks;
  private readonly buf: Buffer;
  private readonly counters: ReaderStats;
  private ready: ReadyVerdict[] = [];
  private readonly pending = new Set<number>();
  private stopped = false;
  private flushScheduled = false;
  private running: Promise<void> | undefined;

  private constructor(sock: NetlinkSocket, opts: QueueReaderOptions, handler: PacketHandler, via: 'ct' | 'repeat', conntrack: boolean) {
    this.sock = sock;
    this.opts = opts;
    this.handler = handler;
    this.marks = opts.marks ?? DEFAULT_FLOW_MARKS;
    // Room for a 64 KiB GSO packet plus headers and attributes.
    this.buf = Buffer.alloc(Math.max(70_000, (opts.copyRange ?? 0xffff) + 4096));
    this.counters = {
      queue: opts.queue,
      packets: 0,
      bytes: 0,
      accepted: 0,
      dropped: 0,
      repeated: 0,
      benign: 0,
      bad: 0,
      verdictMessages: 0,
      batchMessages: 0,
      enobufs: 0,
      kernelErrors: 0,
      handlerErrors: 0,
      gso: 0,
      truncated: 0,
      repeatLoops: 0,
      pending: 0,
      connmarkVia: via,
      conntrack,
      rcvbuf: sock.rcvbuf,
    };
  }

  /**
   * Open a socket, bind the queue (EPERM/EBUSY when another process holds it),
   * set copy mode, queue length and flags. Synchronous; call it in the worker.
   */
  static open(opts: QueueReaderOptions, handler: PacketHandler): Result<QueueReader, NetlinkError> {
    const s = NetlinkSocket.open({ rcvbuf: opts.rcvbuf });
    if (s.err) return s;
    const sock = s.val;
    const fail = (e: NetlinkError): Result<QueueReader, NetlinkError> => {
      sock.close();
      return Err(e);
    };
    const q = opts.queue;
    // PF (un)bind is a no-op since Linux 3.8 but harmless; older kernels need it.
    for (const pf of [AF_INET, AF_INET6]) {
      const seq = sock.nextSeq();
      sock.request(buildConfigCmd(q, 'PF_UNBIND', pf, seq), seq, 'pf unbind');
      const seq2 = sock.nextSeq();
      sock.request(buildConfigCmd(q, 'PF_BIND', pf, seq2), seq2, 'pf bind');
    }
    let seq = sock.nextSeq();
    const bound = sock.request(buildConfigCmd(q, 'BIND', 0, seq), seq, `bind queue ${q}`);
    if (bound.err) {
      const e = bound.val;
      return fail(e.errno === 1 || e.errno === 16 ? new NetlinkError(`bind queue ${q}`, e.errno, 'another process holds this queue') : e);
    }
    seq = sock.nextSeq();
    const p = sock.request(buildConfigParams(q, { copyMode: 'PACKET', copyRange: opts.copyRange ?? 0xffff, maxLen: opts.maxLen ?? 4096 }, seq), seq, `configure queue ${q}`);
    if (p.err) return fail(p.val);
    const base = (opts.failOpen ? NFQA_CFG_F.FAIL_OPEN : 0) | (opts.gso === false ? 0 : NFQA_CFG_F.GSO);
    const mask = NFQA_CFG_F.FAIL_OPEN | NFQA_CFG_F.GSO | NFQA_CFG_F.CONNTRACK;
    // Probe conntrack glue: NFQA_CFG_F_CONNTRACK is refused with EOPNOTSUPP without it.
    const wantCt = opts.conntrack === true || opts.conntrack === 'auto' || (opts.connmarkVia ?? 'auto') !== 'repeat';
    let ctOk = false;
    if (wantCt) {
      seq = sock.nextSeq();
      const r = sock.request(buildConfigParams(q, { flags: base | NFQA_CFG_F.CONNTRACK, flagsMask: mask }, seq), seq, `queue ${q} flags`);
      if (r.ok) ctOk = true;
      else if (r.val.errno !== EOPNOTSUPP) return fail(r.val);
    }
    if (opts.conntrack === true && !ctOk) return fail(new NetlinkError(`queue ${q} conntrack`, EOPNOTSUPP, 'kernel lacks CONFIG_NETFILTER_NETLINK_GLUE_CT'));
    if (opts.connmarkVia === 'ct' && !ctOk) return fail(new NetlinkError(`queue ${q} ct verdicts`, EOPNOTSUPP, 'kernel lacks CONFIG_NETFILTER_NETLINK_GLUE_CT; use connmarkVia "repeat"'));
    const keepCt = ctOk && opts.conntrack !== false && opts.conntrack !== undefined;
    if (!keepCt) {
      seq = sock.nextSeq();
      const r = sock.request(buildConfigParams(q, { flags: base, flagsMask: mask }, seq), seq, `queue ${q} flags`);
      if (r.err) return fail(r.val);
    }
    const via: 'ct' | 'repeat' = opts.connmarkVia === 'repeat' ? 'repeat' : ctOk ? 'ct' : 'repeat';
    const reader = new QueueReader(sock, opts, handler, via, keepCt);
    for (const m of sock.drainBacklog()) reader.onMessage(m);
    return Ok(reader);
  }

  /** Counters (a copy). */
  stats(): ReaderStats {
    return { ...this.counters, pending: this.pending.size };
  }

  /** Read until {@link stop}. Resolves when stopped. */
  run(): Promise<void> {
    this.running ??= this.loop();
    return this.running;
  }

  private async loop(): Promise<void> {
    const budget = this.opts.budget ?? 1024;
    let busy = false;
    while (!this.stopped) {
      const n = this.drain(budget);
      this.flush();
      if (n >= budget) {
        busy = true;
        await new Promise<void>((r) => setImmediate(r));
        continue;
      }
      // Right after work, a short blocking poll saves a thread-pool round trip per burst.
      if (busy && this.sock.poll(1) > 0) continue;
      busy = false;
      const r = await this.sock.pollAsync(200);
      if (r > 0) busy = true;
    }
  }

  /** Read and handle up to `budget` packets without blocking; returns how many. */
  drain(budget: number): number {
    let handled = 0;
    while (handled < budget && !this.stopped) {
      const n = this.sock.recv(this.buf);
      if (n === -EAGAIN) break;
      if (n === -ENOBUFS) {
        this.counters.enobufs++;
        continue;
      }
      if (n < 0) {
        this.counters.lastError = `recv: errno ${-n}`;
        break;
      }
      for (const m of parseMessages(this.buf, n)) handled += this.onMessage(m);
    }
    return handled;
  }

  private onMessage(m: NlMessage): number {
    if (m.type === NLMSG_ERROR) {
      const e = parseError(m);
      if (e.errno !== 0) {
        this.counters.kernelErrors++;
        this.counters.lastError = `kernel: errno ${e.errno}${e.message ? ` ${e.message}` : ''}`;
      }
      return 0;
    }
    if (m.type === NLMSG_OVERRUN) {
      this.counters.enobufs++;
      return 0;
    }
    const p = parsePacket(m);
    if (!p) return 0;
    this.counters.packets++;
    this.counters.bytes += p.payload.length;
    if (p.gso) this.counters.gso++;
    if (p.length > p.payload.length) this.counters.truncated++;
    let d: Decision | Promise<Decision>;
    try {
      d = this.handler(p);
    } catch {
      this.counters.handlerErrors++;
      d = this.opts.failOpen ? 'accept' : 'drop';
    }
    if (d instanceof Promise) {
      this.pending.add(p.id);
      d.then(
        (x) => this.settle(p, x),
        () => {
          this.counters.handlerErrors++;
          this.settle(p, this.opts.failOpen ? 'accept' : 'drop');
        },
      );
    } else this.ready.push({ id: p.id, v: this.toVerdict(p, d) });
    return 1;
  }

  private settle(p: QueuedPacket, d: Decision): void {
    if (!this.pending.delete(p.id)) return;
    this.ready.push({ id: p.id, v: this.toVerdict(p, d) });
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      queueMicrotask(() => {
        this.flushScheduled = false;
        this.flush();
      });
    }
  }

  /** Turn a decision into a kernel verdict. */
  private toVerdict(p: QueuedPacket, d: Decision): Verdict {
    if (typeof d !== 'string') return d;
    if (d === 'accept' || d === 'drop') return { verdict: d };
    const m = this.marks;
    const value = d === 'benign' ? m.benign : m.bad;
    if (d === 'benign') this.counters.benign++;
    else this.counters.bad++;
    if ((p.mark & m.mask) !== 0) {
      // Already marked and queued again: the steering rules that act on the mark are missing.
      this.counters.repeatLoops++;
      return { verdict: d === 'benign' ? 'accept' : 'drop' };
    }
    const mark = ((p.mark & ~m.mask) | value) >>> 0;
    if (this.counters.connmarkVia === 'ct') {
      // Benign: accept at once. Bad: repeat so that the rules drop (or reset) it like its successors.
      return d === 'benign'
        ? { verdict: 'accept', connmark: { value, mask: m.mask } }
        : { verdict: 'repeat', mark, connmark: { value, mask: m.mask } };
    }
    return { verdict: 'repeat', mark };
  }

  private count(kind: VerdictKind, n: number): void {
    if (kind === 'accept') this.counters.accepted += n;
    else if (kind === 'drop') this.counters.dropped += n;
    else this.counters.repeated += n;
  }

  /** Send every verdict decided so far, batching runs of equal plain verdicts. */
  flush(): void {
    if (this.ready.length === 0) return;
    const list = this.ready;
    this.ready = [];
    let minPending = Infinity;
    for (const id of this.pending) if (id < minPending) minPending = id;
    const q = this.opts.queue;
    const out: Buffer[] = [];
    let size = 0;
    for (const m of planVerdicts(list, minPending, this.opts.batchVerdicts !== false)) {
      const b = m.kind === 'batch' ? buildBatchVerdict(q, m.id, m.verdict) : buildVerdict(q, m.id, m.verdict);
      if (m.kind === 'batch') this.counters.batchMessages++;
      else this.counters.verdictMessages++;
      this.count(m.verdict.verdict, m.count);
      if (size + b.length > MAX_SEND) {
        this.sendAll(out.splice(0));
        size = 0;
      }
      out.push(b);
      size += b.length;
    }
    if (out.length) this.sendAll(out);
  }

  private sendAll(parts: Buffer[]): void {
    const r = this.sock.send(parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts));
    if (r.err) this.counters.lastError = r.val.message;
  }

  /**
   * Stop reading: pending async decisions get the failOpen verdict, the queue
   * is unbound and the socket closed. Resolves when the loop has ended.
   */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const id of this.pending) this.ready.push({ id, v: { verdict: this.opts.failOpen ? 'accept' : 'drop' } });
    this.pending.clear();
    this.flush();
    await this.running?.catch(() => undefined);
    const seq = this.sock.nextSeq();
    this.sock.request(buildConfigCmd(this.opts.queue, 'UNBIND', 0, seq), seq, `unbind queue ${this.opts.queue}`, 500);
    this.sock.close();
  }
}
