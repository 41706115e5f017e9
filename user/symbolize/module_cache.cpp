#include "module_cache.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include <fmt/format.h>

#include "root_path.hpp"

namespace memsight::symbolize {
namespace {

// Opens `path` read-only if it is a regular file (never a device: opening one can have effects).
// Returns the descriptor.
tl::expected<int, std::string> open_regular(const std::string& path) {
  struct stat before;
  if (::stat(path.c_str(), &before) != 0) return tl::unexpected(fmt::format("{}: {}", path, std::strerror(errno)));
  if (!S_ISREG(before.st_mode)) return tl::unexpected(fmt::format("{}: not a regular file", path));
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0) return tl::unexpected(fmt::format("{}: {}", path, std::strerror(errno)));
  struct stat after;
  if (::fstat(fd, &after) != 0 || after.st_dev != before.st_dev || after.st_ino != before.st_ino) {
    ::close(fd);
    return tl::unexpected(fmt::format("{}: changed while being opened", path));
  }
  return fd;
}

// `path` as process `pid` sees it, resolved inside its root (root_path.hpp: a symlink can't lead out),
// and only if it is still the file that was mapped.
tl::expected<int, std::string> open_in_process_root(const std::string& proc_root, uint32_t pid,
                                                     const std::string& path, const FileId& expected) {
  auto named = open_in_root(fmt::format("{}/{}/root", proc_root, pid), path);
  if (!named) return tl::unexpected(named.error());
  struct stat st;
  if (::fstat(named->get(), &st) != 0) return tl::unexpected(fmt::format("{}: {}", path, std::strerror(errno)));
  if (st.st_dev != expected.dev || st.st_ino != expected.inode)
    return tl::unexpected(fmt::format("{}: replaced since it was mapped (device or inode differ)", path));
  auto fd = open_for_reading(*named, path);
  if (!fd) return tl::unexpected(fd.error());
  return fd->release();
}

}  // namespace

FileId FileId::of(const Mapping& mapping) {
  return FileId{static_cast<uint64_t>(makedev(mapping.dev_major, mapping.dev_minor)), mapping.inode};
}

ModuleCache::ModuleCache(std::string proc_root, std::vector<std::string> debug_dirs)
    : proc_root_(std::move(proc_root)), debug_dirs_(std::move(debug_dirs)) {}

tl::expected<ElfModule*, std::string> ModuleCache::get(uint32_t pid, const Mapping& mapping) {
  FileId id = FileId::of(mapping);
  auto it = modules_.find(id);
  if (it != modules_.end()) return it->second.get();
  return open(pid, mapping, id);
}

tl::expected<ElfModule*, std::string> ModuleCache::open(uint32_t pid, const Mapping& mapping, const FileId& id) {
  std::string via_map_files = fmt::format("{}/{}/map_files/{:x}-{:x}", proc_root_, pid, mapping.start, mapping.end);
  auto fd = open_regular(via_map_files);
  if (!fd && !mapping.deleted && mapping.file_backed()) {
    auto fallback = open_in_process_root(proc_root_, pid, mapping.path, id);
    if (!fallback) {
      return tl::unexpected(fmt::format("cannot open {} mapped by pid {}: {}; {} (run as root, or the file was "
                                        "replaced or the process exited before its stack was noted)",
                                        mapping.path, pid, fd.error(), fallback.error()));
    }
    fd = fallback;
  }
  if (!fd) return tl::unexpected(fmt::format("cannot open {} mapped by pid {}: {}", mapping.path, pid, fd.error()));
  auto file = ElfFile::from_fd(*fd, mapping.path);
  if (!file) return tl::unexpected(file.error());
  auto module = ElfModule::create(std::move(*file), debug_dirs_);
  if (!module) return tl::unexpected(fmt::format("{}: {}", mapping.path, module.error()));
  ElfModule* raw = module->get();
  modules_.emplace(id, std::move(*module));
  return raw;
}

}  // namespace memsight::symbolize
