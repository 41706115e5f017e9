#include "tracker.hpp"

#include <algorithm>
#include <cmath>

#include "memsight/abi.h"

namespace memsight::core {

uint64_t Tracker::round_up(uint64_t bytes) const {
  const uint64_t page = config_.page_size;
  return bytes > UINT64_MAX - page ? UINT64_MAX / page * page : (bytes + page - 1) / page * page;
}

Tracker::ProcessState& Tracker::process(uint32_t pid, uint64_t time_ns) {
  // Records come in long runs from one process: the last one is checked before the map. Its address is
  // stable (map elements never move, and processes are never erased).
  if (last_process_ && last_pid_ == pid) return *last_process_;
  auto [it, created] = processes_.try_emplace(pid);
  if (created) it->second.first_seen_ns = time_ns;
  last_pid_ = pid;
  last_process_ = &it->second;
  return it->second;
}

void Tracker::add_process(uint32_t pid, uint64_t time_ns) { process(pid, time_ns); }

bool Tracker::admit(uint64_t bytes) {
  if (config_.max_live_blocks == 0 || live_ < config_.max_live_blocks) return true;
  ++counters_.refused_blocks;
  counters_.refused_bytes += bytes;
  return false;
}

// The key a birth of `pid` is charged to: the stack id BPF sent, unless it is no BPF id (even: BPF sets
// bit 0; 0 means the stack record was lost) or names another process's stack (a collision, counted);
// then the process's placeholder: even, with the top bit set, so no BPF id and no other pid's.
uint64_t Tracker::charge_key(uint32_t pid, uint64_t stack_id) {
  if (stack_id & 1) {
    const StackState* s = find_stack(stack_id);
    if (!s || s->pid == pid) return stack_id;
    ++counters_.stack_collisions;
  }
  return (uint64_t{1} << 63) | (uint64_t{pid} << 1);
}

// [address, address + length rounded to pages), or nothing when that is no range (empty, or past the
// end of the address space): records no kernel would produce, counted and ignored.
std::optional<std::pair<uint64_t, uint64_t>> Tracker::page_range(uint64_t address, uint64_t length) {
  const uint64_t end = address + round_up(length);
  if (length == 0 || end <= address) {
    ++counters_.invalid_records;
    return std::nullopt;
  }
  return std::pair{address, end};
}

// stacks_[id] or nullptr, through stack_memo_: a direct-mapped memo of recent lookups, because every
// birth and free needs its stack and a map lookup (a division and two dependent loads) cost as much
// as the rest of the record. Elements of stacks_ never move; the memo is cleared when any is erased.
Tracker::StackState* Tracker::find_stack(uint64_t id) {
  StackMemo& m = stack_memo_[(id >> 1) % stack_memo_.size()];  // ids are hashes (bit 0 is always set)
  if (m.state && m.id == id) return m.state;
  const auto it = stacks_.find(id);
  if (it == stacks_.end()) return nullptr;
  m = StackMemo{id, &it->second};
  return m.state;
}

// The stack state under `key` (from charge_key), made on first use.
Tracker::StackState& Tracker::stack(uint32_t pid, uint64_t key, ProcessState& p, uint64_t time_ns) {
  if (StackState* known = find_stack(key)) return *known;
  auto [it, created] = stacks_.try_emplace(key);
  if (created) {
    it->second.pid = pid;
    it->second.last_time_ns = it->second.first_seen_ns = time_ns;
    p.stack_ids.push_back(key);
  }
  return it->second;
}

void Tracker::on_stack(const StackRecord& r) {
  if (!(r.stack_id & 1)) {  // not an id BPF makes: it could only clash with a placeholder
    ++counters_.invalid_records;
    return;
  }
  ProcessState& p = process(r.h.pid, r.h.time_ns);
  auto [it, created] = stacks_.try_emplace(r.stack_id);
  StackState& s = it->second;
  if (!created && s.pid != r.h.pid) {
    ++counters_.stack_collisions;  // the same id from two processes: the first keeps it
    return;
  }
  if (created) {
    s.pid = r.h.pid;
    s.last_time_ns = s.first_seen_ns = r.h.time_ns;
    p.stack_ids.push_back(r.stack_id);
  } else if (!s.frames.empty()) {
    // BPF forgets stacks it sent (LRU) and sends them again: the same frames are expected.
    if (!std::equal(s.frames.begin(), s.frames.end(), r.frames.begin(), r.frames.end()))
      ++counters_.stack_collisions;
    return;
  }
  s.frames.assign(r.frames.begin(), r.frames.end());
  s.truncated = r.truncated;
}

// A birth, for the verdict's epochs. The first one starts the epoch clock; one past the last epoch
// doubles the epoch length for every stack.
void Tracker::note_birth(StackState& s, uint64_t born_ns, uint64_t bytes) {
  clock_.start(born_ns);
  if (const int widened = clock_.widen_for(born_ns))
    for (auto& [id, other] : stacks_) other.history.halve_epochs(widened);
  s.history.on_birth(clock_, born_ns, bytes);
}

void Tracker::sample(uint64_t now_ns) {
  clock_.start(now_ns);
  if (const int widened = clock_.widen_for(now_ns))
    for (auto& [id, s] : stacks_) s.history.halve_epochs(widened);
  for (auto& [id, s] : stacks_) {
    const auto p = processes_.find(s.pid);
    if (p != processes_.end() && p->second.exited_ns) continue;  // a flat line after exit is no plateau
    s.history.sample(now_ns, s.outstanding_bytes);
  }
}

SampleWeight Tracker::weigh(uint64_t address, uint64_t size) const {
  return config_.sample_bytes ? sample_weight(address, size, config_.sample_bytes) : SampleWeight{size, 1};
}

// A block of weight `w` is live (its entry in p.blocks is the caller's).
void Tracker::count_block(ProcessState& p, StackState& s, SampleWeight w) {
  s.outstanding_bytes += w.bytes;
  s.outstanding_allocs += w.allocs;
  p.outstanding_bytes += w.bytes;
  p.outstanding_allocs += w.allocs;
  ++live_;
}

void Tracker::add_block(ProcessState& p, StackState& s, uint64_t address, const Block& b) {
  const auto [slot, made] = p.blocks.try_emplace(address);
  if (!made) drop_block(p, address, slot->value, false);  // callers erase it first; else not counted twice
  slot->value = b;
  count_block(p, s, weigh(address, b.size));
}

void Tracker::drop_block(ProcessState& p, uint64_t address, const Block& b, bool count_free) {
  const SampleWeight w = weigh(address, b.size);
  if (StackState* s = find_stack(b.stack_id)) {
    s->outstanding_bytes -= w.bytes;
    s->outstanding_allocs -= w.allocs;
    s->history.on_death(clock_, b.born_ns, w.bytes);
    if (count_free) s->frees += w.allocs;
  }
  p.outstanding_bytes -= w.bytes;
  p.outstanding_allocs -= w.allocs;
  --live_;  // the caller erases the block
}

void Tracker::on_alloc(const AllocRecord& r) {
  ProcessState& p = process(r.h.pid, r.h.time_ns);
  if (p.exited_ns) return;
  if (r.fn == MS_FN_MMAP || r.fn == MS_FN_PAGE_FAULT) {
    const double weight = r.fn == MS_FN_PAGE_FAULT ? fault_weight(r.size) : 1.0;
    map_range(p, r.h.pid, r.address, r.size, r.stack_id, r.h.time_ns, weight);
    return;
  }
  const uint64_t id = charge_key(r.h.pid, r.stack_id);
  // The stack is charged once the birth is known to be tracked: a refused one is charged to nothing.
  const SampleWeight w = weigh(r.address, r.size);
  const auto charge = [&]() -> StackState& {
    StackState& s = stack(r.h.pid, id, p, r.h.time_ns);
    if (s.frames.empty()) ++counters_.unknown_stack_allocs;
    s.allocated_bytes += w.bytes;
    s.allocs += w.allocs;
    return s;
  };
  if (auto o = p.orphans.empty() ? p.orphans.end() : p.orphans.find(r.address); o != p.orphans.end()) {
    const bool freed_already = o->second >= r.h.time_ns;
    p.orphans.erase(o);
    if (freed_already) {  // its free came first: the block is born dead (and takes no room)
      StackState& s = charge();
      note_birth(s, r.h.time_ns, w.bytes);
      s.history.on_death(clock_, r.h.time_ns, w.bytes);
      ++counters_.late_births;
      --counters_.unmatched_frees;
      --p.unmatched_frees;
      s.frees += w.allocs;
      return;
    }
  }
  auto [slot, made] = p.blocks.try_emplace(r.address);  // one probe for the lookup and the insert
  if (!made) {
    ++counters_.replaced_blocks;  // its free never arrived
    drop_block(p, r.address, slot->value, true);
  }
  if (!admit(r.size)) {
    p.blocks.erase_found(slot);
    return;
  }
  StackState& s = charge();
  note_birth(s, r.h.time_ns, w.bytes);
  slot->value = Block{r.size, id, r.h.time_ns};
  count_block(p, s, w);
}

void Tracker::remember_orphan(ProcessState& p, uint64_t address, uint64_t time_ns) {
  if (config_.orphan_frees_per_process == 0) return;
  if (p.orphans.size() >= config_.orphan_frees_per_process && !p.orphan_order.empty()) {
    p.orphans.erase(p.orphan_order.front());
    p.orphan_order.pop_front();
  }
  p.orphans[address] = time_ns;
  p.orphan_order.push_back(address);
}

void Tracker::free_block(ProcessState& p, uint64_t address, uint64_t time_ns, PendingMove* into) {
  auto* it = p.blocks.find(address);
  if (!it) {
    ++counters_.unmatched_frees;
    ++p.unmatched_frees;
    remember_orphan(p, address, time_ns);
    return;
  }
  if (it->value.born_ns > time_ns) {
    // The free of an earlier block at this address, arriving after its successor's birth: that
    // birth already retired the earlier block (counted as replaced), so this free only settles it.
    if (counters_.replaced_blocks) --counters_.replaced_blocks;
    return;
  }
  if (into) {
    into->had_block = true;
    into->address = address;
    into->block = it->value;
  }
  drop_block(p, address, it->value, true);
  p.blocks.erase_found(it);
}

void Tracker::on_free(const FreeRecord& r) {
  ProcessState& p = process(r.h.pid, r.h.time_ns);
  if (p.exited_ns) return;
  PendingMove* move = nullptr;
  if (r.move_begin) {
    move = &p.pending[r.h.tid];
    *move = PendingMove{};
  }
  if (is_range_release(r.fn)) {
    auto removed = unmap(p, r.address, r.size);
    if (move) {
      move->address = r.address;
      move->pieces = std::move(removed);
    }
  } else {
    free_block(p, r.address, r.h.time_ns, move);
  }
}

void Tracker::on_move_end(const MoveEndRecord& r) {
  ProcessState& p = process(r.h.pid, r.h.time_ns);
  if (p.exited_ns) return;
  PendingMove old;
  if (auto it = p.pending.find(r.h.tid); it != p.pending.end()) {
    old = std::move(it->second);
    p.pending.erase(it);
  }
  const bool mapping = r.fn == MS_FN_MREMAP || r.fn == MS_FN_PAGES_MOVE;
  if (r.fn == MS_FN_PAGES_MOVE && r.address != 0) {
    move_pages(p, old, r.address, r.size);
    return;
  }
  if (r.address != 0) {
    if (mapping) {
      map_range(p, r.h.pid, r.address, r.size, r.stack_id, r.h.time_ns);
    } else {
      on_alloc(AllocRecord{r.h, r.address, r.size, r.stack_id, r.fn});
    }
    return;
  }
  // The call failed, so what left at its entry comes back as it was. realloc(p, 0) is the exception:
  // glibc freed p and returned NULL, so nothing comes back.
  if (mapping) {
    for (const auto& removal : old.pieces) restore_mapping(p, removal);
  } else if (old.had_block && r.size != 0) {
    if (auto* taken = p.blocks.find(old.address)) {
      ++counters_.replaced_blocks;  // records say another birth took the address: lost or garbled ones
      drop_block(p, old.address, taken->value, true);
      p.blocks.erase_found(taken);
    }
    StackState& s = stack(r.h.pid, old.block.stack_id, p, r.h.time_ns);
    const SampleWeight w = weigh(old.address, old.block.size);
    s.frees -= w.allocs;
    s.history.on_revival(clock_, old.block.born_ns, w.bytes);
    add_block(p, s, old.address, old.block);
  }
}

bool Tracker::is_range_release(uint16_t fn) {
  return fn == MS_FN_MUNMAP || fn == MS_FN_MREMAP || fn == MS_FN_MADVISE || fn == MS_FN_BRK ||
         fn == MS_FN_PAGES_MOVE;
}

// Growth mode's mremap: the resident pages that left the old range live on at the same offsets in the
// new one (clipped to its length); nothing new became resident. Whatever was mapped over the new
// range before is gone (MREMAP_FIXED).
void Tracker::move_pages(ProcessState& p, const PendingMove& old, uint64_t to, uint64_t length) {
  const auto range = page_range(to, length);
  if (!range) {
    for (const auto& removal : old.pieces) restore_mapping(p, removal);
    return;
  }
  unmap(p, to, length);
  for (MappingSet::Removal moved : old.pieces) {
    const uint64_t start = moved.part.start - old.address + to;
    const uint64_t end = std::min(moved.part.end - old.address + to, range->second);
    if (start >= end) continue;  // past the end of a shrunk range: those pages are gone
    moved.part.start = start;
    moved.part.end = end;
    restore_mapping(p, moved);
  }
}

// A new mapping (mmap, or where mremap put one): it replaces whatever was mapped over the same
// pages (MAP_FIXED, MREMAP_FIXED).
// 1/p for a recorded fault of `bytes` (see TrackerConfig::fault_sample_bytes); exactly 1 when p rounds
// to 1 (a 2 MiB huge page under a 64 KiB mean), so its partial releases stay exact.
double Tracker::fault_weight(uint64_t bytes) const {
  if (config_.fault_sample_bytes == 0) return 1.0;
  const double p = sample_probability(bytes, config_.fault_sample_bytes);
  return p >= 1.0 - 1e-9 ? 1.0 : 1.0 / p;
}

void Tracker::map_range(ProcessState& p, uint32_t pid, uint64_t address, uint64_t length, uint64_t stack_id,
                        uint64_t time_ns, double weight) {
  const auto range = page_range(address, length);
  if (!range) return;
  unmap(p, address, length);
  if (!admit(range->second - range->first)) return;
  add_mapping(p, pid, {range->first, range->second, charge_key(pid, stack_id), time_ns, weight});
}

void Tracker::add_mapping(ProcessState& p, uint32_t pid, const MappingSet::Piece& piece) {
  StackState& s = stack(pid, piece.stack_id, p, piece.born_ns);
  if (s.frames.empty()) ++counters_.unknown_stack_allocs;
  const MappingSet::Piece& stored = piece;
  const uint64_t bytes = piece.charged_bytes(), count = piece.charged_count();
  s.outstanding_bytes += bytes;
  s.outstanding_allocs += count;
  s.allocated_bytes += bytes;
  s.allocs += count;
  note_birth(s, piece.born_ns, bytes);
  p.outstanding_bytes += bytes;
  p.outstanding_allocs += count;
  p.mappings.insert(stored);
  ++live_;
}

std::vector<MappingSet::Removal> Tracker::unmap(ProcessState& p, uint64_t start, uint64_t length) {
  const uint64_t end = start + round_up(length);
  auto removed = p.mappings.remove(start, end > start ? end : UINT64_MAX);  // a range past the top ends there
  for (const auto& r : removed) {
    const uint64_t bytes = r.part.charged_bytes();
    // A piece that is gone is one allocation fewer; one split around a hole is one more.
    const int64_t pieces = int64_t{r.remaining} - 1;
    const int64_t count = pieces * static_cast<int64_t>(r.part.charged_count());
    if (auto s = stacks_.find(r.part.stack_id); s != stacks_.end()) {
      s->second.outstanding_bytes -= bytes;
      s->second.outstanding_allocs += count;
      s->second.history.on_death(clock_, r.part.born_ns, bytes);
      if (r.remaining == 0) s->second.frees += 1;
    }
    p.outstanding_bytes -= bytes;
    p.outstanding_allocs += count;
    live_ += pieces;
  }
  return removed;
}

// A failed mremap: the part it took comes back as a piece of its own.
void Tracker::restore_mapping(ProcessState& p, const MappingSet::Removal& r) {
  if (auto s = stacks_.find(r.part.stack_id); s != stacks_.end()) {
    s->second.outstanding_bytes += r.part.charged_bytes();
    s->second.outstanding_allocs += r.part.charged_count();
    s->second.history.on_revival(clock_, r.part.born_ns, r.part.charged_bytes());
    if (r.remaining == 0) s->second.frees -= 1;
  }
  p.outstanding_bytes += r.part.charged_bytes();
  p.outstanding_allocs += r.part.charged_count();
  p.mappings.insert(r.part);
  ++live_;
}

void Tracker::on_exec(const RecordHeader& h) {
  // A new image: none of the old blocks or stacks mean anything in it.
  ProcessState& p = process(h.pid, h.time_ns);
  for (uint64_t id : p.stack_ids) stacks_.erase(id);
  stack_memo_.fill({});
  live_ -= p.blocks.size() + p.mappings.pieces().size();
  const uint64_t unmatched = p.unmatched_frees;
  p = ProcessState{};
  p.first_seen_ns = h.time_ns;
  p.unmatched_frees = unmatched;  // losses stay reported
}

void Tracker::on_fork(const ForkRecord& r) {
  // Nothing of the parent's is copied: a traced child gets its state from its own first record, so
  // its frees of the blocks it inherited are unmatched, never subtracted from anyone. A child that
  // is not traced gets no row. The session hears of it (take_forks) and may attach to it.
  if (forks_.size() < kMaxPendingForks) forks_.push_back(r.child);
  else ++counters_.forks_dropped;
}

void Tracker::on_alloc_fail(const AllocFailRecord& r) {
  ++counters_.alloc_failures;
  if (!failures_.push(alloc_failure_of(r, config_.page_size))) ++counters_.failures_dropped;
}

std::vector<uint32_t> Tracker::forget_exited(uint64_t before_ns) {
  std::vector<uint32_t> gone;
  for (auto it = processes_.begin(); it != processes_.end();) {
    const ProcessState& p = it->second;
    if (!p.exited_ns || *p.exited_ns >= before_ns) {
      ++it;
      continue;
    }
    for (uint64_t id : p.stack_ids) stacks_.erase(id);
    live_ -= p.blocks.size() + p.mappings.pieces().size();
    gone.push_back(it->first);
    it = processes_.erase(it);
  }
  return gone;
}

void Tracker::on_process_exit(const ExitRecord& r) {
  on_exit(r.h.pid, r.h.time_ns);
  processes_[r.h.pid].comm = r.comm;
}

void Tracker::on_exit(uint32_t pid, uint64_t time_ns) {
  ProcessState& p = process(pid, time_ns);
  if (!p.exited_ns) p.exited_ns = time_ns;
  p.pending.clear();
}

}  // namespace memsight::core
