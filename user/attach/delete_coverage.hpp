// Whether an allocator's operator delete already ends in a function memsight probes. jemalloc's plain
// delete is `jmp free@plt`: probing both would release a block twice (the second time perhaps a block
// another thread got meanwhile). Its sized delete frees inline: that one must be probed itself.
// Decoded with capstone from the function's own code, never assumed from a version number.
#pragma once

#include <cstdint>
#include <set>
#include <string>

namespace memsight::attach {

// True when the function at file offset `entry` (`size` bytes) of the ELF file at `path` jumps to or
// calls one of `releases` (file offsets of probed entries), directly or through a PLT/GOT slot bound to
// a symbol named in `release_names`. A size of 0 (unknown) reads as "does not".
bool reaches_release(const std::string& path, uint64_t entry, uint64_t size, const std::set<uint64_t>& releases,
                     const std::set<std::string>& release_names);

}  // namespace memsight::attach
