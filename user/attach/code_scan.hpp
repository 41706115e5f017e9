// Reading an ELF file's machine code (x86-64, with capstone) for what only the code says: where an
// allocator's delete variants end, and where operator new is called from. Never assumed from a
// library's version number.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <vector>

namespace memsight::attach {

// Whether an allocator's operator delete already ends in a function memsight probes. jemalloc's plain
// delete is `jmp free@plt`: probing both would release a block twice (the second time perhaps a block
// another thread got meanwhile). Its sized delete frees inline: that one must be probed itself.
// True when the function at file offset `entry` (`size` bytes) of the ELF file at `path` jumps to or
// calls one of `releases` (file offsets of probed entries), directly or through a PLT/GOT slot bound to
// a symbol named in `release_names`. A size of 0 (unknown) reads as "does not".
bool reaches_release(const std::string& path, uint64_t entry, uint64_t size, const std::set<uint64_t>& releases,
                     const std::set<std::string>& release_names);

// The file offsets of the instructions right after every call, in the file's executable sections, to
// one of `callees`: functions of the file itself (file offsets) or symbols bound to its PLT/GOT slots
// (names). Where operator new returns to: its block is in the return register there (ms_site).
std::vector<uint64_t> return_sites(const std::string& path, const std::set<uint64_t>& callees,
                                   const std::set<std::string>& callee_names);

}  // namespace memsight::attach
