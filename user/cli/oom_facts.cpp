#include "oom_facts.hpp"

#include "attach/cgroup_memory.hpp"
#include "attach/clock.hpp"
#include "attach/process_info.hpp"
#include "core/kmsg_oom.hpp"

namespace memsight::cli {

namespace {
uint64_t unix_time_of(uint64_t monotonic) {
  return attach::realtime_ns() - (attach::monotonic_ns() - std::min(monotonic, attach::monotonic_ns()));
}
}  // namespace

core::OomFacts kill_facts(const attach::OomReport& r, uint64_t episode) {
  core::OomFacts f;
  f.episode = episode;
  f.time_unix_ns = unix_time_of(r.victim.time_ns);
  f.victim = r.victim;
  f.victim_cgroup = r.cgroup.path;
  const auto* summary = r.kernel_log && r.kernel_log->summary ? &*r.kernel_log->summary : nullptr;
  const bool memcg_kill = r.kernel_log && r.kernel_log->killed && r.kernel_log->killed->memcg;
  if (summary) f.domain_kind = std::string(core::oom_domain_kind(summary->constraint));
  else if (memcg_kill) f.domain_kind = "memcg";
  if (f.domain_kind == "memcg") f.domain_cgroup = summary && summary->oom_memcg ? summary->oom_memcg : r.cgroup.path;
  f.domain_memory = r.domain ? r.domain->memory : r.cgroup.memory;
  return f;
}

core::OomFacts failure_facts(const core::AllocFailure& a, uint64_t episode, const std::string& comm) {
  core::OomFacts f;
  f.episode = episode;
  f.time_unix_ns = unix_time_of(a.time_ns);
  f.victim.pid = f.victim.trigger_pid = a.pid;
  f.victim.tid = f.victim.trigger_tid = a.tid;
  f.victim.comm = f.victim.trigger_comm = comm;
  f.victim.anon_rss_bytes = attach::read_rss_anon_bytes(a.pid);
  if (auto cg = attach::read_cgroup_memory(a.pid)) f.victim_cgroup = cg->path;
  core::LimitFacts limits;
  limits.rlimit_as = a.rlimit_as_bytes;
  limits.rlimit_data = a.rlimit_data_bytes;
  limits.total_vm_bytes = a.total_vm_bytes;
  limits.data_vm_bytes = a.data_vm_bytes;
  attach::read_commit_limits(limits);
  core::FailureFacts failure;
  failure.fn = a.fn;
  failure.size = a.size;
  core::classify_refusal(limits, failure);
  f.failure = failure;
  return f;
}

}  // namespace memsight::cli
