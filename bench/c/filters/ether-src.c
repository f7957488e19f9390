// ether src 02:00:00:00:00:01
#include "filter.h"

static __always_inline int filter_match(void *data, void *end, __u32 len)
{
	__u8 *p = data;
	if (!IN_PACKET(p, 12, end)) return 0;
	return load32(p + 6) == 0x02000000 && load16(p + 10) == 0x0001;
}

#include "filter-programs.h"
