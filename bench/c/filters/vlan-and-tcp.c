// vlan and tcp
#include "filter.h"

static __always_inline int filter_match(void *data, void *end, __u32 len)
{
	__u8 *p = data;
	if (!IN_PACKET(p, 18, end)) return 0;
	__u16 tpid = load16(p + 12);
	if (tpid != 0x8100 && tpid != 0x88a8 && tpid != 0x9100) return 0;
	__u16 type = load16(p + 16);
	__u8 *ip = p + 18;
	if (type == ETHERTYPE_IP) {
		if (!IN_PACKET(ip, 10, end)) return 0;
		return ip[9] == 6;
	}
	if (type != ETHERTYPE_IPV6 || !IN_PACKET(ip, 40, end)) return 0;
	if (ip[6] == 6) return 1;
	if (ip[6] != 44 || !IN_PACKET(ip, 41, end)) return 0;
	return ip[40] == 6;
}

#include "filter-programs.h"
