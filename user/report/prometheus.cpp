// The Prometheus text exposition format 0.0.4: for each metric family "# HELP", "# TYPE", then one
// `name{label="value",...} number` line per series. Families with no series are left out.
//
//   memsight_process_outstanding_bytes / _allocs {pid,comm,cgroup,container_id}   gauge, from the tracker
//   memsight_process_rss_anon_bytes {pid,comm,cgroup,container_id}                 gauge, when known
//   memsight_cgroup_usage_bytes / _limit_bytes {cgroup}        gauge, when known (limit: when limited)
//   memsight_stack_outstanding_bytes {pid,stack,leaf,verdict}  gauge, the top N stacks only
//   memsight_stacks {verdict}                                  gauge, every verdict, 0 included
//   memsight_lost_*_total, memsight_oom_kills_total            counters
//   memsight_recorder_*_total                                  counters, when the recorder gives them
//   memsight_snapshot_timestamp_seconds                        gauge, when the numbers were taken
//
// Series are bounded: processes are the traced ones, stacks at most extras.top_stacks, verdicts six.
#include <fmt/format.h>

#include <algorithm>
#include <map>

#include "encoders.hpp"

namespace memsight::report {
namespace {

using Labels = std::vector<std::pair<const char*, std::string>>;

struct Series {
  Labels labels;
  std::string value;
};

// Label values may hold any UTF-8; '\', '"' and line feed are escaped. Bytes that are not UTF-8 (a
// comm is just 16 bytes) become '?', which the format cannot carry.
std::string escape_label(std::string_view in) {
  std::string out;
  for (size_t i = 0; i < in.size();) {
    const auto c = static_cast<unsigned char>(in[i]);
    const size_t len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 0;
    bool valid = len != 0 && i + len <= in.size();
    for (size_t k = 1; valid && k < len; ++k) valid = (static_cast<unsigned char>(in[i + k]) >> 6) == 0x2;
    if (!valid) {
      out += '?', ++i;
      continue;
    }
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '"': out += "\\\""; break;
      case '\n': out += "\\n"; break;
      default: out.append(in.substr(i, len));
    }
    i += len;
  }
  return out;
}

void family(std::string& out, std::string_view name, std::string_view type, std::string_view help,
            const std::vector<Series>& series) {
  if (series.empty()) return;
  out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
  for (const auto& s : series) {
    out += name;
    if (!s.labels.empty()) {
      out += '{';
      for (size_t i = 0; i < s.labels.size(); ++i) {
        out += fmt::format("{}{}=\"{}\"", i ? "," : "", s.labels[i].first, escape_label(s.labels[i].second));
      }
      out += '}';
    }
    out += ' ' + s.value + '\n';
  }
}

void one(std::string& out, std::string_view name, std::string_view type, std::string_view help,
         uint64_t value) {
  family(out, name, type, help, {Series{{}, std::to_string(value)}});
}

void render_processes(std::string& out, const core::Snapshot& snap) {
  std::vector<Series> bytes, allocs, rss;
  for (const auto& p : snap.processes) {
    const Labels labels{{"pid", std::to_string(p.pid)},
                        {"comm", p.comm.value_or("")},
                        {"cgroup", p.cgroup ? p.cgroup->path : ""},
                        {"container_id", p.container_id.value_or("")}};
    bytes.push_back({labels, std::to_string(p.outstanding_bytes)});
    allocs.push_back({labels, std::to_string(p.outstanding_allocs)});
    if (p.rss_anon_bytes) rss.push_back({labels, std::to_string(*p.rss_anon_bytes)});
  }
  family(out, "memsight_process_outstanding_bytes", "gauge", "Heap bytes allocated and not yet freed.",
         bytes);
  family(out, "memsight_process_outstanding_allocs", "gauge", "Heap blocks allocated and not yet freed.",
         allocs);
  family(out, "memsight_process_rss_anon_bytes", "gauge", "Resident anonymous memory (RssAnon).", rss);
}

// One series per cgroup, however many traced processes share it.
void render_cgroups(std::string& out, const core::Snapshot& snap) {
  std::map<std::string, const core::CgroupMemory*> cgroups;
  for (const auto& p : snap.processes) {
    if (p.cgroup) cgroups.try_emplace(p.cgroup->path, &*p.cgroup);
  }
  std::vector<Series> usage, limit;
  for (const auto& [path, cg] : cgroups) {
    if (cg->usage_bytes) usage.push_back({{{"cgroup", path}}, std::to_string(*cg->usage_bytes)});
    if (cg->limit_bytes) limit.push_back({{{"cgroup", path}}, std::to_string(*cg->limit_bytes)});
  }
  family(out, "memsight_cgroup_usage_bytes", "gauge", "Memory charged to the traced processes' cgroup.",
         usage);
  family(out, "memsight_cgroup_limit_bytes", "gauge", "Memory limit of the cgroup (absent when unlimited).",
         limit);
}

void render_stacks(std::string& out, const core::Snapshot& snap, size_t top) {
  std::vector<const core::StackRow*> rows;
  for (const auto& row : snap.stacks) rows.push_back(&row);
  const size_t n = std::min(top, rows.size());
  std::partial_sort(rows.begin(), rows.begin() + static_cast<std::ptrdiff_t>(n), rows.end(),
                    [](const auto* a, const auto* b) { return a->outstanding_bytes > b->outstanding_bytes; });
  std::vector<Series> series;
  for (size_t i = 0; i < n; ++i) {
    const auto& row = *rows[i];
    series.push_back({{{"pid", std::to_string(row.pid)},
                       {"stack", fmt::format("{:016x}", row.stack_id)},
                       {"leaf", leaf_name(row)},
                       {"verdict", core::verdict_name(row.verdict.kind)}},
                      std::to_string(row.outstanding_bytes)});
  }
  family(out, "memsight_stack_outstanding_bytes", "gauge",
         "Outstanding heap bytes of the biggest stacks (leaf: the allocator's caller).", series);

  static constexpr core::VerdictKind kVerdicts[] = {
      core::VerdictKind::kUndecided, core::VerdictKind::kLeak,    core::VerdictKind::kBounded,
      core::VerdictKind::kTransient, core::VerdictKind::kBacklog, core::VerdictKind::kStartup};
  std::vector<Series> verdicts;
  for (const auto kind : kVerdicts) {
    const auto count = std::count_if(snap.stacks.begin(), snap.stacks.end(),
                                     [kind](const auto& row) { return row.verdict.kind == kind; });
    verdicts.push_back({{{"verdict", core::verdict_name(kind)}}, std::to_string(count)});
  }
  family(out, "memsight_stacks", "gauge", "Allocation stacks seen, by verdict.", verdicts);
}

void render_counters(std::string& out, const core::Snapshot& snap, const MetricsExtras& extras) {
  one(out, "memsight_lost_events_total", "counter", "Records that never reached the tracker.",
      snap.lost.events);
  one(out, "memsight_lost_unmatched_frees_total", "counter", "Frees of memory never seen allocated.",
      snap.lost.unmatched_frees);
  one(out, "memsight_lost_truncated_stacks_total", "counter", "Stacks cut at the frame limit.",
      snap.lost.truncated_stacks);
  one(out, "memsight_lost_refused_blocks_total", "counter",
      "Allocations not tracked: the tracker held its cap of live blocks (--max-blocks).", snap.lost.refused_blocks);
  one(out, "memsight_oom_kills_total", "counter", "OOM kills seen.", extras.oom_kills);
  if (const auto& r = extras.recorder) {
    one(out, "memsight_recorder_records_decoded_total", "counter", "Ring-buffer records decoded.",
        r->records_decoded);
    one(out, "memsight_recorder_records_rejected_total", "counter",
        "Ring-buffer records rejected as malformed.", r->records_rejected);
    one(out, "memsight_recorder_snapshots_written_total", "counter", "Snapshots written to the database.",
        r->snapshots_written);
  }
}

}  // namespace

std::string render_prometheus(const core::Snapshot& snap, const MetricsExtras& extras) {
  std::string out;
  render_processes(out, snap);
  render_cgroups(out, snap);
  render_stacks(out, snap, extras.top_stacks);
  render_counters(out, snap, extras);
  if (snap.time_unix_ns) {
    family(out, "memsight_snapshot_timestamp_seconds", "gauge", "When these numbers were taken (Unix time).",
           {Series{{}, fmt::format("{:.3f}", static_cast<double>(snap.time_unix_ns) / 1e9)}});
  }
  return out;
}

}  // namespace memsight::report
