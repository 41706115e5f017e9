#include "mapping_set.hpp"

#include <algorithm>

namespace memsight::core {

std::vector<MappingSet::Removal> MappingSet::remove(uint64_t start, uint64_t end) {
  std::vector<Removal> removed;
  if (start >= end) return removed;
  auto it = by_start_.upper_bound(start);
  if (it != by_start_.begin() && std::prev(it)->second.end > start) --it;
  while (it != by_start_.end() && it->second.start < end) {
    const Piece piece = it->second;
    it = by_start_.erase(it);
    Removal r{piece, 0};
    r.part.start = std::max(piece.start, start);
    r.part.end = std::min(piece.end, end);
    if (piece.start < start) {
      by_start_[piece.start] = Piece{piece.start, start, piece.stack_id, piece.born_ns};
      ++r.remaining;
    }
    if (piece.end > end) {
      it = by_start_.emplace(end, Piece{end, piece.end, piece.stack_id, piece.born_ns}).first;
      ++r.remaining;
      ++it;
    }
    removed.push_back(r);
  }
  return removed;
}

}  // namespace memsight::core
