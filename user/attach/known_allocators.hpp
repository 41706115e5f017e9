// The allocators memsight knows by name: how to recognize their files, the prefix their C API may carry,
// and whether they serve C++ operator new themselves. A table, so adding one is a row, not a branch.
#pragma once

#include <string>
#include <vector>

namespace memsight::attach {

struct KnownAllocator {
  const char* name;                   // for messages: "jemalloc"
  std::vector<const char*> files;     // file-name beginnings that identify it: "libjemalloc.so"
  std::vector<const char*> prefixes;  // symbol prefixes of a build whose C API is renamed (je_malloc);
                                      // used only when the plain names are absent
  bool own_new;  // its operator new does not call malloc: new is probed with its return (and the
                 // delete variants that do not end in free), see alloc_tracer.cpp
};

const std::vector<KnownAllocator>& known_allocators();

// The allocator whose file this is (by its name), or nullptr.
const KnownAllocator* allocator_of_file(const std::string& path);

// Every symbol prefix some known allocator uses (for a file memsight cannot name).
std::vector<std::string> known_prefixes();

}  // namespace memsight::attach
