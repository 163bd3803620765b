/**
 * Numbers of the netlink and nfnetlink_queue protocols, copied from the kernel
 * uapi headers (linux/netlink.h, linux/netfilter/nfnetlink.h,
 * linux/netfilter/nfnetlink_queue.h, linux/netfilter/nfnetlink_conntrack.h,
 * linux/netfilter.h) and from glibc's socket headers (x86_64/aarch64 values).
 * @module
 */

/** Socket-level constants. */
export const AF_UNSPEC = 0;
/** IPv4 protocol family (nfgenmsg family, PF bind). */
export const AF_INET = 2;
/** IPv6 protocol family. */
export const AF_INET6 = 10;
/** Netlink address family. */
export const AF_NETLINK = 16;
/** Raw socket type. */
export const SOCK_RAW = 3;
/** Close-on-exec socket flag. */
export const SOCK_CLOEXEC = 0o2000000;
/** Non-blocking socket flag. */
export const SOCK_NONBLOCK = 0o4000;
/** Netlink protocol of netfilter (nfnetlink). */
export const NETLINK_NETFILTER = 12;
/** setsockopt level: socket. */
export const SOL_SOCKET = 1;
/** setsockopt level: netlink. */
export const SOL_NETLINK = 270;
/** Receive buffer size (capped by net.core.rmem_max). */
export const SO_RCVBUF = 8;
/** Receive buffer size, ignoring rmem_max (needs CAP_NET_ADMIN). */
export const SO_RCVBUFFORCE = 33;
/** Do not report ENOBUFS on receive-buffer overruns. */
export const NETLINK_NO_ENOBUFS = 5;
/** Do not echo the request in error acks. */
export const NETLINK_CAP_ACK = 10;
/** Extended acks: error strings from the kernel. */
export const NETLINK_EXT_ACK = 11;
/** recv flag: do not block. */
export const MSG_DONTWAIT = 0x40;
/** poll(): data to read. */
export const POLLIN = 0x1;

/** errno values (Linux, all architectures netfence supports). */
export const EINTR = 4;
/** Try again (non-blocking socket empty). */
export const EAGAIN = 11;
/** Permission denied / queue owned by another socket. */
export const EPERM = 1;
/** No buffer space: the receive buffer overflowed and messages were lost. */
export const ENOBUFS = 105;
/** Operation not supported. */
export const EOPNOTSUPP = 95;

/** Netlink message header length. */
export const NLMSG_HDRLEN = 16;
/** Netlink attribute header length. */
export const NLA_HDRLEN = 4;
/** nfgenmsg length. */
export const NFGENMSG_LEN = 4;
/** Netlink control message types. */
export const NLMSG_NOOP = 1;
/** Error or ack. */
export const NLMSG_ERROR = 2;
/** End of a multipart message. */
export const NLMSG_DONE = 3;
/** Data lost. */
export const NLMSG_OVERRUN = 4;
/** Request flag. */
export const NLM_F_REQUEST = 0x01;
/** Ask for an ack. */
export const NLM_F_ACK = 0x04;
/** Error ack carries TLVs (extended ack). */
export const NLM_F_ACK_TLVS = 0x200;
/** Nested attribute flag. */
export const NLA_F_NESTED = 0x8000;
/** Network byte order attribute flag. */
export const NLA_F_NET_BYTEORDER = 0x4000;
/** Mask of the attribute type without flags. */
export const NLA_TYPE_MASK = ~(NLA_F_NESTED | NLA_F_NET_BYTEORDER) & 0xffff;
/** Extended ack attribute: message string. */
export const NLMSGERR_ATTR_MSG = 1;

/** nfnetlink version. */
export const NFNETLINK_V0 = 0;
/** nfnetlink subsystem id of the queue. */
export const NFNL_SUBSYS_QUEUE = 3;

/** nfnetlink_queue message types. */
export const NFQNL_MSG_PACKET = 0;
/** Verdict for one packet. */
export const NFQNL_MSG_VERDICT = 1;
/** Queue configuration. */
export const NFQNL_MSG_CONFIG = 2;
/** Verdict for every packet up to an id. */
export const NFQNL_MSG_VERDICT_BATCH = 3;

/** Packet attributes (enum nfqnl_attr_type). */
export const NFQA = {
  PACKET_HDR: 1,
  VERDICT_HDR: 2,
  MARK: 3,
  TIMESTAMP: 4,
  IFINDEX_INDEV: 5,
  IFINDEX_OUTDEV: 6,
  IFINDEX_PHYSINDEV: 7,
  IFINDEX_PHYSOUTDEV: 8,
  HWADDR: 9,
  PAYLOAD: 10,
  CT: 11,
  CT_INFO: 12,
  CAP_LEN: 13,
  SKB_INFO: 14,
  EXP: 15,
  UID: 16,
  GID: 17,
  SECCTX: 18,
  VLAN: 19,
  L2HDR: 20,
  PRIORITY: 21,
} as const;

/** Config attributes (enum nfqnl_attr_config). */
export const NFQA_CFG = {
  CMD: 1,
  PARAMS: 2,
  QUEUE_MAXLEN: 3,
  MASK: 4,
  FLAGS: 5,
} as const;

/** Config commands (enum nfqnl_msg_config_cmds). */
export const NFQNL_CFG_CMD = {
  NONE: 0,
  BIND: 1,
  UNBIND: 2,
  PF_BIND: 3,
  PF_UNBIND: 4,
} as const;

/** Copy modes (enum nfqnl_config_mode). */
export const NFQNL_COPY = {
  NONE: 0,
  META: 1,
  PACKET: 2,
} as const;

/** Queue flags (NFQA_CFG_FLAGS). */
export const NFQA_CFG_F = {
  FAIL_OPEN: 1 << 0,
  CONNTRACK: 1 << 1,
  GSO: 1 << 2,
  UID_GID: 1 << 3,
  SECCTX: 1 << 4,
} as const;

/** NFQA_SKB_INFO flags. */
export const NFQA_SKB = {
  CSUMNOTREADY: 1 << 0,
  GSO: 1 << 1,
  CSUM_NOTVERIFIED: 1 << 2,
} as const;

/** Conntrack attributes used inside NFQA_CT (enum ctattr_type). */
export const CTA = {
  STATUS: 3,
  MARK: 8,
  ID: 12,
  MARK_MASK: 21,
} as const;

/** Netfilter verdicts (linux/netfilter.h). */
export const NF_VERDICT = {
  DROP: 0,
  ACCEPT: 1,
  STOLEN: 2,
  QUEUE: 3,
  REPEAT: 4,
  STOP: 5,
} as const;

/** Netfilter hooks (enum nf_inet_hooks). */
export const NF_INET_HOOK = ['prerouting', 'input', 'forward', 'output', 'postrouting', 'ingress'] as const;
