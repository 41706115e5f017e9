// OOM watch, pure parts: the victim record's decoding, episode grouping, cgroup OOM counters, and the
// kernel log's kill lines.
#include <catch2/catch.hpp>
#include <cstring>
#include <random>
#include <vector>

#include "core/kmsg_oom.hpp"
#include "core/oom_event.hpp"
#include "memsight/abi.h"

using namespace memsight;

namespace {

using Bytes = std::vector<std::byte>;

// A victim record exactly as bpf/oom_watch.bpf.c writes it.
ms_oom_victim victim_record(uint32_t pid, uint64_t memcg, uint32_t trigger, uint64_t t_ns) {
  ms_oom_victim r{};
  r.h.kind = MS_REC_OOM_VICTIM;
  r.h.size = sizeof(r);
  r.h.tgid = trigger;
  r.h.tid = trigger + 1;
  r.h.time_ns = t_ns;
  r.victim_tgid = pid;
  r.victim_pid = pid + 2;
  r.oom_score_adj = -500;
  r.flags = MS_OOM_RSS_APPROX;
  r.memcg_id = memcg;
  r.trigger_memcg_id = memcg + 1;
  r.rss_anon_pages = 16384;
  r.rss_file_pages = 10;
  r.rss_shmem_pages = 3;
  r.total_vm_pages = 20000;
  r.pgtables_bytes = 40960;
  std::memcpy(r.comm, "hog", 3);
  std::memcpy(r.trigger_comm, "0123456789abcdef", 16);  // fills every byte: no NUL
  return r;
}

Bytes bytes_of(const ms_oom_victim& r, size_t size = sizeof(ms_oom_victim)) {
  Bytes b(size);
  std::memcpy(b.data(), &r, std::min(size, sizeof(r)));
  return b;
}

core::OomVictim victim(uint32_t pid, uint64_t memcg, uint32_t trigger, uint64_t t_ns) {
  core::OomVictim v;
  v.pid = v.tid = pid;
  v.memcg_id = memcg;
  v.trigger_pid = trigger;
  v.time_ns = t_ns;
  return v;
}

constexpr uint64_t kMs = 1'000'000;

}  // namespace

TEST_CASE("an OOM victim record decodes with its units") {
  const auto v = core::decode_oom_victim(bytes_of(victim_record(42, 777, 9, 5000)), 4096);
  REQUIRE(v);
  CHECK(v->time_ns == 5000);
  CHECK(v->pid == 42);
  CHECK(v->tid == 44);
  CHECK(v->comm == "hog");
  CHECK(v->memcg_id == 777);
  CHECK(v->anon_rss_bytes == 16384u * 4096);
  CHECK(v->file_rss_bytes == 10u * 4096);
  CHECK(v->shmem_rss_bytes == 3u * 4096);
  CHECK(v->total_vm_bytes == 20000u * 4096);
  CHECK(v->pgtables_bytes == 40960u);
  CHECK(v->oom_score_adj == -500);
  CHECK_FALSE(v->exiting);
  CHECK(v->rss_approximate);
  CHECK(v->trigger_pid == 9);
  CHECK(v->trigger_tid == 10);
  CHECK(v->trigger_comm == "0123456789abcdef");
  CHECK(v->trigger_memcg_id == 778);
}

TEST_CASE("an OOM victim record's flags mark what is unknown") {
  auto r = victim_record(42, 777, 9, 5000);
  r.flags = MS_OOM_EXITING | MS_OOM_NO_MM | MS_OOM_NO_MEMCG | MS_OOM_NO_PGTABLES;
  const auto v = core::decode_oom_victim(bytes_of(r), 4096);
  REQUIRE(v);
  CHECK(v->exiting);
  CHECK_FALSE(v->anon_rss_bytes);
  CHECK_FALSE(v->file_rss_bytes);
  CHECK_FALSE(v->shmem_rss_bytes);
  CHECK_FALSE(v->total_vm_bytes);
  CHECK_FALSE(v->pgtables_bytes);
  CHECK(v->memcg_id == 0);
  CHECK_FALSE(v->rss_approximate);
}

TEST_CASE("truncated, resized and foreign OOM records are rejected") {
  const auto r = victim_record(42, 777, 9, 5000);
  CHECK(core::decode_oom_victim({}, 4096).error() == core::DecodeStatus::kTruncated);
  CHECK(core::decode_oom_victim(bytes_of(r, sizeof(ms_header) - 1), 4096).error() ==
        core::DecodeStatus::kTruncated);
  CHECK(core::decode_oom_victim(bytes_of(r, sizeof(r) - 1), 4096).error() == core::DecodeStatus::kTruncated);

  auto shorter = r;
  shorter.h.size = sizeof(r) - 8;  // claims fewer bytes than the record has
  CHECK(core::decode_oom_victim(bytes_of(shorter), 4096).error() == core::DecodeStatus::kBadSize);
  auto longer = r;
  longer.h.size = sizeof(r) + 8;  // and more, with the bytes present
  CHECK(core::decode_oom_victim(bytes_of(longer, sizeof(r) + 8), 4096).error() ==
        core::DecodeStatus::kBadSize);
  auto other = r;
  other.h.kind = MS_REC_ALLOC;
  CHECK(core::decode_oom_victim(bytes_of(other), 4096).error() == core::DecodeStatus::kUnknownKind);
  // Extra bytes after a well-formed record (ring-buffer padding) are ignored.
  CHECK(core::decode_oom_victim(bytes_of(r, sizeof(r) + 8), 4096));
}

TEST_CASE("garbage bytes never decode into a victim of the wrong size") {
  std::mt19937 rng(7);
  for (int i = 0; i < 2000; ++i) {
    Bytes b(rng() % 200);
    for (auto& x : b) x = static_cast<std::byte>(rng());
    const auto v = core::decode_oom_victim(b, 4096);
    if (v) CHECK(b.size() >= sizeof(ms_oom_victim));
  }
}

TEST_CASE("victims of one OOM event form one episode, closed once its window has passed") {
  core::EpisodeGrouper g;
  // A memory.oom.group kill: three members of one memcg within a millisecond.
  CHECK(g.add(victim(10, 500, 10, 1000 * kMs)) == 1);
  CHECK(g.add(victim(11, 500, 10, 1000 * kMs + 1)) == 1);
  CHECK(g.add(victim(12, 500, 77, 1001 * kMs)) == 1);
  CHECK(g.poll(1500 * kMs).empty());
  const auto closed = g.poll(2001 * kMs);
  REQUIRE(closed.size() == 1);
  CHECK(closed[0].number == 1);
  CHECK(closed[0].first_time_ns == 1000 * kMs);
  REQUIRE(closed[0].victims.size() == 3);
  CHECK(closed[0].victims[2].pid == 12);
  CHECK(g.open_episodes() == 0);
}

TEST_CASE("episodes split by memcg, trigger and time") {
  core::EpisodeGrouper g;
  CHECK(g.add(victim(10, 500, 1, 0)) == 1);
  CHECK(g.add(victim(20, 600, 2, 10 * kMs)) == 2);  // another memcg, another trigger
  CHECK(g.add(victim(21, 700, 2, 20 * kMs)) == 2);  // same trigger (a global OOM kills across memcgs)
  CHECK(g.add(victim(30, 0, 3, 30 * kMs)) == 3);    // memcg unknown: joins by trigger only
  CHECK(g.add(victim(31, 0, 4, 30 * kMs)) == 4);
  CHECK(g.add(victim(11, 500, 5, 1200 * kMs)) == 5);  // same memcg, but past episode 1's window
  const auto closed = g.poll(1015 * kMs);             // 1 and 2 are over; 3, 4 and 5 not yet
  REQUIRE(closed.size() == 2);
  CHECK(closed[0].number == 1);
  CHECK(closed[1].number == 2);
  CHECK(closed[1].victims.size() == 2);
  const auto rest = g.flush();
  REQUIRE(rest.size() == 3);
  CHECK(rest[0].number == 3);
  CHECK(rest[2].number == 5);
}

TEST_CASE("episode grouping never loses or duplicates a victim") {
  std::mt19937 rng(11);
  core::EpisodeGrouper g;
  size_t out = 0, added = 0;
  uint64_t t = 0;
  std::vector<uint32_t> seen;
  for (int i = 0; i < 5000; ++i) {
    t += rng() % (300 * kMs);
    g.add(victim(static_cast<uint32_t>(i), rng() % 4, rng() % 3, t));
    ++added;
    if (rng() % 4 == 0)
      for (auto& e : g.poll(t)) {
        out += e.victims.size();
        for (auto& v : e.victims) seen.push_back(v.pid);
      }
  }
  for (auto& e : g.flush()) {
    out += e.victims.size();
    for (auto& v : e.victims) seen.push_back(v.pid);
  }
  CHECK(out == added);
  std::sort(seen.begin(), seen.end());
  CHECK(std::adjacent_find(seen.begin(), seen.end()) == seen.end());
}

TEST_CASE("cgroup OOM counters: v1 memory.oom_control and v2 memory.events") {
  core::CgroupOomCounters v1;
  core::parse_oom_counters("oom_kill_disable 0\nunder_oom 0\noom_kill 3\n", v1);
  CHECK(v1.oom_kill_disable == 0u);
  CHECK(v1.under_oom == 0u);
  CHECK(v1.oom_kill == 3u);
  CHECK_FALSE(v1.oom);
  core::CgroupOomCounters v2;
  core::parse_oom_counters("low 0\nhigh 2\nmax 17\noom 1\noom_kill 1\noom_group_kill 0\n", v2);
  CHECK(v2.max == 17u);
  CHECK(v2.oom == 1u);
  CHECK(v2.oom_kill == 1u);
  CHECK(v2.oom_group_kill == 0u);
  core::CgroupOomCounters junk;
  core::parse_oom_counters("oom_kill\noom x\n\nmax 12abc\n oom_kill 5", junk);
  CHECK_FALSE(junk.oom_kill);
  CHECK_FALSE(junk.oom);
  CHECK_FALSE(junk.max);
}

TEST_CASE("a /dev/kmsg record's header and message") {
  const auto r = core::parse_kmsg_record(
      "3,7712,5438443538,-;Memory cgroup out of memory: Killed process 1\n"
      " SUBSYSTEM=memory\n DEVICE=+x\n");
  REQUIRE(r);
  CHECK(r->level == 3);
  CHECK(r->facility == 0);
  CHECK(r->seq == 7712);
  CHECK(r->time_us == 5438443538u);
  CHECK_FALSE(r->continued);
  CHECK(r->message == "Memory cgroup out of memory: Killed process 1");
  const auto c = core::parse_kmsg_record("14,5,6,c,caller=T12;oom-kill:constraint=X");  // extra fields
  REQUIRE(c);
  CHECK(c->facility == 1);
  CHECK(c->level == 6);
  CHECK(c->continued);
  CHECK(c->message == "oom-kill:constraint=X");
  for (const char* bad : {"", ";", "no header at all", "6,1,2;missing flags", "x,1,2,-;msg", "6,1,-2,-;msg",
                          "6,1,2,-", "6,,2,-;msg"})
    CHECK_FALSE(core::parse_kmsg_record(bad));
}

TEST_CASE("the kernel log's oom-kill summary") {
  const auto line = core::parse_kmsg_oom(
      "oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,"
      "oom_memcg=/process_api/abc/ms-oom,task_memcg=/process_api/abc/ms-oom/leaf,task=ms_hog,pid=2561,uid=0");
  const auto* s = std::get_if<core::OomKillSummary>(&line);
  REQUIRE(s);
  CHECK(s->constraint == "CONSTRAINT_MEMCG");
  CHECK(core::oom_domain_kind(s->constraint) == "memcg");
  CHECK(s->nodemask == "(null)");
  CHECK(s->cpuset == "/");
  CHECK(s->mems_allowed == "0");
  CHECK(s->oom_memcg == "/process_api/abc/ms-oom");
  CHECK(s->task_memcg == "/process_api/abc/ms-oom/leaf");
  CHECK_FALSE(s->global_oom);
  CHECK(s->task == "ms_hog");
  CHECK(s->pid == 2561);
  CHECK(s->uid == 0u);
}

TEST_CASE("oom-kill summaries whose values hold commas, and global ones") {
  const auto line = core::parse_kmsg_oom(
      "oom-kill:constraint=CONSTRAINT_NONE,nodemask=0-1,3,cpuset=/a,b,mems_allowed=0,2,global_oom,"
      "task_memcg=/x,y,task=a,pid=1 b,pid=77,uid=1000");
  const auto* s = std::get_if<core::OomKillSummary>(&line);
  REQUIRE(s);
  CHECK(core::oom_domain_kind(s->constraint) == "global");
  CHECK(s->nodemask == "0-1,3");
  CHECK(s->cpuset == "/a,b");
  CHECK(s->mems_allowed == "0,2");
  CHECK(s->global_oom);
  CHECK_FALSE(s->oom_memcg);
  CHECK(s->task_memcg == "/x,y");
  CHECK(s->task == "a,pid=1 b");
  CHECK(s->pid == 77);
  CHECK(s->uid == 1000u);
  // A kernel without cpusets or memcg: only the constraint, the nodemask and the victim.
  const auto bare =
      core::parse_kmsg_oom("oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),task=sh,pid=5,uid=0");
  const auto* b = std::get_if<core::OomKillSummary>(&bare);
  REQUIRE(b);
  CHECK(b->nodemask == "(null)");
  CHECK_FALSE(b->cpuset);
  CHECK_FALSE(b->task_memcg);
  CHECK(b->pid == 5);
  // An escaped comm.
  const auto esc = core::parse_kmsg_oom(
      "oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),task=a\\x5cb\\x0a,pid=9,uid=0");
  REQUIRE(std::get_if<core::OomKillSummary>(&esc));
  CHECK(std::get<core::OomKillSummary>(esc).task == "a\\b\n");
}

TEST_CASE("cut-off oom-kill summaries are not trusted") {
  const std::string full =
      "oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,oom_memcg=/a,task_memcg=/"
      "a,"
      "task=ms_hog,pid=2561,uid=0";
  for (size_t cut :
       {size_t{9}, size_t{30}, size_t{60}, full.find(",pid="), full.find(",uid=") - 2, full.find(",uid=")})
    CHECK(std::holds_alternative<std::monostate>(core::parse_kmsg_oom(full.substr(0, cut))));
  CHECK(std::holds_alternative<core::OomKillSummary>(core::parse_kmsg_oom(full)));
  CHECK(std::holds_alternative<std::monostate>(
      core::parse_kmsg_oom("oom-kill:constraint=,task=x,pid=1,uid=0")));
}

TEST_CASE("the kernel log's Killed process line, memcg and global") {
  const auto line = core::parse_kmsg_oom(
      "Memory cgroup out of memory: Killed process 2561 (ms_hog) total-vm:68044kB, anon-rss:65280kB, "
      "file-rss:1508kB, shmem-rss:0kB, UID:0 pgtables:180kB oom_score_adj:-17");
  const auto* k = std::get_if<core::KilledProcess>(&line);
  REQUIRE(k);
  CHECK(k->memcg);
  CHECK(k->reason == "Memory cgroup out of memory");
  CHECK(k->pid == 2561);
  CHECK(k->comm == "ms_hog");
  CHECK(k->total_vm_bytes == 68044u * 1024);
  CHECK(k->anon_rss_bytes == 65280u * 1024);
  CHECK(k->file_rss_bytes == 1508u * 1024);
  CHECK(k->shmem_rss_bytes == 0u);
  CHECK(k->pgtables_bytes == 180u * 1024);
  CHECK(k->uid == 0u);
  CHECK(k->oom_score_adj == -17);

  const auto global = core::parse_kmsg_oom(
      "Out of memory: Killed process 9 (a (b) c) total-vm:1kB, anon-rss:2kB, file-rss:3kB, shmem-rss:4kB, "
      "UID:1000 pgtables:5kB oom_score_adj:1000");
  const auto* g = std::get_if<core::KilledProcess>(&global);
  REQUIRE(g);
  CHECK_FALSE(g->memcg);
  CHECK(g->comm == "a (b) c");
  CHECK(g->shmem_rss_bytes == 4096u);
  CHECK(g->oom_score_adj == 1000);
}

TEST_CASE("cut-off Killed process lines keep what is whole") {
  const auto cut = core::parse_kmsg_oom("Out of memory: Killed process 9 (hog) total-vm:1024kB, anon-rss:20");
  const auto* k = std::get_if<core::KilledProcess>(&cut);
  REQUIRE(k);
  CHECK(k->pid == 9);
  CHECK(k->comm == "hog");
  CHECK(k->total_vm_bytes == 1024u * 1024);
  CHECK_FALSE(k->anon_rss_bytes);  // "20" without its unit may be cut: not trusted
  CHECK_FALSE(k->oom_score_adj);
  for (const char* bad :
       {"Out of memory: Killed process ", "Out of memory: Killed process 12",
        "Out of memory: Killed process x (hog) total-vm:1kB", "Out of memory: Killed process 12 (hog",
        "random kernel line", "oom_reaper: reaped process 12 (hog), now anon-rss:0kB", ""})
    CHECK(std::holds_alternative<std::monostate>(core::parse_kmsg_oom(bad)));
}

TEST_CASE("the log's lines of one kill join by pid, fragments rejoined") {
  core::KmsgOomJoin join;
  auto rec = [](std::string_view msg, uint64_t t, bool cont = false) {
    core::KmsgRecord r;
    r.time_us = t;
    r.continued = cont;
    r.message = msg;
    return r;
  };
  CHECK_FALSE(join.add(rec("oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null)", 1, true)));
  CHECK_FALSE(join.add(rec(",cpuset=/,mems_allowed=0,oom_memcg=/a,task_memcg=/a", 1, true)));
  CHECK(join.add(rec(",task=hog,pid=42,uid=0", 1)) == 42u);
  CHECK_FALSE(join.add(rec("unrelated line", 2)));
  CHECK(join.add(rec("Memory cgroup out of memory: Killed process 42 (hog) total-vm:8kB, anon-rss:4kB, "
                     "file-rss:0kB, shmem-rss:0kB, UID:0 pgtables:4kB oom_score_adj:0",
                     3)) == 42u);
  const auto* k = join.find(42);
  REQUIRE(k);
  REQUIRE(k->summary);
  REQUIRE(k->killed);
  CHECK(k->summary->oom_memcg == "/a");
  CHECK(k->killed->anon_rss_bytes == 4096u);
  CHECK(k->time_us == 3);
  CHECK_FALSE(join.find(43));
  // A later kill of a reused pid starts afresh.
  join.add(rec("Out of memory: Killed process 42 (other) total-vm:8kB", 9));
  REQUIRE(join.find(42));
  CHECK(join.find(42)->killed->comm == "other");
  CHECK_FALSE(join.find(42)->summary);
}

TEST_CASE("the log join keeps a bounded number of kills") {
  core::KmsgOomJoin join;
  for (uint32_t pid = 1; pid <= core::KmsgOomJoin::kKept + 10; ++pid) {
    const std::string msg = "Out of memory: Killed process " + std::to_string(pid) + " (x) total-vm:1kB";
    core::KmsgRecord r;
    r.message = msg;
    join.add(r);
  }
  CHECK_FALSE(join.find(1));
  CHECK(join.find(core::KmsgOomJoin::kKept + 10));
}

TEST_CASE("the kmsg parsers survive every cut and random damage of real lines") {
  const std::string lines[] = {
      "6,901,5438443538,-;oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,"
      "oom_memcg=/a/b,task_memcg=/a/b/c,task=ms_hog,pid=2561,uid=0",
      "3,902,5438443540,-;Memory cgroup out of memory: Killed process 2561 (ms_hog) total-vm:68044kB, "
      "anon-rss:65280kB, file-rss:1508kB, shmem-rss:0kB, UID:0 pgtables:180kB oom_score_adj:0",
  };
  std::mt19937 rng(3);
  core::KmsgOomJoin join;
  size_t parsed = 0;
  for (const auto& full : lines) {
    for (size_t cut = 0; cut <= full.size(); ++cut) {
      std::string text = full.substr(0, cut);
      if (rng() % 2 && !text.empty()) text[rng() % text.size()] = static_cast<char>(rng());
      if (auto r = core::parse_kmsg_record(text)) {
        join.add(*r);
        parsed += !std::holds_alternative<std::monostate>(core::parse_kmsg_oom(r->message));
      }
    }
  }
  CHECK(parsed > 0);
}
