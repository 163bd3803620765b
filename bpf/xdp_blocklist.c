// SPDX-License-Identifier: (GPL-2.0-only OR MIT)
/*
 * netfence XDP blocklist.
 *
 * Drops packets whose IPv4/IPv6 source address (and, when configured, the
 * destination address) is listed in one of the blocklist maps:
 *   - exact-match hash maps for single addresses (nf_v4_*, nf_v6_*),
 *   - longest-prefix-match tries for CIDR prefixes (nf_p4_*, nf_p6_*).
 * Every list exists twice (side A and side B). nf_cfg[0] names the active
 * side; userspace fills the inactive side and flips nf_cfg[0] with one map
 * update, so a whole list is replaced atomically (see docs/xdp.md).
 *
 * Each entry's value carries an optional expiry (CLOCK_BOOTTIME, ns; 0 =
 * never) checked here, and a hit counter. Expired entries never match and
 * are deleted by the program when met. Global per-CPU counters count passed
 * and dropped packets and bytes.
 *
 * Parsing: Ethernet, up to two VLAN tags (802.1Q / 802.1ad), IPv4 with its
 * IHL honoured (options skipped, bogus IHL passed to the stack untouched),
 * IPv6 fixed header (the addresses live there, so extension headers never
 * need to be walked). Anything else passes.
 *
 * The maps are normally created and pinned by netfence (with the size the
 * user asked for) and handed to the loader; the definitions below are the
 * shapes the program expects.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

/* Value of every blocklist entry (24 bytes). */
struct nf_val {
	__u64 expires_ns; /* CLOCK_BOOTTIME deadline; 0 = never expires */
	__u64 hits;       /* packets matched (atomic add) */
	__u32 plen;       /* prefix length (LPM entries; 32/128 for hash entries) */
	__u32 flags;      /* reserved, 0 */
};

struct nf_lpm4 {
	__u32 prefixlen;
	__u32 addr; /* network byte order */
};

struct nf_lpm6 {
	__u32 prefixlen;
	__u8 addr[16];
};

struct nf_addr6 {
	__u8 addr[16];
};

struct nf_counter {
	__u64 packets;
	__u64 bytes;
};

/* nf_cfg keys */
#define CFG_ACTIVE 0 /* 0 = side A, 1 = side B */
#define CFG_FLAGS 1  /* bit 0: match destination addresses too */
#define CFG_FLAG_MATCH_DST 1u

/* nf_stats keys */
#define ST_PASS 0
#define ST_DROP 1
#define ST_EXPIRED 2 /* an expired entry was met (and deleted) */
#define ST_MAX 4

#define HASH_MAP(NAME, KEY)                        \
	struct {                                   \
		__uint(type, BPF_MAP_TYPE_HASH);   \
		__type(key, KEY);                  \
		__type(value, struct nf_val);      \
		__uint(max_entries, 1024);         \
		__uint(map_flags, BPF_F_NO_PREALLOC); \
	} NAME SEC(".maps")

#define LPM_MAP(NAME, KEY)                         \
	struct {                                   \
		__uint(type, BPF_MAP_TYPE_LPM_TRIE); \
		__type(key, KEY);                  \
		__type(value, struct nf_val);      \
		__uint(max_entries, 1024);         \
		__uint(map_flags, BPF_F_NO_PREALLOC); \
	} NAME SEC(".maps")

HASH_MAP(nf_v4_a, __u32);
HASH_MAP(nf_v4_b, __u32);
HASH_MAP(nf_v6_a, struct nf_addr6);
HASH_MAP(nf_v6_b, struct nf_addr6);
LPM_MAP(nf_p4_a, struct nf_lpm4);
LPM_MAP(nf_p4_b, struct nf_lpm4);
LPM_MAP(nf_p6_a, struct nf_lpm6);
LPM_MAP(nf_p6_b, struct nf_lpm6);

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u32);
	__uint(max_entries, 4);
} nf_cfg SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct nf_counter);
	__uint(max_entries, ST_MAX);
} nf_stats SEC(".maps");

struct vlan_hdr {
	__be16 tci;
	__be16 proto;
};

static __always_inline void count(__u32 key, __u64 bytes)
{
	struct nf_counter *c = bpf_map_lookup_elem(&nf_stats, &key);
	if (c) {
		c->packets++;
		c->bytes += bytes;
	}
}

/* The clock is read only for an entry that has an expiry: most entries have
 * none, and a drop then costs no helper call for the time. */
static __always_inline int expired(struct nf_val *v)
{
	return v->expires_ns != 0 && v->expires_ns <= bpf_ktime_get_boot_ns();
}

/* Exact match in a hash map; deletes an expired entry. Returns 1 on a live match. */
static __always_inline int hash_hit(void *map, void *key)
{
	struct nf_val *v = bpf_map_lookup_elem(map, key);
	if (!v)
		return 0;
	if (expired(v)) {
		bpf_map_delete_elem(map, key);
		count(ST_EXPIRED, 0);
		return 0;
	}
	__sync_fetch_and_add(&v->hits, 1);
	return 1;
}

/*
 * Longest-prefix match; when the longest match has expired it is deleted and
 * the lookup repeated (a shorter live prefix may still cover the address).
 */
static __always_inline int lpm4_hit(void *map, __u32 addr)
{
	struct nf_lpm4 k = { .prefixlen = 32, .addr = addr };
	int i;

#pragma unroll
	for (i = 0; i < 4; i++) {
		struct nf_val *v;

		k.prefixlen = 32;
		v = bpf_map_lookup_elem(map, &k);
		if (!v)
			return 0;
		if (!expired(v)) {
			__sync_fetch_and_add(&v->hits, 1);
			return 1;
		}
		k.prefixlen = v->plen;
		bpf_map_delete_elem(map, &k);
		count(ST_EXPIRED, 0);
	}
	return 0;
}

static __always_inline int lpm6_hit(void *map, const struct in6_addr *addr)
{
	struct nf_lpm6 k = { .prefixlen = 128 };
	int i;

	__builtin_memcpy(k.addr, addr, 16);
#pragma unroll
	for (i = 0; i < 4; i++) {
		struct nf_val *v;

		k.prefixlen = 128;
		v = bpf_map_lookup_elem(map, &k);
		if (!v)
			return 0;
		if (!expired(v)) {
			__sync_fetch_and_add(&v->hits, 1);
			return 1;
		}
		k.prefixlen = v->plen;
		bpf_map_delete_elem(map, &k);
		count(ST_EXPIRED, 0);
	}
	return 0;
}

static __always_inline int listed4(__u32 side, __u32 addr)
{
	if (side == 0)
		return hash_hit(&nf_v4_a, &addr) || lpm4_hit(&nf_p4_a, addr);
	return hash_hit(&nf_v4_b, &addr) || lpm4_hit(&nf_p4_b, addr);
}

static __always_inline int listed6(__u32 side, const struct in6_addr *addr)
{
	struct nf_addr6 k;

	__builtin_memcpy(k.addr, addr, 16);
	if (side == 0)
		return hash_hit(&nf_v6_a, &k) || lpm6_hit(&nf_p6_a, addr);
	return hash_hit(&nf_v6_b, &k) || lpm6_hit(&nf_p6_b, addr);
}

static __always_inline __u32 cfg(__u32 key)
{
	__u32 *v = bpf_map_lookup_elem(&nf_cfg, &key);
	return v ? *v : 0;
}

SEC("xdp")
int nf_blocklist(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	__u64 len = (__u64)(end - data);
	struct ethhdr *eth = data;
	void *cur;
	__u16 proto;
	__u32 side, flags;
	int hit = 0;
	int i;

	if ((void *)(eth + 1) > end)
		goto pass;
	proto = eth->h_proto;
	cur = eth + 1;

#pragma unroll
	for (i = 0; i < 2; i++) {
		struct vlan_hdr *vh;

		if (proto != bpf_htons(ETH_P_8021Q) && proto != bpf_htons(ETH_P_8021AD))
			break;
		vh = cur;
		if ((void *)(vh + 1) > end)
			goto pass;
		proto = vh->proto;
		cur = vh + 1;
	}

	if (proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = cur;

		if ((void *)(ip + 1) > end)
			goto pass;
		/* Honour IHL: a header shorter than 20 bytes or longer than the
		 * packet is malformed; leave it to the stack. */
		if (ip->ihl < 5 || cur + ip->ihl * 4 > end)
			goto pass;
		side = cfg(CFG_ACTIVE) & 1;
		flags = cfg(CFG_FLAGS);
		hit = listed4(side, ip->saddr);
		if (!hit && (flags & CFG_FLAG_MATCH_DST))
			hit = listed4(side, ip->daddr);
	} else if (proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = cur;
		struct in6_addr a;

		if ((void *)(ip6 + 1) > end)
			goto pass;
		side = cfg(CFG_ACTIVE) & 1;
		flags = cfg(CFG_FLAGS);
		__builtin_memcpy(&a, &ip6->saddr, 16);
		hit = listed6(side, &a);
		if (!hit && (flags & CFG_FLAG_MATCH_DST)) {
			__builtin_memcpy(&a, &ip6->daddr, 16);
			hit = listed6(side, &a);
		}
	}

	if (hit) {
		count(ST_DROP, len);
		return XDP_DROP;
	}
pass:
	count(ST_PASS, len);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
