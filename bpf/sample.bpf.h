/* Sampling by bytes (--sample-bytes N) for alloc_trace.bpf.c. The math and its tests: user/core/sampler.hpp.
 *
 *   entry of a call of s bytes ─┬─ s >= N, or the thread's gap runs out ─► taken: remembered as in exact mode
 *                               └─ otherwise ─► skipped: noted in the thread's sampler (no in-flight map
 *                                              update, no stack walk, no record)
 *   return of a taken birth  ─► its address joins `sampled`, then the record is written
 *   free(p)                  ─► one delete from `sampled`: p was taken ─► record; it was not ─► nothing
 *
 * Per thread (task storage): the bytes left until the next sample point, drawn from an exponential of mean
 * N, and the skipped call in flight: calls made from inside it (malloc under memalign, mmap under malloc)
 * are left to it, as in exact mode, and its return is still seen, so a skipped call that fails is still
 * recorded as a failure. Every heap block of the targets is either in `sampled` or was never recorded,
 * so frees of blocks that were not taken are never unmatched frees.
 */
#ifndef MEMSIGHT_SAMPLE_BPF_H
#define MEMSIGHT_SAMPLE_BPF_H

#include "alloc_trace.bpf.h"

/* Set by user space before load. */
const volatile __u64 sample_bytes = 0; /* mean gap between sample points, bytes; 0: every call is taken */
const volatile __u64 gap_quantiles[MS_GAP_STEPS] = {}; /* exponential quantiles of mean sample_bytes, bytes */

struct sampler {
	__s64 left;          /* bytes until the next sample point (valid once armed) */
	__u32 armed;         /* left has been drawn */
	__u32 _pad;
	struct call skipped; /* the skipped call in flight; time_ns 0: none */
};

/* key: the thread (task storage); value: its sampler, made at its first allocating call, freed with it. */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct sampler);
} samplers SEC(".maps");

/* key: a taken heap block that is alive; value: unused. Entries are allocated as blocks are taken (no
 * preallocation); max_entries is set at load. A full table is counted (MS_CNT_SAMPLED_FULL). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 1 << 20);
	__type(key, struct ms_sampled_key);
	__type(value, __u8);
} sampled SEC(".maps");

/* An exponential draw of mean sample_bytes: a random step of the quantile table, linear inside it. The
 * last step is the tail, itself exponential with the same mean: its start plus another draw (four
 * tails in a row have a chance of 2^-40; the loop stops there). */
static __always_inline __s64 draw_gap(void)
{
	__u64 gap = 0;
	int tail;

	for (tail = 0; tail < 4; tail++) {
		__u32 r = bpf_get_prandom_u32();
		__u32 step = r >> MS_GAP_FRACTION_BITS;
		__u64 within = r & ((1u << MS_GAP_FRACTION_BITS) - 1);

		if (step < MS_GAP_STEPS - 1)
			return gap + gap_quantiles[step] +
			       (((gap_quantiles[step + 1] - gap_quantiles[step]) * within) >> MS_GAP_FRACTION_BITS);
		gap += gap_quantiles[MS_GAP_STEPS - 1];
	}
	return gap;
}

static __always_inline struct sampler *thread_sampler(void)
{
	struct sampler *st = bpf_task_storage_get(&samplers, bpf_get_current_task_btf(), 0,
						  BPF_LOCAL_STORAGE_GET_F_CREATE);

	if (!st)
		count(MS_CNT_NO_SAMPLER);
	return st;
}

/* Whether a call of `size` bytes is taken. */
static __always_inline int take(struct sampler *st, __u64 size)
{
	if (size >= sample_bytes)
		return 1;
	if (!st->armed) {
		st->left = draw_gap();
		st->armed = 1;
	}
	st->left -= size;
	if (st->left > 0)
		return 0;
	st->left = draw_gap();
	return 1;
}

/* The thread's skipped call, if it is still in flight and `sp` is inside it (see live_call). */
static __always_inline struct call *skipped_call(struct sampler *st, __u64 sp)
{
	if (!st->skipped.time_ns)
		return 0;
	if (sp <= st->skipped.sp && bpf_ktime_get_ns() - st->skipped.time_ns < stale_ns)
		return &st->skipped;
	st->skipped.time_ns = 0;
	count(MS_CNT_INFLIGHT_STALE);
	return 0;
}

/* At the entry of an allocating call `c` (filled in), in sampling mode: 1 when it is taken and must be
 * remembered. A call that is not taken (nested in a skipped call, or not sampled) is noted, not
 * remembered. Anonymous mmap and mremap are always taken: ranges are traced exactly. A realloc whose old
 * block was taken is always remembered (its old block must leave), with drop_new when the new block is
 * not taken. */
static __always_inline int sample_entry(struct call *c)
{
	struct sampler *st = thread_sampler();

	if (!st)
		return 0;
	if (skipped_call(st, c->sp)) {
		count(MS_CNT_NESTED);
		return 0;
	}
	if (c->fn == MS_FN_MMAP || c->fn == MS_FN_MREMAP || take(st, c->size))
		return 1;
	if ((c->fn == MS_FN_REALLOC || c->fn == MS_FN_REALLOCARRAY) && c->old) {
		c->drop_new = 1;
		return 1;
	}
	st->skipped = *c;
	return 0;
}

static __always_inline struct ms_sampled_key block_key(__u64 address)
{
	struct ms_sampled_key k = {.tgid = bpf_get_current_pid_tgid() >> 32, .address = address};

	return k;
}

/* realloc's old block: itself when it is traced (always in exact mode), else 0 (its call is then a birth). */
static __always_inline __u64 traced_block(__u64 address)
{
	struct ms_sampled_key k = block_key(address);

	if (!sample_bytes || !address)
		return address;
	return bpf_map_lookup_elem(&sampled, &k) ? address : 0;
}

/* A taken block is born at `address`: 1 when it may be recorded (in exact mode, and for mappings, always). */
static __always_inline int keep_block(__u16 fn, __u64 address)
{
	struct ms_sampled_key k = block_key(address);
	__u8 one = 1;

	if (!sample_bytes || fn == MS_FN_MMAP || fn == MS_FN_MREMAP)
		return 1;
	if (bpf_map_update_elem(&sampled, &k, &one, BPF_ANY)) {
		count(MS_CNT_SAMPLED_FULL);
		return 0;
	}
	return 1;
}

/* A block leaves: 1 when it was taken (its release must be recorded). */
static __always_inline int forget_block(__u64 address)
{
	struct ms_sampled_key k = block_key(address);

	return bpf_map_delete_elem(&sampled, &k) == 0;
}

static long forget_if_of(struct bpf_map *map, struct ms_sampled_key *k, __u8 *unused, __u32 *tgid)
{
	if (k->tgid == *tgid)
		bpf_map_delete_elem(map, k); /* deleting the element being visited is allowed for hash maps */
	return 0;
}

/* A target replaced its image: its sampled blocks are gone with the old one. Done here, before the new
 * image runs, so none of its own blocks can be caught; it visits every entry, once per exec. */
static __always_inline void forget_process(__u32 tgid)
{
	if (sample_bytes)
		bpf_for_each_map_elem(&sampled, forget_if_of, &tgid, 0);
}

#endif /* MEMSIGHT_SAMPLE_BPF_H */
