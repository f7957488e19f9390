/*
 * Sender for bench/capture-throughput: sends a fixed number of UDP datagrams
 * as fast as one thread can (sendmmsg, 64 messages per call) and reports its
 * wall time and its own CPU time (CLOCK_PROCESS_CPUTIME_ID: nanosecond
 * resolution). On a veth pair the receiving side's softirq work (tc programs,
 * AF_PACKET taps, the UDP stack) runs in the sender's context, so a capture on
 * the receiving interface shows up in this CPU time.
 *
 * usage: udp-flood <IPv4 address> <port> <datagrams> <payload bytes>
 * prints one JSON object: sent, elapsed_ns, cpu_ns.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define BATCH 64

static uint64_t clock_ns(clockid_t clock)
{
	struct timespec now;
	clock_gettime(clock, &now);
	return (uint64_t)now.tv_sec * 1000000000ull + (uint64_t)now.tv_nsec;
}

int main(int argc, char **argv)
{
	if (argc != 5) {
		fprintf(stderr, "usage: %s <IPv4 address> <port> <datagrams> <payload bytes>\n", argv[0]);
		return 2;
	}
	struct sockaddr_in destination = { .sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[2])) };
	if (inet_pton(AF_INET, argv[1], &destination.sin_addr) != 1) {
		fprintf(stderr, "udp-flood: bad address %s\n", argv[1]);
		return 2;
	}
	long total = atol(argv[3]);
	size_t payload_size = (size_t)atol(argv[4]);
	if (total <= 0 || payload_size == 0 || payload_size > 1400) {
		fprintf(stderr, "udp-flood: bad count or payload size\n");
		return 2;
	}
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&destination, sizeof(destination)) != 0) {
		perror("udp-flood: socket");
		return 1;
	}
	char *payload = malloc(payload_size);
	memset(payload, 'a', payload_size);
	struct iovec vectors[BATCH];
	struct mmsghdr messages[BATCH];
	memset(messages, 0, sizeof(messages));
	for (int i = 0; i < BATCH; i++) {
		vectors[i].iov_base = payload;
		vectors[i].iov_len = payload_size;
		messages[i].msg_hdr.msg_iov = &vectors[i];
		messages[i].msg_hdr.msg_iovlen = 1;
	}
	uint64_t wall_start = clock_ns(CLOCK_MONOTONIC);
	uint64_t cpu_start = clock_ns(CLOCK_PROCESS_CPUTIME_ID);
	long sent = 0;
	while (sent < total) {
		unsigned int batch = total - sent < BATCH ? (unsigned int)(total - sent) : BATCH;
		int done = sendmmsg(fd, messages, batch, 0);
		if (done < 0) {
			/* ICMP port unreachable answers may surface as ECONNREFUSED on a connected socket: keep sending. */
			if (errno == ECONNREFUSED || errno == EINTR || errno == ENOBUFS || errno == EAGAIN) continue;
			perror("udp-flood: sendmmsg");
			return 1;
		}
		sent += done;
	}
	uint64_t cpu_ns = clock_ns(CLOCK_PROCESS_CPUTIME_ID) - cpu_start;
	uint64_t elapsed_ns = clock_ns(CLOCK_MONOTONIC) - wall_start;
	printf("{\"sent\":%ld,\"elapsed_ns\":%llu,\"cpu_ns\":%llu}\n", sent, (unsigned long long)elapsed_ns, (unsigned long long)cpu_ns);
	return 0;
}
