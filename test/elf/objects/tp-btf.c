// A BTF-typed raw tracepoint (tp_btf): counts TCP state changes by new state.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, __u64);
} states SEC(".maps");

SEC("tp_btf/inet_sock_set_state")
int on_state(unsigned long long *ctx)
{
	/* Arguments: const struct sock *sk, int oldstate, int newstate. */
	__u32 state = (__u32)ctx[2];
	__u64 *count = bpf_map_lookup_elem(&states, &state);

	if (count)
		__sync_fetch_and_add(count, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
