/* The call-frame walker: complete user stacks through code built without frame pointers, from the
 * tables user space builds out of each module's .eh_frame (include/memsight/abi.h, docs/unwinding.md).
 *
 *   pc, sp, rbp of the user thread
 *     └─► VMA of pc (the last one is kept: frames cluster in a few modules; a few per CPU are
 *          remembered, used while the mm's write-lock sequence has not moved (6.12+) or when the mm
 *          lock is busy; else bpf_find_vma)
 *          └─► module run in unwind_rows, by the VMA's (device, inode)
 *               └─► the row at pc's file offset (a per-CPU cache, else a binary search)
 *                    ─► CFA ─► return address, caller's rbp
 *
 * It stops cleanly: code in no file (JIT), a row with no rule it follows, a CFA that does not move
 * outward, or an unreadable stack end the walk and mark the stack MS_STACK_UNWIND_STOPPED (counted). An
 * undefined return address (_start, a thread's start) ends it normally. In a file whose table is not
 * loaded yet (user space loads it when it first sees the process), it takes a frame-pointer step, as
 * bpf_get_stack would, and marks the stack MS_STACK_FRAME_POINTERS (counted).
 */
#ifndef MEMSIGHT_UNWIND_BPF_H
#define MEMSIGHT_UNWIND_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>

#include "memsight/abi.h"

#define UNWIND_SEARCH_STEPS 24 /* binary search steps: runs of up to 16 M rows */
#define PAGE_SHIFT_BYTES 12
#define EBUSY_ERRNO 16
#define PENDING_URETPROBES 16 /* pending uretprobes of a thread searched for a return address */
#define TRAMPOLINE_FLOOR 0x7fff00000000ull /* return addresses below are never the uretprobe trampoline */
#define UNWIND_WINDOW_WORDS 1024 /* 8 KiB of stack read in one go */
#define VMA_MEMO 8            /* VMAs remembered per CPU, for when bpf_find_vma cannot take the mm lock */

#define STACK_MEMO_READS 32 /* stack words a memoized walk may have read */
#define STACK_MEMO_SLOTS 256 /* memoized walks per CPU */

/* One word a walk read from the user stack. */
struct memo_read {
	__u64 address, value;
};

/* A VMA and its module's rows: the walk's current one, and those remembered for walks that cannot look
 * theirs up (see vma_lookup). */
struct walk_vma {
	__u64 mm;                   /* the address space (mm_struct pointer): tags remembered entries; 0: empty */
	__u64 start, end, off;      /* [start, end) maps file bytes from off */
	__u32 row_first, row_count; /* the module's run of rows; row_count 0: no table */
	__u8 fp_ok;                 /* a file whose table is not loaded yet (or the VMA could not be looked
				     * up): a frame-pointer step is the best guess there */
	__u8 _pad[3];
	__u32 seq;                  /* remembered entries: the mm's write-lock sequence when looked up */
};

/* All modules' rows, each module a sorted run. Sized at load (the memory cap, reported); user space
 * writes a module's run once, and never moves it. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ms_unwind_row);
} unwind_rows SEC(".maps");

/* key: the file of a VMA; value: its run in unwind_rows. Sized at load (modules with a table). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct ms_unwind_file);
	__type(value, struct ms_unwind_module);
} unwind_modules SEC(".maps");

/* The walk's registers, its binary search and its frames. Kept in a per-CPU map, not on the BPF stack:
 * values read back from a map are unknown to the verifier, so it checks one step of each loop and finds
 * the next one the same, instead of following every value of every register through 64 x 24 steps
 * (which exceeds its million-instruction budget). */
struct walk_state {
	__u64 pc, sp, rbp; /* the frame being unwound */
	__u32 n;           /* frames written so far, counting from base */
	__u32 base;        /* slot of the walk's first frame (pc itself) */
	__u8 pc_is_return; /* pc is a return address: look up pc - 1 (the call), which may end its function */
	__u8 rbp_known;    /* rbp holds the caller's value, not garbage */
	__u8 done;         /* ended normally (the outermost frame) */
	__u8 stopped;      /* ended on something the walker does not follow */
	__u8 fp_steps;     /* some frames came from frame-pointer steps */
	struct walk_vma vma; /* of the last lookup */
	__u64 trampoline; /* the uretprobe trampoline's address in this process; 0: none; 1: not read yet */
	__u32 seq;        /* the mm's write-lock sequence at the walk's start (mm_seq) */
	__u32 _pad2;
	struct walk_vma memo[VMA_MEMO]; /* kept across walks on this CPU */
	/* The binary search over one module's run: rows [0, lo) of the run are <= off, rows [hi, count) > off. */
	__u32 lo, hi;
	__u64 off;
	__u64 frames[MS_MAX_FRAMES]; /* walked frames go to [base, MS_MAX_FRAMES) */
	/* The stack's first bytes from the user sp, read at once at the walk's start: the slots of the
	 * innermost frames come from here instead of one user read each (on the churn bench, 8 KiB read at
	 * once cost less than the 5 reads of 8 bytes a 1 KiB window left: its main has a 2 KiB frame). */
	__u64 window_base, window_bytes;
	__u64 window[UNWIND_WINDOW_WORDS];
	/* What the walk depended on, for the stack memo (stack_memos): where it started, and every word it
	 * read from the stack. */
	__u64 start_pc, start_sp, start_rbp;
	__u8 rbp_initial;   /* st->rbp is still the register's value at the start */
	__u8 rbp_used;      /* the walk computed something from that value */
	__u8 memo_ok;       /* nothing the memo can't replay (a pending uretprobe, too many reads) */
	__u8 _pad3;
	__u32 n_reads;
	struct memo_read reads[STACK_MEMO_READS];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct walk_state);
} unwind_scratch SEC(".maps");

/* Rows found before, per CPU, by (module run, file offset): a frame at a return address seen before (a
 * hot call path) costs one probe here instead of a binary search of UNWIND_SEARCH_STEPS steps. Exact:
 * a module's run is written once and never moved or reused, so a row found for an offset stays its row.
 * Direct-mapped: a collision replaces the older entry. */
#define ROW_CACHE_SLOTS 4096
struct row_cache_entry {
	__u64 off;      /* file offset looked up */
	__u32 module;   /* row_first + 1 of its module; 0: empty */
	struct ms_unwind_row row;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, ROW_CACHE_SLOTS);
	__type(key, __u32);
	__type(value, struct row_cache_entry);
} unwind_row_cache SEC(".maps");

static __always_inline struct walk_state *walk_state(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&unwind_scratch, &zero);
}

/* bpf_find_vma's callback: the VMA's range, file offset and module run, or row_count 0 when it maps no
 * file or one without a table. */
static long unwind_vma(struct task_struct *task, struct vm_area_struct *vma, void *unused)
{
	struct walk_state *st = walk_state();
	struct ms_unwind_file file = {};
	struct ms_unwind_module *module;
	struct inode *inode;

	if (!st)
		return 0;

	st->vma.start = vma->vm_start;
	st->vma.end = vma->vm_end;
	st->vma.off = vma->vm_pgoff << PAGE_SHIFT_BYTES;
	st->vma.row_count = 0;
	st->vma.fp_ok = vma->vm_file != 0;
	if (!vma->vm_file)
		return 0; /* anonymous code (JIT): no table, and frame pointers may not hold there */
	inode = vma->vm_file->f_inode;
	file.dev = BPF_CORE_READ(inode, i_sb, s_dev);
	file.inode = BPF_CORE_READ(inode, i_ino);
	module = bpf_map_lookup_elem(&unwind_modules, &file);
	if (module) {
		st->vma.row_first = module->row_first;
		st->vma.row_count = module->row_count;
	}
	return 0;
}

/* The address space's write-lock sequence (kernel 6.12+: a seqcount, odd while a writer holds the mmap
 * lock, moved by every change of its VMAs). 1 where the kernel has none: remembered VMAs are then used only
 * when a lookup cannot take the lock. */
static __always_inline __u32 mm_seq(struct task_struct *task)
{
	if (!bpf_core_field_exists(task->mm->mm_lock_seq))
		return 1;
	return task->mm->mm_lock_seq.sequence;
}

/* The VMA of `pc` into st->vma: 0 when found. bpf_find_vma only
 * try-locks the mm, and fails (-EBUSY) while another thread of the process maps or unmaps memory (a
 * malloc arena growing): then a VMA this CPU looked up before for the same address space stands in. It
 * can be stale only if that range was unmapped and something else mapped there since. */
static __always_inline long vma_lookup(struct walk_state *st, __u64 pc)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct walk_vma *m;
	long err;
	__u32 i;

	/* A VMA remembered with a table while the address space has not been written since (its
	 * write-lock sequence unchanged and even) is still the VMA: no lookup, no lock. */
	for (i = 0; i < VMA_MEMO && !(st->seq & 1); i++) {
		m = &st->memo[i];
		if (m->mm == st->vma.mm && m->seq == st->seq && m->row_count && pc >= m->start && pc < m->end) {
			st->vma = *m;
			return 0;
		}
	}
	st->vma.row_count = 0;
	st->vma.end = 0;
	err = bpf_find_vma(task, pc, unwind_vma, 0, 0);
	if (!err && pc >= st->vma.start && pc < st->vma.end) {
		st->vma.seq = st->seq;
		st->memo[(st->vma.start >> PAGE_SHIFT_BYTES) & (VMA_MEMO - 1)] = st->vma;
		return 0;
	}
	st->vma.end = 0;
	st->vma.fp_ok = 0;
	if (err != -EBUSY_ERRNO)
		return err ? err : -1; /* -ENOENT: in no VMA */
	for (i = 0; i < VMA_MEMO; i++) {
		m = &st->memo[i];
		if (m->mm != st->vma.mm || pc < m->start || pc >= m->end)
			continue;
		st->vma = *m;
		return 0;
	}
	st->vma.fp_ok = 1; /* nothing remembered: a frame-pointer step is the best guess */
	return err;
}

static long search_step(__u32 index, void *unused)
{
	struct walk_state *q = walk_state();
	__u32 mid, key;
	struct ms_unwind_row *row;

	if (!q || q->lo >= q->hi)
		return 1;
	mid = q->lo + (q->hi - q->lo) / 2;
	key = q->vma.row_first + mid;
	row = bpf_map_lookup_elem(&unwind_rows, &key);
	if (!row) {
		q->lo = q->hi = 0; /* outside the array: no row */
		return 1;
	}
	if (row->pc <= q->off)
		q->lo = mid + 1;
	else
		q->hi = mid;
	return 0;
}

/* The row that covers file offset st->off in st's module: the last of the run whose pc is <= off; 0
 * when none. A loop of its own (bpf_loop), so each step is checked once. */
static __always_inline struct ms_unwind_row *unwind_find_row(struct walk_state *st)
{
	__u32 module = st->vma.row_first + 1, key;
	__u32 slot = (__u32)((st->off ^ ((__u64)module << 20)) * 0x9e3779b97f4a7c15ull >> 52) & (ROW_CACHE_SLOTS - 1);
	struct row_cache_entry *hit = bpf_map_lookup_elem(&unwind_row_cache, &slot);
	struct ms_unwind_row *row;

	if (hit && hit->module == module && hit->off == st->off)
		return &hit->row;
	st->lo = 0;
	st->hi = st->vma.row_count;
	bpf_loop(UNWIND_SEARCH_STEPS, search_step, 0, 0);
	if (st->lo == 0 || st->lo < st->hi)
		return 0; /* before the run's first row, or the search did not converge */
	key = st->vma.row_first + st->lo - 1;
	row = bpf_map_lookup_elem(&unwind_rows, &key);
	if (row && hit) {
		hit->off = st->off;
		hit->module = module;
		hit->row = *row;
	}
	return row;
}

/* A word of the user stack: from the window when it lies there, else one user read. */
static __always_inline int unwind_peek(struct walk_state *st, __u64 *out, __u64 address)
{
	__u64 at = address - st->window_base;

	if (at < st->window_bytes && !(at & 7)) {
		*out = st->window[(at / 8) & (UNWIND_WINDOW_WORDS - 1)];
		return 0;
	}
	return bpf_probe_read_user(out, sizeof(*out), (void *)address);
}

/* The same, for the walk: the word is noted for the stack memo. */
static __always_inline int unwind_read(struct walk_state *st, __u64 *out, __u64 address)
{
	__u32 i = st->n_reads;

	if (unwind_peek(st, out, address))
		return -1;
	if (i >= STACK_MEMO_READS) {
		st->memo_ok = 0;
		return 0;
	}
	st->reads[i & (STACK_MEMO_READS - 1)].address = address;
	st->reads[i & (STACK_MEMO_READS - 1)].value = *out;
	st->n_reads = i + 1;
	return 0;
}

/* True when `ra` is the kernel's uretprobe trampoline: a pending uretprobe (of any tool, on any function
 * of this stack) replaced the return address in its slot. The trampoline's page is the last of user
 * space when free (x86-64: 0x7fffffffe000), so only addresses that high are checked, and its address is
 * read (three pointer reads) only then. */
static __always_inline int unwind_is_trampoline(struct walk_state *st, __u64 ra)
{
	struct task_struct *task;

	if (ra < TRAMPOLINE_FLOOR)
		return 0;
	if (st->trampoline == 1) {
		task = bpf_get_current_task_btf();
		st->trampoline = BPF_CORE_READ(task, mm, uprobes_state.xol_area, vaddr);
	}
	if (st->trampoline && ra == st->trampoline) {
		st->memo_ok = 0; /* the real address comes from the kernel's list, which the memo can't replay */
		return 1;
	}
	return 0;
}

/* The return address a uretprobe replaced in stack slot `slot`: the thread's pending return instances
 * keep it, each with the slot it replaced. 0 when none matches (the walk stops). */
static __always_inline __u64 unwind_real_return(__u64 slot)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct return_instance *ri;
	__u32 i;

	ri = BPF_CORE_READ(task, utask, return_instances);
	for (i = 0; i < PENDING_URETPROBES && ri; i++) {
		if (BPF_CORE_READ(ri, stack) == slot)
			return BPF_CORE_READ(ri, orig_ret_vaddr);
		ri = BPF_CORE_READ(ri, next);
	}
	return 0;
}

/* One frame: from (pc, sp, rbp) to the caller's. Returns 1 to end the loop. */
static long unwind_step(__u32 index, void *unused)
{
	struct walk_state *st = walk_state();
	__u64 lookup, cfa, ra, rbp, sp;
	struct ms_unwind_row *row;
	__u32 slot;

	if (!st)
		return 1;
	lookup = st->pc - st->pc_is_return;
	rbp = st->rbp;

	if (lookup < st->vma.start || lookup >= st->vma.end)
		vma_lookup(st, lookup);
	if (!st->vma.row_count || lookup < st->vma.start || lookup >= st->vma.end) {
		/* A file whose table user space has not loaded yet (a process it has not seen before): step by
		 * the frame pointer, as a frame-pointer walk would, and say so. Anywhere else: stop. */
		st->rbp_used |= st->rbp_initial;
		if (!st->vma.fp_ok || !st->rbp_known || st->rbp < st->sp || (st->rbp & 7) ||
		    unwind_read(st, &ra, st->rbp + 8) || unwind_read(st, &rbp, st->rbp))
			goto stop;
		st->rbp_initial = 0;
		if (unwind_is_trampoline(st, ra) && !(ra = unwind_real_return(st->rbp + 8)))
			goto stop;
		sp = st->rbp + 16;
		st->pc_is_return = 1;
		st->fp_steps = 1;
		goto next;
	}
	st->off = lookup - st->vma.start + st->vma.off;
	row = unwind_find_row(st);
	if (!row)
		goto stop;
	switch (row->cfa_kind) {
	case MS_CFA_END:
		st->done = 1;
		return 1;
	case MS_CFA_RSP:
		cfa = st->sp + (__s64)row->cfa_off;
		break;
	case MS_CFA_RBP:
		if (!st->rbp_known)
			goto stop;
		st->rbp_used |= st->rbp_initial;
		cfa = st->rbp + (__s64)row->cfa_off;
		break;
	case MS_CFA_PLT:
		cfa = st->sp + 8 + ((lookup & 15) >= (__u64)row->cfa_off ? 8 : 0);
		break;
	case MS_CFA_SIGNAL:
		/* The interrupted code's own registers: its pc is where it was, not a return address. */
		if (unwind_read(st, &ra, st->sp + MS_UCONTEXT_RIP) || unwind_read(st, &sp, st->sp + MS_UCONTEXT_RSP) ||
		    unwind_read(st, &rbp, st->sp + MS_UCONTEXT_RBP))
			goto stop;
		st->pc_is_return = 0;
		st->rbp_known = 1;
		st->rbp_initial = 0;
		goto next;
	default:
		goto stop;
	}
	if (cfa <= st->sp || unwind_read(st, &ra, cfa - 8))
		goto stop; /* the CFA lies above the frame's own stack pointer, always */
	if (unwind_is_trampoline(st, ra) && !(ra = unwind_real_return(cfa - 8)))
		goto stop;
	if (row->rbp_kind == MS_RBP_AT_CFA) {
		if (unwind_read(st, &rbp, cfa + (__s64)row->rbp_off))
			goto stop;
		st->rbp_known = 1;
		st->rbp_initial = 0;
	} else if (row->rbp_kind == MS_RBP_UNKNOWN) {
		st->rbp_known = 0;
	}
	sp = cfa;
	st->pc_is_return = 1;
next:
	if (!ra) {
		st->done = 1; /* a zero return address ends a stack too */
		return 1;
	}
	st->pc = ra;
	st->sp = sp;
	st->rbp = rbp;
	slot = st->base + st->n;
	if (slot >= MS_MAX_FRAMES)
		return 1; /* full: the caller marks the stack truncated */
	st->frames[slot & (MS_MAX_FRAMES - 1)] = ra;
	st->n++;
	return 0;
stop:
	st->stopped = 1;
	return 1;
}

/* True when the module of `pc` has a table: then the walk can start there. */
static __always_inline int unwind_known(struct walk_state *st, __u64 pc)
{
	return vma_lookup(st, pc) == 0 && st->vma.row_count != 0;
}

/* How much of the stack from `sp` the window reads: all of it, but not past the main thread's start
 * of stack (argc, where exec left sp: the stack's top lies just above), where a shallow stack would make
 * the whole read fail. A thread's stack has its thread block above it; a read that fails anyway falls
 * back to the rest of sp's page. Always in [8, sizeof window]. */
static __always_inline __u64 window_bytes(struct task_struct *task, __u64 sp)
{
	__u64 top = task->pid == task->tgid ? task->mm->start_stack : 0, room;

	if (top <= sp)
		return sizeof(((struct walk_state *)0)->window);
	room = (top - sp + 8) & ~7ull;
	return room < sizeof(((struct walk_state *)0)->window) ? room : sizeof(((struct walk_state *)0)->window);
}

/* Reads window_bytes (at most the window) of the stack from sp into the window. */
static __always_inline long read_window(struct walk_state *st)
{
	__u64 n = st->window_bytes;

	if (n > sizeof(st->window))
		n = st->window_bytes = sizeof(st->window);
	barrier_var(n);
	if (n > sizeof(st->window))
		return -1;
	return bpf_probe_read_user(st->window, n, (void *)st->sp);
}

/* The walk's start: the user registers, the stack's first KiB, the address space. Returns 0 without a
 * walk state. Before unwind_user and stack_memo_hit. */
static __always_inline struct walk_state *unwind_begin(void)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(task);
	struct walk_state *st = walk_state();

	if (!st)
		return 0;
	st->pc = st->start_pc = regs->ip; /* BTF pointers: plain loads, no read helper */
	st->sp = st->start_sp = regs->sp;
	st->rbp = st->start_rbp = regs->bp;
	st->window_base = st->sp;
	st->window_bytes = window_bytes(task, st->sp);
	if (read_window(st)) {
		/* The stack ended within the window after all: the rest of sp's own page, which is there. */
		st->window_bytes = 4096 - (st->sp & 4095);
		if (read_window(st))
			st->window_bytes = 0;
	}
	st->vma.mm = (__u64)task->mm;
	st->seq = mm_seq(task);
	return st;
}

/* Walks the current user stack into the walk state's frames[base..]: frames[base] is the user pc, then
 * its callers. Returns the state (its n: frames written from base; its stopped: ended on code it does
 * not follow), or 0 when the walk could not start: pc's module has no table. After unwind_begin. */
static __always_inline struct walk_state *unwind_user(struct walk_state *st, __u32 base)
{
	if (base >= MS_MAX_FRAMES)
		return 0;
	st->rbp_known = 1;
	st->trampoline = 1;
	st->pc_is_return = 0;
	st->done = 0;
	st->stopped = 0;
	st->fp_steps = 0;
	st->rbp_initial = 1;
	st->rbp_used = 0;
	st->memo_ok = 1;
	st->n_reads = 0;
	if (!unwind_known(st, st->pc))
		return 0;
	st->base = base;
	st->frames[base & (MS_MAX_FRAMES - 1)] = st->pc;
	st->n = 1;
	bpf_loop(MS_MAX_FRAMES, unwind_step, 0, 0);
	return st;
}

/* ---- The stack memo ----
 * A walk is a function of where it starts (pc, sp, and rbp if it used it), the words it read from the
 * stack, and the tables (written once, never changed). The same start with the same words read gives the
 * same stack, so a hot call path (an allocation in a loop: the same pc and sp each time) is recognised by
 * reading those words again and comparing, mostly from the window already read, instead of walking:
 * exact, not a guess. The VMAs the walk looked up need no check: every frame returns into code that is
 * still mapped, or the program could not return there. Walks that stopped, took frame-pointer steps
 * (a table not loaded yet), passed a pending uretprobe or read more than STACK_MEMO_READS words are not
 * memoized. Per CPU, direct-mapped by the start. */
struct stack_memo {
	__u64 tgid, mm;        /* the process: an exited one's mm may be reused by a fork of the same program */
	__u64 pc, sp, rbp;     /* the start; rbp only when rbp_used */
	__u64 first, caller;   /* send_stack's arguments, which the id covers */
	__u64 id;              /* the stack id; 0: empty */
	__u32 n_reads;
	__u8 rbp_used;
	__u8 _pad[3];
	struct memo_read reads[STACK_MEMO_READS];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, STACK_MEMO_SLOTS);
	__type(key, __u32);
	__type(value, struct stack_memo);
} stack_memos SEC(".maps");

static __always_inline struct stack_memo *stack_memo_of(struct walk_state *st, __u64 first)
{
	__u32 slot = (__u32)(((st->start_pc ^ (st->start_sp << 12) ^ (first << 24)) * 0x9e3779b97f4a7c15ull) >> 56) &
		     (STACK_MEMO_SLOTS - 1);

	return bpf_map_lookup_elem(&stack_memos, &slot);
}

/* The id of the stack that starts where this one does and read the same words, or 0. */
static __always_inline __u64 stack_memo_hit(struct walk_state *st, __u64 first, __u64 caller)
{
	struct stack_memo *m = stack_memo_of(st, first);
	__u64 value;
	__u32 i;

	if (!m || !m->id || m->pc != st->start_pc || m->sp != st->start_sp || m->mm != st->vma.mm ||
	    m->tgid != bpf_get_current_pid_tgid() >> 32 ||
	    m->first != first || m->caller != caller || (m->rbp_used && m->rbp != st->start_rbp))
		return 0;
	for (i = 0; i < STACK_MEMO_READS; i++) {
		if (i >= m->n_reads)
			return m->id;
		if (unwind_peek(st, &value, m->reads[i].address) || value != m->reads[i].value)
			return 0;
	}
	return m->id;
}

/* Remembers a complete walk (unwind_user's) whose stack was sent as `id`. */
static __always_inline void stack_memo_keep(struct walk_state *st, __u64 first, __u64 caller, __u64 id)
{
	struct stack_memo *m;

	if (!st->memo_ok || st->stopped || st->fp_steps || st->n_reads > STACK_MEMO_READS)
		return;
	m = stack_memo_of(st, first);
	if (!m)
		return;
	m->id = 0; /* not valid while being written (a program on this CPU can't interleave, but say so) */
	m->tgid = bpf_get_current_pid_tgid() >> 32;
	m->mm = st->vma.mm;
	m->pc = st->start_pc;
	m->sp = st->start_sp;
	m->rbp = st->start_rbp;
	m->rbp_used = st->rbp_used;
	m->first = first;
	m->caller = caller;
	m->n_reads = st->n_reads;
	__builtin_memcpy(m->reads, st->reads, sizeof(m->reads));
	m->id = id;
}

#endif /* MEMSIGHT_UNWIND_BPF_H */
