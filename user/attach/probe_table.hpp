// What memsight probes, by the role a file plays in a process: one row per function. The attach loop
// (alloc_tracer.cpp) and target discovery (target.cpp) both read this table.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace memsight::attach {

enum class Role : uint8_t {
  kMalloc,        // the C allocation API: malloc, free, calloc, ... (glibc, jemalloc, tcmalloc, a static binary)
  kNewViaMalloc,  // operator new that takes its block from malloc (libstdc++): entry only (see ms_ret)
  kOwnNew,        // operator new/delete of an allocator that serves them itself (jemalloc, tcmalloc):
                  // entry and return, with kUnwinder keeping exceptions working through the return probe
  kUnwinder,      // the C++ unwinder (libgcc_s): where a throw starts, return probes are undone (ms_unwind)
  kLoader,        // ld.so's _dl_debug_state: libraries were mapped; held until attached (ms_rtld)
  kCaller,        // any code: where it calls an allocator's own new, the block is read (ms_sites)
};

const char* role_name(Role role);

struct ProbeSpec {
  Role role;
  const char* symbol;  // the plain name; the allocator's prefix is put before it when `prefixed`
  const char* entry;   // BPF program for the entry
  uint16_t fn;         // MS_FN_*: the attach cookie of programs shared by several functions
  bool returns;        // also probe the return
  bool required;       // a module without it is not one memsight can use in that role
  bool past_null_test = false;  // probe after a leading `if (!p) return` (free: see probe_site.hpp)
  bool prefixed = true;         // je_malloc for a prefixed jemalloc; never mmap & co, nor C++ names
  bool release = false;         // a delete variant: probed only if it does not end in a probed release
};

std::span<const ProbeSpec> probe_table();

// The symbol names of that role's rows, with `prefix` where it applies.
std::vector<std::string> symbols_of(Role role, const std::string& prefix = "");

// The name a row has in a module with that prefix.
std::string symbol_name(const ProbeSpec& probe, const std::string& prefix);

}  // namespace memsight::attach
