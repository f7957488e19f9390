// ip6 and tcp
#include "filter.h"

static __always_inline int filter_match(void *data, void *end, __u32 len)
{
	__u8 *p = data;
	if (!IN_PACKET(p, ETH_HLEN + 40, end) || load16(p + 12) != ETHERTYPE_IPV6) return 0;
	__u8 next = p[ETH_HLEN + 6];
	if (next == 6) return 1;
	if (next != 44 || !IN_PACKET(p, ETH_HLEN + 41, end)) return 0;
	return p[ETH_HLEN + 40] == 6;
}

#include "filter-programs.h"
