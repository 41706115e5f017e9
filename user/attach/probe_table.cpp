#include "probe_table.hpp"

#include "memsight/abi.h"

namespace memsight::attach {
namespace {

// operator new and its variants: new, new[]; nothrow; aligned (C++17); aligned nothrow.
#define MS_NEW_ROWS(role, program)                                                         \
  {role, "_Znwm", program, MS_FN_NEW, false, false, false, false},                         \
  {role, "_Znam", program, MS_FN_NEW, false, false, false, false},                         \
  {role, "_ZnwmRKSt9nothrow_t", program, MS_FN_NEW, false, false, false, false},           \
  {role, "_ZnamRKSt9nothrow_t", program, MS_FN_NEW, false, false, false, false},           \
  {role, "_ZnwmSt11align_val_t", program, MS_FN_NEW, false, false, false, false},          \
  {role, "_ZnamSt11align_val_t", program, MS_FN_NEW, false, false, false, false},          \
  {role, "_ZnwmSt11align_val_tRKSt9nothrow_t", program, MS_FN_NEW, false, false, false, false}, \
  {role, "_ZnamSt11align_val_tRKSt9nothrow_t", program, MS_FN_NEW, false, false, false, false}

// operator delete and its variants (plain, nothrow, sized, aligned, sized aligned; array forms).
#define MS_DELETE_ROW(name) {Role::kOwnNew, name, "ms_free", MS_FN_FREE, false, false, false, false, true}

constexpr ProbeSpec kProbes[] = {
    {Role::kMalloc, "malloc", "ms_size0", MS_FN_MALLOC, true, true},
    {Role::kMalloc, "calloc", "ms_calloc", MS_FN_CALLOC, true, false},
    {Role::kMalloc, "realloc", "ms_realloc", MS_FN_REALLOC, true, false},
    {Role::kMalloc, "reallocarray", "ms_reallocarr", MS_FN_REALLOCARRAY, true, false},
    {Role::kMalloc, "posix_memalign", "ms_posix_memal", MS_FN_POSIX_MEMALIGN, true, false},
    {Role::kMalloc, "aligned_alloc", "ms_size1", MS_FN_ALIGNED_ALLOC, true, false},
    {Role::kMalloc, "memalign", "ms_size1", MS_FN_MEMALIGN, true, false},
    {Role::kMalloc, "valloc", "ms_size0", MS_FN_VALLOC, true, false},
    {Role::kMalloc, "pvalloc", "ms_size0", MS_FN_PVALLOC, true, false},
    {Role::kMalloc, "mmap", "ms_mmap", MS_FN_MMAP, true, false, false, false},
    {Role::kMalloc, "mremap", "ms_mremap", MS_FN_MREMAP, true, false, false, false},
    {Role::kMalloc, "free", "ms_free", MS_FN_FREE, false, true, true},
    {Role::kMalloc, "munmap", "ms_munmap", MS_FN_MUNMAP, false, false, false, false},
    // jemalloc's sized free: its sized-aligned operator delete ends here.
    {Role::kMalloc, "sdallocx", "ms_free", MS_FN_FREE, false, false},
    {Role::kMalloc, "dallocx", "ms_free", MS_FN_FREE, false, false},
    // libstdc++: operator delete ends in free, which is probed: only the allocating side is needed.
    // No return probe on this new: the malloc it calls reports its block (ms_ret).
    MS_NEW_ROWS(Role::kNewViaMalloc, "ms_size0"),
    // jemalloc, tcmalloc: new allocates without malloc. No return probe either (a throw through one
    // terminates the program): the block is read where new returns to, each call site probed as it
    // first appears (ms_own_new, ms_site).
    MS_NEW_ROWS(Role::kOwnNew, "ms_own_new"),
    MS_DELETE_ROW("_ZdlPv"), MS_DELETE_ROW("_ZdaPv"), MS_DELETE_ROW("_ZdlPvRKSt9nothrow_t"),
    MS_DELETE_ROW("_ZdaPvRKSt9nothrow_t"), MS_DELETE_ROW("_ZdlPvm"), MS_DELETE_ROW("_ZdaPvm"),
    MS_DELETE_ROW("_ZdlPvSt11align_val_t"), MS_DELETE_ROW("_ZdaPvSt11align_val_t"),
    MS_DELETE_ROW("_ZdlPvSt11align_val_tRKSt9nothrow_t"), MS_DELETE_ROW("_ZdaPvSt11align_val_tRKSt9nothrow_t"),
    MS_DELETE_ROW("_ZdlPvmSt11align_val_t"), MS_DELETE_ROW("_ZdaPvmSt11align_val_t"),
    // Every C++ throw starts in one of these (libgcc_s, or a static binary's copy).
    {Role::kUnwinder, "_Unwind_RaiseException", "ms_unwind", 0, false, true, false, false},
    {Role::kUnwinder, "_Unwind_Resume_or_Rethrow", "ms_unwind", 0, false, false, false, false},
    {Role::kUnwinder, "_Unwind_ForcedUnwind", "ms_unwind", 0, false, false, false, false},
    {Role::kLoader, "_dl_debug_state", "ms_rtld", 0, false, true, false, false},
};

#undef MS_NEW_ROWS
#undef MS_DELETE_ROW

}  // namespace

const char* role_name(Role role) {
  switch (role) {
    case Role::kMalloc: return "malloc";
    case Role::kNewViaMalloc: return "operator new";
    case Role::kOwnNew: return "operator new/delete";
    case Role::kUnwinder: return "C++ unwinder";
    case Role::kLoader: return "dynamic loader";
    case Role::kCaller: return "operator new call sites";
  }
  return "?";
}

std::span<const ProbeSpec> probe_table() { return kProbes; }

std::string symbol_name(const ProbeSpec& probe, const std::string& prefix) {
  return probe.prefixed ? prefix + probe.symbol : probe.symbol;
}

std::vector<std::string> symbols_of(Role role, const std::string& prefix) {
  std::vector<std::string> out;
  for (const auto& p : kProbes)
    if (p.role == role) out.push_back(symbol_name(p, prefix));
  return out;
}

}  // namespace memsight::attach
