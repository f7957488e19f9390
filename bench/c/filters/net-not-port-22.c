// net 10.0.0.0/8 and not port 22
#include "filter.h"

static __always_inline int filter_match(void *data, void *end, __u32 len)
{
	__u8 *p = data;
	if (!IN_PACKET(p, ETH_HLEN, end)) return 0;
	__u16 type = load16(p + 12);
	if (type == ETHERTYPE_ARP || type == ETHERTYPE_REVARP) {
		if (!IN_PACKET(p, ETH_HLEN + 28, end)) return 0;
		return p[28] == 10 || p[38] == 10;
	}
	if (type != ETHERTYPE_IP) return 0;
	__u8 *ip = p + ETH_HLEN;
	if (!IN_PACKET(ip, 20, end)) return 0;
	if (ip[12] != 10 && ip[16] != 10) return 0;
	__u8 proto = ip[9];
	if (proto != 6 && proto != 17 && proto != 132) return 1;
	__u8 *l4 = ipv4_transport(ip, end, 4);
	if (!l4) return !ip_later_fragment(ip) ? 0 : 1;
	return load16(l4) != 22 && load16(l4 + 2) != 22;
}

#include "filter-programs.h"
