// tcp[tcpflags] & (tcp-syn|tcp-ack) = tcp-syn
#include "filter.h"

static __always_inline int filter_match(void *data, void *end, __u32 len)
{
	__u8 *p = data;
	if (!IN_PACKET(p, ETH_HLEN + 20, end) || load16(p + 12) != ETHERTYPE_IP) return 0;
	__u8 *ip = p + ETH_HLEN;
	if (ip[9] != 6) return 0;
	__u8 *tcp = ipv4_transport(ip, end, 14);
	return tcp && (tcp[13] & 0x12) == 0x02;
}

#include "filter-programs.h"
