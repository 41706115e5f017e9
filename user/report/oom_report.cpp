#include "oom_report.hpp"

#include <fmt/format.h>

#include "report/json_util.hpp"
#include "report/report.hpp"

namespace memsight::report {

std::string render_oom_json(const core::OomFacts& f, const core::OomExplanation& why) {
  const auto& v = f.victim;
  std::optional<uint64_t> limit;
  if (f.domain_memory) limit = f.domain_memory->limit_bytes;
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
           {"stacks", Json::array()}};
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
  return fmt::format("OOM kill {} - pid {} \"{}\", {}\n{}\n", local_time(f.time_unix_ns, "%H:%M:%S"), f.victim.pid, f.victim.comm,
                     where, why.summary) +
         fmt::format("(confidence {}; episode {})\n", why.confidence, f.episode);
}

}  // namespace memsight::report
