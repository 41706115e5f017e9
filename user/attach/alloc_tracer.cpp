#include "alloc_tracer.hpp"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fmt/format.h>
#include <set>

#include "alloc_trace.skel.h"
#include "attach/libbpf_log.hpp"
#include "attach/percpu_counters.hpp"
#include "attach/probe_site.hpp"
#include "memsight/abi.h"

namespace memsight::attach {
namespace {

// The probe table: one row per allocator function. Return probes share one program (ms_ret), which
// tells the calls apart by what the entry remembered.
struct ProbeSpec {
  Library library;
  const char* symbol;
  const char* entry;  // BPF program for the entry
  uint16_t fn;        // MS_FN_*: the attach cookie of programs shared by several functions
  bool returns;       // also probe the return
  bool required;      // a module without it is not an allocator memsight can use
  bool past_null_test = false;  // probe after a leading `if (!p) return` (free: see probe_site.hpp)
};

constexpr ProbeSpec kProbes[] = {
    {Library::kLibc, "malloc", "ms_size0", MS_FN_MALLOC, true, true},
    {Library::kLibc, "calloc", "ms_calloc", MS_FN_CALLOC, true, false},
    {Library::kLibc, "realloc", "ms_realloc", MS_FN_REALLOC, true, false},
    {Library::kLibc, "reallocarray", "ms_reallocarr", MS_FN_REALLOCARRAY, true, false},
    {Library::kLibc, "posix_memalign", "ms_posix_memal", MS_FN_POSIX_MEMALIGN, true, false},
    {Library::kLibc, "aligned_alloc", "ms_size1", MS_FN_ALIGNED_ALLOC, true, false},
    {Library::kLibc, "memalign", "ms_size1", MS_FN_MEMALIGN, true, false},
    {Library::kLibc, "valloc", "ms_size0", MS_FN_VALLOC, true, false},
    {Library::kLibc, "pvalloc", "ms_size0", MS_FN_PVALLOC, true, false},
    {Library::kLibc, "mmap", "ms_mmap", MS_FN_MMAP, true, false},
    {Library::kLibc, "mremap", "ms_mremap", MS_FN_MREMAP, true, false},
    {Library::kLibc, "free", "ms_free", MS_FN_FREE, false, true, true},
    {Library::kLibc, "munmap", "ms_munmap", MS_FN_MUNMAP, false, false},
    // operator delete ends in free, which is probed: only the allocating side is needed here. No return
    // probe on new: it throws, and a uretprobe breaks unwinding through it (see ms_ret); the allocator
    // it calls reports its block.
    {Library::kLibstdcxx, "_Znwm", "ms_size0", MS_FN_NEW, false, false},
    {Library::kLibstdcxx, "_Znam", "ms_size0", MS_FN_NEW, false, false},
    {Library::kLibstdcxx, "_ZnwmRKSt9nothrow_t", "ms_size0", MS_FN_NEW, false, false},
    {Library::kLibstdcxx, "_ZnamRKSt9nothrow_t", "ms_size0", MS_FN_NEW, false, false},
    {Library::kLibstdcxx, "_ZnwmSt11align_val_t", "ms_size0", MS_FN_NEW, false, false},
    {Library::kLibstdcxx, "_ZnamSt11align_val_t", "ms_size0", MS_FN_NEW, false, false},
    {Library::kLibstdcxx, "_ZnwmSt11align_val_tRKSt9nothrow_t", "ms_size0", MS_FN_NEW, false, false},
    {Library::kLibstdcxx, "_ZnamSt11align_val_tRKSt9nothrow_t", "ms_size0", MS_FN_NEW, false, false},
};

}  // namespace

Result<std::unique_ptr<AllocTracer>> AllocTracer::open(const TracerOptions& options, core::Decoder& decoder) {
  capture_libbpf_log();
  alloc_trace* skel = alloc_trace__open();
  if (!skel) return tl::unexpected(libbpf_error("cannot open the BPF object", errno));
  std::unique_ptr<AllocTracer> tracer(new AllocTracer(skel));
  skel->rodata->wake_bytes = std::min(options.wake_bytes, options.ring_bytes / 8);
  bpf_map__set_max_entries(skel->maps.events, options.ring_bytes);
  bpf_map__set_max_entries(skel->maps.inflight, options.max_threads);
  bpf_map__set_max_entries(skel->maps.seen_stacks, options.stack_cache);
  size_unwind_maps(skel->maps.unwind_rows, skel->maps.unwind_modules, options.unwind_rows, options.unwind_files);
  if (int err = alloc_trace__load(skel)) return tl::unexpected(libbpf_error("cannot load the BPF programs", err));
  if (auto started = tracer->ring_.start(skel->maps.events, decoder); !started)
    return tl::unexpected(started.error());
  tracer->attach_process_events();
  tracer->unwind_ = std::make_unique<UnwindMaps>(skel->maps.unwind_rows, skel->maps.unwind_modules);
  return tracer;
}

AllocTracer::~AllocTracer() {
  for (bpf_link* link : links_) bpf_link__destroy(link);
  ring_.stop();
  alloc_trace__destroy(skel_);
}

// exec resets a target's state and fork starts a child's: without these tracepoints both go unseen,
// which is said once, not fatal.
void AllocTracer::attach_process_events() {
  for (bpf_program* prog : {skel_->progs.ms_exec, skel_->progs.ms_fork}) {
    bpf_link* link = bpf_program__attach(prog);
    if (!link) {
      notes_.push_back(fmt::format("tracepoint {} did not attach ({}): exec and fork of targets go unseen",
                                   bpf_program__name(prog), std::strerror(errno)));
      continue;
    }
    links_.push_back(link);
  }
}

Result<std::vector<std::string>> AllocTracer::attach(uint32_t pid, const AllocatorModule& module) {
  const uint8_t one = 1;
  if (bpf_map__update_elem(skel_->maps.targets, &pid, sizeof(pid), &one, sizeof(one), BPF_ANY))
    return tl::unexpected(libbpf_error("cannot register the target", errno));
  std::vector<std::string> notes;
  std::set<uint64_t> attached;  // entry offsets: glibc's aligned_alloc is memalign, one probe each
  for (const ProbeSpec& probe : kProbes) {
    if (probe.library != module.library) continue;
    const auto found = module.facts.functions.find(probe.symbol);
    if (found == module.facts.functions.end()) {
      if (probe.required)
        return fail(ExitCode::kTargetMissing, fmt::format("{} defines no {}", module.path, probe.symbol));
      if (probe.library == Library::kLibc)
        notes.push_back(fmt::format("{} has no {}: not traced", module.path, probe.symbol));
      continue;
    }
    if (!attached.insert(found->second).second) continue;  // an alias of a function already probed
    LIBBPF_OPTS(bpf_uprobe_opts, opts);
    // The return probe first: a call that enters after the entry probe is in place is then sure to
    // be seen returning, so no call is left half-seen at attach time.
    for (const bool ret : {true, false}) {
      if (ret && !probe.returns) continue;
      opts.retprobe = ret;
      opts.bpf_cookie = probe.fn;
      bpf_program* prog = ret ? skel_->progs.ms_ret
                              : bpf_object__find_program_by_name(skel_->obj, probe.entry);
      const uint64_t site = probe.past_null_test ? past_null_test(module.open_path, found->second) : found->second;
      bpf_link* link =
          bpf_program__attach_uprobe_opts(prog, static_cast<pid_t>(pid), module.open_path.c_str(), site, &opts);
      if (!link) {
        const int err = errno;
        if (err == ESRCH) return fail(ExitCode::kTargetMissing, fmt::format("pid {} exited before memsight attached", pid));
        return tl::unexpected(libbpf_error(fmt::format("cannot attach to {} in {}", probe.symbol, module.path), err));
      }
      links_.push_back(link);
    }
  }
  return notes;
}

BpfLosses AllocTracer::losses() const {
  return tracing_losses(skel_->maps.counters);
}

}  // namespace memsight::attach
