// Ring-buffer records (hostile bytes) through the decoder into the tracker. The input is a sequence of
// chunks (fuzz_input.hpp); a chunk is one ring-buffer sample, except three lengths that stand for the
// calls the session makes besides records:
//   0xFFFF          tracker.sample(now)
//   0xFFFE u32 pid  tracker.on_exit(pid, now)
//   0xFFFD u32 pid  tracker.add_process(pid, now)
// (now: the latest header time seen). After each step a full snapshot must account for every byte: a
// process's outstanding bytes and blocks are the sums of its stacks'.
#include <cstddef>
#include <cstdint>
#include <algorithm>
#include <map>
#include <utility>

#include "core/decoder.hpp"
#include "core/tracker.hpp"
#include "fuzz_input.hpp"

namespace {

using namespace memsight;

constexpr uint16_t kSample = 0xFFFF;
constexpr uint16_t kExit = 0xFFFE;
constexpr uint16_t kAddProcess = 0xFFFD;
constexpr size_t kTimeOffset = 16;  // ms_header.time_ns

void check_snapshot(core::Tracker& tracker, uint64_t now) {
  const core::Snapshot snap = tracker.snapshot(now, core::SnapshotOptions{});
  std::map<uint32_t, std::pair<uint64_t, uint64_t>> by_pid;  // pid -> (bytes, blocks) of its stacks
  for (const auto& s : snap.stacks) {
    auto& sum = by_pid[s.pid];
    sum.first += s.outstanding_bytes;
    sum.second += s.outstanding_allocs;
  }
  size_t blocks = 0;
  for (const auto& p : snap.processes) {
    const auto sum = by_pid.count(p.pid) ? by_pid[p.pid] : std::pair<uint64_t, uint64_t>{};
    fuzz::require(sum.first == p.outstanding_bytes, "process outstanding bytes != sum of its stacks'");
    fuzz::require(sum.second == p.outstanding_allocs, "process outstanding blocks != sum of its stacks'");
    blocks += p.outstanding_allocs;
    by_pid.erase(p.pid);
  }
  for (const auto& [pid, sum] : by_pid)
    fuzz::require(sum.first == 0 && sum.second == 0, "live stack bytes of a process the snapshot lacks");
  fuzz::require(blocks == tracker.live_blocks(), "process outstanding blocks != the tracker's live blocks");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // Few orphans remembered and few live blocks allowed: orphan eviction and the block cap are reached.
  core::Tracker tracker(core::TrackerConfig{4096, 8, 16});
  core::Decoder decoder(tracker);
  fuzz::Chunks chunks(data, size);
  uint16_t length = 0;
  uint64_t now = 0, decoded = 0;
  while (chunks.length(length)) {
    if (length == kSample) {
      tracker.sample(now);
    } else if (length == kExit || length == kAddProcess) {
      const auto pid = fuzz::read_le<uint32_t>(chunks.take(4), 0);
      if (length == kExit)
        tracker.on_exit(pid, now);
      else
        tracker.add_process(pid, now);
    } else {
      const auto body = chunks.take(length);
      if (body.size() >= kTimeOffset + 8) now = std::max(now, fuzz::read_le<uint64_t>(body, kTimeOffset));
      decoder.decode(body);
      ++decoded;
    }
    const auto& c = decoder.counters();
    fuzz::require(c.records + c.rejected() == decoded, "a decoded record neither delivered nor counted");
    check_snapshot(tracker, now);
  }
  return 0;
}
