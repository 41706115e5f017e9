#include "maps.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

namespace memsight::symbolize {

tl::expected<ParsedMaps, std::string> read_maps(const std::string& proc_root, uint32_t pid) {
  std::string path = fmt::format("{}/{}/maps", proc_root, pid);
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return tl::unexpected(fmt::format("cannot open {}: {} (has the process exited? tracing another "
                                      "user's process needs root)",
                                      path, std::strerror(errno)));
  }
  std::string text;
  char buffer[16384];
  for (;;) {
    ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      ::close(fd);
      return tl::unexpected(fmt::format("cannot read {}: {}", path, std::strerror(err)));
    }
    if (n == 0) break;
    text.append(buffer, static_cast<size_t>(n));
  }
  ::close(fd);
  return parse_maps(text);
}

}  // namespace memsight::symbolize
