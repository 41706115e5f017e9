// Where to put a uprobe so the kernel can emulate the probed instruction instead of single-stepping
// it (single-stepping costs ~15 us a hit on these VMs: platform.md). Decoded with capstone, never by
// hand; when unsure, the function's entry.
#pragma once

#include <cstdint>
#include <string>

namespace memsight::attach {

// free(p) begins with `test %rdi,%rdi; je <return>` in glibc: a NULL test that is a no-op for us (we
// ignore free(NULL)) and whose `test` the kernel single-steps. If the function at `entry_offset` of
// the ELF file at `path` begins that way (an endbr64 before it is allowed), the file offset of the
// instruction after the branch; otherwise `entry_offset`.
uint64_t past_null_test(const std::string& path, uint64_t entry_offset);

}  // namespace memsight::attach
