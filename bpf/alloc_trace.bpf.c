// SPDX-License-Identifier: GPL-2.0
/* Exact allocation tracing: uprobes on the allocator's entry points, uretprobes on their returns.
 *
 *   entry (uprobe)                       return (uretprobe, one program for all)
 *   ------------------------------       ------------------------------------------------
 *   malloc calloc memalign ...  -> remember the call in `inflight`  -> stack + MS_REC_ALLOC
 *   realloc mremap              -> remember, MS_REC_MOVE_BEGIN      -> stack + MS_REC_MOVE_END
 *   free munmap                 -> MS_REC_FREE (no return probe)
 *   any of the above failing                                         -> stack + MS_REC_ALLOC_FAIL
 *   jemalloc/tcmalloc operator new (ms_own_new) -> remember  -> at its call site (ms_site): stack + ALLOC
 *   ld.so's rendezvous (ms_rtld), a new call site not probed yet -> a notice to user space (end of file)
 *
 * The stack is taken at the return: the user registers then are the caller's, so the frame-pointer walk
 * starts at the return address inside the direct caller (an entry probe would lose that frame). frames[0]
 * is the allocator's entry address remembered at entry.
 *
 * Nesting: glibc's allocator calls its own public entry points (realloc(p, 0) calls free, malloc of a large
 * block calls mmap). Only the outermost call is recorded: a call that starts while its thread has an older
 * call in flight deeper in the same stack (a lower stack pointer) is left to the outer one.
 */
#include "alloc_trace.bpf.h"
#include "sample.bpf.h"

char LICENSE[] SEC("license") = "GPL";

#define MAP_ANONYMOUS 0x20
#define MAP_FAILED ((__u64)-1)
/* Resource limit indices, asm-generic numbering (x86, arm64, riscv; alpha, mips and sparc differ). */
#define RLIMIT_DATA 2
#define RLIMIT_AS 9

/* An allocator's own new has no return probe, only one at its call site (ms_site), which a throw or a
 * site not probed yet skips: its frame is known to be running only while the slot it returns through
 * still holds its return address (a later call from the caller writes its own there). At the same
 * stack pointer, the same return address and size are a tail call inside new (new[] jumps to new) or
 * the same call again: either way the call remembered stands for it. */
static __always_inline int own_new_running(struct call *c, __u64 sp, __u64 size)
{
	__u64 slot = 0;

	if (bpf_probe_read_user(&slot, sizeof(slot), (void *)c->sp) || slot != c->ret_addr)
		return 0;
	return sp < c->sp || (sp == c->sp && size == c->size);
}

/* --all --mode exact: every process but memsight, whose own allocations must not feed it (the uprobes
 * are on the files, for every process mapping them). */
const volatile __u8 trace_all = 0;
const volatile __u32 skip_tgid = 0;

/* memsight itself, and under --all any other memsight: two host-wide exact traces would each record
 * the allocations the other makes recording it, a loop that feeds itself. */
static __always_inline int is_self(__u64 pid_tgid)
{
	char comm[16];

	if (!skip_tgid)
		return 0;
	if ((__u32)(pid_tgid >> 32) == skip_tgid)
		return 1;
	if (bpf_get_current_comm(comm, sizeof(comm)))
		return 0;
	return comm[0] == 'm' && comm[1] == 'e' && comm[2] == 'm' && comm[3] == 's' && comm[4] == 'i' &&
	       comm[5] == 'g' && comm[6] == 'h' && comm[7] == 't' && comm[8] == 0;
}

/* The thread's call in flight, if it is still live; a call whose return was never seen (its thread left
 * the function another way, or the probe was attached mid-call) is dropped and counted. */
static __always_inline struct call *live_call(__u64 sp, __u64 size)
{
	struct call *c = call_in_flight();

	if (!c)
		return 0;
	/* Deeper in the stack (a lower sp) is a call made from inside it; the same sp is a tail call from
	 * it (new[] jumps to new, realloc(NULL, n) to malloc): both belong to the outer call. An
	 * allocator's own new may have returned unseen: own_new_running says. */
	if (sp <= c->sp && bpf_ktime_get_ns() - c->time_ns < stale_ns && (!c->own_return || own_new_running(c, sp, size)))
		return c;
	call_done(c);
	count(MS_CNT_INFLIGHT_STALE);
	return 0;
}

/* Entry of an allocating call: remember it for the return probe. Returns 0 when the call is nested and
 * must not be recorded. */
static __always_inline int remember(struct pt_regs *ctx, __u64 cookie, __u64 size, __u64 old)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u64 sp = PT_REGS_SP(ctx);
	struct call c = {}, *slot;

	if (is_self(id))
		return 0;
	if (live_call(sp, size)) {
		count(MS_CNT_NESTED);
		return 0;
	}
	c.size = size;
	c.old = old;
	c.entry_ip = PT_REGS_IP(ctx);
	c.sp = sp;
	c.time_ns = bpf_ktime_get_ns();
	c.fn = (__u16)cookie;
	c.own_return = (cookie & MS_COOKIE_OWN_RETURN) != 0;
	/* At entry the stack pointer points at the return address: the caller's own frame, which a
	 * frame-pointer walk from inside operator new (no frame pointer in libstdc++) would skip. */
	if (c.fn == MS_FN_NEW && bpf_probe_read_user(&c.ret_addr, sizeof(c.ret_addr), (void *)sp))
		c.ret_addr = 0;
	if (sample_bytes && !sample_entry(&c))
		return 0;
	slot = bpf_task_storage_get(&inflight, bpf_get_current_task_btf(), 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!slot) {
		count(MS_CNT_INFLIGHT_FULL); /* no memory for the thread's slot */
		return 0;
	}
	*slot = c;
	return 1;
}

/* A release at function entry (free, munmap, the old side of realloc/mremap). */
static __always_inline void release(__u16 kind, __u16 fn, __u64 address, __u64 size)
{
	struct ms_free r = {};

	fill_header(&r.h, kind, sizeof(r));
	r.address = address;
	r.size = size;
	r.fn = fn;
	emit(&r, sizeof(r));
}

static __always_inline __u64 mul_or_max(__u64 a, __u64 b)
{
	__u64 limit;

	if (!b)
		return 0;
	limit = ~0ull / b;
	barrier_var(limit); /* keeps clang from turning the test into a 128-bit multiply BPF lacks */
	if (a > limit)
		return ~0ull; /* the call fails with ENOMEM; the size only has to be honest */
	return a * b;
}

/* Allocators whose size is their first argument (malloc, valloc, pvalloc, operator new and its
 * variants) share this program; the attach cookie says which function it is (MS_FN_*). Probing
 * operator new itself, not only the malloc it calls, makes the caller of `new` the direct caller:
 * libstdc++ has no frame pointers, so a walk from inside it would skip that frame. */
SEC("uprobe")
int BPF_UPROBE(ms_size0, __u64 size)
{
	return remember(ctx, bpf_get_attach_cookie(ctx), size, 0), 0;
}

/* memalign and aligned_alloc: the size is the second argument. */
SEC("uprobe")
int BPF_UPROBE(ms_size1, __u64 align, __u64 size)
{
	return remember(ctx, bpf_get_attach_cookie(ctx), size, 0), 0;
}

SEC("uprobe")
int BPF_UPROBE(ms_calloc, __u64 n, __u64 each)
{
	return remember(ctx, MS_FN_CALLOC, mul_or_max(n, each), 0), 0;
}

/* realloc and reallocarray: the old block leaves at the entry. Under --sample-bytes an old block that
 * was not taken is no block at all: the call is then a birth. */
static __always_inline void move_begin(struct pt_regs *ctx, __u16 fn, __u64 old, __u64 size)
{
	old = traced_block(old);
	if (!remember(ctx, fn, size, old) || !old)
		return;
	if (sample_bytes)
		forget_block(old);
	release(MS_REC_MOVE_BEGIN, fn, old, 0);
}

SEC("uprobe")
int BPF_UPROBE(ms_realloc, __u64 old, __u64 size)
{
	move_begin(ctx, MS_FN_REALLOC, old, size);
	return 0;
}

SEC("uprobe")
int BPF_UPROBE(ms_reallocarr, __u64 old, __u64 n, __u64 each)
{
	move_begin(ctx, MS_FN_REALLOCARRAY, old, mul_or_max(n, each));
	return 0;
}

SEC("uprobe")
int BPF_UPROBE(ms_posix_memal, __u64 out, __u64 align, __u64 size)
{
	return remember(ctx, MS_FN_POSIX_MEMALIGN, size, out), 0;
}

SEC("uprobe")
int BPF_UPROBE(ms_mmap, __u64 addr, __u64 len, __u64 prot, __u64 flags)
{
	/* File mappings are not heap: only anonymous memory is tracked. */
	if (flags & MAP_ANONYMOUS)
		remember(ctx, MS_FN_MMAP, len, 0);
	return 0;
}

SEC("uprobe")
int BPF_UPROBE(ms_mremap, __u64 old, __u64 old_len, __u64 new_len)
{
	if (remember(ctx, MS_FN_MREMAP, new_len, old))
		release(MS_REC_MOVE_BEGIN, MS_FN_MREMAP, old, old_len);
	return 0;
}

SEC("uprobe")
int BPF_UPROBE(ms_free, __u64 address)
{
	if (!address || is_self(bpf_get_current_pid_tgid()))
		return 0; /* free(NULL) does nothing */
	/* Sampling: only a taken block has a release to record; one nested in realloc(p, 0) was forgotten
	 * at realloc's entry. A block not taken costs this one delete. */
	if (sample_bytes) {
		if (forget_block(address))
			release(MS_REC_FREE, MS_FN_FREE, address, 0);
		return 0;
	}
	if (live_call(PT_REGS_SP(ctx), ~0ull)) {
		count(MS_CNT_NESTED); /* realloc(p, 0) freeing p: its MOVE_BEGIN said it already */
		return 0;
	}
	release(MS_REC_FREE, MS_FN_FREE, address, 0);
	return 0;
}

SEC("uprobe")
int BPF_UPROBE(ms_munmap, __u64 address, __u64 len)
{
	if (is_self(bpf_get_current_pid_tgid()))
		return 0;
	if (live_call(PT_REGS_SP(ctx), ~0ull)) {
		count(MS_CNT_NESTED);
		return 0;
	}
	release(MS_REC_FREE, MS_FN_MUNMAP, address, len);
	return 0;
}

static __always_inline void born(void *ctx, struct call *c, __u64 address)
{
	struct ms_alloc r = {};

	if (!keep_block(c->fn, address))
		return;
	r.stack_id = send_stack(ctx, c->entry_ip, c->ret_addr);
	fill_header(&r.h, MS_REC_ALLOC, sizeof(r));
	r.address = address;
	r.size = c->size;
	r.fn = c->fn;
	emit(&r, sizeof(r));
}

static __always_inline void moved(void *ctx, struct call *c, __u64 address)
{
	struct ms_move_end r = {};
	__u64 size = c->size;

	/* A new block that is not recorded (not taken, or no room to remember it): the old one still left,
	 * and address 0 with size 0 tells user space nothing comes back. */
	if (address && (c->drop_new || !keep_block(c->fn, address)))
		address = size = 0;
	if (address)
		r.stack_id = send_stack(ctx, c->entry_ip, c->ret_addr);
	fill_header(&r.h, MS_REC_MOVE_END, sizeof(r));
	r.address = address;
	r.size = size;
	r.fn = c->fn;
	emit(&r, sizeof(r));
}

/* A failed call, with what bounded it: the soft limits (RLIM_INFINITY reads as ~0) and how much of
 * them the process used. Failures are rare and urgent (an OOM may follow): the consumer wakes at once. */
static __always_inline void failed(void *ctx, struct call *c)
{
	struct task_struct *task = (void *)bpf_get_current_task();
	struct ms_alloc_fail r = {};

	r.stack_id = send_stack(ctx, c->entry_ip, c->ret_addr);
	fill_header(&r.h, MS_REC_ALLOC_FAIL, sizeof(r));
	r.size = c->size;
	r.rlimit_as = BPF_CORE_READ(task, signal, rlim[RLIMIT_AS].rlim_cur);
	r.rlimit_data = BPF_CORE_READ(task, signal, rlim[RLIMIT_DATA].rlim_cur);
	r.total_vm_pages = BPF_CORE_READ(task, mm, total_vm);
	r.data_vm_pages = BPF_CORE_READ(task, mm, data_vm);
	r.fn = c->fn;
	emit_now(&r, sizeof(r));
}

/* Allocators whose return value is the block (not posix_memalign's error, not realloc's move). */
static __always_inline int returns_block(__u16 fn)
{
	return fn == MS_FN_MALLOC || fn == MS_FN_CALLOC || fn == MS_FN_ALIGNED_ALLOC || fn == MS_FN_MEMALIGN ||
	       fn == MS_FN_VALLOC || fn == MS_FN_PVALLOC;
}

/* The return of a call that --sample-bytes skipped (or of the allocator a skipped operator new called):
 * nothing is recorded, unless it failed. */
static __always_inline void skipped_return(struct pt_regs *ctx, __u64 ret)
{
	struct sampler *st = bpf_task_storage_get(&samplers, bpf_get_current_task_btf(), 0, 0);
	struct call call;

	if (!st || !st->skipped.time_ns)
		return;
	if (PT_REGS_SP(ctx) <= st->skipped.sp &&
	    (st->skipped.fn != MS_FN_NEW || !returns_block((__u16)bpf_get_attach_cookie(ctx))))
		return; /* a call nested in the skipped one */
	call = st->skipped;
	st->skipped.time_ns = 0;
	if (call.fn == MS_FN_POSIX_MEMALIGN ? ret != 0 : !ret && call.size)
		failed(ctx, &call);
}

SEC("uretprobe")
int BPF_URETPROBE(ms_ret, __u64 ret)
{
	struct call *c = call_in_flight(), call;
	__u64 address = ret;

	if (!c) {
		if (sample_bytes)
			skipped_return(ctx, ret);
		return 0;
	}
	/* The return of the remembered call itself: after it returns, the stack pointer is above the one
	 * seen at its entry; a nested call's return is below it. */
	if (PT_REGS_SP(ctx) <= c->sp) {
		/* operator new has no return probe: a uretprobe replaces the return address on the stack, and
		 * C++ exception unwinding through that frame (a failing new throws bad_alloc; nothrow new
		 * catches it from the throwing one) finds no unwind info there and terminates the program.
		 * The allocator new calls returns the block for it instead. An allocator's own new (jemalloc,
		 * tcmalloc) gets its block at its call site (ms_site): what it calls inside is its own. */
		if (c->fn != MS_FN_NEW || c->own_return || !returns_block((__u16)bpf_get_attach_cookie(ctx)))
			return 0;
		call = *c;
		call_done(c);
		if (ret)
			born(ctx, &call, ret);
		else
			failed(ctx, &call);
		return 0;
	}
	call = *c;
	call_done(c);

	/* Failures branch off only where a success would not go: a successful call pays nothing more. */
	switch (call.fn) {
	case MS_FN_POSIX_MEMALIGN:
		if (ret != 0) { /* an errno: ENOMEM, or EINVAL for a bad alignment */
			failed(ctx, &call);
			return 0;
		}
		if (bpf_probe_read_user(&address, sizeof(address), (void *)call.old))
			return 0;
		break;
	case MS_FN_MMAP:
		if (ret == MAP_FAILED) {
			failed(ctx, &call);
			return 0;
		}
		break;
	case MS_FN_MREMAP:
		if (ret == MAP_FAILED) {
			moved(ctx, &call, 0); /* the old mapping stays */
			failed(ctx, &call);
			return 0;
		}
		moved(ctx, &call, ret);
		return 0;
	case MS_FN_REALLOC:
	case MS_FN_REALLOCARRAY:
		if (call.old) {
			moved(ctx, &call, ret);
			if (!ret && call.size) { /* realloc(p, 0) returning NULL freed p: no failure */
				keep_block(call.fn, call.old); /* the old block stays */
				failed(ctx, &call);
			}
			return 0;
		}
		break;
	}
	if (address)
		born(ctx, &call, address);
	else if (call.size) /* C lets a zero-byte request return NULL */
		failed(ctx, &call);
	return 0;
}

/* For the process tracepoints, whose task is the current one (exec, exit) or its parent (fork). */
static __always_inline int is_target(__u32 tgid)
{
	if (trace_all)
		return !is_self(bpf_get_current_pid_tgid());
	return bpf_map_lookup_elem(&targets, &tgid) != 0;
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(ms_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	struct ms_header h;

	if (!is_target(BPF_CORE_READ(p, tgid)))
		return 0;
	forget_process(BPF_CORE_READ(p, tgid));
	fill_header(&h, MS_REC_EXEC, sizeof(h));
	emit_now(&h, sizeof(h)); /* as for stacks */
	return 0;
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(ms_fork, struct task_struct *parent, struct task_struct *child)
{
	struct ms_fork r = {};
	__u32 child_tgid = BPF_CORE_READ(child, tgid);

	/* A new thread shares the process: only a new process is a fork. */
	if (!is_target(BPF_CORE_READ(parent, tgid)) || child_tgid == BPF_CORE_READ(parent, tgid))
		return 0;
	fill_header(&r.h, MS_REC_FORK, sizeof(r));
	r.child_tgid = child_tgid;
	emit(&r, sizeof(r));
	return 0;
}

/* --all: a process that exits is let go (a host runs many short-lived ones); named targets' exits are
 * watched through pidfds instead. */
SEC("tp_btf/sched_process_exit")
int BPF_PROG(ms_exit, struct task_struct *p, bool group_dead)
{
	if (trace_all && group_dead && is_target(p->tgid))
		emit_exit(p);
	return 0;
}

/* ---- C++ exceptions and operator new (ms_unwind) ----
 * An allocator's own operator new (jemalloc, tcmalloc) is not given a uretprobe: that replaces its
 * return address on the stack with the kernel's trampoline, which has no unwind information, so a
 * bad_alloc thrown through it would make the unwinder give up and terminate the program (and putting
 * the address back at the throw needs bpf_probe_write_user, which kernels in lockdown refuse). Its
 * block is read at the return site in the caller instead (ms_site). A new that throws never gets
 * there: every throw starts in the unwinder (_Unwind_RaiseException & co), where the new in flight
 * whose frame the throw is leaving is recorded as failed and forgotten. */
SEC("uprobe")
int BPF_UPROBE(ms_unwind)
{
	struct call *c = call_in_flight(), call;

	if (c && c->own_return && own_new_running(c, PT_REGS_SP(ctx), ~0ull)) {
		call = *c;
		call_done(c);
		failed(ctx, &call);
	}
	return 0;
}

/* ---- Holding a process while user space attaches (ms_rtld, ms_own_new) ----
 * Some probes can only be placed once the process shows what it needs: an allocator mapped after exec
 * (LD_PRELOAD), a new call site whose return gives the block (ms_site). The program writes a notice
 * (tgid and address) to `notices`, which wakes user space at once; for a process memsight started
 * (`holdable`), it also stops it with SIGSTOP until user space has attached and sends SIGCONT. A
 * guardian process of memsight's sends SIGCONT if memsight dies first (attach/hold_guard.hpp). */

/* key: tgid; value: MS_HOLD_*. Processes that may be stopped: the command memsight started (exec keeps
 * the pid). Others (-p targets) get notices only. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u8);
} holdable SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096 * 16);
} notices SEC(".maps");

/* key: the process's address space and a return address in it; value: unused. The call sites of an
 * allocator's new that user space has probed (found in the code, entered here for the mm a notice
 * named) or been told of. The address space (mm) makes an exec a fresh start. */
struct site_key {
	__u64 mm;
	__u64 address;
};
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct site_key);
	__type(value, __u8);
} sites SEC(".maps");

#define SIGSTOP 19

static __always_inline void notify(__u32 kind, __u64 address)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct task_struct *task = (void *)bpf_get_current_task();
	struct ms_notice n = {.tgid = tgid, .kind = kind, .address = address, .mm = (__u64)BPF_CORE_READ(task, mm)};
	__u8 *hold = bpf_map_lookup_elem(&holdable, &tgid);

	if (bpf_ringbuf_output(&notices, &n, sizeof(n), BPF_RB_FORCE_WAKEUP)) {
		count(MS_CNT_RINGBUF_FULL);
		return;
	}
	if (hold && *hold != MS_HOLD_NO)
		bpf_send_signal(SIGSTOP); /* the whole process: it resumes on user space's SIGCONT */
}

/* ld.so calls _dl_debug_state (an empty function, there for debuggers) when its list of libraries
 * changes: with r_state RT_ADD before mapping, RT_CONSISTENT after, before any of the new code runs.
 * The attach cookie is the distance from _dl_debug_state to the loader's _r_debug, whose r_state
 * (byte 24, glibc's struct r_debug on 64-bit) tells the two apart. */
#define R_DEBUG_STATE_OFFSET 24
#define RT_CONSISTENT 0

SEC("uprobe")
int BPF_UPROBE(ms_rtld)
{
	__u64 r_debug = PT_REGS_IP(ctx) + (__s64)bpf_get_attach_cookie(ctx);
	__s32 state = -1;

	if (is_self(bpf_get_current_pid_tgid()) ||
	    bpf_probe_read_user(&state, sizeof(state), (void *)(r_debug + R_DEBUG_STATE_OFFSET)) ||
	    state != RT_CONSISTENT)
		return 0;
	notify(MS_NOTICE_LIBRARIES, 0);
	return 0;
}

/* An allocator's own operator new (jemalloc, tcmalloc): remembered like any allocation, and its block
 * read where it returns to (ms_site). The first call from a call site that has no probe yet says where
 * one is needed; the process memsight started waits for it, so even that call is seen. */
SEC("uprobe")
int BPF_UPROBE(ms_own_new, __u64 size)
{
	struct task_struct *task = (void *)bpf_get_current_task();
	struct site_key key = {.mm = (__u64)BPF_CORE_READ(task, mm)};
	__u8 one = 1;

	if (!remember(ctx, MS_FN_NEW | MS_COOKIE_OWN_RETURN, size, 0))
		return 0;
	if (bpf_probe_read_user(&key.address, sizeof(key.address), (void *)PT_REGS_SP(ctx)))
		return 0;
	if (bpf_map_lookup_elem(&sites, &key))
		return 0;
	if (!bpf_map_update_elem(&sites, &key, &one, BPF_NOEXIST))
		notify(MS_NOTICE_NEW_SITE, key.address);
	return 0;
}

/* The instruction a new of an allocator returns to: the block is in the return register. Only the
 * return of the call remembered at this thread's entry counts: the same return address, and the stack
 * pointer just above the one seen at entry (the return address popped). */
static __always_inline int at_site(struct pt_regs *ctx)
{
	struct call *c = call_in_flight(), call;
	__u64 ret = PT_REGS_RC(ctx);

	if (!c || !c->own_return || c->ret_addr != PT_REGS_IP(ctx) || PT_REGS_SP(ctx) != c->sp + 8)
		return 0;
	call = *c;
	call_done(c);
	if (ret)
		born(ctx, &call, ret);
	else if (call.size)
		failed(ctx, &call); /* nothrow new */
	return 0;
}

/* One site, placed when its first call said so (a notice). */
SEC("uprobe")
int BPF_UPROBE(ms_site)
{
	return at_site(ctx);
}

/* Every site found in a file's code at attach (attach/code_scan.hpp), in one link per file. */
SEC("uprobe.multi")
int BPF_UPROBE(ms_sites)
{
	return at_site(ctx);
}
