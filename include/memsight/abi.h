/* memsight ABI: the records BPF programs write to the ring buffer and C++ decodes.
 *
 * One definition for both compilers. Fixed-width fields only (no bool, long, enum or bitfield in a record),
 * explicit padding, sizes pinned by static asserts on both sides. Every record starts with ms_header, whose
 * `kind` says which record follows and whose `size` says how many bytes it spans (the decoder checks it
 * before it reads a field).
 *
 * Ordering: the ring buffer is a single queue; records are consumed in the order they were reserved.
 * Releases (free, munmap, the old block of realloc/mremap) are written at function entry, before the memory
 * can be handed out again; births are written at function return. So a block's birth always precedes its
 * release, and an address reused by another thread is born after it was released.
 */
#ifndef MEMSIGHT_ABI_H
#define MEMSIGHT_ABI_H

#ifdef __BPF__
/* vmlinux.h supplies __u8 ... __u64 */
#else
#include <linux/types.h>
#endif

#define MS_ABI_VERSION 1

/* Frames carried by a stack record: frames[0] is the allocator entry, frames[1] its direct caller. */
#define MS_MAX_FRAMES 64

/* Record kinds (ms_header.kind). */
#define MS_REC_STACK 1      /* ms_stack: a call stack seen for the first time, by id */
#define MS_REC_ALLOC 2      /* ms_alloc: a block or anonymous mapping was born */
#define MS_REC_FREE 3       /* ms_free: a block (free) or a range (munmap) is released */
#define MS_REC_MOVE_BEGIN 4 /* ms_free: realloc/mremap entry; the old block leaves, pending the result */
#define MS_REC_MOVE_END 5   /* ms_move_end: realloc/mremap returned; new block born, or old restored */
#define MS_REC_EXEC 6       /* ms_header only: the process replaced its image; its state resets */
#define MS_REC_FORK 7       /* ms_fork: a traced process forked */
#define MS_REC_ALLOC_FAIL 9 /* ms_alloc_fail: an allocating call failed (8 is MS_REC_OOM_VICTIM, below) */
#define MS_REC_EXIT 10      /* ms_exit: the process's last thread exited (growth mode) */

/* Allocator functions (ms_alloc.fn, ms_free.fn): which entry point the program called. */
#define MS_FN_MALLOC 1
#define MS_FN_CALLOC 2
#define MS_FN_REALLOC 3
#define MS_FN_REALLOCARRAY 4
#define MS_FN_FREE 5
#define MS_FN_POSIX_MEMALIGN 6
#define MS_FN_ALIGNED_ALLOC 7
#define MS_FN_MEMALIGN 8
#define MS_FN_VALLOC 9
#define MS_FN_PVALLOC 10
#define MS_FN_MMAP 11
#define MS_FN_MUNMAP 12
#define MS_FN_MREMAP 13
#define MS_FN_NEW 14 /* C++ operator new, new[], their nothrow and aligned variants (libstdc++) */
/* Growth mode (growth_trace.bpf.c): resident memory, not allocator calls. */
#define MS_FN_PAGE_FAULT 15 /* ms_alloc: a fault made anonymous memory resident (a page, or a 2 MiB huge page) */
#define MS_FN_MADVISE 16    /* ms_free: madvise(MADV_DONTNEED/FREE/REMOVE) released a range's pages */
#define MS_FN_BRK 17        /* ms_free: brk moved the heap's end down over a range */
#define MS_FN_PAGES_MOVE 18 /* ms_free MOVE_BEGIN + ms_move_end: mremap moved a range and its resident pages */
#define MS_FN_COUNT 19

/* Attach cookie of an allocating entry probe: the MS_FN_* in its low 16 bits, and this flag for an
 * allocator's own operator new (jemalloc/tcmalloc/mimalloc: it does not call malloc), whose block is read
 * where it returns to in its caller (ms_site): ms_ret ignores the allocator calls nested in it. */
#define MS_COOKIE_OWN_RETURN (1u << 16)

/* ms_stack.flags */
#define MS_STACK_TRUNCATED 1 /* outer frames are missing: the walk filled every slot, or stopped (below) */
#define MS_STACK_UNWIND_STOPPED 2 /* the call-frame walk stopped on code it has no rule for (JIT, a module
				     * not yet known, an unsupported rule): the frames sent are right, outer
				     * ones are missing (MS_STACK_TRUNCATED is set too) */
#define MS_STACK_FRAME_POINTERS 4 /* walked by frame pointers, in whole or in part: a module of the stack
				     * had no table (not loaded yet, or no call-frame information); through
				     * code built without frame pointers such a stack is short or wrong */

/* Loss counters: index into the per-CPU `counters` map (u64 each), summed by user space. */
#define MS_CNT_RINGBUF_FULL 0      /* a record could not be written: the ring buffer was full */
#define MS_CNT_INFLIGHT_FULL 1     /* an entry could not remember its call: in-flight table full */
#define MS_CNT_STACK_TRUNCATED 2   /* a stack filled every frame slot */
#define MS_CNT_INFLIGHT_STALE 3    /* an entry found a call whose return was never seen, and replaced it */
#define MS_CNT_NESTED 4            /* a call made from inside another traced call, left to the outer one */
#define MS_CNT_STACK_FAILED 5      /* bpf_get_stack failed; the record carries the allocator frame only */
#define MS_CNT_SAMPLED_FULL 6      /* --sample-bytes: a taken block found the sampled-blocks table full: not recorded */
#define MS_CNT_NO_SAMPLER 7        /* --sample-bytes: a thread's sampler state could not be made: call not recorded */
/* Call-frame unwinding (see the unwind section below and docs/unwinding.md). */
#define MS_CNT_UNWIND_STOPPED 8    /* a call-frame walk stopped on code it has no rule for (counted in
				    * MS_CNT_STACK_TRUNCATED too) */
#define MS_CNT_UNWIND_FP 9         /* a stack walked by frame pointers, in whole or in part (a module without
				    * a table: MS_STACK_FRAME_POINTERS) */
#define MS_CNT_COUNT 10

/* Sampling by bytes (--sample-bytes, user/core/sampler.hpp): the BPF side draws the bytes until the
 * next sample point from a table of MS_GAP_STEPS quantiles of the exponential distribution, which user
 * space fills in before load. A random u32 picks the step (its top bits) and the place inside the step
 * (its low MS_GAP_FRACTION_BITS bits). */
#define MS_GAP_STEPS 1024
#define MS_GAP_FRACTION_BITS 22 /* 32 - log2(MS_GAP_STEPS) */

/* Key of the BPF table of sampled blocks alive (bpf/sample.bpf.h); user space deletes an exited
 * process's entries by it. */
struct ms_sampled_key {
	__u32 tgid;
	__u32 _pad;
	__u64 address; /* the block */
};
#ifdef __cplusplus
static_assert(sizeof(struct ms_sampled_key) == 16, "ms_sampled_key is 16 bytes");
#else
_Static_assert(sizeof(struct ms_sampled_key) == 16, "ms_sampled_key is 16 bytes");
#endif

struct ms_header {
	__u16 kind;    /* MS_REC_* */
	__u16 size;    /* bytes of the whole record, header included */
	__u32 tgid;    /* process id (thread group) */
	__u32 tid;     /* thread id */
	__u32 _pad;
	__u64 time_ns; /* CLOCK_MONOTONIC, ns (bpf_ktime_get_ns) */
};

struct ms_stack {
	struct ms_header h;
	__u64 stack_id;   /* hash of (tgid, address space, frames): the key alloc records refer to */
	__u16 nr_frames;  /* valid entries of frames[] */
	__u16 flags;      /* MS_STACK_* */
	__u32 _pad;
	__u64 frames[MS_MAX_FRAMES]; /* user virtual addresses; only nr_frames are sent */
};

struct ms_alloc {
	struct ms_header h;
	__u64 address;  /* user virtual address of the block or mapping */
	__u64 size;     /* bytes requested (mmap: length) */
	__u64 stack_id; /* an ms_stack.stack_id sent earlier */
	__u16 fn;       /* MS_FN_* */
	__u16 _pad[3];
};

struct ms_free {
	struct ms_header h;
	__u64 address; /* the block (free, realloc) or the start of the range (munmap, mremap) */
	__u64 size;    /* 0 for heap blocks; bytes of the range for munmap/mremap */
	__u16 fn;      /* MS_FN_* */
	__u16 _pad[3];
};

struct ms_move_end {
	struct ms_header h;
	__u64 address;  /* the new block; 0 when the call failed (or realloc(p, 0) freed p) */
	__u64 size;     /* bytes requested */
	__u64 stack_id; /* stack of the call, valid when address != 0 */
	__u16 fn;       /* MS_FN_REALLOC, MS_FN_REALLOCARRAY or MS_FN_MREMAP */
	__u16 _pad[3];
};

struct ms_fork {
	struct ms_header h; /* tgid: the parent */
	__u32 child_tgid;
	__u32 _pad;
};

struct ms_exit {
	struct ms_header h; /* tgid: the process that exited */
	__u8 comm[16];      /* its command name (TASK_COMM_LEN), NUL-padded: gone from /proc once it exits */
};

/* An allocating call that failed: NULL from malloc, calloc, realloc, reallocarray, aligned_alloc, memalign,
 * valloc, pvalloc or nothrow operator new asked for at least one byte; non-zero from posix_memalign;
 * MAP_FAILED from an anonymous mmap or from mremap. Written at the return, after the stack record. The
 * limits and the address-space size say whether the request ran into RLIMIT_AS/RLIMIT_DATA, or was
 * simply too large. */
struct ms_alloc_fail {
	struct ms_header h;
	__u64 size;           /* bytes requested: calloc n*size, realloc/mremap the new size, mmap length;
			       * ~0 when n*size overflows */
	__u64 stack_id;       /* an ms_stack.stack_id sent earlier; 0: the stack could not be sent */
	__u64 rlimit_as;      /* RLIMIT_AS soft limit (rlim_cur), bytes; ~0 = unlimited */
	__u64 rlimit_data;    /* RLIMIT_DATA soft limit (rlim_cur), bytes; ~0 = unlimited */
	__u64 total_vm_pages; /* mapped virtual memory at the failure, pages (mm->total_vm): RLIMIT_AS counts it */
	__u64 data_vm_pages;  /* private writable memory, pages (mm->data_vm): RLIMIT_DATA counts it */
	__u16 fn;             /* MS_FN_* */
	__u16 _pad[3];
};

/* Notices from BPF to the attach layer (ring `notices`, not the record stream): something in a target
 * needs a probe now. A process memsight started is stopped (SIGSTOP) until user space has placed it and
 * sent SIGCONT. Values of the `holdable` map (key: tgid): */
#define MS_HOLD_NO 0  /* never stopped (a -p target): notices only */
#define MS_HOLD_YES 1 /* the command memsight started: stopped at each notice */

#define MS_NOTICE_LIBRARIES 1 /* the loader mapped libraries (after exec, or dlopen): look at the maps again */
#define MS_NOTICE_NEW_SITE 2  /* an allocator's operator new was called from `address`, not probed yet */

struct ms_notice {
	__u32 tgid;
	__u32 kind;    /* MS_NOTICE_* */
	__u64 address; /* MS_NOTICE_NEW_SITE: the return address (user virtual) to probe; else 0 */
	__u64 mm;      /* the process's address space (kernel pointer, an identity only): the key of the
			* `sites` map, where user space enters the call sites it probed from the code */
};

#define MS_STACK_HEADER_BYTES 40 /* ms_stack without frames: the bytes sent before nr_frames * 8 */

#ifdef __cplusplus
static_assert(sizeof(struct ms_header) == 24, "ms_header is 24 bytes");
static_assert(sizeof(struct ms_stack) == MS_STACK_HEADER_BYTES + 8 * MS_MAX_FRAMES, "ms_stack layout");
static_assert(sizeof(struct ms_alloc) == 56, "ms_alloc is 56 bytes");
static_assert(sizeof(struct ms_free) == 48, "ms_free is 48 bytes");
static_assert(sizeof(struct ms_move_end) == 56, "ms_move_end is 56 bytes");
static_assert(sizeof(struct ms_fork) == 32, "ms_fork is 32 bytes");
static_assert(sizeof(struct ms_exit) == 40, "ms_exit is 40 bytes");
static_assert(sizeof(struct ms_alloc_fail) == 80, "ms_alloc_fail is 80 bytes");
static_assert(sizeof(struct ms_notice) == 24, "ms_notice is 24 bytes");
#else
_Static_assert(sizeof(struct ms_header) == 24, "ms_header is 24 bytes");
_Static_assert(sizeof(struct ms_stack) == MS_STACK_HEADER_BYTES + 8 * MS_MAX_FRAMES, "ms_stack layout");
_Static_assert(sizeof(struct ms_alloc) == 56, "ms_alloc is 56 bytes");
_Static_assert(sizeof(struct ms_free) == 48, "ms_free is 48 bytes");
_Static_assert(sizeof(struct ms_move_end) == 56, "ms_move_end is 56 bytes");
_Static_assert(sizeof(struct ms_fork) == 32, "ms_fork is 32 bytes");
_Static_assert(sizeof(struct ms_exit) == 40, "ms_exit is 40 bytes");
_Static_assert(sizeof(struct ms_alloc_fail) == 80, "ms_alloc_fail is 80 bytes");
_Static_assert(sizeof(struct ms_notice) == 24, "ms_notice is 24 bytes");
#endif

/* ---- Call-frame unwinding: tables user space builds from .eh_frame/.debug_frame, walked in BPF ----
 *
 * One BPF array holds the rows of every module, each module a sorted run [row_first, row_first + row_count)
 * addressed by file offset. A hash keyed by the file's identity (device, inode: what the kernel's VMA
 * names, so no per-process list is needed and exec or dlopen cannot leave one stale) says where a
 * module's run is. Per frame the walker finds pc's VMA (bpf_find_vma), its module's run, the last row at
 * or below pc's file offset, then the canonical frame address (CFA: the caller's stack pointer before
 * its call), the return address at CFA - 8 and the caller's rbp. x86-64 only. See docs/unwinding.md. */

/* ms_unwind_row.cfa_kind: how to compute the CFA at this pc. */
#define MS_CFA_NONE 0   /* no call-frame information here (a gap between functions, or unsupported): stop */
#define MS_CFA_RSP 1    /* CFA = rsp + cfa_off */
#define MS_CFA_RBP 2    /* CFA = rbp + cfa_off */
#define MS_CFA_PLT 3    /* a PLT entry: CFA = rsp + 8, + 8 more when (pc & 15) >= cfa_off (it pushed an index) */
#define MS_CFA_SIGNAL 4 /* the signal return trampoline: rsp points at the kernel's ucontext (the rt_sigframe
			 * past its return address); the interrupted rip, rsp and rbp are read from it */
#define MS_CFA_END 5    /* the outermost frame (return address undefined: _start, a thread's start) */

/* Where the interrupted registers lie in the ucontext an MS_CFA_SIGNAL row's rsp points at (bytes):
 * uc_flags, uc_link, uc_stack (24) come first, then sigcontext's r8..r15, rdi, rsi, rbp, rbx, rdx, rax,
 * rcx, rsp, rip (8 each). */
#define MS_UCONTEXT_RBP 120
#define MS_UCONTEXT_RSP 160
#define MS_UCONTEXT_RIP 168

/* ms_unwind_row.rbp_kind: where the caller's rbp is. */
#define MS_RBP_SAME 0    /* not changed by this function (yet): the caller's is the current one */
#define MS_RBP_AT_CFA 1  /* saved at CFA + rbp_off */
#define MS_RBP_UNKNOWN 2 /* clobbered, or kept in a form the walker does not follow: a caller needing it stops */

struct ms_unwind_row {
	__u32 pc;      /* file offset (bytes) of the first instruction the row covers, until the next row */
	__u8 cfa_kind; /* MS_CFA_* */
	__u8 rbp_kind; /* MS_RBP_* */
	__s16 rbp_off; /* MS_RBP_AT_CFA: bytes from the CFA (negative) */
	__s32 cfa_off; /* MS_CFA_RSP/RBP: bytes added to the register; MS_CFA_PLT: the pc & 15 threshold */
};

/* Key of the `unwind_modules` hash: a file as the kernel's VMA names it. */
struct ms_unwind_file {
	__u64 dev;   /* the inode's superblock device, kernel encoding: major << 20 | minor */
	__u64 inode; /* inode number */
};

/* Value of the `unwind_modules` hash: the file's run of rows in `unwind_rows`. */
struct ms_unwind_module {
	__u32 row_first; /* index of its first row */
	__u32 row_count; /* its rows (at least 1) */
};

#ifdef __cplusplus
static_assert(sizeof(struct ms_unwind_row) == 12, "ms_unwind_row is 12 bytes");
static_assert(sizeof(struct ms_unwind_file) == 16, "ms_unwind_file is 16 bytes");
static_assert(sizeof(struct ms_unwind_module) == 8, "ms_unwind_module is 8 bytes");
#else
_Static_assert(sizeof(struct ms_unwind_row) == 12, "ms_unwind_row is 12 bytes");
_Static_assert(sizeof(struct ms_unwind_file) == 16, "ms_unwind_file is 16 bytes");
_Static_assert(sizeof(struct ms_unwind_module) == 8, "ms_unwind_module is 8 bytes");
#endif

/* ---- OOM watch (bpf/oom_watch.bpf.c): its own ring buffer, its own counters ---- */

#define MS_REC_OOM_VICTIM 8 /* ms_oom_victim: the kernel chose a task to kill (oom:mark_victim) */

#define MS_COMM_BYTES 16 /* TASK_COMM_LEN: a command name, NUL-padded (not terminated at 16 bytes) */

/* ms_oom_victim.flags */
#define MS_OOM_EXITING 1     /* the victim had PF_EXITING set: it was already dying (no SIGKILL, no log line) */
#define MS_OOM_RSS_APPROX 2  /* rss_* read from percpu_counter.count (6.2+): may lag by the per-CPU batches,
			      * as the kernel's own OOM report (get_mm_counter) does */
#define MS_OOM_NO_MM 4       /* the victim had no mm: rss_*, total_vm and pgtables are 0, unknown */
#define MS_OOM_NO_MEMCG 8    /* memcg_id unknown (no memory controller, or the read failed) */
#define MS_OOM_NO_PGTABLES 16 /* the kernel has no mm->pgtables_bytes: pgtables_bytes is 0, unknown */

/* Counters of oom_watch: index into its per-CPU `oom_counters` map (u64 each), summed by user space. */
#define MS_OOM_CNT_SEEN 0         /* mark_victim events seen (records written or not) */
#define MS_OOM_CNT_RINGBUF_FULL 1 /* a victim record could not be written: the ring buffer was full */
#define MS_OOM_CNT_COUNT 2

/* One OOM victim, written when the kernel marks it (mark_oom_victim). The header's tgid/tid are the
 * TRIGGER: the task running the OOM killer at that moment (the one whose allocation failed, or an
 * exiting task), which is often not the victim. Memory cgroups are identified by the inode of their
 * directory in the hierarchy that holds the memory controller (kernfs_node id): v1 `memory` mount, or
 * the cgroup2 mount. Not bpf_get_current_cgroup_id(): that is the v2 cgroup, which has no memory
 * controller on v1 hosts. */
struct ms_oom_victim {
	struct ms_header h;            /* kind MS_REC_OOM_VICTIM; tgid/tid: the trigger */
	__u32 victim_tgid;             /* process id of the victim (thread group) */
	__u32 victim_pid;              /* thread id of the task marked (the kernel log's "Killed process" pid) */
	__s32 oom_score_adj;           /* victim's oom_score_adj, -1000..1000 (the kernel's s16, widened) */
	__u32 flags;                   /* MS_OOM_* */
	__u64 memcg_id;                /* victim's memory cgroup: directory inode; 0 when MS_OOM_NO_MEMCG */
	__u64 trigger_memcg_id;        /* the trigger's memory cgroup, the same way; 0 unknown */
	__u64 rss_anon_pages;          /* victim's resident anonymous memory, pages (MM_ANONPAGES) */
	__u64 rss_file_pages;          /* resident file-backed memory, pages (MM_FILEPAGES) */
	__u64 rss_shmem_pages;         /* resident shared memory (shmem/tmpfs), pages (MM_SHMEMPAGES) */
	__u64 total_vm_pages;          /* mapped virtual memory, pages (mm->total_vm) */
	__u64 pgtables_bytes;          /* page tables, bytes (mm->pgtables_bytes) */
	__u8 comm[MS_COMM_BYTES];      /* victim's command name */
	__u8 trigger_comm[MS_COMM_BYTES]; /* trigger's command name */
};

#ifdef __cplusplus
static_assert(sizeof(struct ms_oom_victim) == 128, "ms_oom_victim is 128 bytes");
#else
_Static_assert(sizeof(struct ms_oom_victim) == 128, "ms_oom_victim is 128 bytes");
#endif

#endif /* MEMSIGHT_ABI_H */
