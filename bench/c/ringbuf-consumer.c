/*
 * C baseline for bench/ringbuf-throughput: consumes the same pinned ring
 * buffer with libbpf's ring_buffer__poll and checks the records as the
 * JavaScript consumer does (sequence numbers increase; gaps are losses).
 *
 * usage: ringbuf-consumer <ring pin> <counters pin> <events expected>
 * prints one JSON object: received, gaps, disorder, lost, elapsed_ns.
 */
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct tally {
	uint64_t received;
	uint64_t next;
	uint64_t gaps;
	uint64_t disorder;
	uint64_t first_ns;
	uint64_t first_cpu_ns;
};

static uint64_t now_ns(void);
static uint64_t cpu_ns(void);

static int on_record(void *context, void *data, size_t size)
{
	struct tally *tally = context;
	uint64_t sequence;

	if (!tally->first_ns) {
		tally->first_ns = now_ns();
		tally->first_cpu_ns = cpu_ns();
	}
	if (size < sizeof(sequence))
		return 0;
	memcpy(&sequence, data, sizeof(sequence));
	if (sequence < tally->next) {
		tally->disorder++;
	} else {
		tally->gaps += sequence - tally->next;
		tally->next = sequence + 1;
	}
	tally->received++;
	return 0;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

/* CPU time of this process: unlike wall time, not inflated when other processes share the CPUs. */
static uint64_t cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static uint64_t read_lost(int counters_fd)
{
	uint32_t key = 1;
	uint64_t value = 0;

	if (bpf_map_lookup_elem(counters_fd, &key, &value))
		return 0;
	return value;
}

int main(int argc, char **argv)
{
	struct tally tally = { 0 };
	struct ring_buffer *ring;
	uint64_t expected, last = 0, last_cpu = 0, lost = 0;
	int ring_fd, counters_fd;

	if (argc != 4) {
		fprintf(stderr, "usage: %s <ring pin> <counters pin> <events expected>\n", argv[0]);
		return 2;
	}
	expected = strtoull(argv[3], NULL, 10);
	ring_fd = bpf_obj_get(argv[1]);
	counters_fd = bpf_obj_get(argv[2]);
	if (ring_fd < 0 || counters_fd < 0) {
		fprintf(stderr, "bpf_obj_get: %s\n", strerror(errno));
		return 1;
	}
	ring = ring_buffer__new(ring_fd, on_record, &tally, NULL);
	if (!ring) {
		fprintf(stderr, "ring_buffer__new: %s\n", strerror(errno));
		return 1;
	}
	printf("ready\n");
	fflush(stdout);
	for (;;) {
		int count = ring_buffer__poll(ring, 100);

		if (count < 0 && count != -EINTR) {
			fprintf(stderr, "ring_buffer__poll: %d\n", count);
			return 1;
		}
		if (count > 0) {
			last = now_ns();
			last_cpu = cpu_ns();
		}
		if (tally.received >= expected)
			break;
		if (count == 0) {
			lost = read_lost(counters_fd);
			if (tally.received + lost >= expected)
				break;
		}
	}
	lost = read_lost(counters_fd);
	printf("{\"received\":%llu,\"gaps\":%llu,\"disorder\":%llu,\"lost\":%llu,\"elapsedNs\":%llu,\"cpuNs\":%llu}\n",
	       (unsigned long long)tally.received, (unsigned long long)tally.gaps,
	       (unsigned long long)tally.disorder, (unsigned long long)lost,
	       (unsigned long long)(last - tally.first_ns),
	       (unsigned long long)(last_cpu - tally.first_cpu_ns));
	ring_buffer__free(ring);
	return 0;
}
