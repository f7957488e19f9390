// icmp[icmptype] = icmp-echo
#include "filter.h"

static __always_inline int filter_match(void *data, void *end, __u32 len)
{
	__u8 *p = data;
	if (!IN_PACKET(p, ETH_HLEN + 20, end) || load16(p + 12) != ETHERTYPE_IP) return 0;
	__u8 *ip = p + ETH_HLEN;
	if (ip[9] != 1) return 0;
	__u8 *icmp = ipv4_transport(ip, end, 1);
	return icmp && icmp[0] == 8;
}

#include "filter-programs.h"
