/**
 * Entry point of a queue worker process. Started by {@link openQueues} (as
 * `node worker.js`, or `nsenter --net=/run/netns/NS -- node worker.js` so that
 * the socket lives in the namespace), it binds one queue, decides about each
 * packet with the handler module (or asks the main process), and talks to the
 * main process over the IPC channel only. When the channel closes (the main
 * process died), it unbinds and exits: a queue is never held by an orphan.
 * @module
 */
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import type { PacketHandlerFactory } from './handler.js';
import type { FromWorker, ToWorker, WorkerInit } from './ipc.js';
import { parseProcQueues, PROC_QUEUE_FILE } from './proc.js';
import type { QueuedPacket } from './protocol.js';
import { QueueReader, type Decision, type PacketHandler } from './reader.js';

function send(m: FromWorker): void {
  if (process.connected && process.send) process.send(m);
}

let reader: QueueReader | undefined;
let init: WorkerInit | undefined;
const relayWaiting = new Map<number, (d: Decision) => void>();
let statsTimer: NodeJS.Timeout | undefined;
let closing = false;
const handlerListeners: ((data: unknown) => void)[] = [];

function kernelStats(queue: number) {
  try {
    return parseProcQueues(readFileSync(PROC_QUEUE_FILE, 'utf8')).find((q) => q.queue === queue);
  } catch {
    return undefined;
  }
}

async function loadHandler(i: WorkerInit): Promise<PacketHandler> {
  if (i.relay) {
    return (p: QueuedPacket) =>
      new Promise<Decision>((resolve) => {
        relayWaiting.set(p.id, resolve);
        send({ type: 'packet', packet: p, relay: true });
      });
  }
  if (!i.handlerModule) return () => 'accept';
  const url = i.handlerModule.startsWith('file:') ? i.handlerModule : pathToFileURL(i.handlerModule).href;
  const mod = (await import(url)) as { createPacketHandler?: PacketHandlerFactory; default?: PacketHandlerFactory | { createPacketHandler?: PacketHandlerFactory } };
  const factory =
    mod.createPacketHandler ??
    (typeof mod.default === 'function' ? mod.default : (mod.default as { createPacketHandler?: PacketHandlerFactory } | undefined)?.createPacketHandler);
  if (typeof factory !== 'function') throw new Error(`${i.handlerModule} exports neither createPacketHandler nor a default factory`);
  const handler = await factory({
    queue: i.queue,
    options: i.handlerOptions,
    failOpen: i.failOpen,
    emit: (data) => send({ type: 'event', queue: i.queue, data }),
    onMessage: (listener) => void handlerListeners.push(listener),
  });
  if (!i.reportPackets) return handler;
  return (p) => {
    send({ type: 'packet', packet: p, relay: false });
    return handler(p);
  };
}

async function start(i: WorkerInit): Promise<void> {
  init = i;
  let handler: PacketHandler;
  try {
    handler = await loadHandler(i);
  } catch (e) {
    send({ type: 'error', queue: i.queue, message: `handler module: ${(e as Error)?.stack ?? String(e)}`, fatal: true });
    return shutdown(1);
  }
  const r = QueueReader.open(
    {
      queue: i.queue,
      failOpen: i.failOpen,
      copyRange: i.copyRange,
      maxLen: i.maxLen,
      gso: i.gso,
      conntrack: i.conntrack,
      rcvbuf: i.rcvbuf,
      batchVerdicts: i.batchVerdicts,
      marks: i.marks,
      connmarkVia: i.connmarkVia,
    },
    handler,
  );
  if (r.err) {
    send({ type: 'error', queue: i.queue, message: r.val.message, fatal: true });
    return shutdown(1);
  }
  reader = r.val;
  const s = reader.stats();
  send({ type: 'ready', queue: i.queue, pid: process.pid, connmarkVia: s.connmarkVia, conntrack: s.conntrack, rcvbuf: s.rcvbuf });
  if (i.statsIntervalMs) {
    statsTimer = setInterval(() => reader && send({ type: 'stats', req: 0, stats: reader.stats() }), i.statsIntervalMs);
    statsTimer.unref();
  }
  reader.run().catch((e) => send({ type: 'error', queue: i.queue, message: String((e as Error)?.stack ?? e), fatal: true }));
}

async function shutdown(code = 0): Promise<void> {
  if (closing) return;
  closing = true;
  if (statsTimer) clearInterval(statsTimer);
  const fallback: Decision = init?.failOpen === false ? 'drop' : 'accept';
  for (const resolve of relayWaiting.values()) resolve(fallback);
  relayWaiting.clear();
  if (reader) {
    await reader.stop();
    send({ type: 'closed', stats: reader.stats() });
  }
  // Let the IPC message leave before exiting.
  setTimeout(() => process.exit(code), 20);
}

process.on('message', (raw: unknown) => {
  const m = raw as ToWorker;
  switch (m.type) {
    case 'init':
      if (!init) void start(m.init);
      break;
    case 'verdict': {
      const resolve = relayWaiting.get(m.id);
      if (resolve) {
        relayWaiting.delete(m.id);
        let d = m.decision;
        // Buffers arrive as Uint8Array under structured clone.
        if (typeof d === 'object' && d.payload && !Buffer.isBuffer(d.payload)) d = { ...d, payload: Buffer.from(d.payload as Uint8Array) };
        resolve(d);
      }
      break;
    }
    case 'stats':
      if (reader && init) send({ type: 'stats', req: m.req, stats: reader.stats(), kernel: kernelStats(init.queue) });
      break;
    case 'handler':
      for (const l of handlerListeners) {
        try {
          l(m.data);
        } catch (e) {
          send({ type: 'error', queue: init?.queue ?? -1, message: `handler onMessage listener: ${String((e as Error)?.stack ?? e)}`, fatal: false });
        }
      }
      break;
    case 'close':
      void shutdown(0);
      break;
  }
});

process.on('disconnect', () => void shutdown(0));
for (const sig of ['SIGTERM', 'SIGINT'] as const) process.on(sig, () => void shutdown(0));

if (!process.send) {
  process.stderr.write('netfence nfqueue worker: must be started by openQueues() with an IPC channel\n');
  process.exit(2);
}
