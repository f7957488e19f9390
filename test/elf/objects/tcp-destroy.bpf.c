// Modelled on libbpf-tools' conventions (written here): a tracepoint program
// for the end of TCP sockets sending to a ring buffer whose size (3 pages)
// the loader rounds up to a power-of-2 number of pages, a `.kconfig` extern,
// and an event struct kept in BTF by an unused pointer.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>

const volatile __u16 target_port = 0;
extern int LINUX_KERNEL_VERSION __kconfig;

struct destroy_event {
	__u32 kernel_version;
	__u16 sport;
	__u16 dport;
	__u16 family;
	__u8 state;
	__u8 pad;
	__u32 pid;
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 3 * 4096);
} destroyed SEC(".maps");

const struct destroy_event *unused_destroy_event __attribute__((unused));

SEC("tracepoint/tcp/tcp_destroy_sock")
int on_destroy(struct trace_event_raw_tcp_event_sk *ctx)
{
	struct sock *sk = (struct sock *)ctx->skaddr;
	struct destroy_event *event;

	if (target_port && ctx->sport != target_port && ctx->dport != target_port)
		return 0;
	event = bpf_ringbuf_reserve(&destroyed, sizeof(*event), 0);
	if (!event)
		return 0;
	event->kernel_version = LINUX_KERNEL_VERSION;
	event->sport = ctx->sport;
	event->dport = ctx->dport;
	event->family = ctx->family;
	event->state = BPF_CORE_READ(sk, __sk_common.skc_state);
	event->pad = 0;
	event->pid = bpf_get_current_pid_tgid() >> 32;
	bpf_ringbuf_submit(event, 0);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
