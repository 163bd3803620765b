/*
 * nfq-floor: the smallest useful NFQUEUE reader, a floor for bench/dpi.ts.
 *
 * It binds the queues given as arguments on one netlink socket and answers
 * every packet at once, inspecting nothing: NF_REPEAT with the benign flow
 * mark (argv: --mark VALUE), which DpiBlocker's steering rules copy to the
 * conntrack mark so that the rest of the flow bypasses the queue, exactly as
 * netfence's `connmarkVia: 'repeat'` does. With --pass-syn a TCP SYN gets a
 * plain NF_ACCEPT instead and the flow's next queued packet is judged, the
 * pattern of netfence's queue (SYN, then the first payload packet).
 *
 * So the figures it gives are what the kernel's queue mechanism costs on
 * this machine, with no userspace work worth the name. Raw netlink, no
 * library; blocking recv, one verdict message per packet. SIGTERM prints
 * the number of packets it answered on stderr.
 */
#include <sys/socket.h>
#include <linux/netlink.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_queue.h>
#include <endian.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int fd;
static unsigned seq = 1;
static volatile long answered = 0;

static void put_attr(char *buf, int *len, int type, const void *data, int dlen) {
  struct nlattr *a = (struct nlattr *)(buf + *len);
  a->nla_type = type;
  a->nla_len = NLA_HDRLEN + dlen;
  memcpy((char *)a + NLA_HDRLEN, data, dlen);
  *len += NLA_ALIGN(a->nla_len);
}

/* Netlink + nfgenmsg header of a queue message; returns the length so far. */
static int header(char *buf, int type, int queue) {
  memset(buf, 0, NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(struct nfgenmsg)));
  struct nlmsghdr *n = (struct nlmsghdr *)buf;
  n->nlmsg_type = (NFNL_SUBSYS_QUEUE << 8) | type;
  n->nlmsg_flags = NLM_F_REQUEST;
  n->nlmsg_seq = seq++;
  struct nfgenmsg *g = (struct nfgenmsg *)(buf + NLMSG_HDRLEN);
  g->nfgen_family = AF_UNSPEC;
  g->version = NFNETLINK_V0;
  g->res_id = htobe16(queue);
  return NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(struct nfgenmsg));
}

static void send_msg(char *buf, int len) {
  ((struct nlmsghdr *)buf)->nlmsg_len = len;
  while (send(fd, buf, len, 0) < 0) {
    if (errno == EINTR) continue;
    perror("nfq-floor: send");
    return;
  }
}

static void on_term(int sig) {
  (void)sig;
  char line[64];
  int n = snprintf(line, sizeof line, "nfq-floor: %ld packets\n", answered);
  if (write(2, line, n) < 0) _exit(1);
  _exit(0);
}

int main(int argc, char **argv) {
  unsigned mark = 0;
  int pass_syn = 0, queues = 0;
  static char buf[70000];
  char out[128];
  int len;

  signal(SIGTERM, on_term);
  signal(SIGINT, on_term);
  fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
  if (fd < 0) {
    perror("nfq-floor: socket");
    return 1;
  }
  int rcvbuf = 8 << 20;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf);
  struct sockaddr_nl sa = {.nl_family = AF_NETLINK};
  if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
    perror("nfq-floor: bind");
    return 1;
  }
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--mark") && i + 1 < argc) {
      mark = (unsigned)strtoul(argv[++i], NULL, 0);
      continue;
    }
    if (!strcmp(argv[i], "--pass-syn")) {
      pass_syn = 1;
      continue;
    }
    int q = atoi(argv[i]);
    struct nfqnl_msg_config_cmd cmd = {.command = NFQNL_CFG_CMD_BIND};
    len = header(buf, NFQNL_MSG_CONFIG, q);
    put_attr(buf, &len, NFQA_CFG_CMD, &cmd, sizeof cmd);
    send_msg(buf, len);
    struct nfqnl_msg_config_params params = {.copy_range = htobe32(0xffff), .copy_mode = NFQNL_COPY_PACKET};
    len = header(buf, NFQNL_MSG_CONFIG, q);
    put_attr(buf, &len, NFQA_CFG_PARAMS, &params, sizeof params);
    send_msg(buf, len);
    unsigned flags = htobe32(NFQA_CFG_F_FAIL_OPEN | NFQA_CFG_F_GSO);
    len = header(buf, NFQNL_MSG_CONFIG, q);
    put_attr(buf, &len, NFQA_CFG_FLAGS, &flags, sizeof flags);
    put_attr(buf, &len, NFQA_CFG_MASK, &flags, sizeof flags);
    send_msg(buf, len);
    queues++;
  }
  if (!queues || !mark) {
    fprintf(stderr, "usage: nfq-floor --mark VALUE [--pass-syn] QUEUE...\n");
    return 2;
  }
  fprintf(stderr, "nfq-floor: bound %d queue(s)\n", queues);
  for (;;) {
    int n = recv(fd, buf, sizeof buf, 0);
    if (n < 0) continue; /* EINTR, ENOBUFS: keep reading */
    for (struct nlmsghdr *m = (struct nlmsghdr *)buf; NLMSG_OK(m, (unsigned)n); m = NLMSG_NEXT(m, n)) {
      if ((m->nlmsg_type >> 8) != NFNL_SUBSYS_QUEUE || (m->nlmsg_type & 0xff) != NFQNL_MSG_PACKET) continue;
      struct nfgenmsg *g = NLMSG_DATA(m);
      int queue = be16toh(g->res_id);
      struct nlattr *a = (struct nlattr *)((char *)g + NLMSG_ALIGN(sizeof *g));
      int rem = (int)m->nlmsg_len - NLMSG_HDRLEN - NLMSG_ALIGN(sizeof *g);
      unsigned id = 0; /* network order, as the verdict wants it */
      int syn = 0;
      while (rem >= NLA_HDRLEN && a->nla_len >= NLA_HDRLEN && a->nla_len <= rem) {
        int type = a->nla_type & NLA_TYPE_MASK;
        unsigned char *d = (unsigned char *)a + NLA_HDRLEN;
        if (type == NFQA_PACKET_HDR) id = ((struct nfqnl_msg_packet_hdr *)d)->packet_id;
        if (type == NFQA_PAYLOAD && a->nla_len >= NLA_HDRLEN + 20) {
          /* IPv4 TCP: flags at byte 13 of the TCP header; SYN is bit 1 */
          int ihl = (d[0] & 15) * 4;
          if ((d[0] >> 4) == 4 && d[9] == 6 && a->nla_len >= NLA_HDRLEN + ihl + 14 && (d[ihl + 13] & 2)) syn = 1;
        }
        rem -= NLA_ALIGN(a->nla_len);
        a = (struct nlattr *)((char *)a + NLA_ALIGN(a->nla_len));
      }
      int plain = pass_syn && syn;
      int olen = header(out, NFQNL_MSG_VERDICT, queue);
      struct nfqnl_msg_verdict_hdr v = {.verdict = htobe32(plain ? NF_ACCEPT : NF_REPEAT), .id = id};
      put_attr(out, &olen, NFQA_VERDICT_HDR, &v, sizeof v);
      if (!plain) {
        unsigned m32 = htobe32(mark);
        put_attr(out, &olen, NFQA_MARK, &m32, sizeof m32);
      }
      send_msg(out, olen);
      answered++;
    }
  }
}
