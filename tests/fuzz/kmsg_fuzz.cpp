// Kernel log records (/dev/kmsg text, which unprivileged processes influence through what they name
// themselves and their cgroups) through parse_kmsg_record, parse_kmsg_oom and the join of a kill's lines.
// The input is one or more records separated by NUL bytes (a read of /dev/kmsg returns one record).
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <variant>

#include "core/kmsg_oom.hpp"
#include "fuzz_input.hpp"

using namespace memsight;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view rest(reinterpret_cast<const char*>(data), size);
  core::KmsgOomJoin join;
  while (true) {
    const size_t end = rest.find('\0');
    const std::string_view text = rest.substr(0, end);
    // The message alone, as a caller holding an already-split record would pass it.
    (void)core::parse_kmsg_oom(text);
    if (const auto record = core::parse_kmsg_record(text)) {
      fuzz::require(record->level < 8, "a syslog level above 7");
      fuzz::require(record->message.data() >= text.data() &&
                        record->message.data() + record->message.size() <= text.data() + text.size(),
                    "a record's message outside the record");
      const core::KmsgOomLine line = core::parse_kmsg_oom(record->message);
      if (const auto* summary = std::get_if<core::OomKillSummary>(&line))
        (void)core::oom_domain_kind(summary->constraint);
      if (const auto pid = join.add(*record)) {
        const core::KmsgOomKill* kill = join.find(*pid);
        fuzz::require(kill != nullptr && kill->pid == *pid, "a kill joined under a pid find() lacks");
      }
    }
    if (end == std::string_view::npos) break;
    rest.remove_prefix(end + 1);
  }
  return 0;
}
