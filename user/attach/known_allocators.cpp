#include "known_allocators.hpp"

#include <filesystem>

namespace memsight::attach {

const std::vector<KnownAllocator>& known_allocators() {
  static const std::vector<KnownAllocator> table = {
      // glibc: libc.so.6, or libc-2.xx.so on older systems. Its new is libstdc++'s, which calls malloc.
      {"glibc", {"libc.so", "libc-2."}, {}, false},
      // jemalloc 5 (Debian libjemalloc2): new/new[] allocate inline, sized delete frees through sdallocx.
      {"jemalloc", {"libjemalloc.so"}, {"je_"}, true},
      // gperftools (Debian libtcmalloc-minimal4, libgoogle-perftools4): tc_new does not call malloc.
      {"tcmalloc", {"libtcmalloc_minimal.so", "libtcmalloc.so", "libtcmalloc_and_profiler.so",
                    "libtcmalloc_debug.so", "libtcmalloc_minimal_debug.so"}, {"tc_"}, true},
      {"mimalloc", {"libmimalloc.so", "libmimalloc-secure.so"}, {"mi_"}, true},
  };
  return table;
}

const KnownAllocator* allocator_of_file(const std::string& path) {
  const std::string base = std::filesystem::path(path).filename();
  for (const auto& a : known_allocators())
    for (const char* f : a.files)
      if (base.rfind(f, 0) == 0) return &a;
  return nullptr;
}

std::vector<std::string> known_prefixes() {
  std::vector<std::string> out;
  for (const auto& a : known_allocators())
    for (const char* p : a.prefixes) out.emplace_back(p);
  return out;
}

}  // namespace memsight::attach
