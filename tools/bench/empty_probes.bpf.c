// SPDX-License-Identifier: GPL-2.0
/* The floor of exact tracing: programs that do nothing, attached where memsight attaches (malloc's entry,
 * malloc's return, free past its NULL test). What a pair costs under them is the kernel's price for the
 * traps alone; memsight's cost above it is its own work (stack walk, maps, ring buffer).
 * stack_ret is the floor plus one piece of that work: the user stack walk memsight's return program
 * makes (64 frame slots), into a per-CPU buffer, kept nowhere. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#define STACK_SLOTS 64 /* memsight's MS_MAX_FRAMES */

char LICENSE[] SEC("license") = "GPL";

/* One stack's frames per CPU: key 0, value STACK_SLOTS user addresses. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64[STACK_SLOTS]);
} frames SEC(".maps");

SEC("uprobe")
int empty_entry(void *ctx)
{
	return 0;
}

SEC("uretprobe")
int empty_ret(void *ctx)
{
	return 0;
}

SEC("uretprobe")
int stack_ret(void *ctx)
{
	__u32 zero = 0;
	__u64 *buf = bpf_map_lookup_elem(&frames, &zero);

	if (buf)
		bpf_get_stack(ctx, buf, STACK_SLOTS * 8, BPF_F_USER_STACK);
	return 0;
}
