// greater 100
#include "filter.h"

static __always_inline int filter_match(void *data, void *end, __u32 len)
{
	return len >= 100;
}

#include "filter-programs.h"
