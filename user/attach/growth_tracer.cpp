#include "growth_tracer.hpp"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cerrno>
#include <cstring>
#include <fmt/format.h>

#include "attach/libbpf_log.hpp"
#include "attach/percpu_counters.hpp"
#include "core/sampler.hpp"
#include "growth_trace.skel.h"
#include "memsight/abi.h"

namespace memsight::attach {
namespace {

// The tracepoint table: what each program sees, and whether growth mode means anything without it.
struct TracepointSpec {
  const char* program;
  const char* what;  // for the note when it does not attach
  bool required;
};

constexpr TracepointSpec kTracepoints[] = {
    {"ms_fault_user", "page faults in user code", true},
    {"ms_rss", "the resident-memory counters", true},
    {"ms_fault_kernel", "page faults the kernel takes on user memory (read() into a new buffer)", false},
    {"ms_sys_enter", "munmap, madvise, brk and MAP_FIXED releases", false},
    {"ms_sys_exit", "mremap moves", false},
    {"ms_growth_exec", "exec", false},
    {"ms_growth_fork", "children of named targets", false},
    {"ms_growth_exit", "process exits", false},
};

// p * 2^32 for p = 1 - exp(-bytes / mean): the chance that a Poisson process over bytes with that mean
// gap puts a sample point inside a fault of `bytes`. Saturates at ~0u, which BPF reads as "always".
uint32_t take_below(uint64_t bytes, uint64_t mean) {
  const double scaled = core::sample_probability(bytes, mean) * 4294967296.0;
  return scaled >= 4294967295.0 ? ~0u : static_cast<uint32_t>(scaled);
}

}  // namespace

Result<std::unique_ptr<GrowthTracer>> GrowthTracer::open(const GrowthOptions& options, core::Decoder& decoder) {
  capture_libbpf_log();
  growth_trace* skel = growth_trace__open();
  if (!skel) return tl::unexpected(libbpf_error("cannot open the growth-mode BPF object", errno));
  std::unique_ptr<GrowthTracer> tracer(new GrowthTracer(skel));
  skel->rodata->wake_bytes = wake_threshold(options);
  skel->rodata->trace_all = options.all ? 1 : 0;
  skel->rodata->cgroup_id = options.cgroup_id;
  skel->rodata->cgroup_level = options.cgroup_level;
  skel->rodata->self_tgid = static_cast<uint32_t>(getpid());
  if (options.sample_bytes) {
    skel->rodata->take_page = take_below(4096, options.sample_bytes);
    skel->rodata->take_huge = take_below(2u << 20, options.sample_bytes);
  }
  size_shared_maps(options, {skel->maps.events, skel->maps.seen_stacks, skel->maps.unwind_rows, skel->maps.unwind_modules});
  if (int err = growth_trace__load(skel))
    return tl::unexpected(libbpf_error("cannot load the growth-mode BPF programs", err));
  if (auto started = tracer->ring_.start(skel->maps.events, decoder); !started)
    return tl::unexpected(started.error());
  if (auto attached = tracer->attach_all(); !attached) return tl::unexpected(attached.error());
  tracer->unwind_ = std::make_unique<UnwindMaps>(skel->maps.unwind_rows, skel->maps.unwind_modules);
  return tracer;
}

GrowthTracer::~GrowthTracer() {
  for (bpf_link* link : links_) bpf_link__destroy(link);
  ring_.stop();
  growth_trace__destroy(skel_);
}

Result<void> GrowthTracer::attach_all() {
  for (const TracepointSpec& tp : kTracepoints) {
    bpf_program* prog = bpf_object__find_program_by_name(skel_->obj, tp.program);
    bpf_link* link = prog ? bpf_program__attach(prog) : nullptr;
    if (link) {
      links_.push_back(link);
      continue;
    }
    const int err = prog ? errno : ENOENT;
    if (tp.required)
      return fail(ExitCode::kPrivilege,
                  fmt::format("growth mode needs the tracepoint for {} ({}: {}); trace named processes in "
                              "exact mode instead (without --all or --mode growth)",
                              tp.what, tp.program, std::strerror(err)));
    notes_.push_back(fmt::format("{} go unseen in growth mode: {} did not attach ({})", tp.what, tp.program,
                                 std::strerror(err)));
  }
  return {};
}

Result<void> GrowthTracer::add_target(uint32_t pid) {
  const uint8_t one = 1;
  if (bpf_map__update_elem(skel_->maps.targets, &pid, sizeof(pid), &one, sizeof(one), BPF_ANY))
    return tl::unexpected(libbpf_error("cannot register the target", errno));
  return {};
}

BpfLosses GrowthTracer::losses() const {
  return tracing_losses(skel_->maps.counters);
}

}  // namespace memsight::attach
