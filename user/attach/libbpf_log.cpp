#include "libbpf_log.hpp"

#include <bpf/libbpf.h>

#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fmt/format.h>

namespace memsight::attach {
namespace {

constexpr size_t kKeptLines = 12;
std::deque<std::string> g_lines;  // libbpf logs from the thread that calls it; memsight uses one
bool g_echo = false;

int on_libbpf_message(enum libbpf_print_level level, const char* format, va_list args) {
  if (level == LIBBPF_DEBUG && !g_echo) return 0;
  char line[1024];
  va_list copy;
  va_copy(copy, args);
  const int n = vsnprintf(line, sizeof(line), format, copy);
  va_end(copy);
  if (n <= 0) return 0;
  std::string text(line);
  while (!text.empty() && text.back() == '\n') text.pop_back();
  if (g_echo) fprintf(stderr, "libbpf: %s\n", text.c_str());
  g_lines.push_back(std::move(text));
  if (g_lines.size() > kKeptLines) g_lines.pop_front();
  return 0;
}

}  // namespace

void capture_libbpf_log() {
  const char* debug = getenv("MEMSIGHT_DEBUG");
  g_echo = debug && *debug && *debug != '0';
  libbpf_set_print(on_libbpf_message);
}

Error libbpf_error(const std::string& what, int err) {
  err = err < 0 ? -err : err;
  if (err == EPERM || err == EACCES)
    return Error{ExitCode::kPrivilege, fmt::format("{}: {} (memsight needs root, or CAP_BPF and CAP_PERFMON)",
                                                   what, std::strerror(err))};
  return Error{ExitCode::kRuntime, fmt::format("{}: {}{}", what, std::strerror(err), libbpf_log_tail())};
}

std::string libbpf_log_tail() {
  std::string tail;
  for (const auto& line : g_lines) tail += "\n  libbpf: " + line;
  return tail;
}

}  // namespace memsight::attach
