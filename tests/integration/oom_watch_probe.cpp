// oom_watch_probe: opens attach::OomWatcher and prints each victim it delivers as one JSON line, for
// test_oom_capture.py. First line: {"ready": true, "program": ..., "notes": [...]} once the BPF program
// is attached. Runs until SIGTERM/SIGINT, or until --count victims were printed; prints a last line
// {"losses": {...}} on the way out. --raw-tp skips tp_btf (exercises the fallback). Exit codes as
// memsight's (3: missing privilege).
#include <signal.h>
#include <time.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <nlohmann/json.hpp>

#include "attach/oom_watcher.hpp"

using namespace memsight;
using nlohmann::json;

namespace {

volatile sig_atomic_t g_stop = 0;

void on_signal(int) {
  g_stop = 1;
}

uint64_t now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

template <typename T>
json opt(const std::optional<T>& v) {
  return v ? json(*v) : json(nullptr);
}

json cgroup_json(const attach::CgroupOomSnapshot& s) {
  json j = {{"path", opt(s.path)}, {"path_source", s.path_source}, {"v2", s.v2}};
  if (s.memory)
    j["memory"] = {
        {"usage_bytes", opt(s.memory->usage_bytes)}, {"limit_bytes", opt(s.memory->limit_bytes)},
        {"anon_bytes", opt(s.memory->anon_bytes)},   {"file_bytes", opt(s.memory->file_bytes)},
        {"shmem_bytes", opt(s.memory->shmem_bytes)}, {"kernel_bytes", opt(s.memory->kernel_bytes)}};
  else
    j["memory"] = nullptr;
  const auto& c = s.counters;
  j["counters"] = {{"failcnt", opt(c.failcnt)},   {"under_oom", opt(c.under_oom)},
                   {"max", opt(c.max)},           {"oom", opt(c.oom)},
                   {"oom_kill", opt(c.oom_kill)}, {"oom_group_kill", opt(c.oom_group_kill)}};
  return j;
}

json log_json(const core::KmsgOomKill& k) {
  json j = {{"pid", k.pid}, {"time_us", k.time_us}};
  if (k.summary)
    j["summary"] = {{"constraint", k.summary->constraint},
                    {"domain", core::oom_domain_kind(k.summary->constraint)},
                    {"oom_memcg", opt(k.summary->oom_memcg)},
                    {"task_memcg", opt(k.summary->task_memcg)},
                    {"task", k.summary->task},
                    {"uid", opt(k.summary->uid)}};
  if (k.killed)
    j["killed"] = {{"reason", k.killed->reason},
                   {"comm", k.killed->comm},
                   {"anon_rss_bytes", opt(k.killed->anon_rss_bytes)},
                   {"total_vm_bytes", opt(k.killed->total_vm_bytes)},
                   {"oom_score_adj", opt(k.killed->oom_score_adj)}};
  return j;
}

json report_json(const attach::OomReport& r, uint64_t episode) {
  const auto& v = r.victim;
  json j = {{"episode", episode},
            {"time_ns", v.time_ns},
            {"victim",
             {{"pid", v.pid},
              {"tid", v.tid},
              {"comm", v.comm},
              {"memcg_id", v.memcg_id},
              {"anon_rss_bytes", opt(v.anon_rss_bytes)},
              {"file_rss_bytes", opt(v.file_rss_bytes)},
              {"shmem_rss_bytes", opt(v.shmem_rss_bytes)},
              {"total_vm_bytes", opt(v.total_vm_bytes)},
              {"pgtables_bytes", opt(v.pgtables_bytes)},
              {"oom_score_adj", v.oom_score_adj},
              {"exiting", v.exiting},
              {"rss_approximate", v.rss_approximate}}},
            {"trigger", {{"pid", v.trigger_pid}, {"comm", v.trigger_comm}, {"memcg_id", v.trigger_memcg_id}}},
            {"cgroup", cgroup_json(r.cgroup)},
            {"cgroup_read_after_ms", (r.cgroup.read_ns - v.time_ns) / 1e6},
            {"delivered_after_ms", (now_ns() - v.time_ns) / 1e6},
            {"kernel_log", r.kernel_log ? log_json(*r.kernel_log) : json(nullptr)},
            {"domain", r.domain ? cgroup_json(*r.domain) : json(nullptr)}};
  return j;
}

void print(const json& j) {
  std::printf("%s\n", j.dump().c_str());
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  long count = 0;
  attach::OomWatchOptions options;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--count") && i + 1 < argc)
      count = std::atol(argv[++i]);
    else if (!std::strcmp(argv[i], "--raw-tp"))
      options.try_btf = false;
    else {
      std::fprintf(stderr, "usage: oom_watch_probe [--count N] [--raw-tp]\n");
      return 2;
    }
  }
  signal(SIGTERM, on_signal);
  signal(SIGINT, on_signal);
  auto watcher = attach::OomWatcher::open(options);
  if (!watcher) {
    std::fprintf(stderr, "oom_watch_probe: %s\n", watcher.error().message.c_str());
    return static_cast<int>(watcher.error().code);
  }
  print({{"ready", true}, {"program", (*watcher)->program()}, {"notes", (*watcher)->notes()}});
  core::EpisodeGrouper episodes;
  long printed = 0;
  while (!g_stop && (count == 0 || printed < count)) {
    auto reports = (*watcher)->poll(100);
    if (!reports) {
      std::fprintf(stderr, "oom_watch_probe: %s\n", reports.error().message.c_str());
      return static_cast<int>(reports.error().code);
    }
    for (const auto& r : *reports) {
      print(report_json(r, episodes.add(r.victim)));
      ++printed;
    }
    episodes.poll(now_ns());  // closed episodes are not printed: each victim line carries its number
  }
  const auto l = (*watcher)->losses();
  print({{"losses",
          {{"seen", l.seen},
           {"ringbuf_full", l.ringbuf_full},
           {"rejected", l.rejected},
           {"kmsg_overwritten", l.kmsg_overwritten},
           {"kmsg_malformed", l.kmsg_malformed}}}});
  return 0;
}
