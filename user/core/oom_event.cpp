#include "oom_event.hpp"

#include <algorithm>
#include <charconv>
#include <cstring>

#include "memsight/abi.h"
#include "wire_field.hpp"

namespace memsight::core {
namespace {

#define MS_OOM_FIELD(bytes, member) MS_FIELD(bytes, ms_oom_victim, member)

// A NUL-padded command name; all 16 bytes when the name fills them.
std::string comm_at(std::span<const std::byte> bytes, size_t offset) {
  const char* start = reinterpret_cast<const char*>(bytes.data() + offset);
  return std::string(start, strnlen(start, MS_COMM_BYTES));
}

std::optional<uint64_t> known_if(bool known, uint64_t value) {
  return known ? std::optional<uint64_t>(value) : std::nullopt;
}

}  // namespace

tl::expected<OomVictim, DecodeStatus> decode_oom_victim(std::span<const std::byte> bytes,
                                                        uint64_t page_bytes) {
  if (bytes.size() < sizeof(ms_header)) return tl::unexpected(DecodeStatus::kTruncated);
  const auto kind = field_at<uint16_t>(bytes, offsetof(ms_header, kind));
  const size_t size = field_at<uint16_t>(bytes, offsetof(ms_header, size));
  if (kind != MS_REC_OOM_VICTIM) return tl::unexpected(DecodeStatus::kUnknownKind);
  if (size > bytes.size()) return tl::unexpected(DecodeStatus::kTruncated);
  if (size != sizeof(ms_oom_victim)) return tl::unexpected(DecodeStatus::kBadSize);
  const auto b = bytes.first(size);

  OomVictim v;
  const uint32_t flags = MS_OOM_FIELD(b, flags);
  const bool has_mm = !(flags & MS_OOM_NO_MM);
  v.time_ns = field_at<uint64_t>(b, offsetof(ms_header, time_ns));
  v.trigger_pid = field_at<uint32_t>(b, offsetof(ms_header, tgid));
  v.trigger_tid = field_at<uint32_t>(b, offsetof(ms_header, tid));
  v.pid = MS_OOM_FIELD(b, victim_tgid);
  v.tid = MS_OOM_FIELD(b, victim_pid);
  v.comm = comm_at(b, offsetof(ms_oom_victim, comm));
  v.trigger_comm = comm_at(b, offsetof(ms_oom_victim, trigger_comm));
  v.memcg_id = flags & MS_OOM_NO_MEMCG ? 0 : MS_OOM_FIELD(b, memcg_id);
  v.trigger_memcg_id = MS_OOM_FIELD(b, trigger_memcg_id);
  v.anon_rss_bytes = known_if(has_mm, MS_OOM_FIELD(b, rss_anon_pages) * page_bytes);
  v.file_rss_bytes = known_if(has_mm, MS_OOM_FIELD(b, rss_file_pages) * page_bytes);
  v.shmem_rss_bytes = known_if(has_mm, MS_OOM_FIELD(b, rss_shmem_pages) * page_bytes);
  v.total_vm_bytes = known_if(has_mm, MS_OOM_FIELD(b, total_vm_pages) * page_bytes);
  v.pgtables_bytes = known_if(!(flags & MS_OOM_NO_PGTABLES), MS_OOM_FIELD(b, pgtables_bytes));
  v.oom_score_adj = MS_OOM_FIELD(b, oom_score_adj);
  v.exiting = flags & MS_OOM_EXITING;
  v.rss_approximate = flags & MS_OOM_RSS_APPROX;
  return v;
}

bool EpisodeGrouper::joins(const OomEpisode& episode, const OomVictim& victim) const {
  // Records come in reservation order, so times rarely step back; a small step back still joins.
  const uint64_t t = std::max(victim.time_ns, episode.first_time_ns);
  if (t - episode.first_time_ns > window_ns_) return false;
  for (const OomVictim& member : episode.victims) {
    if (victim.memcg_id != 0 && member.memcg_id == victim.memcg_id) return true;
    if (member.trigger_pid == victim.trigger_pid) return true;
  }
  return false;
}

uint64_t EpisodeGrouper::add(OomVictim victim) {
  for (OomEpisode& episode : open_) {
    if (!joins(episode, victim)) continue;
    episode.victims.push_back(std::move(victim));
    return episode.number;
  }
  OomEpisode episode;
  episode.number = next_number_++;
  episode.first_time_ns = victim.time_ns;
  episode.victims.push_back(std::move(victim));
  open_.push_back(std::move(episode));
  return open_.back().number;
}

std::vector<OomEpisode> EpisodeGrouper::poll(uint64_t now_ns) {
  // open_ is in number order (episodes are appended as they open) and both halves keep it.
  std::vector<OomEpisode> closed, still_open;
  for (OomEpisode& episode : open_) {
    const bool ended = now_ns > episode.first_time_ns && now_ns - episode.first_time_ns > window_ns_;
    (ended ? closed : still_open).push_back(std::move(episode));
  }
  open_ = std::move(still_open);
  return closed;
}

std::vector<OomEpisode> EpisodeGrouper::flush() {
  std::vector<OomEpisode> all = std::move(open_);
  open_.clear();
  return all;
}

void parse_oom_counters(std::string_view text, CgroupOomCounters& into) {
  while (!text.empty()) {
    const size_t eol = text.find('\n');
    const std::string_view line = text.substr(0, eol);
    text.remove_prefix(eol == std::string_view::npos ? text.size() : eol + 1);
    const size_t space = line.find(' ');
    if (space == std::string_view::npos) continue;
    const std::string_view key = line.substr(0, space), digits = line.substr(space + 1);
    uint64_t value = 0;
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
    if (ec != std::errc() || end != digits.data() + digits.size()) continue;
    if (key == "under_oom")
      into.under_oom = value;
    else if (key == "oom_kill_disable")
      into.oom_kill_disable = value;
    else if (key == "max")
      into.max = value;
    else if (key == "oom")
      into.oom = value;
    else if (key == "oom_kill")
      into.oom_kill = value;
    else if (key == "oom_group_kill")
      into.oom_group_kill = value;
  }
}

}  // namespace memsight::core
