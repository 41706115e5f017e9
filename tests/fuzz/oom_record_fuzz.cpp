// OOM victim records (hostile bytes) through decode_oom_victim, and the victims decoded into the episode
// grouper. The input is a sequence of chunks (fuzz_input.hpp), each one ring-buffer sample. Checks what
// the grouper promises: every victim added comes back in exactly one episode.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/oom_event.hpp"
#include "fuzz_input.hpp"
#include "memsight/abi.h"

using namespace memsight;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::Chunks chunks(data, size);
  core::EpisodeGrouper grouper(1'000'000);  // 1 ms: fuzzed times open and close episodes often
  std::vector<int> seen;                    // per victim added: how many episodes returned it
  auto collect = [&](const std::vector<core::OomEpisode>& episodes) {
    for (const auto& e : episodes)
      for (const auto& v : e.victims) {
        // The grouper copies victims; tid carries the index this harness gave each one.
        fuzz::require(v.tid < seen.size(), "an episode returned a victim never added");
        ++seen[v.tid];
      }
  };
  std::span<const std::byte> body;
  while (chunks.next(body)) {
    // Both page sizes memsight meets (x86 4 KiB, arm64 64 KiB) and a nonsense one.
    for (uint64_t page : {uint64_t{4096}, uint64_t{65536}, uint64_t{0}}) {
      const auto victim = core::decode_oom_victim(body, page);
      if (!victim) continue;
      fuzz::require(body.size() >= sizeof(ms_oom_victim), "a victim decoded from too few bytes");
      fuzz::require(victim->comm.size() <= MS_COMM_BYTES && victim->trigger_comm.size() <= MS_COMM_BYTES,
                    "a command name longer than the record's field");
      if (page != 4096) continue;
      core::OomVictim v = *victim;
      v.tid = static_cast<uint32_t>(seen.size());
      seen.push_back(0);
      grouper.add(std::move(v));
      collect(grouper.poll(victim->time_ns));
    }
  }
  collect(grouper.flush());
  fuzz::require(grouper.open_episodes() == 0, "an episode still open after flush");
  for (int n : seen) fuzz::require(n == 1, "a victim lost or returned twice by the episode grouper");
  return 0;
}
