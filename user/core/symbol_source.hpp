// The seam between the pure core and symbolization: reports ask it for the frames of an address.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "frame.hpp"

namespace memsight::core {

// How an address of a stack is to be named: frames[0] is where the allocator was entered (exact); the
// others are return addresses, whose call instruction is the byte before them (return).
enum class AddressKind { kExact, kReturn };

class SymbolSource {
 public:
  virtual ~SymbolSource() = default;
  // Called when a stack first arrives, while the process is alive: fix where each address lies
  // (module identity and offset), so the stack can still be named after the process exits.
  virtual void note_stack(uint32_t pid, std::span<const uint64_t> addresses) = 0;
  // The frames for one address noted earlier: inlined frames first (innermost), then the function
  // that contains them. Never empty: an address nothing is known of gives one frame with the address only.
  // The frames keep `address` as it is; a kReturn address is named by the call before it.
  virtual std::vector<Frame> describe(uint32_t pid, uint64_t address, AddressKind kind = AddressKind::kExact) = 0;
  // The process replaced its image (exec): addresses noted before mean nothing now; drop them.
  // (A process that exits is not forgotten: its final snapshot is still described.)
  virtual void forget(uint32_t pid) = 0;
};

}  // namespace memsight::core
