#include "trace_command.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fmt/format.h>

#include "cli/trace_session.hpp"

namespace memsight::cli {
namespace {

int report_error(const Error& e) {
  fmt::print(stderr, "memsight: {}\n", e.message);
  return static_cast<int>(e.code);
}

// Reports are the user's data: created 0600.
Result<FILE*> open_output(const std::optional<std::string>& path) {
  if (!path) return stdout;
  const int fd = open(path->c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  FILE* f = fd >= 0 ? fdopen(fd, "w") : nullptr;
  if (!f) return fail(ExitCode::kUsage, fmt::format("cannot write {}: {}", *path, std::strerror(errno)));
  return f;
}

// The bundled workload: built next to memsight (build/tools/workloads) or installed beside it.
std::optional<std::string> find_workload() {
  std::error_code ec;
  const auto self = std::filesystem::read_symlink("/proc/self/exe", ec).parent_path();
  for (const auto& candidate : {self / "ms_workload", self / "../tools/workloads/ms_workload",
                                self / "../../tools/workloads/ms_workload"}) {
    if (access(candidate.c_str(), X_OK) == 0) return std::filesystem::weakly_canonical(candidate, ec).string();
  }
  return std::nullopt;
}

}  // namespace

int run_trace(const TraceOptions& options) {
  auto out = open_output(options.output);
  if (!out) return report_error(out.error());
  int code = 0;
  {
    TraceSession session(options, *out);
    auto result = session.start().and_then([&] { return session.run(); });
    if (!result) code = report_error(result.error());
  }
  if (*out != stdout) fclose(*out);
  return code;
}

int run_demo() {
  const auto workload = find_workload();
  if (!workload)
    return report_error(Error{ExitCode::kRuntime, "the bundled workload ms_workload is not built: run tools/run"});
  fmt::print(stderr,
             "memsight demo: tracing a bundled program for 10 s. It leaks 64 KiB/s from leak_block, keeps a\n"
             "bounded cache and churns temporary buffers; watch which stacks keep growing.\n\n");
  TraceOptions o;
  o.command = {*workload, "--seconds", "10", "--leak", "1000", "--leak-size", "640", "--cache", "64",
               "--cache-inserts", "5000", "--cache-size", "512", "--churn", "20000", "--churn-size", "4096"};
  o.interval_s = 2;
  o.top = 6;
  return run_trace(o);
}

}  // namespace memsight::cli
