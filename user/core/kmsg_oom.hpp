// The kernel log's account of an OOM kill, parsed from /dev/kmsg records (pure: text in, values out).
//
// Without fentry, the log is the only source of the OOM *domain* (which limit was hit: a memcg's, or the
// machine's). Two lines per kill, joined by pid:
//   oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,oom_memcg=/a,
//            task_memcg=/a/b,task=name,pid=123,uid=0            (rate-limited: 10 per 5 s)
//   Memory cgroup out of memory: Killed process 123 (name) total-vm:1234kB, anon-rss:12kB,
//            file-rss:0kB, shmem-rss:0kB, UID:0 pgtables:40kB oom_score_adj:0   ("Out of memory:" global)
// Both come after the victim is chosen; the second right after oom:mark_victim. Parsing is positional
// around known keys because values (nodemasks, cgroup paths, comms) may hold commas.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

namespace memsight::core {

// One /dev/kmsg record: "PRIO,SEQ,TIME_US,FLAGS[,...];MESSAGE\n[ KEY=VALUE\n]...".
struct KmsgRecord {
  uint32_t level = 0;        // syslog level (PRIO & 7)
  uint32_t facility = 0;     // PRIO >> 3
  uint64_t seq = 0;          // the record's sequence number: a gap means records were overwritten
  uint64_t time_us = 0;      // CLOCK_MONOTONIC when it was logged, microseconds
  bool continued = false;    // FLAGS 'c': a fragment the next record continues
  std::string_view message;  // as the kernel escapes it (\xNN for unprintable bytes and '\')
};

// Empty for anything that is not a well-formed record.
std::optional<KmsgRecord> parse_kmsg_record(std::string_view record);

// "oom-kill:..." : the context of one kill.
struct OomKillSummary {
  std::string
      constraint;  // CONSTRAINT_NONE | CONSTRAINT_CPUSET | CONSTRAINT_MEMORY_POLICY | CONSTRAINT_MEMCG
  std::optional<std::string> nodemask;
  std::optional<std::string> cpuset;  // the trigger's cpuset
  std::optional<std::string> mems_allowed;
  std::optional<std::string> oom_memcg;   // the memcg whose limit was hit (memcg OOM only)
  bool global_oom = false;                // ",global_oom": no memcg was at its limit
  std::optional<std::string> task_memcg;  // the victim's memcg
  std::string task;                       // victim comm
  uint32_t pid = 0;                       // victim task id
  std::optional<uint32_t> uid;
};

// "<reason>: Killed process PID (COMM) total-vm:..kB, anon-rss:..kB, ...": the kill itself.
struct KilledProcess {
  std::string reason;  // "Memory cgroup out of memory", "Out of memory", ...
  bool memcg = false;  // reason names a memory cgroup
  uint32_t pid = 0;
  std::string comm;
  // Bytes (the kernel prints kB); empty when missing or cut off.
  std::optional<uint64_t> total_vm_bytes;
  std::optional<uint64_t> anon_rss_bytes;
  std::optional<uint64_t> file_rss_bytes;
  std::optional<uint64_t> shmem_rss_bytes;
  std::optional<uint64_t> pgtables_bytes;
  std::optional<uint32_t> uid;
  std::optional<int32_t> oom_score_adj;
};

using KmsgOomLine = std::variant<std::monostate, OomKillSummary, KilledProcess>;

// One message (KmsgRecord::message) -> what it says about an OOM kill; monostate for any other line.
KmsgOomLine parse_kmsg_oom(std::string_view message);

// The architecture's domain.kind for a constraint: memcg | global | cpuset | mempolicy | unknown.
std::string_view oom_domain_kind(std::string_view constraint);

// Both lines of one kill, as far as they have come.
struct KmsgOomKill {
  uint32_t pid = 0;  // victim task id
  std::optional<OomKillSummary> summary;
  std::optional<KilledProcess> killed;
  uint64_t time_us = 0;  // the latest line's time
};

// Joins the lines of each kill by pid. Keeps the last kKept kills; re-joins a summary split into
// continuation fragments.
class KmsgOomJoin {
 public:
  static constexpr size_t kKept = 256;

  // Feeds one record; returns the pid it concerned, if any.
  std::optional<uint32_t> add(const KmsgRecord& record);
  const KmsgOomKill* find(uint32_t pid) const;

 private:
  KmsgOomKill& entry(uint32_t pid);

  std::deque<KmsgOomKill> kills_;  // oldest first
  std::string fragment_;           // an "oom-kill:" summary waiting for its continuation
};

}  // namespace memsight::core
