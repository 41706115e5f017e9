/* BPF-only helpers of the tracing programs (alloc_trace.bpf.c, growth_trace.bpf.c): maps, loss counters,
 * stack capture. */
#ifndef MEMSIGHT_ALLOC_TRACE_BPF_H
#define MEMSIGHT_ALLOC_TRACE_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "memsight/abi.h"
#include "unwind.bpf.h"

/* Set by user space before load. */
const volatile __u64 wake_bytes = 1 << 20; /* wake the consumer once this many bytes wait in the ring */
const volatile __u64 stale_ns = 10ull * 1000 * 1000 * 1000; /* an unanswered call older than this is stale */

/* One call between its entry and its return, per thread. */
struct call {
	__u64 size;     /* bytes requested */
	__u64 old;      /* realloc/mremap: the old block; posix_memalign: where the result is stored */
	__u64 entry_ip; /* the allocator's entry address: frames[0] of the stack */
	__u64 sp;       /* user stack pointer at entry: tells nested and stale calls apart */
	__u64 time_ns;  /* entry time (CLOCK_MONOTONIC); 0: no call */
	__u64 ret_addr; /* operator new: where it returns to in its caller, read at entry (see ms_ret) */
	__u16 fn;       /* MS_FN_* */
	__u16 drop_new;   /* --sample-bytes: realloc whose old block was taken and whose new one is not */
	__u16 own_return; /* 1: an allocator's own new, its block read at its call site (MS_COOKIE_OWN_RETURN) */
	__u16 _pad[1];
};

/* Records go to user space through this one queue; its size is set at load. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 16 << 20);
} events SEC(".maps");

/* Each thread's call in flight (time_ns 0: none). Task storage, not a hash by thread id: the entry finds
 * its slot and the return reads and clears it without hashing, allocating or freeing (~150 ns a call
 * less than a hash map on the churn bench); the slot goes with the thread. */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct call);
} inflight SEC(".maps");

/* The current thread's call in flight, or 0. */
static __always_inline struct call *call_in_flight(void)
{
	struct call *c = bpf_task_storage_get(&inflight, bpf_get_current_task_btf(), 0, 0);

	return c && c->time_ns ? c : 0;
}

/* The call answered (or dropped): its slot is free for the thread's next one. */
static __always_inline void call_done(struct call *c)
{
	c->time_ns = 0;
}

/* key: stack id; value: unused. The stacks user space already has. LRU: an evicted stack is sent again,
 * which user space deduplicates. Sized at load. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, __u8);
} seen_stacks SEC(".maps");

/* Process ids whose exec and fork matter to user space (the targets). key: tgid; value: unused. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u8);
} targets SEC(".maps");

/* A stack record is built here (it is too large for the BPF stack), then copied to the ring. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ms_stack);
} scratch SEC(".maps");

/* Loss counters, MS_CNT_*: per CPU, summed by user space. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MS_CNT_COUNT);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

static __always_inline void count(__u32 which)
{
	__u64 *c = bpf_map_lookup_elem(&counters, &which);

	if (c)
		*c += 1; /* per-CPU slot: no atomic needed */
}

/* Wake the consumer only when enough has piled up; otherwise it drains on its own timer. A wake-up
 * per record caps the ring at ~0.5 M records/s (platform.md). */
static __always_inline __u64 wake_flags(void)
{
	return bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= wake_bytes ? BPF_RB_FORCE_WAKEUP
									   : BPF_RB_NO_WAKEUP;
}

static __always_inline void fill_header(struct ms_header *h, __u16 kind, __u16 size)
{
	__u64 id = bpf_get_current_pid_tgid();

	h->kind = kind;
	h->size = size;
	h->tgid = id >> 32;
	h->tid = (__u32)id;
	h->_pad = 0;
	h->time_ns = bpf_ktime_get_ns();
}

/* Write a fixed-size record; a full ring is counted, never silent. */
static __always_inline void emit(void *rec, __u64 size)
{
	if (bpf_ringbuf_output(&events, rec, size, wake_flags()))
		count(MS_CNT_RINGBUF_FULL);
}

/* The same, waking the consumer at once: for rare records it must see without waiting for its timer. */
static __always_inline void emit_now(void *rec, __u64 size)
{
	if (bpf_ringbuf_output(&events, rec, size, BPF_RB_FORCE_WAKEUP))
		count(MS_CNT_RINGBUF_FULL);
}

/* A process's last thread is leaving (sched_process_exit with group_dead): MS_REC_EXIT with its name,
 * which /proc no longer has by the time user space reads the record. */
static __always_inline void emit_exit(struct task_struct *p)
{
	struct ms_exit r = {};

	fill_header(&r.h, MS_REC_EXIT, sizeof(r));
	bpf_probe_read_kernel_str(r.comm, sizeof(r.comm), p->comm);
	emit(&r, sizeof(r));
}

/* FNV-1a over 64-bit words: cheap, and ours, so its collisions are ours to detect (user space compares
 * frames when an id arrives twice). */
static __always_inline __u64 mix(__u64 h, __u64 word)
{
	return (h ^ word) * 0x100000001b3ull;
}

/* The walk of the current user stack by call-frame tables into s->frames; returns the frames, or 0
 * when pc's module has no table. frames[0] is `first` when not 0. The walk's own first frame is the user
 * pc: kept after `first` when it is another instruction (the allocator returned into its caller), dropped
 * when it is `first` itself (a fault's pc) or lies inside the allocator (`caller` given: operator new's
 * walk starts in new, after the malloc it called). `caller` stands in for frames[1] when the walk ends
 * before reaching it. */
static __always_inline __u32 walk_by_tables(struct walk_state *begun, struct ms_stack *s, __u64 first, __u64 caller,
					    __u32 *stopped)
{
	__u64 pc = begun->start_pc;
	/* The walk starts at frames[1] when pc is not inside the function `first` names: a return probe's pc
	 * is in the caller already (and an allocator's own new is read at its return site: there caller ==
	 * pc). Inside it (operator new's pc when the malloc it called returns), the walk starts at 0 and
	 * frames[0] becomes `first`. */
	__u32 base = (first && first != pc && (!caller || caller == pc)) ? 1 : 0, n;
	struct walk_state *st = unwind_user(begun, base);

	if (!st)
		return 0;
	__builtin_memcpy(s->frames, st->frames, sizeof(s->frames));
	*stopped = st->stopped;
	if (st->fp_steps) {
		s->flags |= MS_STACK_FRAME_POINTERS;
		count(MS_CNT_UNWIND_FP);
	}
	n = st->n + base;
	if (first)
		s->frames[0] = first;
	if (caller && n < 2) {
		s->frames[1] = caller;
		n = 2;
	}
	return n > MS_MAX_FRAMES ? MS_MAX_FRAMES : n;
}

/* The frame-pointer walk (bpf_get_stack), for stacks whose first module has no table. */
static __always_inline __u32 walk_by_frame_pointers(void *ctx, struct ms_stack *s, __u64 first, __u64 caller)
{
	long got = first ? bpf_get_stack(ctx, &s->frames[1], (MS_MAX_FRAMES - 1) * 8, BPF_F_USER_STACK)
			 : bpf_get_stack(ctx, &s->frames[0], MS_MAX_FRAMES * 8, BPF_F_USER_STACK);
	__u32 n;

	/* Without `first`, frames[0] is where the walk starts: the user instruction running (a fault's). */
	if (got <= 0) {
		if (got < 0)
			count(MS_CNT_STACK_FAILED);
		got = 0;
		s->frames[0] = 0;
	}
	n = (__u32)got / 8 + (first ? 1 : 0);
	if (n == 0)
		n = 1; /* an unknown instruction: frames[0] = 0, named as such */
	if (n > MS_MAX_FRAMES)
		n = MS_MAX_FRAMES;
	if (first)
		s->frames[0] = first;
	/* operator new's stack is walked from the return of the allocator it called: the first frame is
	 * inside new itself, and the caller's, which the walk skips, was read at new's entry. */
	if (caller && n > 1)
		s->frames[1] = caller;
	return n;
}

/* Send the current user stack once and return its id (0 when it could not be sent: the record then names
 * no stack and user space counts it). frames[0] is `first` (the allocator's entry) when not 0, and the
 * walk follows; `caller`, when not 0, is frames[1]: a frame a frame-pointer walk cannot see. The walk
 * uses the modules' call-frame tables (unwind.bpf.h) when the first module has one, else frame pointers. */
static __always_inline __u64 send_stack(void *ctx, __u64 first, __u64 caller)
{
	__u32 zero = 0;
	struct ms_stack *s = bpf_map_lookup_elem(&scratch, &zero);
	struct task_struct *task = bpf_get_current_task_btf();
	struct walk_state *st = unwind_begin();
	__u64 h = 0xcbf29ce484222325ull, size, known = st ? stack_memo_hit(st, first, caller) : 0;
	__u32 n = 0, i, stopped = 0;

	if (known)
		return known; /* sent before: the same start, the same words on the stack */
	if (!s)
		return 0;
	s->flags = 0;
	if (st)
		n = walk_by_tables(st, s, first, caller, &stopped);
	if (!n) {
		n = walk_by_frame_pointers(ctx, s, first, caller);
		s->flags = MS_STACK_FRAME_POINTERS;
		count(MS_CNT_UNWIND_FP);
	}
	if (stopped) {
		s->flags |= MS_STACK_TRUNCATED | MS_STACK_UNWIND_STOPPED;
		count(MS_CNT_UNWIND_STOPPED);
		count(MS_CNT_STACK_TRUNCATED);
	} else if (n == MS_MAX_FRAMES) {
		s->flags |= MS_STACK_TRUNCATED;
		count(MS_CNT_STACK_TRUNCATED);
	}
	/* The same addresses mean other code in another process or after exec: the id covers both. */
	h = mix(h, bpf_get_current_pid_tgid() >> 32);
	h = mix(h, (__u64)BPF_CORE_READ(task, mm)); /* read as a number: pointer arithmetic is refused */
	for (i = 0; i < MS_MAX_FRAMES && i < n; i++)
		h = mix(h, s->frames[i]);
	h |= 1; /* never 0, which means "no stack" */
	if (bpf_map_lookup_elem(&seen_stacks, &h)) {
		if (st && !(s->flags & MS_STACK_FRAME_POINTERS))
			stack_memo_keep(st, first, caller, h);
		return h;
	}
	barrier_var(n); /* keeps the bound below on the register the size is computed from */
	if (n > MS_MAX_FRAMES)
		return 0;
	size = MS_STACK_HEADER_BYTES + (__u64)n * 8;
	fill_header(&s->h, MS_REC_STACK, size);
	s->stack_id = h;
	s->nr_frames = n;
	s->_pad = 0;
	if (size > sizeof(*s))
		return 0;
	/* A new stack wakes the consumer at once: it must read the process's maps while the process is
	 * alive (a short-lived one may be gone by the next timer tick). New stacks are rare. */
	if (bpf_ringbuf_output(&events, s, size, BPF_RB_FORCE_WAKEUP)) {
		count(MS_CNT_RINGBUF_FULL);
		return 0;
	}
	bpf_map_update_elem(&seen_stacks, &h, &zero, BPF_ANY);
	if (st && !(s->flags & MS_STACK_FRAME_POINTERS))
		stack_memo_keep(st, first, caller, h);
	return h;
}

#endif /* MEMSIGHT_ALLOC_TRACE_BPF_H */
