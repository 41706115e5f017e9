// The ELF modules of all traced processes, one per file (device, inode), opened once and kept.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include <tl/expected.hpp>

#include "elf_module.hpp"
#include "maps.hpp"

namespace memsight::symbolize {

// A file's identity on the host, the same from every mount namespace (unlike its path). The cache
// keeps each file open, so its inode cannot be freed and reused by another file while cached.
struct FileId {
  uint64_t dev = 0;    // makedev(major, minor), comparable with stat's st_dev
  uint64_t inode = 0;
  bool operator==(const FileId&) const = default;
  static FileId of(const Mapping& mapping);
};

struct FileIdHash {
  size_t operator()(const FileId& id) const noexcept { return id.inode * 0x9E3779B97F4A7C15ull ^ id.dev; }
};

class ModuleCache {
 public:
  ModuleCache(std::string proc_root, std::vector<std::string> debug_dirs);

  // The module of the file behind `mapping` in process `pid`; opened on first use through
  // PROC/PID/map_files/START-END (the very file mapped: deleted files and other mount namespaces work,
  // needs CAP_SYS_ADMIN or CAP_CHECKPOINT_RESTORE) or else PATH resolved inside PROC/PID/root
  // (root_path.hpp: no symlink leads out; accepted only when it is still the same device and inode). The pointer stays valid for the life of the cache.
  tl::expected<ElfModule*, std::string> get(uint32_t pid, const Mapping& mapping);

  size_t size() const { return modules_.size(); }

 private:
  tl::expected<ElfModule*, std::string> open(uint32_t pid, const Mapping& mapping, const FileId& id);

  std::string proc_root_;
  std::vector<std::string> debug_dirs_;
  std::unordered_map<FileId, std::unique_ptr<ElfModule>, FileIdHash> modules_;
};

}  // namespace memsight::symbolize
