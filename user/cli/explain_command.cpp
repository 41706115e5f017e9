// explain: the OOM kills and failed allocations `record` (or `oom --db`) explained and stored, read
// back as they were written at the time.
#include "explain_command.hpp"

#include <fmt/format.h>

#include "cli/output.hpp"
#include "store/store.hpp"

namespace memsight::cli {

int run_explain(const ExplainOptions& options) {
  auto reader = store::Reader::open(options.db);
  if (!reader) return report_error(reader.error());
  auto episodes = (*reader)->episodes(options.episode, options.pid);
  if (!episodes) return report_error(episodes.error());
  if (episodes->empty()) {
    // Not an error: no kill is the usual case. Said on stderr, so JSON readers see no lines.
    const std::string which = options.episode ? fmt::format(" numbered {}", *options.episode)
                              : options.pid   ? fmt::format(" of pid {}", *options.pid)
                                              : "";
    fmt::print(stderr, "memsight: {} holds no OOM kill or failed allocation{}\n", options.db, which);
    return 0;
  }
  for (const auto& e : *episodes) {
    const std::string out = options.json ? e.json + "\n" : e.text + "\n";
    if (auto ok = write_all(stdout, out); !ok) return report_error(ok.error());
  }
  return 0;
}

}  // namespace memsight::cli
