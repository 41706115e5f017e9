#include "alloc_tracer.hpp"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fmt/format.h>
#include <set>

#include "alloc_trace.skel.h"
#include "attach/libbpf_log.hpp"
#include "attach/percpu_counters.hpp"
#include "attach/code_scan.hpp"
#include "attach/known_allocators.hpp"
#include "attach/probe_site.hpp"
#include "core/sampler.hpp"
#include "attach/process_info.hpp"
#include "core/proc_maps.hpp"
#include "memsight/abi.h"

namespace memsight::attach {
namespace {

// Programs that need more than the others, left out in this order until the object loads: ms_sites is
// a uprobe.multi program (6.6+), ms_rtld and ms_own_new send signals (bpf_send_signal, 5.3+). What each
// leaves untraced is said at attach.
constexpr const char* kDemanding[] = {"ms_sites", "ms_rtld", "ms_own_new"};

// The functions that release a block in an allocator: where a delete variant may end.
constexpr const char* kReleases[] = {"free", "cfree", "sdallocx", "dallocx"};

// ms_rtld's cookie: from _dl_debug_state to _r_debug, bytes (both in the loader; 0 when it has none,
// which ms_rtld then reads as a state it never holds at).
uint64_t loader_cookie(const AllocatorModule& loader) {
  const auto& a = loader.facts.addresses;
  const auto rdebug = a.find("_r_debug"), state = a.find("_dl_debug_state");
  if (rdebug == a.end() || state == a.end()) return 0;
  return rdebug->second - state->second;
}

alloc_trace* open_skeleton(const TracerOptions& options, size_t demanding_left_out) {
  alloc_trace* skel = alloc_trace__open();
  if (!skel) return nullptr;
  skel->rodata->wake_bytes = wake_threshold(options);
  if (options.all) {
    skel->rodata->trace_all = 1;
    skel->rodata->skip_tgid = static_cast<uint32_t>(getpid());
  }
  size_shared_maps(options, {skel->maps.events, skel->maps.seen_stacks, skel->maps.unwind_rows, skel->maps.unwind_modules});
  if (options.sample_bytes) {
    skel->rodata->sample_bytes = options.sample_bytes;
    const std::vector<uint64_t> gaps = core::gap_quantiles(options.sample_bytes);
    std::copy(gaps.begin(), gaps.end(), skel->rodata->gap_quantiles);
    bpf_map__set_max_entries(skel->maps.sampled, options.sampled_blocks);
  } else {
    bpf_map__set_max_entries(skel->maps.sampled, 1);  // unused
  }
  for (size_t i = 0; i < demanding_left_out; ++i)
    bpf_program__set_autoload(bpf_object__find_program_by_name(skel->obj, kDemanding[i]), false);
  return skel;
}

}  // namespace

Result<std::unique_ptr<AllocTracer>> AllocTracer::open(const TracerOptions& options, core::Decoder& decoder) {
  capture_libbpf_log();
  int err = 0;
  for (size_t left_out = 0; left_out <= std::size(kDemanding); ++left_out) {
    alloc_trace* skel = open_skeleton(options, left_out);
    if (!skel) return tl::unexpected(libbpf_error("cannot open the BPF object", errno));
    err = alloc_trace__load(skel);
    if (err) {
      alloc_trace__destroy(skel);
      continue;
    }
    std::unique_ptr<AllocTracer> tracer(new AllocTracer(skel));
    if (auto started = tracer->start_ring(decoder); !started) return tl::unexpected(started.error());
    tracer->attach_process_events(options.all);
    tracer->unwind_ = std::make_unique<UnwindMaps>(skel->maps.unwind_rows, skel->maps.unwind_modules);
    return tracer;
  }
  return tl::unexpected(libbpf_error("cannot load the BPF programs", err));
}

AllocTracer::~AllocTracer() {
  for (bpf_link* link : links_) bpf_link__destroy(link);
  ring_.stop();
  alloc_trace__destroy(skel_);
}

bool AllocTracer::loaded(const char* program) const {
  const bpf_program* prog = bpf_object__find_program_by_name(skel_->obj, program);
  return prog && bpf_program__autoload(prog);
}

int AllocTracer::on_notice(void* ctx, void* data, size_t size) {
  ms_notice notice;
  if (size != sizeof(notice)) return 0;
  std::memcpy(&notice, data, sizeof(notice));
  static_cast<AllocTracer*>(ctx)->notices_.push_back(notice);
  return 0;
}

Result<void> AllocTracer::make_holdable(uint32_t pid) {
  const uint8_t yes = MS_HOLD_YES;
  if (bpf_map__update_elem(skel_->maps.holdable, &pid, sizeof(pid), &yes, sizeof(yes), BPF_ANY))
    return tl::unexpected(libbpf_error("cannot register the command as holdable", errno));
  return {};
}

Result<void> AllocTracer::attach_site(uint32_t pid, uint64_t address, uint32_t probe_pid) {
  auto where = locate_code(pid, address);
  if (!where) return tl::unexpected(where.error());
  if (!sites_.insert({probe_pid, where->dev, where->ino, where->offset}).second) return {};  // found in its code
  LIBBPF_OPTS(bpf_uprobe_opts, opts);
  bpf_link* link = bpf_program__attach_uprobe_opts(skel_->progs.ms_site, static_cast<pid_t>(probe_pid),
                                                   where->open_path.c_str(), where->offset, &opts);
  if (!link) {
    const int err = errno;
    if (err == ESRCH) return fail(ExitCode::kTargetMissing, fmt::format("pid {} exited", pid));
    return tl::unexpected(libbpf_error(fmt::format("cannot probe the call site {:#x} in {}", address, where->path), err));
  }
  links_.push_back(link);
  return {};
}

// Records go to the decoder; the loader's notices, on their own ring, to notices_.
Result<void> AllocTracer::start_ring(core::Decoder& decoder) {
  if (auto started = ring_.start(skel_->maps.events, decoder); !started) return started;
  return ring_.add(skel_->maps.notices, on_notice, this, "the loader notices ring");
}

// exec resets a target's state and fork starts a child's: without these tracepoints both go unseen,
// which is said once, not fatal.
void AllocTracer::attach_process_events(bool all) {
  for (bpf_program* prog : {skel_->progs.ms_exec, skel_->progs.ms_fork, all ? skel_->progs.ms_exit : nullptr}) {
    if (!prog) continue;
    bpf_link* link = bpf_program__attach(prog);
    if (!link) {
      notes_.push_back(fmt::format("tracepoint {} did not attach ({}): exec and fork of targets go unseen",
                                   bpf_program__name(prog), std::strerror(errno)));
      continue;
    }
    links_.push_back(link);
  }
}

// Why a module's role can't be probed with the programs that loaded, or nothing.
std::optional<std::string> AllocTracer::unprobeable(uint32_t pid, const AllocatorModule& module) const {
  if (module.role == Role::kLoader && !loaded("ms_rtld"))
    return fmt::format("pid {}: libraries mapped after memsight attached (LD_PRELOAD under -- COMMAND, dlopen) are "
                       "not traced: the loader probe did not load on this kernel", pid);
  if (module.role == Role::kOwnNew && !loaded("ms_own_new"))
    return fmt::format("pid {}: operator new of {} is not traced: its programs did not load on this kernel",
                       pid, module.allocator);
  return std::nullopt;
}

// The delete variants that end in a probed release are covered already: probing them too would
// release their block twice.
bool AllocTracer::covered_release(const AllocatorModule& module, uint64_t offset, uint64_t size) const {
  std::set<uint64_t> offsets;
  std::set<std::string> names;
  for (const char* r : kReleases) {
    std::vector<std::string> spelled = {r};
    for (const auto& prefix : known_prefixes()) spelled.push_back(prefix + r);
    for (const auto& name : spelled) {
      names.insert(name);
      if (auto f = module.facts.functions.find(name); f != module.facts.functions.end()) offsets.insert(f->second);
    }
  }
  return offsets.count(offset) || reaches_release(module.open_path, offset, size, offsets, names);
}

// Every call in the module's code to an operator new that an allocator serves itself, probed where it
// returns, in one link: the block is then seen from the first call on, in processes memsight cannot
// stop as well. The names are the PLT/GOT symbols; a static binary or the allocator itself calls its
// own entries directly.
Result<void> AllocTracer::attach_call_sites(uint32_t pid, const AllocatorModule& module) {
  std::set<std::string> names;
  std::set<uint64_t> own;
  for (const auto& name : symbols_of(Role::kOwnNew)) {
    if (!name.starts_with("_Zn")) continue;  // the new variants, not delete
    names.insert(name);
    if (auto f = module.facts.functions.find(name); f != module.facts.functions.end()) own.insert(f->second);
  }
  auto [found, fresh] = sites_in_file_.try_emplace({module.dev, module.ino});
  if (fresh) found->second = return_sites(module.open_path, own, names);
  enter_known_sites(pid, module, found->second);
  std::vector<uint64_t> offsets;
  for (uint64_t offset : found->second)
    if (sites_.insert({pid, module.dev, module.ino, offset}).second) offsets.push_back(offset);
  if (offsets.empty()) return {};
  LIBBPF_OPTS(bpf_uprobe_multi_opts, opts);
  opts.offsets = reinterpret_cast<const unsigned long*>(offsets.data());
  opts.cnt = offsets.size();
  bpf_link* link = bpf_program__attach_uprobe_multi(skel_->progs.ms_sites, static_cast<pid_t>(pid),
                                                    module.open_path.c_str(), nullptr, &opts);
  if (!link) {
    const int err = errno;
    if (err == ESRCH) return fail(ExitCode::kTargetMissing, fmt::format("pid {} exited before memsight attached", pid));
    return tl::unexpected(
        libbpf_error(fmt::format("cannot probe the {} operator new call sites of {}", offsets.size(), module.path), err));
  }
  links_.push_back(link);
  return {};
}

// The call sites of `module` as addresses of `pid`'s current image, entered in BPF's `sites` (best
// effort: a site left out costs one notice, and a stop of the command memsight started).
void AllocTracer::enter_known_sites(uint32_t pid, const AllocatorModule& module, const std::vector<uint64_t>& offsets) {
  const auto mm = mm_of_.find(pid);
  auto maps = mm == mm_of_.end() || offsets.empty() ? std::nullopt : read_file(fmt::format("/proc/{}/maps", pid));
  if (!maps) return;
  const core::ParsedMaps parsed = core::parse_maps(*maps);
  const uint8_t one = 1;
  for (const auto& m : parsed.mappings) {
    if (m.inode != module.ino || makedev(m.dev_major, m.dev_minor) != module.dev) continue;
    for (uint64_t offset : offsets) {
      if (offset < m.offset || offset - m.offset >= m.end - m.start) continue;
      const struct { uint64_t mm, address; } key = {mm->second, m.start + offset - m.offset};
      bpf_map__update_elem(skel_->maps.sites, &key, sizeof(key), &one, sizeof(one), BPF_ANY);
    }
  }
}

Result<std::vector<std::string>> AllocTracer::attach(uint32_t pid, const AllocatorModule& module) {
  const uint8_t one = 1;
  if (bpf_map__update_elem(skel_->maps.targets, &pid, sizeof(pid), &one, sizeof(one), BPF_ANY))
    return tl::unexpected(libbpf_error("cannot register the target", errno));
  if (module.role == Role::kCaller) {  // again after each exec: the sites get the new image's addresses
    if (!loaded("ms_sites"))
      return std::vector<std::string>{fmt::format("pid {}: operator new call sites are probed as they are first "
                                                  "called (no uprobe.multi before kernel 6.6): those first calls "
                                                  "are missed unless memsight started the process", pid)};
    if (auto placed = attach_call_sites(pid, module); !placed) return tl::unexpected(placed.error());
    return std::vector<std::string>{};
  }
  if (!attached_.insert({pid, module.dev, module.ino, module.role}).second) return std::vector<std::string>{};
  if (auto why = unprobeable(pid, module)) return std::vector<std::string>{*why};
  if (module.role == Role::kLoader && loader_cookie(module) == 0)
    return std::vector<std::string>{fmt::format("pid {}: {} has no _r_debug: libraries it maps later are not "
                                                "traced", pid, module.path)};
  std::vector<std::string> notes;
  std::set<uint64_t> attached;  // entry offsets: glibc's aligned_alloc is memalign, one probe each
  for (const ProbeSpec& probe : probe_table()) {
    if (probe.role != module.role) continue;
    const std::string name = symbol_name(probe, module.prefix);
    const auto found = module.facts.functions.find(name);
    if (found == module.facts.functions.end()) {
      if (probe.required)
        return fail(ExitCode::kTargetMissing, fmt::format("{} defines no {}", module.path, name));
      if (module.role == Role::kMalloc && module.allocator == "glibc" && probe.fn != MS_FN_FREE)
        notes.push_back(fmt::format("{} has no {}: not traced", module.path, name));
      continue;
    }
    if (!attached.insert(found->second).second) continue;  // an alias of a function already probed
    if (probe.release && covered_release(module, found->second, module.facts.sizes.at(name))) continue;
    LIBBPF_OPTS(bpf_uprobe_opts, opts);
    // The return probe first: a call that enters after the entry probe is in place is then sure to
    // be seen returning, so no call is left half-seen at attach time.
    for (const bool ret : {true, false}) {
      if (ret && !probe.returns) continue;
      opts.retprobe = ret;
      opts.bpf_cookie = probe.fn;
      if (module.role == Role::kLoader) opts.bpf_cookie = loader_cookie(module);
      bpf_program* prog = ret ? skel_->progs.ms_ret
                              : bpf_object__find_program_by_name(skel_->obj, probe.entry);
      const uint64_t site = probe.past_null_test ? past_null_test(module.open_path, found->second) : found->second;
      bpf_link* link =
          bpf_program__attach_uprobe_opts(prog, static_cast<pid_t>(pid), module.open_path.c_str(), site, &opts);
      if (!link) {
        const int err = errno;
        if (err == ESRCH) return fail(ExitCode::kTargetMissing, fmt::format("pid {} exited before memsight attached", pid));
        return tl::unexpected(libbpf_error(fmt::format("cannot attach to {} in {}", name, module.path), err));
      }
      links_.push_back(link);
    }
  }
  return notes;
}

BpfLosses AllocTracer::losses() const {
  return tracing_losses(skel_->maps.counters);
}

void AllocTracer::forget_process(uint32_t pid) {
  if (!skel_->rodata->sample_bytes) return;
  using Key = ms_sampled_key;
  const int fd = bpf_map__fd(skel_->maps.sampled);
  std::vector<Key> gone;
  Key key{}, next{};
  for (bool first = true; bpf_map_get_next_key(fd, first ? nullptr : &key, &next) == 0; first = false) {
    if (next.tgid == pid) gone.push_back(next);
    key = next;
  }
  for (const Key& k : gone) bpf_map_delete_elem(fd, &k);  // ENOENT: a free got there first
}

}  // namespace memsight::attach
