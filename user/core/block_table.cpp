#include "block_table.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <cstring>

namespace memsight::core {
namespace {

constexpr size_t kMappedBytes = size_t{1} << 20;  // from this size on, an array is a mapping of its own
constexpr uintptr_t kHugePage = uintptr_t{2} << 20;

size_t whole_pages(size_t bytes) {
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  return (bytes + page - 1) / page * page;
}

}  // namespace

void* allocate_zeroed(size_t bytes) {
  if (bytes < kMappedBytes) {
    void* p = ::operator new(bytes, std::align_val_t{64});
    std::memset(p, 0, bytes);
    return p;
  }
  // Map a huge page more than needed, then unmap what lies before the first 2 MiB boundary and after
  // the array: what stays starts on a huge page. Anonymous memory comes zeroed.
  const size_t length = whole_pages(bytes);
  void* raw = mmap(nullptr, length + kHugePage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) throw std::bad_alloc();
  const uintptr_t start = reinterpret_cast<uintptr_t>(raw);
  const uintptr_t aligned = (start + kHugePage - 1) & ~(kHugePage - 1);
  if (aligned > start) munmap(raw, aligned - start);
  if (start + kHugePage > aligned) munmap(reinterpret_cast<void*>(aligned + length), start + kHugePage - aligned);
  madvise(reinterpret_cast<void*>(aligned), length, MADV_HUGEPAGE);  // a hint: its failure changes nothing
  return reinterpret_cast<void*>(aligned);
}

void release_zeroed(void* p, size_t bytes) {
  if (bytes < kMappedBytes)
    ::operator delete(p, std::align_val_t{64});
  else
    munmap(p, whole_pages(bytes));
}

}  // namespace memsight::core
