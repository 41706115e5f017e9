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
#define MS_FN_COUNT 15

/* ms_stack.flags */
#define MS_STACK_TRUNCATED 1 /* the walk filled every slot: outer frames may be missing */

/* Loss counters: index into the per-CPU `counters` map (u64 each), summed by user space. */
#define MS_CNT_RINGBUF_FULL 0      /* a record could not be written: the ring buffer was full */
#define MS_CNT_INFLIGHT_FULL 1     /* an entry could not remember its call: in-flight table full */
#define MS_CNT_STACK_TRUNCATED 2   /* a stack filled every frame slot */
#define MS_CNT_INFLIGHT_STALE 3    /* an entry found a call whose return was never seen, and replaced it */
#define MS_CNT_NESTED 4            /* a call made from inside another traced call, left to the outer one */
#define MS_CNT_STACK_FAILED 5      /* bpf_get_stack failed; the record carries the allocator frame only */
#define MS_CNT_COUNT 6

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

#define MS_STACK_HEADER_BYTES 40 /* ms_stack without frames: the bytes sent before nr_frames * 8 */

#ifdef __cplusplus
static_assert(sizeof(struct ms_header) == 24, "ms_header is 24 bytes");
static_assert(sizeof(struct ms_stack) == MS_STACK_HEADER_BYTES + 8 * MS_MAX_FRAMES, "ms_stack layout");
static_assert(sizeof(struct ms_alloc) == 56, "ms_alloc is 56 bytes");
static_assert(sizeof(struct ms_free) == 48, "ms_free is 48 bytes");
static_assert(sizeof(struct ms_move_end) == 56, "ms_move_end is 56 bytes");
static_assert(sizeof(struct ms_fork) == 32, "ms_fork is 32 bytes");
#else
_Static_assert(sizeof(struct ms_header) == 24, "ms_header is 24 bytes");
_Static_assert(sizeof(struct ms_stack) == MS_STACK_HEADER_BYTES + 8 * MS_MAX_FRAMES, "ms_stack layout");
_Static_assert(sizeof(struct ms_alloc) == 56, "ms_alloc is 56 bytes");
_Static_assert(sizeof(struct ms_free) == 48, "ms_free is 48 bytes");
_Static_assert(sizeof(struct ms_move_end) == 56, "ms_move_end is 56 bytes");
_Static_assert(sizeof(struct ms_fork) == 32, "ms_fork is 32 bytes");
#endif

#endif /* MEMSIGHT_ABI_H */
