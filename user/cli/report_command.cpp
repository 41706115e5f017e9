// report: one snapshot out of a database, rendered as text, JSON, folded stacks or pprof.
#include <unistd.h>

#include <ctime>
#include <fmt/format.h>

#include "attach/clock.hpp"
#include "cli/output.hpp"
#include "cli/record_command.hpp"
#include "report/encoders.hpp"
#include "report/report.hpp"
#include "store/store.hpp"

namespace memsight::cli {
namespace {
// --at names one moment, --from/--to a range; without --from, growth covers the whole history.
Result<store::TimeRange> time_range(const ReportOptions& o, store::Reader& reader) {
  store::TimeRange range;
  const uint64_t now = attach::realtime_ns();
  for (auto [text, into] : {std::pair{&o.at, &range.to_unix_ns}, std::pair{&o.to, &range.to_unix_ns},
                            std::pair{&o.from, &range.from_unix_ns}}) {
    if (!*text) continue;
    auto t = parse_time(**text, now);
    if (!t) return tl::unexpected(t.error());
    *into = *t;
  }
  if (!range.from_unix_ns) {
    auto span = reader.span();
    if (!span) return tl::unexpected(span.error());
    // Counts cover (from, to]: from just before the first interval, they cover all of the history.
    range.from_unix_ns = span->first_unix_ns > 0 ? span->first_unix_ns - 1 : 0;
  }
  return range;
}

Result<std::string> render(const ReportOptions& o, const core::Snapshot& snap) {
  const report::SnapshotMeta meta{0, true, "exact", "memsight report " + o.db};
  if (o.format == "json") return report::render_json(snap, meta) + "\n";
  if (o.format == "folded") return report::render_folded(snap);
  if (o.format == "pprof") {
    if (!o.output && isatty(1))
      return fail(ExitCode::kUsage, "pprof is binary: write it to a file with -o FILE");
    return report::render_pprof(snap);
  }
  return report::render_text(snap, meta);
}

}  // namespace

int run_report(const ReportOptions& options) {
  auto reader = store::Reader::open(options.db);
  if (!reader) return report_error(reader.error());
  auto range = time_range(options, **reader);
  if (!range) return report_error(range.error());
  auto snap = (*reader)->snapshot(*range, options.pid);
  if (!snap) return report_error(snap.error());
  auto text = render(options, *snap);
  if (!text) return report_error(text.error());
  auto out = open_output(options.output);
  if (!out) return report_error(out.error());
  auto written = write_all(out->get(), *text);
  return written ? 0 : report_error(written.error());
}

}  // namespace memsight::cli
