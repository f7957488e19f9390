// Modelled on the conventions of bcc's libbpf-tools (written here, not copied):
// a tracepoint program for TCP state changes, `const volatile` filters set
// before load, a perf event array given only key and value sizes (its size
// is the number of CPUs), an event struct kept in BTF by an unused pointer,
// and CO-RE reads of struct sock from vmlinux.h.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>

#define AF_INET 2

const volatile short target_family = 0;
const volatile __u16 target_port = 0;

struct state_event {
	__u32 saddr;
	__u32 daddr;
	__u32 pid;
	__u16 sport;
	__u16 dport;
	__u16 family;
	__u16 bound_port;
	int oldstate;
	int newstate;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} events SEC(".maps");

const struct state_event *unused_state_event __attribute__((unused));

SEC("tracepoint/sock/inet_sock_set_state")
int handle_set_state(struct trace_event_raw_inet_sock_set_state *ctx)
{
	struct sock *sk = (struct sock *)ctx->skaddr;
	struct state_event event = {};

	if (ctx->protocol != IPPROTO_TCP)
		return 0;
	if (target_family && target_family != ctx->family)
		return 0;
	if (target_port && ctx->sport != target_port && ctx->dport != target_port)
		return 0;
	event.sport = ctx->sport;
	event.dport = ctx->dport;
	event.family = ctx->family;
	event.oldstate = ctx->oldstate;
	event.newstate = ctx->newstate;
	event.pid = bpf_get_current_pid_tgid() >> 32;
	if (ctx->family == AF_INET) {
		event.saddr = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);
		event.daddr = BPF_CORE_READ(sk, __sk_common.skc_daddr);
	}
	event.bound_port = BPF_CORE_READ(sk, __sk_common.skc_num);
	bpf_perf_event_output(ctx, &events, BPF_F_CURRENT_CPU, &event, sizeof(event));
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
