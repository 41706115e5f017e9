#include "output.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fmt/format.h>

namespace memsight::cli {

Result<OutputFile> open_output(const std::optional<std::string>& path) {
  if (!path) return OutputFile(stdout);
  const int fd = open(path->c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  FILE* f = fd >= 0 ? fdopen(fd, "w") : nullptr;
  if (!f) return fail(ExitCode::kUsage, fmt::format("cannot write {}: {}", *path, std::strerror(errno)));
  return OutputFile(f);
}

Result<void> write_all(FILE* out, const std::string& bytes) {
  if (fwrite(bytes.data(), 1, bytes.size(), out) != bytes.size() || fflush(out) != 0)
    return fail(ExitCode::kRuntime, fmt::format("cannot write the report: {}", std::strerror(errno)));
  return {};
}

int report_error(const Error& e) {
  fmt::print(stderr, "memsight: {}\n", e.message);
  return static_cast<int>(e.code);
}

}  // namespace memsight::cli
