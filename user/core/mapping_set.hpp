// The anonymous mappings of one process (mmap/munmap/mremap), as page-rounded ranges [start, end) that
// remember the stack that created them. munmap may remove any part of a range: the rest stays, split
// in two when the hole is in the middle (bcc's memleak matched munmap by start address and lost these).
#pragma once

#include <cmath>
#include <cstdint>
#include <map>
#include <vector>

namespace memsight::core {

class MappingSet {
 public:
  struct Piece {
    uint64_t start = 0;  // user virtual address, page aligned
    uint64_t end = 0;    // one past the last byte
    uint64_t stack_id = 0;
    uint64_t born_ns = 0;
    // Sampled growth: the bytes and pieces this piece stands for per byte and per piece (1/p of the
    // sampling, growth_weight.hpp); 1 when every fault is recorded, and always in exact mode.
    double weight = 1.0;
    uint64_t bytes() const { return end - start; }
    // What the piece counts for in the totals: its bytes, or their estimate. The same computation at
    // birth and at release, so a release takes back exactly what the birth added.
    uint64_t charged_bytes() const { return weight == 1.0 ? bytes() : static_cast<uint64_t>(llround(bytes() * weight)); }
    uint64_t charged_count() const { return weight == 1.0 ? 1 : static_cast<uint64_t>(llround(weight)); }
  };
  // One piece touched by remove(): the part taken out, and how many parts of it remain (0: the
  // piece is gone; 1: shrunk; 2: split around a hole).
  struct Removal {
    Piece part;
    int remaining = 0;
  };

  // Takes [start, end) out of every piece it overlaps.
  std::vector<Removal> remove(uint64_t start, uint64_t end);
  // Adds a piece; the caller removes any overlap first (MAP_FIXED replaces what was there).
  void insert(const Piece& piece) { by_start_[piece.start] = piece; }

  const std::map<uint64_t, Piece>& pieces() const { return by_start_; }
  bool empty() const { return by_start_.empty(); }

 private:
  std::map<uint64_t, Piece> by_start_;  // key: Piece::start; pieces never overlap
};

}  // namespace memsight::core
