// SPDX-License-Identifier: GPL-2.0
/* Growth mode: which user stacks make anonymous memory resident, for every process or a few, without a
 * probe on any allocator. Cheap enough to leave on: it runs on page faults and a few syscalls, not on
 * every malloc.
 *
 *   page_fault_user / page_fault_kernel  -> remember the fault (this thread, its user ip and sp)
 *   rss_stat (MM_ANONPAGES, in that fault) -> stack + MS_REC_ALLOC fn PAGE_FAULT: a 4 KiB page, or a
 *                                            2 MiB huge page when the counter jumped by one
 *   sys_enter munmap, madvise(DONTNEED, FREE, REMOVE), brk down, mmap(MAP_FIXED)
 *                                         -> MS_REC_FREE of the range: its resident pages leave
 *   sys_exit mremap (success)             -> MS_REC_MOVE_BEGIN (old range) + MS_REC_MOVE_END (new range)
 *   sched_process_exec / exit / fork      -> reset; gone; a target's child becomes a target
 *
 * Why the counter and not the fault alone: a fault maps a 4 KiB page, a 2 MiB huge page (THP), a page
 * of a file, or nothing (a read of never-written memory maps the zero page). The kernel counts what
 * became resident in the process's MM_ANONPAGES counter (and says so through rss_stat) inside the fault,
 * in the faulting task: growth is a fault during which that counter moved. A huge page adds 512 pages
 * at once, which always reaches the shared count (the per-CPU batch is far smaller); a 4 KiB page
 * usually stays in the per-CPU part, so the shared count's jump tells the two apart.
 */
#include "alloc_trace.bpf.h"
#include "memcg.bpf.h"

char LICENSE[] SEC("license") = "GPL";

/* Set by user space before load. */
const volatile __u8 trace_all = 0;  /* every process (--all), else those in `targets` */
const volatile __u64 cgroup_id = 0; /* --cgroup: the processes of this memory cgroup (directory inode) */
const volatile __u32 cgroup_level = 0; /* and below it; its depth in the hierarchy (the root is 0) */
const volatile __u32 self_tgid = 0; /* memsight itself is never traced */
/* Sampling (--sample-bytes): a fault that made a 4 KiB page resident is recorded when a random u32 falls
 * below take_page, a 2 MiB one below take_huge (each p * 2^32, p = 1 - exp(-size / mean gap): a Poisson
 * process over bytes, as user space weighs it). ~0u: every fault. */
const volatile __u32 take_page = ~0u;
const volatile __u32 take_huge = ~0u;

#define PAGE_BYTES 4096ull
#define HUGE_BYTES (2ull << 20)
#define HUGE_JUMP 256 /* pages: a shared-count jump this large is a huge page (512), never a batch (<= 64) */
#define USER_TOP 0x00007ffffffff000ull /* x86-64 user addresses lie below */
#define MM_ANONPAGES 1                 /* enum in the kernel: FILEPAGES, ANONPAGES, SWAPENTS, SHMEMPAGES */

#define NR_MMAP 9
#define NR_MREMAP 25
#define NR_MUNMAP 11
#define NR_BRK 12
#define NR_MADVISE 28
#define MAP_FIXED 0x10
#define MADV_DONTNEED 4
#define MADV_FREE 8
#define MADV_REMOVE 9
#define MADV_DONTNEED_LOCKED 24

/* The fault a thread is in, until the counter says what it made resident. */
struct fault {
	__u64 address; /* the faulting user address */
	__u64 ip;      /* the thread's user ip and sp at the fault: a later counter change elsewhere */
	__u64 sp;      /* (an munmap's zap) does not match them */
	__s64 anon;    /* MM_ANONPAGES shared count at the fault, pages */
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct fault);
} faults SEC(".maps");

/* Whether `task` (the current task, or the one an exec/exit tracepoint names) is traced. */
static __always_inline int traced_task(struct task_struct *task)
{
	__u32 tgid = task->tgid; /* map keys must be on the BPF stack */

	if (tgid == self_tgid)
		return 0;
	if (trace_all)
		return 1;
	if (cgroup_id)
		return memcg_within(task, cgroup_id, cgroup_level);
	return bpf_map_lookup_elem(&targets, &tgid) != 0;
}

static __always_inline int traced(void)
{
	return traced_task(bpf_get_current_task_btf());
}

static __always_inline __s64 anon_count(struct mm_struct *mm)
{
	return BPF_CORE_READ(mm, rss_stat[MM_ANONPAGES].count);
}

static __always_inline void on_fault(__u64 address)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct pt_regs *regs;
	struct fault *f;

	if (address >= USER_TOP || !task->mm || !traced())
		return;
	f = bpf_task_storage_get(&faults, task, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!f) {
		count(MS_CNT_INFLIGHT_FULL);
		return;
	}
	regs = (struct pt_regs *)bpf_task_pt_regs(task);
	f->address = address;
	f->ip = BPF_CORE_READ(regs, ip);
	f->sp = BPF_CORE_READ(regs, sp);
	f->anon = anon_count(task->mm);
}

SEC("tp_btf/page_fault_user")
int BPF_PROG(ms_fault_user, unsigned long address, struct pt_regs *regs, unsigned long error_code)
{
	on_fault(address);
	return 0;
}

/* The kernel touching user memory for the process (read() into a fresh buffer): the stack is the
 * syscall's. */
SEC("tp_btf/page_fault_kernel")
int BPF_PROG(ms_fault_kernel, unsigned long address, struct pt_regs *regs, unsigned long error_code)
{
	on_fault(address);
	return 0;
}

/* The return address at the top of the stack, when there is one: a fault in a leaf function that keeps
 * no frame (libc's memset and memcpy, where most fresh memory is first written) or at a function's first
 * instruction leaves its caller out of a frame-pointer walk, as an allocator's entry does (platform.md).
 * A word counts as a return address when the instruction before it is a call: `call rel32` (e8, 5
 * bytes), `call *rel32(%rip)` (ff 15, 6 bytes: -fno-plt) or `call *%reg` (ff d0..d7, 2 bytes). A
 * local that happens to point just past a call is possible and rare; its cost is one extra frame. */
static __always_inline __u64 leaf_caller(__u64 sp)
{
	__u8 before[8];
	__u64 ret;

	if (bpf_probe_read_user(&ret, sizeof(ret), (void *)sp) || ret < 8 || ret >= USER_TOP)
		return 0;
	if (bpf_probe_read_user(before, sizeof(before), (void *)(ret - 8)))
		return 0;
	if (before[3] == 0xe8 || (before[2] == 0xff && before[3] == 0x15) ||
	    (before[6] == 0xff && (before[7] & 0xf8) == 0xd0))
		return ret;
	return 0;
}

SEC("tp_btf/rss_stat")
int BPF_PROG(ms_rss, struct mm_struct *mm, int member)
{
	struct task_struct *task;
	struct pt_regs *regs;
	struct ms_alloc r = {};
	struct fault *f;
	__s64 jump;
	__u64 caller;
	__u32 take;

	if (member != MM_ANONPAGES)
		return 0;
	task = bpf_get_current_task_btf();
	if (task->mm != mm)
		return 0; /* another process's counter (reclaim, an exiting mm) */
	f = bpf_task_storage_get(&faults, task, 0, 0);
	if (!f || !f->address)
		return 0;
	regs = (struct pt_regs *)bpf_task_pt_regs(task);
	if (f->ip != BPF_CORE_READ(regs, ip) || f->sp != BPF_CORE_READ(regs, sp))
		return 0;
	jump = anon_count(mm) - f->anon;
	r.size = jump >= HUGE_JUMP ? HUGE_BYTES : PAGE_BYTES;
	r.address = f->address & ~(r.size - 1);
	f->address = 0; /* one fault, one record */
	take = r.size == HUGE_BYTES ? take_huge : take_page;
	if (take != ~0u && bpf_get_prandom_u32() >= take)
		return 0; /* not in the sample: no stack, no record */
	caller = leaf_caller(f->sp);
	r.stack_id = caller ? send_stack(ctx, f->ip, caller) : send_stack(ctx, 0, 0);
	fill_header(&r.h, MS_REC_ALLOC, sizeof(r));
	r.fn = MS_FN_PAGE_FAULT;
	emit(&r, sizeof(r));
	return 0;
}

static __always_inline void released(__u16 kind, __u16 fn, __u64 address, __u64 size)
{
	struct ms_free r = {};

	if (!size)
		return;
	fill_header(&r.h, kind, sizeof(r));
	r.address = address;
	r.size = size;
	r.fn = fn;
	emit(&r, sizeof(r));
}

SEC("tp_btf/sys_enter")
int BPF_PROG(ms_sys_enter, struct pt_regs *regs, long id)
{
	__u64 a0, a1, a2, top;

	if (id != NR_MUNMAP && id != NR_MADVISE && id != NR_BRK && id != NR_MMAP)
		return 0;
	if (!traced())
		return 0;
	a0 = BPF_CORE_READ(regs, di);
	a1 = BPF_CORE_READ(regs, si);
	a2 = BPF_CORE_READ(regs, dx);
	switch (id) {
	case NR_MUNMAP:
		released(MS_REC_FREE, MS_FN_MUNMAP, a0, a1);
		break;
	case NR_MADVISE:
		if (a2 == MADV_DONTNEED || a2 == MADV_FREE || a2 == MADV_REMOVE || a2 == MADV_DONTNEED_LOCKED)
			released(MS_REC_FREE, MS_FN_MADVISE, a0, a1);
		break;
	case NR_BRK: {
		struct task_struct *task = bpf_get_current_task_btf();

		/* brk(0) asks; a lower end than now gives the pages above it back. */
		top = task->mm ? BPF_CORE_READ(task, mm, brk) : 0;
		a0 = (a0 + PAGE_BYTES - 1) & ~(PAGE_BYTES - 1);
		if (a0 && a0 < top)
			released(MS_REC_FREE, MS_FN_BRK, a0, top - a0);
		break;
	}
	case NR_MMAP:
		/* A fixed mapping replaces what was there (glibc shrinks arena heaps so). */
		if (BPF_CORE_READ(regs, r10) & MAP_FIXED)
			released(MS_REC_FREE, MS_FN_MUNMAP, a0, a1);
		break;
	}
	return 0;
}

/* mremap moves pages only when it succeeds: both sides are written at its exit (the argument registers
 * still hold what the call was given). */
SEC("tp_btf/sys_exit")
int BPF_PROG(ms_sys_exit, struct pt_regs *regs, long ret)
{
	struct ms_move_end r = {};

	if (BPF_CORE_READ(regs, orig_ax) != NR_MREMAP || (unsigned long)ret >= -4095ul || !traced())
		return 0;
	released(MS_REC_MOVE_BEGIN, MS_FN_PAGES_MOVE, BPF_CORE_READ(regs, di), BPF_CORE_READ(regs, si));
	fill_header(&r.h, MS_REC_MOVE_END, sizeof(r));
	r.address = ret;
	r.size = BPF_CORE_READ(regs, dx);
	r.fn = MS_FN_PAGES_MOVE;
	emit(&r, sizeof(r));
	return 0;
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(ms_growth_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	struct ms_header h;

	if (!traced_task(p))
		return 0;
	fill_header(&h, MS_REC_EXEC, sizeof(h));
	emit_now(&h, sizeof(h)); /* its maps must be read again while it runs */
	return 0;
}

/* A named target's children are targets too: what they make resident counts, from their first fault. */
SEC("tp_btf/sched_process_fork")
int BPF_PROG(ms_growth_fork, struct task_struct *parent, struct task_struct *child)
{
	__u32 tgid = child->tgid, parent_tgid = parent->tgid; /* map keys must be on the BPF stack */
	__u8 one = 1;

	if (trace_all || cgroup_id || tgid == parent_tgid || !bpf_map_lookup_elem(&targets, &parent_tgid))
		return 0;
	if (bpf_map_update_elem(&targets, &tgid, &one, BPF_ANY))
		count(MS_CNT_INFLIGHT_FULL);
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(ms_growth_exit, struct task_struct *p, bool group_dead)
{
	__u32 tgid = p->tgid;

	if (!group_dead || !traced_task(p))
		return 0;
	emit_exit(p);
	if (!trace_all && !cgroup_id)
		bpf_map_delete_elem(&targets, &tgid);
	return 0;
}
