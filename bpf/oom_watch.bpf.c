// SPDX-License-Identifier: GPL-2.0
/* OOM watch: one record per task the kernel marks as an OOM victim (oom:mark_victim).
 *
 *   out_of_memory() / mem_cgroup_out_of_memory()    running in the TRIGGER's context (current)
 *     oom_kill_process -> __oom_kill_process -> mark_oom_victim(victim) -> tp mark_victim(victim, uid)
 *                                                                            |
 *                             MS_REC_OOM_VICTIM: victim facts + trigger  <---'
 *
 * The event fires also for a task already exiting (no SIGKILL sent) and once per member of a
 * memory.oom.group kill; user space groups them into episodes. Everything is read through CO-RE from
 * the victim's task_struct, so one object runs on kernels whose tracepoint carries only the pid.
 *
 * Two programs, one loaded: tp_btf (typed arguments) and, where it can't load or attach, raw_tp.
 * User space picks with bpf_program__set_autoload.
 */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "memcg.bpf.h"
#include "memsight/abi.h"

char LICENSE[] SEC("license") = "GPL";

#define PF_EXITING 0x00000004 /* include/linux/sched.h: the task is getting shut down */

/* Victim records to user space. OOM kills are rare: 256 KiB holds ~2000 records, more than a
 * memory.oom.group kill of a large cgroup writes at once. Sized at load. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 << 10);
} oom_events SEC(".maps");

/* MS_OOM_CNT_*: events seen and records lost, per CPU (no atomics), summed by user space. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MS_OOM_CNT_COUNT);
	__type(key, __u32);
	__type(value, __u64);
} oom_counters SEC(".maps");

/* Kernels before 6.2 kept rss counters as atomics in struct mm_rss_stat (the type vanished in 6.2,
 * when rss_stat became percpu_counter[NR_MM_COUNTERS]). The ___pre62 flavour matches that layout. */
struct mm_rss_stat___pre62 {
	atomic_long_t count[NR_MM_COUNTERS];
} __attribute__((preserve_access_index));

struct mm_struct___pre62 {
	struct mm_rss_stat___pre62 rss_stat;
} __attribute__((preserve_access_index));

static __always_inline void count(__u32 which)
{
	__u64 *c = bpf_map_lookup_elem(&oom_counters, &which);

	if (c)
		*c += 1;
}

/* A percpu_counter's shared count: per-CPU deltas not yet folded in are missing, as in the kernel's
 * get_mm_counter(). Transiently negative values read as 0. The index must be a literal: only then does
 * clang relocate the whole access (array stride, offset of .count), not just the array's start. */
#define RSS_PERCPU(mm, which)                                                  \
	({                                                                     \
		s64 __v = BPF_CORE_READ(mm, rss_stat[which].count);             \
		__v > 0 ? (__u64)__v : 0;                                      \
	})

#define RSS_ATOMIC(mm, which)                                                  \
	({                                                                     \
		long __v = BPF_CORE_READ((struct mm_struct___pre62 *)(mm),     \
					 rss_stat.count[which].counter);       \
		__v > 0 ? (__u64)__v : 0;                                      \
	})

/* rss by kind, total_vm and page tables of the victim's address space. */
static __always_inline void read_mm(struct task_struct *task, struct ms_oom_victim *r)
{
	struct mm_struct *mm = BPF_CORE_READ(task, mm);

	if (!mm) {
		r->flags |= MS_OOM_NO_MM | MS_OOM_NO_PGTABLES;
		return;
	}
	/* MM_* indices: unchanged since 4.5 (MM_SHMEMPAGES added). */
	if (bpf_core_type_exists(struct mm_rss_stat___pre62)) {
		r->rss_anon_pages = RSS_ATOMIC(mm, MM_ANONPAGES);
		r->rss_file_pages = RSS_ATOMIC(mm, MM_FILEPAGES);
		r->rss_shmem_pages = RSS_ATOMIC(mm, MM_SHMEMPAGES);
	} else {
		r->rss_anon_pages = RSS_PERCPU(mm, MM_ANONPAGES);
		r->rss_file_pages = RSS_PERCPU(mm, MM_FILEPAGES);
		r->rss_shmem_pages = RSS_PERCPU(mm, MM_SHMEMPAGES);
		r->flags |= MS_OOM_RSS_APPROX;
	}
	r->total_vm_pages = BPF_CORE_READ(mm, total_vm);
	if (bpf_core_field_exists(mm->pgtables_bytes))
		r->pgtables_bytes = BPF_CORE_READ(mm, pgtables_bytes.counter);
	else
		r->flags |= MS_OOM_NO_PGTABLES;
}

static __always_inline int on_victim(struct task_struct *victim)
{
	struct task_struct *current = (void *)bpf_get_current_task();
	__u64 id = bpf_get_current_pid_tgid();
	struct ms_oom_victim r = {};

	count(MS_OOM_CNT_SEEN);
	r.h.kind = MS_REC_OOM_VICTIM;
	r.h.size = sizeof(r);
	r.h.tgid = id >> 32;
	r.h.tid = (__u32)id;
	r.h.time_ns = bpf_ktime_get_ns();
	r.victim_tgid = BPF_CORE_READ(victim, tgid);
	r.victim_pid = BPF_CORE_READ(victim, pid);
	r.oom_score_adj = BPF_CORE_READ(victim, signal, oom_score_adj);
	if (BPF_CORE_READ(victim, flags) & PF_EXITING)
		r.flags |= MS_OOM_EXITING;
	r.memcg_id = memcg_id_of(victim);
	if (!r.memcg_id)
		r.flags |= MS_OOM_NO_MEMCG;
	r.trigger_memcg_id = memcg_id_of(current);
	read_mm(victim, &r);
	bpf_probe_read_kernel_str(r.comm, sizeof(r.comm), &victim->comm);
	bpf_get_current_comm(r.trigger_comm, sizeof(r.trigger_comm));
	/* Wake the reader at once: the cgroup must be read before the reaper empties it. */
	if (bpf_ringbuf_output(&oom_events, &r, sizeof(r), BPF_RB_FORCE_WAKEUP))
		count(MS_OOM_CNT_RINGBUF_FULL);
	return 0;
}

SEC("tp_btf/mark_victim")
int BPF_PROG(ms_oom_btf, struct task_struct *victim)
{
	return on_victim(victim);
}

/* Same arguments, untyped: for kernels where tp_btf is refused (no BTF for the tracepoint). */
SEC("raw_tp/mark_victim")
int BPF_PROG(ms_oom_raw, struct task_struct *victim)
{
	return on_victim(victim);
}
