#include "oom_report.hpp"

#include <fmt/format.h>

#include "report/json_util.hpp"
#include "report/report.hpp"

namespace memsight::report {
namespace {
constexpr size_t kTextFrames = 8;  // frames of a stack in the text report (JSON has them all)
}  // namespace

std::string render_oom_json(const core::OomFacts& f, const core::OomExplanation& why) {
  const auto& v = f.victim;
  std::optional<uint64_t> limit;
  if (f.domain_memory) limit = f.domain_memory->limit_bytes;
  Json stacks = Json::array();
  for (const auto& st : why.stacks) {
    Json one{{"role", st.role}};
    one.update(stack_json(st.row));
    stacks.push_back(std::move(one));
  }
  Json doc{{"schema", "memsight.oom/1"},
           {"episode", f.episode},
           {"time_unix_ns", f.time_unix_ns},
           {"victim",
            Json{{"pid", v.pid},
                 {"comm", v.comm},
                 {"cgroup", or_null(f.victim_cgroup)},
                 {"anon_rss_bytes", or_null(v.anon_rss_bytes)},
                 {"file_rss_bytes", or_null(v.file_rss_bytes)},
                 {"shmem_rss_bytes", or_null(v.shmem_rss_bytes)},
                 {"oom_score_adj", v.oom_score_adj}}},
           {"trigger", Json{{"pid", v.trigger_pid}, {"comm", v.trigger_comm}}},
           {"domain", Json{{"kind", f.domain_kind}, {"cgroup", or_null(f.domain_cgroup)}, {"limit_bytes", or_null(limit)}}},
           {"verdict", why.verdict},
           {"subtype", or_null(why.subtype)},
           {"confidence", why.confidence},
           {"summary", why.summary},
           {"traced_heap_bytes", or_null(why.traced_heap_bytes)},
           {"explained_fraction", or_null(why.explained_fraction)},
           {"stacks", stacks}};
  // Beyond the contract's keys (readers ignore what they don't know): what kind of event, the rules
  // that also matched, and each verdict's particulars.
  doc["event"] = f.failure ? "alloc_failure" : "oom_kill";
  doc["factors"] = why.factors;
  doc["grower_pid"] = or_null(why.grower_pid);
  doc["suggested_limit_bytes"] = or_null(why.suggested_limit_bytes);
  if (f.failure)
    doc["failure"] = Json{{"function", f.failure->fn},
                          {"size", f.failure->size},
                          {"refused_by", f.failure->refused_by},
                          {"limit_bytes", or_null(f.failure->limit_bytes)},
                          {"in_use_bytes", f.failure->in_use_bytes}};
  return doc.dump(-1, ' ', false, Json::error_handler_t::replace);
}

std::string render_oom_text(const core::OomFacts& f, const core::OomExplanation& why) {
  std::string where = f.domain_kind;
  if (f.domain_cgroup) {
    where = "cgroup " + *f.domain_cgroup;
    if (f.domain_memory && f.domain_memory->limit_bytes)
      where += fmt::format(" (limit {}{})", human_bytes(static_cast<double>(*f.domain_memory->limit_bytes)),
                           f.victim_cgroup == f.domain_cgroup ? ", its own" : "");
  }
  if (f.failure)
    where = fmt::format("{} bytes refused by {}{}", f.failure->size, f.failure->refused_by,
                        f.failure->limit_bytes
                            ? fmt::format(" (limit {})", human_bytes(static_cast<double>(*f.failure->limit_bytes)))
                            : "");
  const char* what = f.failure ? "Allocation failed" : "OOM kill";
  std::string out = fmt::format("{} {} - pid {} \"{}\", {}\n{}\n", what, local_time(f.time_unix_ns, "%H:%M:%S"),
                                f.victim.pid, f.victim.comm, where, why.summary);
  for (const auto& st : why.stacks) {
    // Outward from the allocator, a run of one function (recursion) shown once with its count.
    std::vector<std::pair<std::string, size_t>> runs;
    for (const auto& fr : st.row.symbols) {
      if (fr.inlined) continue;
      std::string name = fr.function ? *fr.function : fmt::format("{:#x}", fr.address);
      if (!runs.empty() && runs.back().first == name) ++runs.back().second;
      else runs.emplace_back(std::move(name), 1);
    }
    std::string path;
    for (size_t i = 0; i < runs.size() && i < kTextFrames; ++i)
      path += (i ? " <- " : "") + runs[i].first + (runs[i].second > 1 ? fmt::format(" (x{})", runs[i].second) : "");
    if (runs.size() > kTextFrames) path += " <- ...";
    const std::string held = st.role == "failed_call" && f.failure
                                 ? fmt::format("asked for {}", human_bytes(static_cast<double>(f.failure->size)))
                                 : fmt::format("{} in {} objects", human_bytes(static_cast<double>(st.row.outstanding_bytes)),
                                               st.row.outstanding_allocs);
    out += fmt::format("  [{}] pid {}: {}  {}\n", st.role, st.row.pid, held, path);
  }
  return out + fmt::format("(confidence {}; episode {})\n", why.confidence, f.episode);
}

}  // namespace memsight::report
