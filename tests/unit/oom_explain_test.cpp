#include <catch2/catch.hpp>

#include "core/oom_explain.hpp"
#include "report/oom_report.hpp"
#include <nlohmann/json.hpp>

using namespace memsight;

namespace {

constexpr uint64_t kMiB = 1 << 20;

core::OomFacts memcg_kill(uint64_t anon, uint64_t file, uint64_t shmem, uint64_t kernel) {
  core::OomFacts f;
  f.episode = 3;
  f.time_unix_ns = 1'700'000'000'000'000'000;
  f.victim.pid = 4242;
  f.victim.comm = "order-svc";
  f.victim.anon_rss_bytes = anon;
  f.victim.trigger_pid = 4242;
  f.victim.trigger_comm = "order-svc";
  f.victim_cgroup = "/svc";
  f.domain_kind = "memcg";
  f.domain_cgroup = "/svc";
  core::CgroupMemory m;
  m.usage_bytes = anon + file + kernel;  // v1: shmem is inside "cache" (file)
  m.limit_bytes = 512 * kMiB;
  m.anon_bytes = anon;
  m.file_bytes = file;
  m.shmem_bytes = shmem;
  m.kernel_bytes = kernel;
  f.domain_memory = m;
  return f;
}

}  // namespace

TEST_CASE("a cgroup filled by shmem is non_heap/shmem, with high confidence when it dominates") {
  const auto why = core::explain_kill(memcg_kill(20 * kMiB, 480 * kMiB, 470 * kMiB, 10 * kMiB));
  CHECK(why.verdict == "non_heap");
  CHECK(why.subtype == "shmem");
  CHECK(why.confidence == "high");
  CHECK(why.summary.rfind("Verdict: NOT HEAP MEMORY (shmem)", 0) == 0);
}

TEST_CASE("kernel memory and page cache are told apart from shmem") {
  CHECK(core::explain_kill(memcg_kill(100 * kMiB, 10 * kMiB, 0, 400 * kMiB)).subtype == "kernel");
  const auto cache = core::explain_kill(memcg_kill(200 * kMiB, 310 * kMiB, 5 * kMiB, 0));
  CHECK(cache.verdict == "non_heap");
  CHECK(cache.subtype == "page_cache");
  CHECK(cache.confidence == "medium");
}

TEST_CASE("a heap-filled cgroup without history is insufficient_data, never a guess") {
  const auto why = core::explain_kill(memcg_kill(500 * kMiB, 8 * kMiB, 1 * kMiB, 4 * kMiB));
  CHECK(why.verdict == "insufficient_data");
  CHECK_FALSE(why.subtype);
  CHECK(why.confidence == "low");
  CHECK(why.summary.find("memsight record") != std::string::npos);
  core::OomFacts unknown;  // nothing read at all: still an answer
  unknown.victim.pid = 1;
  CHECK(core::explain_kill(unknown).verdict == "insufficient_data");
}

TEST_CASE("memsight.oom/1 JSON carries every contract field, null where unknown") {
  const auto f = memcg_kill(20 * kMiB, 480 * kMiB, 470 * kMiB, 10 * kMiB);
  const auto doc = nlohmann::json::parse(report::render_oom_json(f, core::explain_kill(f)));
  CHECK(doc["schema"] == "memsight.oom/1");
  CHECK(doc["episode"] == 3);
  CHECK(doc["victim"]["pid"] == 4242);
  CHECK(doc["victim"]["file_rss_bytes"].is_null());
  CHECK(doc["trigger"]["comm"] == "order-svc");
  CHECK(doc["domain"] == nlohmann::json{{"kind", "memcg"}, {"cgroup", "/svc"}, {"limit_bytes", 512 * kMiB}});
  CHECK(doc["verdict"] == "non_heap");
  CHECK(doc["subtype"] == "shmem");
  CHECK(doc["traced_heap_bytes"].is_null());
  CHECK(doc["stacks"].empty());
  const auto text = report::render_oom_text(f, core::explain_kill(f));
  CHECK(text.find("pid 4242 \"order-svc\", cgroup /svc (limit 512 MiB, its own)") != std::string::npos);
}

TEST_CASE("a cgroup read after the OOM reaper emptied it is not taken for the kill's accounting") {
  // A memcg kill happens at the limit: 1 MiB of usage means the victim's memory was already reaped,
  // and its remains (kernel memory) must not read as "not heap".
  auto f = memcg_kill(0, 0, 0, 1 * kMiB);
  CHECK(core::explain_kill(f).verdict == "insufficient_data");
}
