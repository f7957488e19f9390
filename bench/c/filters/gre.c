// ip proto 47 or ip6 proto 47
#include "filter.h"

static __always_inline int filter_match(void *data, void *end, __u32 len)
{
	__u8 *p = data;
	if (!IN_PACKET(p, ETH_HLEN + 20, end)) return 0;
	__u16 type = load16(p + 12);
	__u8 *ip = p + ETH_HLEN;
	if (type == ETHERTYPE_IP) return ip[9] == 47;
	if (type != ETHERTYPE_IPV6 || !IN_PACKET(ip, 41, end)) return 0;
	return ip[6] == 47 || (ip[6] == 44 && ip[40] == 47);
}

#include "filter-programs.h"
