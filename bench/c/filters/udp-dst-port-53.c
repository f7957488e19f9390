// udp and dst port 53
#include "filter.h"

static __always_inline int filter_match(void *data, void *end, __u32 len)
{
	__u8 *p = data;
	if (!IN_PACKET(p, ETH_HLEN + 20, end)) return 0;
	__u16 type = load16(p + 12);
	__u8 *ip = p + ETH_HLEN;
	if (type == ETHERTYPE_IPV6) {
		if (!IN_PACKET(ip, 44, end) || ip[6] != 17) return 0;
		return load16(ip + 42) == 53;
	}
	if (type != ETHERTYPE_IP || ip[9] != 17) return 0;
	__u8 *udp = ipv4_transport(ip, end, 4);
	return udp && load16(udp + 2) == 53;
}

#include "filter-programs.h"
