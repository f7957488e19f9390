// Externs resolved by the loader against the running kernel: .kconfig values,
// typed and untyped __ksym variables, and kfunc calls (conntrack lookup).
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct nf_conn {
	int unused;
};
struct bpf_ct_opts___local {
	int netns_id;
	int error;
	unsigned char l4proto;
	unsigned char dir;
	unsigned char reserved[2];
};
extern struct nf_conn *bpf_skb_ct_lookup(struct __sk_buff *, struct bpf_sock_tuple *, __u32, struct bpf_ct_opts___local *, __u32) __ksym;
extern void bpf_ct_release(struct nf_conn *) __ksym;

extern int LINUX_KERNEL_VERSION __kconfig;
extern _Bool CONFIG_BPF_SYSCALL __kconfig;
extern int CONFIG_NETBPF_TEST_NEVER_SET __kconfig __weak;
extern int CONFIG_HZ __kconfig;
extern char CONFIG_DEFAULT_HOSTNAME[16] __kconfig __weak;
extern const void _stext __ksym;
extern const int bpf_prog_active __ksym;

__u64 results[8];
char hostname[16];

SEC("tc")
int externs(struct __sk_buff *skb)
{
	struct bpf_sock_tuple tuple = {};
	struct bpf_ct_opts___local opts = { .netns_id = -1, .l4proto = 6 };
	struct nf_conn *ct = bpf_skb_ct_lookup(skb, &tuple, sizeof(tuple.ipv4), &opts, sizeof(opts));

	if (ct)
		bpf_ct_release(ct);
	results[0] = LINUX_KERNEL_VERSION;
	results[1] = CONFIG_BPF_SYSCALL;
	results[2] = CONFIG_NETBPF_TEST_NEVER_SET;
	results[3] = CONFIG_HZ;
	results[4] = (__u64)&_stext;
	results[6] = opts.error;
	__builtin_memcpy(hostname, CONFIG_DEFAULT_HOSTNAME, sizeof(hostname));
	return 0;
}

/* A typed ksym: the kernel checks the variable in kallsyms, which lists only
 * functions when CONFIG_KALLSYMS_ALL is off, so libbpf and netbpf may both be refused. */
SEC("tc")
int typed_ksym(struct __sk_buff *skb)
{
	results[5] = bpf_this_cpu_ptr(&bpf_prog_active) != 0;
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
