/*
 * Shared frame for the hand-written baselines of bench/filter-cost.ts: each
 * filter file defines `filter_match(data, data_end, len)` and includes this
 * header after it, which wraps it as a tc (sched_cls) program returning
 * 0x40000 / 0 and an XDP program returning XDP_PASS / XDP_DROP - the values
 * netbpf's generated programs return.
 */
#ifndef FILTER_H
#define FILTER_H

#include <linux/bpf.h>
#include <linux/types.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_HLEN 14
#define ETHERTYPE_IP 0x0800
#define ETHERTYPE_ARP 0x0806
#define ETHERTYPE_REVARP 0x8035
#define ETHERTYPE_IPV6 0x86dd

/* True when [p, p + n) lies inside the packet. */
#define IN_PACKET(p, n, end) ((void *)(p) + (n) <= (end))

static __always_inline __u16 load16(const void *p) { return bpf_ntohs(*(const __u16 *)p); }
static __always_inline __u32 load32(const void *p) { return bpf_ntohl(*(const __u32 *)p); }

/* IPv4 fragment offset non-zero: libpcap's ports and transport accessors skip such fragments. */
static __always_inline int ip_later_fragment(const __u8 *ip) { return (load16(ip + 6) & 0x1fff) != 0; }

#endif

/* IPv4 transport header (first fragment only), or 0. */
static __always_inline __u8 *ipv4_transport(__u8 *ip, void *end, __u32 need)
{
	if (ip_later_fragment(ip)) return 0;
	__u8 *l4 = ip + ((ip[0] & 0x0f) << 2);
	if (!IN_PACKET(l4, need, end)) return 0;
	return l4;
}
