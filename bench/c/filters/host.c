// host 192.0.2.1
#include "filter.h"

static __always_inline int filter_match(void *data, void *end, __u32 len)
{
	__u8 *p = data;
	const __u32 host = 0xc0000201;
	if (!IN_PACKET(p, ETH_HLEN, end)) return 0;
	__u16 type = load16(p + 12);
	if (type == ETHERTYPE_IP) {
		if (!IN_PACKET(p, ETH_HLEN + 20, end)) return 0;
		return load32(p + 26) == host || load32(p + 30) == host;
	}
	if (type == ETHERTYPE_ARP || type == ETHERTYPE_REVARP) {
		if (!IN_PACKET(p, ETH_HLEN + 28, end)) return 0;
		return load32(p + 28) == host || load32(p + 38) == host;
	}
	return 0;
}

#include "filter-programs.h"
