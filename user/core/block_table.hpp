// BlockTable: the live blocks of one process, address -> value, in one flat array.
//
// Open addressing with linear probing. A lookup hashes the address to its home slot and reads forward
// until it meets the key or an empty slot: a hit usually costs one cache miss, where std::unordered_map
// pays two dependent ones (bucket array, then node) once it outgrows the cache. Erasing shifts the
// displaced entries that follow back into the hole (backward shift): no tombstones, so probe chains do
// not lengthen under churn and the table never needs a rebuild to clean up.
//
//   slots_: [ k1 v | 0 . | k2 v | k3 v | 0 . | ... ]  [ zero-key entry ]
//             capacity_ slots; key 0 marks an empty one   one more slot: the entry whose key is 0, if any
//
// Load: at most 4/5 of the slots hold entries; one more makes the table grow by half. Knuth's estimates
// for linear probing at load a are (1 + 1/(1-a))/2 slots read by a hit and (1 + 1/(1-a)^2)/2 by a miss:
// 3 and 13 at 0.8, 1.5 and 2.5 at 0.5, and consecutive slots share cache lines (two 32-byte slots per
// line). Growing by 1.5 at 0.8 keeps the load between 0.53 and 0.8, so the tracker's 32-byte slot (8-byte
// address, 24-byte Block) costs 40 to 60 bytes per live block, under the 64 the tracker is allowed
// (doubling would reach 80). While it grows, old and new arrays are both held for a moment. It never
// shrinks (neither did the std::unordered_map it replaces).
//
// Capacities are not powers of two, so the home slot is the high half of hash * capacity (a multiply,
// not a division); that needs a hash whose high bits depend on every bit of the address (mix below).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <type_traits>
#include <utility>

namespace memsight::core {

// The tables' arrays: `bytes` of zeroes starting on a cache line (so no 32-byte slot straddles two).
// From 1 MiB up they are mappings of their own, the only system calls of user/core, for two reasons. A
// table of a million blocks is ~45 MB: with 4 KiB pages every random lookup also misses the TLB, and every
// growth takes a page fault per 4 KiB of the new array (~3 us each on the project's VM), so the mapping is
// 2 MiB-aligned and asks for transparent huge pages (a hint: no effect on results, ignored where THP is
// off), which cut the aggregation's CPU time by 15-25% there (docs/benchmarks.md). And an array the table
// outgrew goes back to the kernel at once: from malloc's arena the arrays left behind stayed resident,
// ~2x the table. Smaller arrays come from operator new. Throws std::bad_alloc.
void* allocate_zeroed(size_t bytes);
void release_zeroed(void* p, size_t bytes);  // what allocate_zeroed(bytes) returned

template <typename Value>
class BlockTable {
 public:
  struct Slot {
    uint64_t key = 0;  // the address; 0 in the main array: empty
    Value value{};
  };
  static_assert(std::is_trivially_copyable_v<Value> && std::is_trivially_destructible_v<Value>,
                "slots are moved with plain copies and freed without destructors");

  static constexpr size_t kMinCapacity = 16;

  BlockTable() = default;
  BlockTable(BlockTable&& o) noexcept { *this = std::move(o); }
  BlockTable& operator=(BlockTable&& o) noexcept {
    slots_ = std::move(o.slots_);
    capacity_ = std::exchange(o.capacity_, 0);
    used_ = std::exchange(o.used_, 0);
    size_ = std::exchange(o.size_, 0);
    has_zero_ = std::exchange(o.has_zero_, false);
    return *this;
  }

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  size_t capacity() const { return capacity_; }  // slots of the main array
  size_t memory_bytes() const { return slots_ ? (capacity_ + 1) * sizeof(Slot) : 0; }

  // The entry of `key`, or nullptr. The pointer is valid until the next insert or erase.
  Slot* find(uint64_t key) {
    if (key == 0) return has_zero_ ? &slots_[capacity_] : nullptr;
    if (capacity_ == 0) return nullptr;
    for (size_t i = home(key);; i = next(i)) {
      Slot& s = slots_[i];
      if (s.key == key) return &s;
      if (s.key == 0) return nullptr;  // the load stays below 1: every chain ends at an empty slot
    }
  }
  const Slot* find(uint64_t key) const { return const_cast<BlockTable*>(this)->find(key); }

  // The entry of `key`, made with a default value when there was none (then `true`): one probe where
  // find and insert would take two. The pointer is valid until the next insert or erase.
  std::pair<Slot*, bool> try_emplace(uint64_t key) {
    if (key == 0) {
      const bool made = !has_zero_;
      if (made) set_zero(Value{});
      return {&slots_[capacity_], made};
    }
    if (capacity_ != 0) {
      size_t i = home(key);
      for (; slots_[i].key != 0; i = next(i))
        if (slots_[i].key == key) return {&slots_[i], false};
      if (used_ + 1 <= max_used()) return {make(i, key), true};
    }
    grow();
    size_t i = home(key);
    while (slots_[i].key != 0) i = next(i);
    return {make(i, key), true};
  }

  // Sets `key` to `value`. True when the key was new.
  bool insert_or_assign(uint64_t key, const Value& value) {
    const auto [slot, made] = try_emplace(key);
    slot->value = value;
    return made;
  }

  // Removes the entry `s` points at (from find(), with nothing inserted or erased since).
  void erase_found(Slot* s) {
    const size_t at = static_cast<size_t>(s - slots_.get());
    --size_;
    if (at == capacity_) {
      has_zero_ = false;
      return;
    }
    --used_;
    // Each later entry of the chain whose path from its home crosses the hole moves into it; its old
    // place becomes the hole. The chain ends at an empty slot.
    size_t hole = at;
    for (size_t j = next(hole); slots_[j].key != 0; j = next(j)) {
      if (distance(home(slots_[j].key), j) >= distance(hole, j)) {
        slots_[hole] = slots_[j];
        hole = j;
      }
    }
    slots_[hole].key = 0;
  }
  bool erase(uint64_t key) {
    Slot* s = find(key);
    if (s) erase_found(s);
    return s != nullptr;
  }

  // The slot a key's probe starts at: for tests of probe chains.
  size_t home(uint64_t key) const {
    return static_cast<size_t>((static_cast<unsigned __int128>(mix(key)) * capacity_) >> 64);
  }

  // Forward iteration over the entries, in slot order (no meaning to it), the zero-key entry last.
  class const_iterator {
   public:
    const Slot& operator*() const { return table_->slots_[at_]; }
    const Slot* operator->() const { return &table_->slots_[at_]; }
    const_iterator& operator++() {
      at_ = table_->live_from(at_ + 1);
      return *this;
    }
    bool operator==(const const_iterator& o) const { return at_ == o.at_; }

   private:
    friend class BlockTable;
    const_iterator(const BlockTable* table, size_t at) : table_(table), at_(at) {}
    const BlockTable* table_;
    size_t at_;
  };
  const_iterator begin() const { return {this, live_from(0)}; }
  const_iterator end() const { return {this, end_index()}; }

 private:
  // Addresses differ mostly in their middle bits and step by 16: two multiply-xorshift rounds spread
  // every input bit over the high bits that pick the home slot.
  static uint64_t mix(uint64_t x) {
    x ^= x >> 32;
    x *= 0xd6e8feb86659fd93ull;
    x ^= x >> 32;
    x *= 0xd6e8feb86659fd93ull;
    return x ^ (x >> 32);
  }

  size_t next(size_t i) const { return i + 1 == capacity_ ? 0 : i + 1; }
  // Steps from slot `from` forward to slot `to`, wrapping at the end.
  size_t distance(size_t from, size_t to) const { return to >= from ? to - from : to + capacity_ - from; }
  size_t max_used() const { return capacity_ / 5 * 4 + capacity_ % 5 * 4 / 5; }  // 4/5, rounded down
  size_t end_index() const { return capacity_ + 1; }

  // The first entry at or after slot `i`, or end_index().
  size_t live_from(size_t i) const {
    for (; i < capacity_; ++i)
      if (slots_[i].key != 0) return i;
    return i == capacity_ && has_zero_ ? capacity_ : end_index();
  }

  bool set_zero(const Value& value) {
    if (!slots_) grow();
    slots_[capacity_].value = value;
    if (has_zero_) return false;
    has_zero_ = true;
    ++size_;
    return true;
  }

  Slot* make(size_t i, uint64_t key) {
    slots_[i] = Slot{key, Value{}};
    ++used_;
    ++size_;
    return &slots_[i];
  }

  // Puts an entry known to be absent into its first free slot (room is known to be there).
  void place(const Slot& s) {
    size_t i = home(s.key);
    while (slots_[i].key != 0) i = next(i);
    slots_[i] = s;
  }

  void grow() {
    const size_t old_capacity = capacity_;
    SlotArray old = std::move(slots_);
    capacity_ = old_capacity < kMinCapacity ? kMinCapacity : old_capacity + old_capacity / 2;
    slots_ = allocate(capacity_ + 1);
    if (!old) return;
    for (size_t i = 0; i < old_capacity; ++i)
      if (old[i].key != 0) place(old[i]);
    slots_[capacity_] = old[old_capacity];
  }

  struct Free {
    size_t bytes = 0;
    void operator()(Slot* p) const { release_zeroed(p, bytes); }
  };
  using SlotArray = std::unique_ptr<Slot[], Free>;
  // Zero bytes are empty slots (key 0); Slot is an implicit-lifetime type, so no constructor runs (and
  // pages not yet used are not touched).
  static SlotArray allocate(size_t n) {
    const size_t bytes = n * sizeof(Slot);
    return SlotArray(static_cast<Slot*>(allocate_zeroed(bytes)), Free{bytes});
  }

  SlotArray slots_;
  size_t capacity_ = 0;  // slots of the main array (slots_ holds one more)
  size_t used_ = 0;      // entries in the main array
  size_t size_ = 0;      // used_, plus the zero-key entry
  bool has_zero_ = false;
};

}  // namespace memsight::core
