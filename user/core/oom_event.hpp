// OOM victims: the MS_REC_OOM_VICTIM record decoded from ring-buffer bytes, the grouping of victims
// into episodes (one OOM event can mark several tasks), and the cgroup OOM counter files. Pure: bytes
// and text in, values out.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <tl/expected.hpp>
#include <vector>

#include "decoder.hpp"

namespace memsight::core {

// One task the kernel chose to kill, as the BPF side saw it at oom:mark_victim.
struct OomVictim {
  uint64_t time_ns = 0;  // CLOCK_MONOTONIC of the event
  uint32_t pid = 0;      // victim process id (tgid)
  uint32_t tid = 0;      // the task marked: the kernel log's "Killed process" pid
  std::string comm;
  uint64_t memcg_id = 0;  // inode of the victim's memory cgroup directory; 0 unknown
  // Resident memory by kind, bytes; empty when the victim had no mm. On 6.2+ kernels an approximation
  // (percpu_counter without its per-CPU parts: rss_approximate), as in the kernel's own OOM report.
  std::optional<uint64_t> anon_rss_bytes;
  std::optional<uint64_t> file_rss_bytes;
  std::optional<uint64_t> shmem_rss_bytes;
  std::optional<uint64_t> total_vm_bytes;
  std::optional<uint64_t> pgtables_bytes;
  int32_t oom_score_adj = 0;
  bool exiting = false;  // already dying when marked: the kernel sent no SIGKILL and logs no kill
  bool rss_approximate = false;
  // The task running the OOM killer (whose allocation failed, usually): often not the victim.
  uint32_t trigger_pid = 0;
  uint32_t trigger_tid = 0;
  std::string trigger_comm;
  uint64_t trigger_memcg_id = 0;  // 0 unknown
};

// Decodes one ring-buffer sample; checks sizes first, copies fields, never casts. page_bytes converts
// the kernel's page counts (the page size of the machine the record came from).
tl::expected<OomVictim, DecodeStatus> decode_oom_victim(std::span<const std::byte> bytes,
                                                        uint64_t page_bytes);

// Victims of one OOM event: the kill and its followers (memory.oom.group members, tasks already exiting).
struct OomEpisode {
  uint64_t number = 0;             // 1, 2, ... in the order episodes opened
  std::vector<OomVictim> victims;  // in arrival order
  uint64_t first_time_ns = 0;      // CLOCK_MONOTONIC of the first victim
};

// Groups victims into episodes: a victim joins an open episode when it comes within `window_ns` of the
// episode's first victim and shares its memcg (known ids) or its trigger process; otherwise it opens
// one. An episode closes once its window has passed (poll) or at flush. Every victim added comes back
// in exactly one episode.
class EpisodeGrouper {
 public:
  static constexpr uint64_t kDefaultWindowNs = 1'000'000'000;

  explicit EpisodeGrouper(uint64_t window_ns = kDefaultWindowNs) : window_ns_(window_ns) {}

  // Returns the number of the episode the victim joined or opened.
  uint64_t add(OomVictim victim);
  // The episodes whose window ended by now_ns (CLOCK_MONOTONIC), oldest first.
  std::vector<OomEpisode> poll(uint64_t now_ns);
  // Every open episode, closed now (at exit).
  std::vector<OomEpisode> flush();
  size_t open_episodes() const { return open_.size(); }

 private:
  bool joins(const OomEpisode& episode, const OomVictim& victim) const;

  uint64_t window_ns_;
  uint64_t next_number_ = 1;
  std::vector<OomEpisode> open_;  // few at once: OOM kills are rare
};

// A memory cgroup's OOM counters (v1 memory.failcnt + memory.oom_control, v2 memory.events).
// Empty: the file or key is absent.
struct CgroupOomCounters {
  std::optional<uint64_t> failcnt;           // v1: times usage hit the limit
  std::optional<uint64_t> under_oom;         // v1: 1 while the cgroup is in OOM (kill disabled)
  std::optional<uint64_t> oom_kill_disable;  // v1
  std::optional<uint64_t> max;               // v2: times usage was about to exceed memory.max
  std::optional<uint64_t> oom;               // v2: OOM events of this cgroup (it hit its limit)
  std::optional<uint64_t> oom_kill;          // v1 and v2: tasks in it killed by the OOM killer
  std::optional<uint64_t> oom_group_kill;    // v2: memory.oom.group kills
};

// "key value" lines of memory.oom_control (v1) or memory.events (v2), into `into`.
void parse_oom_counters(std::string_view text, CgroupOomCounters& into);

}  // namespace memsight::core
