// Modelled on libbpf-tools' conventions (written here): a BTF-typed raw
// tracepoint (tp_btf) following TCP sockets from their first state change to
// TCP_CLOSE, a hash map of sockets seen, a perf event array without a size
// whose key and value are given as BTF types, `const volatile` configuration, an event struct kept in
// BTF by an unused pointer, and CO-RE reads of struct sock and struct tcp_sock.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_tracing.h>

#define TCP_CLOSE_STATE 7

const volatile __u16 target_port = 0;

struct life_event {
	__u64 received;
	__u64 acked;
	__u32 first_pid;
	__u16 local_port;
	__u16 remote_port;
	__u32 changes;
	__u32 last_old_state;
};

struct birth {
	__u32 pid;
	__u32 changes;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct sock *);
	__type(value, struct birth);
} births SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__type(key, __u32);
	__type(value, __u32);
} life_events SEC(".maps");

const struct life_event *unused_life_event __attribute__((unused));

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(follow_socket, struct sock *sk, int oldstate, int newstate)
{
	struct birth first = {}, *known;
	struct life_event event = {};
	__u16 local = BPF_CORE_READ(sk, __sk_common.skc_num);
	__u16 remote = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));

	if (BPF_CORE_READ(sk, sk_protocol) != IPPROTO_TCP)
		return 0;
	if (target_port && local != target_port && remote != target_port)
		return 0;
	known = bpf_map_lookup_elem(&births, &sk);
	if (!known) {
		first.pid = bpf_get_current_pid_tgid() >> 32;
		bpf_map_update_elem(&births, &sk, &first, BPF_ANY);
		known = bpf_map_lookup_elem(&births, &sk);
		if (!known)
			return 0;
	}
	known->changes++;
	if (newstate != TCP_CLOSE_STATE)
		return 0;
	event.received = BPF_CORE_READ((struct tcp_sock *)sk, bytes_received);
	event.acked = BPF_CORE_READ((struct tcp_sock *)sk, bytes_acked);
	event.first_pid = known->pid;
	event.local_port = local;
	event.remote_port = remote;
	event.changes = known->changes;
	event.last_old_state = oldstate;
	bpf_map_delete_elem(&births, &sk);
	bpf_perf_event_output(ctx, &life_events, BPF_F_CURRENT_CPU, &event, sizeof(event));
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
