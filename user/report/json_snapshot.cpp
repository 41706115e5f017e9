// memsight.snapshot/1 (architecture.md): unknown values are null, never invented; `lost` is always
// present (refused_blocks is an addition to its three contract keys: readers ignore keys they don't know).
#include <fmt/format.h>

#include "report/json_util.hpp"

#include "report.hpp"

namespace memsight::report {

Json frame_json(const core::Frame& f) {
  return Json{{"address", fmt::format("{:#x}", f.address)},
              {"function", or_null(f.function)},
              {"module", or_null(f.module)},
              {"file", or_null(f.file)},
              {"line", or_null(f.line)},
              {"inlined", f.inlined}};
}

namespace {

Json verdict_evidence(const core::Verdict& v) {
  return Json{{"floor_slope_bytes_per_s", v.floor_slope_bytes_per_s},
              {"survival", or_null(v.survival)},
              {"epochs_alive", v.epochs_alive},
              {"samples", v.samples},
              {"why", v.why}};
}

}  // namespace

Json stack_json(const core::StackRow& row) {
  Json frames = Json::array();
  for (const auto& f : row.symbols) frames.push_back(frame_json(f));
  return Json{{"pid", row.pid},
              {"outstanding_bytes", row.outstanding_bytes},
              {"outstanding_allocs", row.outstanding_allocs},
              {"allocated_bytes", row.allocated_bytes},
              {"allocs", row.allocs},
              {"frees", row.frees},
              {"oldest_age_s", or_null(row.oldest_age_s)},
              {"growth_bytes_per_s", row.growth_bytes_per_s},
              {"verdict", core::verdict_name(row.verdict.kind)},
              {"frames", std::move(frames)},
              {"verdict_evidence", verdict_evidence(row.verdict)}};
}

std::string render_json(const core::Snapshot& snap, const SnapshotMeta& meta) {
  Json processes = Json::array();
  for (const auto& p : snap.processes)
    processes.push_back(Json{{"pid", p.pid},
                             {"comm", or_null(p.comm)},
                             {"outstanding_bytes", p.outstanding_bytes},
                             {"outstanding_allocs", p.outstanding_allocs},
                             {"rss_anon_bytes", or_null(p.rss_anon_bytes)}});
  Json stacks = Json::array();
  for (const auto& row : snap.stacks) stacks.push_back(stack_json(row));
  Json doc{{"schema", "memsight.snapshot/1"},
           {"time_unix_ns", snap.time_unix_ns},
           {"interval_s", meta.interval_s},
           {"final", meta.final},
           {"mode", meta.mode},
           {"sample_bytes", or_null(snap.sample_bytes)},  // an addition: null when the counts are exact
           {"lost",
            Json{{"events", snap.lost.events},
                 {"unmatched_frees", snap.lost.unmatched_frees},
                 {"truncated_stacks", snap.lost.truncated_stacks},
                 {"refused_blocks", snap.lost.refused_blocks}}},  // an addition to memsight.snapshot/1
           {"processes", std::move(processes)},
           {"stacks", std::move(stacks)}};
  return doc.dump(-1, ' ', false, Json::error_handler_t::replace);
}

}  // namespace memsight::report
