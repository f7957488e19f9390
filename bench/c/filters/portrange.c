// portrange 1000-2000
#include "filter.h"

static __always_inline int filter_match(void *data, void *end, __u32 len)
{
	__u8 *p = data;
	if (!IN_PACKET(p, ETH_HLEN + 20, end)) return 0;
	__u16 type = load16(p + 12);
	__u8 *ip = p + ETH_HLEN;
	__u8 *l4;
	__u8 proto;
	if (type == ETHERTYPE_IPV6) {
		if (!IN_PACKET(ip, 44, end)) return 0;
		proto = ip[6];
		l4 = ip + 40;
	} else if (type == ETHERTYPE_IP) {
		proto = ip[9];
		if (proto != 6 && proto != 17 && proto != 132) return 0;
		l4 = ipv4_transport(ip, end, 4);
		if (!l4) return 0;
	} else {
		return 0;
	}
	if (proto != 6 && proto != 17 && proto != 132) return 0;
	__u16 source = load16(l4), destination = load16(l4 + 2);
	return (source >= 1000 && source <= 2000) || (destination >= 1000 && destination <= 2000);
}

#include "filter-programs.h"
