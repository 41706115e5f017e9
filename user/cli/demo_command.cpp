// demo: the whole story in well under a minute. A memory cgroup limited to kDemoLimitMib, the bundled
// ms_oom_scenario leaking into it under `record`, the kernel's OOM kill, memsight's explanation.
#include "demo_command.hpp"

#include <unistd.h>

#include <filesystem>
#include <fmt/format.h>

#include "attach/preflight.hpp"
#include "attach/scoped_cgroup.hpp"
#include "cli/output.hpp"
#include "cli/record_command.hpp"

namespace memsight::cli {
namespace {

constexpr uint64_t kDemoLimitMib = 96;

// The bundled workload: built next to memsight (build/tools/workloads) or installed beside it.
std::optional<std::string> find_workload(const std::string& name) {
  std::error_code ec;
  const auto self = std::filesystem::read_symlink("/proc/self/exe", ec).parent_path();
  for (const auto& candidate : {self / name, self / "../tools/workloads" / name, self / "../../tools/workloads" / name}) {
    if (access(candidate.c_str(), X_OK) == 0) return std::filesystem::weakly_canonical(candidate, ec).string();
  }
  return std::nullopt;
}

}  // namespace

int run_demo() {
  const auto workload = find_workload("ms_oom_scenario");
  if (!workload)
    return report_error(Error{ExitCode::kRuntime, "the bundled workload ms_oom_scenario is not built: run tools/run"});
  if (auto ok = attach::check_privileges(); !ok) return report_error(ok.error());
  auto cgroup = attach::ScopedCgroup::create(fmt::format("memsight-demo-{}", getpid()), kDemoLimitMib << 20);
  if (!cgroup) return report_error(cgroup.error());
  std::error_code ec;
  const auto dir = std::filesystem::temp_directory_path() / fmt::format("memsight-demo-{}", getpid());
  std::filesystem::create_directories(dir, ec);
  fmt::print(stderr,
             "memsight demo: a bundled program leaks into the memory cgroup {} (limit {} MiB) while\n"
             "`memsight record` watches it. When the kernel's OOM killer strikes (in about 30 s), memsight\n"
             "explains the kill from what it recorded: which call path leaked, how fast, and the evidence.\n\n",
             cgroup->path(), kDemoLimitMib);
  RecordOptions o;
  o.db = (dir / "demo.db").string();
  o.session.interval_s = 1;
  o.session.top = 0;
  o.session.watch_oom = true;
  o.session.command = {*workload, "--scenario", "leak", "--limit-mib", std::to_string(kDemoLimitMib),
                       "--join-cgroup", cgroup->dir(), "--quiet"};
  const int rc = run_record(o);
  std::filesystem::remove_all(dir, ec);
  if (rc == 0)
    fmt::print(stderr,
               "\nOn your own service: memsight record --db app.db -p PID, then after a kill memsight explain "
               "--db app.db\n");
  return rc;
}

}  // namespace memsight::cli
