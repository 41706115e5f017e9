// The tracker: exact outstanding memory per call stack, per process, from decoded records.
//
//   records ─► Tracker ─┬─ processes_: pid ─► ProcessState
//                       │                     ├─ blocks:   address ─► Block {size, stack, born}   (heap,
//                       │                     │            a flat BlockTable: block_table.hpp)
//                       │                     ├─ mappings: MappingSet of [start,end) ranges        (mmap)
//                       │                     ├─ pending:  tid ─► the old side of a realloc/mremap
//                       │                     └─ orphans:  frees that came before their block's birth
//                       ├─ stacks_:    stack id ─► StackState {frames, outstanding, cumulative counts}
//                       └─ failures_:  failed calls, oldest first, bounded, until take_failures()
//
// Every birth adds to its stack; every release subtracts what that block added, so no total can go
// negative: a free of an address never seen (born before attach, or in the parent before fork) only
// counts as an unmatched free. A realloc's old block leaves at the call's entry (MOVE_BEGIN) and comes
// back if the call fails, so another thread reusing the address meanwhile can't be confused with it.
//
// Memory is bounded by max_live_blocks (heap blocks and mapping pieces of all processes together). At
// the cap a birth is refused, not the oldest block evicted: the oldest blocks are a leak's evidence (a
// leak whose old blocks vanished while new ones live would read as a cache), and refusing needs no
// per-block age index. A refused birth is a loss like a record the ring buffer dropped: counted
// (refused_blocks), charged to no stack, and its later free is an unmatched free. Past the cap the
// totals are lower bounds, and the reports say so.
// Pure: no I/O, no clock; time comes from the records and from the caller.
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <optional>
#include <unordered_map>
#include <utility>
#include <vector>

#include "alloc_failure.hpp"
#include "block_table.hpp"
#include "mapping_set.hpp"
#include "oom_history.hpp"
#include "stack_history.hpp"
#include "records.hpp"
#include "sampler.hpp"
#include "snapshot.hpp"

namespace memsight::core {

struct TrackerConfig {
  uint64_t page_size = 4096;             // mmap lengths are rounded up to it, as the kernel does
  size_t orphan_frees_per_process = 4096;  // unmatched frees remembered in case their birth arrives late
  // Live heap blocks and mappings tracked at once, all processes together (0: unlimited). 40 to 60
  // bytes of tracker memory each (docs/reliability.md): the default holds ~0.5 GiB. Births past it are
  // refused and counted. A failed realloc/mremap's revival and a munmap that splits a range are never
  // refused, so the count may pass the cap by the calls in flight.
  uint64_t max_live_blocks = uint64_t{8} << 20;
  // --sample-bytes: the mean gap between sample points, bytes; 0: every allocation is recorded. Heap
  // blocks then count for the blocks and bytes they stand for (sampler.hpp), so every byte and
  // allocation total is an estimate; mappings (mmap) are always recorded and count as themselves.
  uint64_t sample_bytes = 0;
  // Growth mode's sampling: BPF records a fault of s bytes with probability 1 - exp(-s / N) for this N
  // (0: every fault); each recorded piece then stands for 1/p of its bytes and pieces.
  uint64_t fault_sample_bytes = 0;
};

// What the tracker saw that it could not match: shown in every report, never dropped silently.
struct TrackerCounters {
  uint64_t unmatched_frees = 0;       // free/realloc of an address never seen alive
  uint64_t unknown_stack_allocs = 0;  // births whose stack record never arrived (ring buffer full)
  uint64_t stack_collisions = 0;      // a stack id arriving with other frames than before
  uint64_t replaced_blocks = 0;       // a birth at a live address: the block's free was lost
  uint64_t late_births = 0;           // births that arrived after their own free (out of order)
  uint64_t invalid_records = 0;       // records no kernel would write (empty or wrapping ranges, even ids)
  uint64_t alloc_failures = 0;        // allocating calls that failed, queued or not
  uint64_t failures_dropped = 0;      // of those, the ones the full failure queue could not hold
  uint64_t forks_dropped = 0;         // forks the session never heard of (more than kMaxPendingForks at once)
  uint64_t refused_blocks = 0;        // births not tracked: max_live_blocks were live (heap blocks and mmaps)
  uint64_t refused_bytes = 0;         // their bytes (mmap: page-rounded)
};

class Tracker final : public RecordSink {
 public:
  explicit Tracker(TrackerConfig config = {}) : config_(config) {}
  Tracker(const Tracker&) = delete;  // it points into its own process map
  Tracker& operator=(const Tracker&) = delete;

  void on_stack(const StackRecord& r) override;
  void on_alloc(const AllocRecord& r) override;
  void on_free(const FreeRecord& r) override;
  void on_move_end(const MoveEndRecord& r) override;
  void on_exec(const RecordHeader& h) override;
  void on_fork(const ForkRecord& r) override;
  // Queues the failure for take_failures(); outstanding memory is unchanged (nothing was born).
  void on_alloc_fail(const AllocFailRecord& r) override;

  // The failures queued since the last call, oldest first (at most FailureQueue::kCapacity; the rest
  // are counted in failures_dropped).
  std::vector<AllocFailure> take_failures() { return failures_.take(); }

  // The process exited at `time_ns`: it is kept, with what it still held (its leaks), for the final
  // snapshot; it no longer changes.
  void on_exit(uint32_t pid, uint64_t time_ns);
  // The same, told by a record, which also names the process (it is gone from /proc by now).
  void on_process_exit(const ExitRecord& r) override;
  // Forgets the processes that exited before `before_ns`, with their stacks: a trace of every process
  // on a host sees many short-lived ones come and go. Returns their pids.
  std::vector<uint32_t> forget_exited(uint64_t before_ns);
  // Start a process's state even before any record of it arrives (a traced process that allocates
  // nothing is still in the report).
  void add_process(uint32_t pid, uint64_t time_ns);

  // Samples every live stack's outstanding bytes: the history verdicts are judged from. Call it at a
  // steady pace (every second); the snapshot interval may be longer.
  void sample(uint64_t now_ns);

  // Per-stack rows sorted by outstanding bytes (then allocated bytes), descending. Also remembers
  // each stack's outstanding bytes, so the next snapshot's growth rate covers the time in between.
  Snapshot snapshot(uint64_t now_ns, const SnapshotOptions& options);

  const TrackerCounters& counters() const { return counters_; }
  // Heap blocks and mapping pieces tracked now, exited processes' included: what max_live_blocks bounds.
  uint64_t live_blocks() const { return live_; }

  // At an OOM kill: each stack of `pids` with its live bytes, the part born in the last `recent_ns`
  // (and the biggest such block), and its verdict judged now under `rules` (an OOM can't wait for the
  // samples a trace would want). Leaves the snapshots' growth bookkeeping alone. Largest first.
  std::vector<StackEvidence> evidence(const std::vector<uint32_t>& pids, uint64_t now_ns, uint64_t recent_ns,
                                      const VerdictRules& rules) const;
  // Children the targets forked since the last call (the session follows them), oldest first.
  std::vector<uint32_t> take_forks() { return std::exchange(forks_, {}); }
  static constexpr size_t kMaxPendingForks = 4096;

  // One stack's row by id (a failed call's), live or not; empty when its record never arrived.
  std::optional<StackRow> stack_of(uint64_t stack_id, uint64_t now_ns, const VerdictRules& rules) const;

 private:
  struct Block {
    uint64_t size = 0;
    uint64_t stack_id = 0;
    uint64_t born_ns = 0;
  };
  struct StackState {
    uint32_t pid = 0;
    std::vector<uint64_t> frames;
    bool truncated = false;
    uint64_t outstanding_bytes = 0;
    uint64_t outstanding_allocs = 0;
    uint64_t allocated_bytes = 0;
    uint64_t allocs = 0;
    uint64_t frees = 0;
    uint64_t last_outstanding = 0;  // at the previous snapshot (0 at first sight)
    uint64_t last_time_ns = 0;      // of the previous snapshot, or of first sight
    uint64_t first_seen_ns = 0;
    StackHistoryState history;  // for the verdict
  };
  struct PendingMove {
    bool had_block = false;  // realloc: the old block was known
    uint64_t address = 0;  // realloc: the old block's; mremap: the old range's start
    Block block;
    std::vector<MappingSet::Removal> pieces;  // mremap: what left the mappings
  };
  struct ProcessState {
    BlockTable<Block> blocks;  // key: address
    MappingSet mappings;
    std::unordered_map<uint32_t, PendingMove> pending;  // key: tid
    std::unordered_map<uint64_t, uint64_t> orphans;     // address -> time of a free nothing matched
    std::deque<uint64_t> orphan_order;                  // oldest first, to bound `orphans`
    std::vector<uint64_t> stack_ids;                    // stacks of this process, to drop on exec
    uint64_t outstanding_bytes = 0;
    uint64_t outstanding_allocs = 0;
    uint64_t unmatched_frees = 0;
    uint64_t first_seen_ns = 0;
    std::optional<uint64_t> exited_ns;
    std::string comm;  // from its exit record (growth mode); empty: ask /proc
  };

  // The parts of a stack's row that need no live-block pass: identity, counts, frames, verdict.
  StackRow stack_row(uint64_t id, const StackState& s, uint64_t end_ns, const VerdictRules& rules) const;
  ProcessState& process(uint32_t pid, uint64_t time_ns);
  uint64_t charge_key(uint32_t pid, uint64_t stack_id);
  std::optional<std::pair<uint64_t, uint64_t>> page_range(uint64_t address, uint64_t length);
  StackState& stack(uint32_t pid, uint64_t key, ProcessState& p, uint64_t time_ns);
  StackState* find_stack(uint64_t id);
  void map_range(ProcessState& p, uint32_t pid, uint64_t address, uint64_t length, uint64_t stack_id,
                 uint64_t time_ns, double weight = 1.0);
  double fault_weight(uint64_t bytes) const;
  void add_block(ProcessState& p, StackState& s, uint64_t address, const Block& b);
  void count_block(ProcessState& p, StackState& s, SampleWeight w);
  void drop_block(ProcessState& p, uint64_t address, const Block& b, bool count_free);
  // What a heap block counts for: itself, or under --sample-bytes what it stands for (sampler.hpp).
  SampleWeight weigh(uint64_t address, uint64_t size) const;
  void add_mapping(ProcessState& p, uint32_t pid, const MappingSet::Piece& piece);
  std::vector<MappingSet::Removal> unmap(ProcessState& p, uint64_t start, uint64_t length);
  void restore_mapping(ProcessState& p, const MappingSet::Removal& r);
  void move_pages(ProcessState& p, const PendingMove& old, uint64_t to, uint64_t length);
  static bool is_range_release(uint16_t fn);  // the record's range leaves the mappings
  void free_block(ProcessState& p, uint64_t address, uint64_t time_ns, PendingMove* into);
  void remember_orphan(ProcessState& p, uint64_t address, uint64_t time_ns);
  uint64_t round_up(uint64_t bytes) const;
  void note_birth(StackState& s, uint64_t born_ns, uint64_t bytes);
  // false (and counted) when max_live_blocks are live: the birth of `bytes` is not tracked.
  bool admit(uint64_t bytes);

  TrackerConfig config_;
  TrackerCounters counters_;
  uint64_t live_ = 0;  // heap blocks + mapping pieces of every process
  EpochClock clock_;
  std::unordered_map<uint32_t, ProcessState> processes_;
  uint32_t last_pid_ = 0;                  // the process process() returned last...
  ProcessState* last_process_ = nullptr;   // ...and its state (an element of processes_)
  std::unordered_map<uint64_t, StackState> stacks_;
  struct StackMemo {
    uint64_t id = 0;
    StackState* state = nullptr;  // an element of stacks_; nullptr: empty
  };
  std::array<StackMemo, 4096> stack_memo_{};  // see find_stack; 64 KiB, in the L2 cache
  FailureQueue failures_;
  std::vector<uint32_t> forks_;  // until take_forks()
};

}  // namespace memsight::core
