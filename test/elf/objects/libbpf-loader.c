// The reference side of netbpf's loader tests: loads a BPF object with libbpf
// (Debian's libbpf-dev) the way a libbpf tool does, and reports what happened
// as one JSON object per line. Built by the tests with `clang libbpf-loader.c -lbpf`.
//
//   libbpf-loader probe OBJECT
//       loads each program of OBJECT on its own (the others' autoload off) and
//       prints {"program":…,"section":…,"type":…,"loaded":true|false,"errno":…}
//       (type 0: this libbpf does not know the section name)
//   libbpf-loader run OBJECT [NAME=VALUE…]
//       sets .rodata variables, loads everything, prints the maps' shapes,
//       attaches every program (bpf_program__attach), prints {"ready":true},
//       then prints every event of each perf event array and ring buffer as
//       {"map":…,"event":"<hex>"} until SIGTERM/SIGINT.
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

static volatile sig_atomic_t stopping;

static void on_signal(int signal_number)
{
	(void)signal_number;
	stopping = 1;
}

static int quiet(enum libbpf_print_level level, const char *format, va_list arguments)
{
	(void)level;
	(void)format;
	(void)arguments;
	return 0;
}

static void print_hex(const void *data, size_t size)
{
	const unsigned char *bytes = data;

	for (size_t i = 0; i < size; i++)
		printf("%02x", bytes[i]);
}

static int probe(const char *path)
{
	struct bpf_object *object = bpf_object__open_file(path, NULL);
	struct bpf_program *program;
	int count = 0;

	if (!object) {
		printf("{\"open\":false,\"errno\":%d}\n", errno);
		return 1;
	}
	bpf_object__for_each_program(program, object)
		count++;
	bpf_object__close(object);
	for (int index = 0; index < count; index++) {
		int current = 0;
		const char *name = NULL, *section = NULL;
		int error, type = 0;

		object = bpf_object__open_file(path, NULL);
		if (!object)
			return 1;
		bpf_object__for_each_program(program, object) {
			bpf_program__set_autoload(program, current == index);
			if (current == index) {
				name = bpf_program__name(program);
				section = bpf_program__section_name(program);
				type = bpf_program__type(program);
			}
			current++;
		}
		error = bpf_object__load(object);
		printf("{\"program\":\"%s\",\"section\":\"%s\",\"type\":%d,\"loaded\":%s,\"errno\":%d}\n", name, section, type, error ? "false" : "true", error ? -error : 0);
		bpf_object__close(object);
	}
	return 0;
}

static int set_variable(struct bpf_object *object, const char *setting)
{
	const char *equals = strchr(setting, '=');
	struct bpf_map *map = bpf_object__find_map_by_name(object, ".rodata");
	const struct btf *btf = bpf_object__btf(object);
	const struct btf_var_secinfo *variable;
	const struct btf_type *section;
	long long value;
	size_t size;
	char *data;
	int id;

	if (!equals || !map || !btf)
		return -EINVAL;
	id = btf__find_by_name_kind(btf, ".rodata", BTF_KIND_DATASEC);
	if (id < 0)
		return id;
	section = btf__type_by_id(btf, id);
	data = (char *)bpf_map__initial_value(map, &size);
	value = strtoll(equals + 1, NULL, 0);
	variable = btf_var_secinfos(section);
	for (int i = 0; i < btf_vlen(section); i++, variable++) {
		const char *name = btf__name_by_offset(btf, btf__type_by_id(btf, variable->type)->name_off);

		if (strlen(name) != (size_t)(equals - setting) || strncmp(name, setting, equals - setting) != 0)
			continue;
		if (variable->offset + variable->size > size)
			return -EINVAL;
		for (unsigned int byte = 0; byte < variable->size; byte++)
			data[variable->offset + byte] = (char)(value >> (8 * byte));
		return 0;
	}
	return -ENOENT;
}

struct stream {
	const char *map;
};

static void on_perf_event(void *context, int cpu, void *data, __u32 size)
{
	(void)cpu;
	printf("{\"map\":\"%s\",\"event\":\"", ((struct stream *)context)->map);
	print_hex(data, size);
	printf("\"}\n");
	fflush(stdout);
}

static int on_ring_event(void *context, void *data, size_t size)
{
	printf("{\"map\":\"%s\",\"event\":\"", ((struct stream *)context)->map);
	print_hex(data, size);
	printf("\"}\n");
	fflush(stdout);
	return 0;
}

#define MAX_STREAMS 8

static int run(const char *path, int settings, char **setting)
{
	struct bpf_object *object = bpf_object__open_file(path, NULL);
	struct perf_buffer *perf[MAX_STREAMS] = {};
	struct ring_buffer *ring = NULL;
	struct stream streams[MAX_STREAMS];
	struct bpf_program *program;
	struct bpf_map *map;
	int perf_count = 0, stream_count = 0, error;

	if (!object) {
		printf("{\"open\":false,\"errno\":%d}\n", errno);
		return 1;
	}
	for (int i = 0; i < settings; i++) {
		error = set_variable(object, setting[i]);
		if (error) {
			printf("{\"set\":\"%s\",\"errno\":%d}\n", setting[i], -error);
			return 1;
		}
	}
	error = bpf_object__load(object);
	if (error) {
		printf("{\"loaded\":false,\"errno\":%d}\n", -error);
		return 1;
	}
	bpf_object__for_each_map(map, object) {
		printf("{\"map\":\"%s\",\"type\":%d,\"keySize\":%u,\"valueSize\":%u,\"maxEntries\":%u}\n", bpf_map__name(map), bpf_map__type(map),
		       bpf_map__key_size(map), bpf_map__value_size(map), bpf_map__max_entries(map));
		if (stream_count == MAX_STREAMS)
			continue;
		if (bpf_map__type(map) == BPF_MAP_TYPE_PERF_EVENT_ARRAY) {
			streams[stream_count].map = bpf_map__name(map);
			perf[perf_count] = perf_buffer__new(bpf_map__fd(map), 8, on_perf_event, NULL, &streams[stream_count], NULL);
			if (!perf[perf_count])
				return 1;
			perf_count++;
			stream_count++;
		} else if (bpf_map__type(map) == BPF_MAP_TYPE_RINGBUF) {
			streams[stream_count].map = bpf_map__name(map);
			if (!ring)
				ring = ring_buffer__new(bpf_map__fd(map), on_ring_event, &streams[stream_count], NULL);
			else if (ring_buffer__add(ring, bpf_map__fd(map), on_ring_event, &streams[stream_count]))
				return 1;
			if (!ring)
				return 1;
			stream_count++;
		}
	}
	bpf_object__for_each_program(program, object) {
		if (!bpf_program__attach(program)) {
			printf("{\"attached\":false,\"program\":\"%s\",\"errno\":%d}\n", bpf_program__name(program), errno);
			return 1;
		}
	}
	printf("{\"ready\":true}\n");
	fflush(stdout);
	while (!stopping) {
		for (int i = 0; i < perf_count; i++)
			perf_buffer__poll(perf[i], 20);
		if (ring)
			ring_buffer__poll(ring, 20);
	}
	/* Drain what is left. */
	for (int i = 0; i < perf_count; i++)
		perf_buffer__consume(perf[i]);
	if (ring)
		ring_buffer__consume(ring);
	printf("{\"stopped\":true}\n");
	fflush(stdout);
	return 0;
}

int main(int argc, char **argv)
{
	if (!getenv("LOADER_DEBUG")) libbpf_set_print(quiet);
	libbpf_set_strict_mode(LIBBPF_STRICT_ALL);
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	if (argc >= 3 && strcmp(argv[1], "probe") == 0)
		return probe(argv[2]);
	if (argc >= 3 && strcmp(argv[1], "run") == 0)
		return run(argv[2], argc - 3, argv + 3);
	fprintf(stderr, "usage: %s probe|run OBJECT [NAME=VALUE…]\n", argv[0]);
	return 2;
}
