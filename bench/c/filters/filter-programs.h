/* Included last by each filter file: the tc and XDP entry points around filter_match. */
SEC("tc")
int filter_skb(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	return filter_match(data, data_end, skb->len) ? 0x40000 : 0;
}

SEC("xdp")
int filter_xdp(struct xdp_md *xdp)
{
	void *data = (void *)(long)xdp->data;
	void *data_end = (void *)(long)xdp->data_end;
	return filter_match(data, data_end, (__u32)(data_end - data)) ? XDP_PASS : XDP_DROP;
}

char LICENSE[] SEC("license") = "GPL";
