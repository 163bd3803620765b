/**
 * NFQUEUE in Node: the nfnetlink_queue protocol in TypeScript over a libc
 * netlink socket, queue readers in worker processes, kernel statistics.
 * @module
 */
export { openQueues, workerCommand, type OpenQueuesOptions, type QueueHandle, type QueueHandleEvents, type QueueStats } from './queues.js';
export { QueueReader, planVerdicts, type QueueReaderOptions, type ReaderStats, type Decision, type PacketHandler, type ConnmarkVia, type ReadyVerdict, type PlannedVerdict } from './reader.js';
export { DEFAULT_FLOW_MARKS, FlowMarksSchema, type FlowMarks } from './marks.js';
export type { PacketHandlerContext, PacketHandlerFactory } from './handler.js';
export {
  buildBatchVerdict,
  buildConfigCmd,
  buildConfigParams,
  buildPacketMessage,
  buildVerdict,
  parsePacket,
  queueMsgType,
  verdictCode,
  type PacketConntrack,
  type QueuedPacket,
  type QueueParams,
  type Verdict,
  type VerdictKind,
} from './protocol.js';
export { parseProcQueues, readProcQueues, PROC_QUEUE_FILE, type ProcQueueStats } from './proc.js';
export { NetlinkError, NetlinkSocket, type NetlinkSocketOptions } from './socket.js';
export { parseMessages, parseAttrs, parseError, type NlMessage, type NlError } from './netlink.js';
