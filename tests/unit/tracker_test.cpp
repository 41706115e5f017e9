#include <algorithm>
#include <cmath>
#include <catch2/catch.hpp>

#include "core/decoder.hpp"
#include "core/tracker.hpp"
#include "wire.hpp"

using namespace memsight;

namespace {

constexpr uint64_t kS1 = 0x11, kS2 = 0x21, kS3 = 0x31;  // stack ids (odd, as BPF makes them)
constexpr uint64_t kPage = 4096;

// Records go through the real decoder, as they do from the ring buffer.
struct Fixture {
  core::Tracker tracker;
  core::Decoder decoder{tracker};
  test::Wire w{100, 100};

  explicit Fixture(core::TrackerConfig config = {}) : tracker(config) {
    feed(w.stack(1, kS1, {0xa0, 0xa1, 0xa2}));
    feed(w.stack(1, kS2, {0xb0, 0xb1}));
    feed(w.stack(1, kS3, {0xc0, 0xc1}));
  }
  void feed(const test::Bytes& b) { REQUIRE(decoder.decode(b) == core::DecodeStatus::kOk); }
  core::Snapshot snap(uint64_t now = 1000, core::SnapshotOptions o = {}) { return tracker.snapshot(now, o); }
  // The row of one stack in a fresh snapshot; a default row when the stack has none.
  core::StackRow row(uint64_t id, uint64_t now = 1000, core::SnapshotOptions o = {}) {
    for (auto& r : snap(now, o).stacks)
      if (r.stack_id == id) return r;
    return {};
  }
  core::ProcessRow proc(uint32_t pid) {
    for (auto& p : snap().processes)
      if (p.pid == pid) return p;
    FAIL("no process " << pid);
    return {};
  }
};

}  // namespace

TEST_CASE("malloc and free keep exact outstanding bytes per stack") {
  Fixture f;
  f.feed(f.w.alloc(10, 0x1000, 100, kS1));
  f.feed(f.w.alloc(11, 0x2000, 200, kS1));
  f.feed(f.w.alloc(12, 0x3000, 50, kS2, MS_FN_CALLOC));
  f.feed(f.w.release(13, 0x2000));
  auto s1 = f.row(kS1);
  CHECK(s1.outstanding_bytes == 100);
  CHECK(s1.outstanding_allocs == 1);
  CHECK(s1.allocated_bytes == 300);
  CHECK(s1.allocs == 2);
  CHECK(s1.frees == 1);
  CHECK(s1.frames == std::vector<uint64_t>{0xa0, 0xa1, 0xa2});
  CHECK(f.row(kS2).outstanding_bytes == 50);
  CHECK(f.proc(100).outstanding_bytes == 150);
  CHECK(f.proc(100).outstanding_allocs == 2);
  CHECK(f.tracker.counters().unmatched_frees == 0);
}

TEST_CASE("a free of an address never seen is unmatched and never makes a total negative") {
  Fixture f;
  f.feed(f.w.alloc(10, 0x1000, 100, kS1));
  f.feed(f.w.release(11, 0x9999));
  f.feed(f.w.release(12, 0x1000));
  f.feed(f.w.release(13, 0x1000));  // double free (or a free racing a lost birth)
  CHECK(f.row(kS1).outstanding_bytes == 0);
  CHECK(f.proc(100).outstanding_bytes == 0);
  CHECK(f.proc(100).unmatched_frees == 2);
  CHECK(f.snap().lost.unmatched_frees == 2);
}

TEST_CASE("realloc semantics") {
  Fixture f;
  SECTION("realloc(NULL, n) is a birth") {
    f.feed(f.w.alloc(10, 0x1000, 64, kS2, MS_FN_REALLOC));
    CHECK(f.row(kS2).outstanding_bytes == 64);
  }
  SECTION("a moved block: the old one is freed, the new one belongs to the realloc's stack") {
    f.feed(f.w.alloc(10, 0x1000, 64, kS1));
    f.feed(f.w.move_begin(11, 0x1000));
    f.feed(f.w.move_end(12, 0x2000, 128, kS2));
    CHECK(f.row(kS1).outstanding_bytes == 0);
    CHECK(f.row(kS1).frees == 1);
    CHECK(f.row(kS2).outstanding_bytes == 128);
    CHECK(f.proc(100).outstanding_bytes == 128);
  }
  SECTION("grown in place") {
    f.feed(f.w.alloc(10, 0x1000, 64, kS1));
    f.feed(f.w.move_begin(11, 0x1000));
    f.feed(f.w.move_end(12, 0x1000, 4096, kS2));
    CHECK(f.row(kS2).outstanding_bytes == 4096);
    CHECK(f.proc(100).outstanding_allocs == 1);
  }
  SECTION("realloc(p, 0) frees p") {
    f.feed(f.w.alloc(10, 0x1000, 64, kS1));
    f.feed(f.w.move_begin(11, 0x1000));
    f.feed(f.w.move_end(12, 0, 0, 0));
    CHECK(f.proc(100).outstanding_bytes == 0);
    CHECK(f.row(kS1).frees == 1);
  }
  SECTION("a failed realloc keeps the old block, with its stack and age") {
    f.feed(f.w.alloc(10, 0x1000, 64, kS1));
    f.feed(f.w.move_begin(11, 0x1000));
    f.feed(f.w.move_end(12, 0, uint64_t{1} << 62, 0));
    auto s1 = f.row(kS1, 1'000'000'010);
    CHECK(s1.outstanding_bytes == 64);
    CHECK(s1.frees == 0);
    CHECK(s1.oldest_age_s == Approx(1.0));
    f.feed(f.w.release(13, 0x1000));
    CHECK(f.proc(100).outstanding_bytes == 0);
    CHECK(f.tracker.counters().unmatched_frees == 0);
  }
  SECTION("another thread reusing the old address while realloc runs is not confused with it") {
    test::Wire other{100, 101};
    f.feed(f.w.alloc(10, 0x1000, 64, kS1));
    f.feed(f.w.move_begin(11, 0x1000));         // thread 100: realloc(0x1000, 256) starts
    f.feed(other.alloc(12, 0x1000, 32, kS3));   // thread 101 gets 0x1000 from malloc
    f.feed(f.w.move_end(13, 0x5000, 256, kS2)); // thread 100's realloc returns 0x5000
    CHECK(f.row(kS3).outstanding_bytes == 32);
    CHECK(f.row(kS2).outstanding_bytes == 256);
    CHECK(f.row(kS1).outstanding_bytes == 0);
    CHECK(f.tracker.counters().replaced_blocks == 0);
  }
}

TEST_CASE("out-of-order records settle to the truth") {
  Fixture f;
  SECTION("a free that arrives after its address was born again does not kill the new block") {
    f.feed(f.w.alloc(10, 0x1000, 64, kS1));
    f.feed(f.w.alloc(30, 0x1000, 32, kS2));  // the free at t=20 has not arrived yet
    f.feed(f.w.release(20, 0x1000));
    CHECK(f.row(kS2).outstanding_bytes == 32);
    CHECK(f.row(kS1).outstanding_bytes == 0);
    CHECK(f.tracker.counters().replaced_blocks == 0);
  }
  SECTION("a free that arrives before its block's birth leaves nothing live") {
    f.feed(f.w.release(20, 0x1000));
    CHECK(f.tracker.counters().unmatched_frees == 1);
    f.feed(f.w.alloc(10, 0x1000, 64, kS1));
    CHECK(f.row(kS1).outstanding_bytes == 0);
    CHECK(f.row(kS1).allocs == 1);
    CHECK(f.row(kS1).frees == 1);
    CHECK(f.tracker.counters().unmatched_frees == 0);
    CHECK(f.tracker.counters().late_births == 1);
  }
  SECTION("an older unmatched free does not cancel a later birth at the same address") {
    f.feed(f.w.release(5, 0x1000));
    f.feed(f.w.alloc(10, 0x1000, 64, kS1));
    CHECK(f.row(kS1).outstanding_bytes == 64);
    CHECK(f.tracker.counters().unmatched_frees == 1);
  }
  SECTION("a birth at a live address retires the old block and says a free was lost") {
    f.feed(f.w.alloc(10, 0x1000, 64, kS1));
    f.feed(f.w.alloc(30, 0x1000, 32, kS2));
    CHECK(f.row(kS1).outstanding_bytes == 0);
    CHECK(f.proc(100).outstanding_bytes == 32);
    CHECK(f.tracker.counters().replaced_blocks == 1);
  }
}

TEST_CASE("mmap ranges: partial munmap shrinks or splits, mremap moves") {
  Fixture f;
  f.feed(f.w.alloc(10, 0x100000, 4 * kPage - 100, kS1, MS_FN_MMAP));  // rounded up to 4 pages
  CHECK(f.row(kS1).outstanding_bytes == 4 * kPage);
  SECTION("a hole in the middle splits the range") {
    f.feed(f.w.release(11, 0x100000 + kPage, kPage, MS_FN_MUNMAP));
    CHECK(f.row(kS1).outstanding_bytes == 3 * kPage);
    CHECK(f.row(kS1).outstanding_allocs == 2);
    f.feed(f.w.release(12, 0x100000, 2 * kPage, MS_FN_MUNMAP));  // first piece and the hole
    CHECK(f.row(kS1).outstanding_bytes == 2 * kPage);
    f.feed(f.w.release(13, 0x100000, 16 * kPage, MS_FN_MUNMAP));  // past the end: the rest
    CHECK(f.row(kS1).outstanding_bytes == 0);
    CHECK(f.row(kS1).outstanding_allocs == 0);
    CHECK(f.proc(100).outstanding_bytes == 0);
  }
  SECTION("unmapping the tail shrinks it; a length not page aligned covers whole pages") {
    f.feed(f.w.release(11, 0x100000 + 3 * kPage, 10, MS_FN_MUNMAP));
    CHECK(f.row(kS1).outstanding_bytes == 3 * kPage);
    CHECK(f.row(kS1).outstanding_allocs == 1);
  }
  SECTION("munmap of memory never tracked changes nothing and is not a heap free") {
    f.feed(f.w.release(11, 0x900000, kPage, MS_FN_MUNMAP));
    CHECK(f.row(kS1).outstanding_bytes == 4 * kPage);
    CHECK(f.tracker.counters().unmatched_frees == 0);
  }
  SECTION("MAP_FIXED over a tracked range replaces the overlap") {
    f.feed(f.w.alloc(11, 0x100000 + 2 * kPage, 4 * kPage, kS2, MS_FN_MMAP));
    CHECK(f.row(kS1).outstanding_bytes == 2 * kPage);
    CHECK(f.row(kS2).outstanding_bytes == 4 * kPage);
  }
  SECTION("mremap moves the range to the new address and the caller's stack") {
    f.feed(f.w.move_begin(11, 0x100000, 4 * kPage, MS_FN_MREMAP));
    f.feed(f.w.move_end(12, 0x800000, 8 * kPage, kS2, MS_FN_MREMAP));
    CHECK(f.row(kS1).outstanding_bytes == 0);
    CHECK(f.row(kS2).outstanding_bytes == 8 * kPage);
  }
  SECTION("a failed mremap keeps the range") {
    f.feed(f.w.move_begin(11, 0x100000, 4 * kPage, MS_FN_MREMAP));
    f.feed(f.w.move_end(12, 0, 64 * kPage, 0, MS_FN_MREMAP));
    CHECK(f.row(kS1).outstanding_bytes == 4 * kPage);
    CHECK(f.row(kS1).frees == 0);
  }
}

TEST_CASE("fork, exec and exit") {
  Fixture f;
  f.feed(f.w.alloc(10, 0x1000, 64, kS1));
  SECTION("the child starts with the parent's blocks unknown") {
    f.feed(f.w.fork(11, 200));
    test::Wire child{200, 200};
    f.feed(child.release(12, 0x1000));
    CHECK(f.proc(200).unmatched_frees == 1);
    CHECK(f.proc(200).outstanding_bytes == 0);
    CHECK(f.proc(100).outstanding_bytes == 64);
  }
  SECTION("exec resets the process: old blocks and stacks are gone, losses stay") {
    f.feed(f.w.release(11, 0x7777));
    f.feed(f.w.exec(12));
    CHECK(f.proc(100).outstanding_bytes == 0);
    CHECK(f.snap().stacks.empty());
    CHECK(f.proc(100).unmatched_frees == 1);
    f.feed(f.w.stack(13, kS2, {0xd0}));
    f.feed(f.w.alloc(14, 0x1000, 8, kS2));
    CHECK(f.row(kS2).frames == std::vector<uint64_t>{0xd0});
    CHECK(f.row(kS2).outstanding_bytes == 8);
  }
  SECTION("an exited process keeps what it held, and its age stops at the exit") {
    f.tracker.on_exit(100, 2'000'000'010);
    f.feed(f.w.release(2'000'000'011, 0x1000));  // nothing can arrive after exit; ignore it if it does
    auto r = f.row(kS1, 9'000'000'000);
    CHECK(r.outstanding_bytes == 64);
    CHECK(r.oldest_age_s == Approx(2.0));
    CHECK(f.proc(100).exited);
  }
}

TEST_CASE("snapshot: ordering, top, min-age, growth, unknown stacks") {
  Fixture f;
  f.feed(f.w.alloc(1'000'000'000, 0x1000, 10, kS1));
  f.feed(f.w.alloc(1'000'000'000, 0x2000, 30, kS2));
  f.feed(f.w.alloc(3'000'000'000, 0x3000, 20, kS3));
  auto snap = f.snap(4'000'000'000);
  REQUIRE(snap.stacks.size() == 3);
  CHECK(snap.stacks[0].stack_id == kS2);
  CHECK(snap.stacks[1].stack_id == kS3);
  CHECK(snap.stacks[2].stack_id == kS1);
  CHECK(f.snap(4'000'000'000, {0, 2}).stacks.size() == 2);

  auto old = f.snap(4'000'000'000, {2'000'000'000, 0});  // only blocks at least 2 s old
  CHECK(old.stacks[0].stack_id == kS2);
  for (auto& r : old.stacks)
    if (r.stack_id == kS3) CHECK(r.outstanding_bytes == 0);

  f.feed(f.w.alloc(5'000'000'000, 0x4000, 2000, kS1));
  CHECK(f.row(kS1, 6'000'000'000).growth_bytes_per_s == Approx(1000.0));  // +2000 B over the 2 s since
  // The final snapshot: 2010 B over the 6 s since the stack was first seen (its record came at t ~ 0).
  CHECK(f.row(kS1, 6'000'000'000, {0, 0, true}).growth_bytes_per_s == Approx(2010.0 / 6));

  f.feed(f.w.alloc(7'000'000'000, 0x5000, 5, 0));  // its stack record was lost
  CHECK(f.tracker.counters().unknown_stack_allocs == 1);
  CHECK(f.proc(100).outstanding_bytes == 2065);

  f.tracker.on_exit(100, 8'000'000'000);
  CHECK(f.row(kS1, 9'000'000'000).growth_bytes_per_s == Approx(0.0));  // exited: no more growth
  CHECK(f.row(kS1, 20'000'000'000, {0, 0, true}).growth_bytes_per_s == Approx(2010.0 / 8));  // until the exit
}

TEST_CASE("records no kernel would write are counted and change no total") {
  Fixture f;
  test::Wire other{200, 200};
  SECTION("a stack id another process already owns: the birth goes to this process's placeholder") {
    f.feed(f.w.alloc(9, 0x900, 8, kS1));
    f.feed(other.alloc(10, 0x1000, 64, kS1));
    CHECK(f.tracker.counters().stack_collisions == 1);
    CHECK(f.row(kS1).outstanding_bytes == 8);
    CHECK(f.proc(200).outstanding_bytes == 64);
    f.feed(other.stack(11, kS1, {0xee}));  // and its stack record for that id is refused
    CHECK(f.row(kS1).frames == std::vector<uint64_t>{0xa0, 0xa1, 0xa2});
  }
  SECTION("an even stack id, which only placeholders use") {
    f.feed(f.w.stack(10, 0x40, {0xf0}));
    CHECK(f.tracker.counters().invalid_records == 1);
  }
  SECTION("an empty or wrapping mapping") {
    f.feed(f.w.alloc(10, 0x100000, 0, kS1, MS_FN_MMAP));
    f.feed(f.w.alloc(11, UINT64_MAX - kPage, 4 * kPage, kS1, MS_FN_MMAP));
    CHECK(f.tracker.counters().invalid_records == 2);
    CHECK(f.proc(100).outstanding_bytes == 0);
    CHECK(f.tracker.live_blocks() == 0);
  }
  SECTION("mremap onto a live mapping replaces the overlap") {
    f.feed(f.w.alloc(10, 0x100000, 4 * kPage, kS1, MS_FN_MMAP));
    f.feed(f.w.alloc(11, 0x200000, 4 * kPage, kS2, MS_FN_MMAP));
    f.feed(f.w.move_begin(12, 0x100000, 4 * kPage, MS_FN_MREMAP));
    f.feed(f.w.move_end(13, 0x200000, 2 * kPage, kS3, MS_FN_MREMAP));
    CHECK(f.row(kS2).outstanding_bytes == 2 * kPage);
    CHECK(f.row(kS3).outstanding_bytes == 2 * kPage);
    CHECK(f.proc(100).outstanding_bytes == 4 * kPage);
  }
}

TEST_CASE("allocation failures queue in order, bounded, and change no total") {
  Fixture f;
  f.feed(f.w.alloc(10, 0x1000, 100, kS1));
  f.feed(f.w.alloc(11, 0x100000, 4 * kPage, kS2, MS_FN_MMAP));
  const auto before = f.snap();

  // 1 GiB asked for under a 200000 KiB address-space limit, with 5000 pages mapped.
  const uint64_t gib = uint64_t{1} << 30, limit = 200000 * uint64_t{1024};
  f.feed(f.w.alloc_fail(20, gib, kS3, MS_FN_MALLOC, limit, UINT64_MAX, 5000, 1200));
  f.feed(f.w.alloc_fail(21, 2 * gib, kS3, MS_FN_MMAP));
  CHECK(f.tracker.counters().alloc_failures == 2);
  CHECK(f.tracker.counters().failures_dropped == 0);

  const auto after = f.snap();
  CHECK(after.processes.size() == before.processes.size());
  CHECK(f.proc(100).outstanding_bytes == 100 + 4 * kPage);
  CHECK(f.proc(100).outstanding_allocs == 2);
  CHECK(f.tracker.live_blocks() == 2);
  CHECK(f.row(kS3).allocs == 0);  // the failure's stack is no row: nothing was born there

  auto failures = f.tracker.take_failures();
  REQUIRE(failures.size() == 2);
  const core::AllocFailure& first = failures[0];
  CHECK(first.time_ns == 20);
  CHECK(first.pid == 100);
  CHECK(first.tid == 100);
  CHECK(first.fn == MS_FN_MALLOC);
  CHECK(first.size == gib);
  CHECK(first.stack_id == kS3);
  CHECK(first.rlimit_as_bytes == limit);
  CHECK_FALSE(first.rlimit_data_bytes.has_value());  // RLIM_INFINITY
  CHECK(first.total_vm_bytes == 5000 * kPage);
  CHECK(first.data_vm_bytes == 1200 * kPage);
  CHECK(failures[1].time_ns == 21);
  CHECK(failures[1].fn == MS_FN_MMAP);
  CHECK_FALSE(failures[1].rlimit_as_bytes.has_value());
  CHECK(f.tracker.take_failures().empty());  // taken: the queue is empty

  SECTION("past the cap, the oldest are kept and the rest counted") {
    const size_t cap = core::FailureQueue::kCapacity;
    for (size_t i = 0; i < cap + 10; ++i) f.feed(f.w.alloc_fail(100 + i, 64, kS3));
    CHECK(f.tracker.counters().alloc_failures == 2 + cap + 10);
    CHECK(f.tracker.counters().failures_dropped == 10);
    failures = f.tracker.take_failures();
    REQUIRE(failures.size() == cap);
    CHECK(failures.front().time_ns == 100);
    CHECK(failures.back().time_ns == 100 + cap - 1);
    CHECK(std::is_sorted(failures.begin(), failures.end(),
                         [](const auto& a, const auto& b) { return a.time_ns < b.time_ns; }));
    f.feed(f.w.alloc_fail(1000, 64, kS3));  // room again once taken
    CHECK(f.tracker.take_failures().size() == 1);
    CHECK(f.tracker.counters().failures_dropped == 10);
  }
}

TEST_CASE("a failed realloc keeps its old block and reports the failure") {
  Fixture f;
  f.feed(f.w.alloc(10, 0x1000, 100, kS1));
  f.feed(f.w.move_begin(11, 0x1000));
  f.feed(f.w.move_end(12, 0, 1 << 20, 0));  // NULL: the old block stays
  f.feed(f.w.alloc_fail(12, 1 << 20, kS2, MS_FN_REALLOC));
  CHECK(f.row(kS1).outstanding_bytes == 100);
  CHECK(f.proc(100).outstanding_bytes == 100);
  const auto failures = f.tracker.take_failures();
  REQUIRE(failures.size() == 1);
  CHECK(failures[0].fn == MS_FN_REALLOC);
  CHECK(failures[0].size == 1 << 20);
}

namespace {

// Every process's totals are the sums of its stacks', and the tracker's live count is their blocks'.
void check_consistent(Fixture& f) {
  const auto snap = f.snap();
  uint64_t blocks = 0;
  for (const auto& p : snap.processes) {
    uint64_t bytes = 0, allocs = 0;
    for (const auto& s : snap.stacks) {
      if (s.pid != p.pid) continue;
      CHECK(s.outstanding_bytes <= s.allocated_bytes);
      CHECK(s.allocs - s.frees == s.outstanding_allocs);
      bytes += s.outstanding_bytes;
      allocs += s.outstanding_allocs;
    }
    CHECK(p.outstanding_bytes == bytes);
    CHECK(p.outstanding_allocs == allocs);
    blocks += allocs;
  }
  CHECK(f.tracker.live_blocks() == blocks);
}

core::TrackerConfig capped(uint64_t max_live_blocks) {
  core::TrackerConfig config;
  config.max_live_blocks = max_live_blocks;
  return config;
}

}  // namespace

TEST_CASE("the live-block cap refuses new births, keeps the old ones, and says so") {
  Fixture f(capped(2));
  f.feed(f.w.alloc(10, 0x1000, 100, kS1));  // the oldest: a leak's evidence, kept
  f.feed(f.w.alloc(11, 0x2000, 200, kS1));
  f.feed(f.w.alloc(12, 0x3000, 50, kS2));   // the third: refused
  CHECK(f.tracker.live_blocks() == 2);
  CHECK(f.tracker.counters().refused_blocks == 1);
  CHECK(f.tracker.counters().refused_bytes == 50);
  CHECK(f.snap().lost.refused_blocks == 1);
  CHECK(f.row(kS1).outstanding_bytes == 300);
  CHECK(f.row(kS2).allocs == 0);  // charged to no stack
  CHECK(f.proc(100).outstanding_bytes == 300);
  check_consistent(f);

  SECTION("the free of a refused block is unmatched, and subtracts nothing") {
    f.feed(f.w.release(13, 0x3000));
    CHECK(f.tracker.counters().unmatched_frees == 1);
    CHECK(f.proc(100).outstanding_bytes == 300);
    check_consistent(f);
  }
  SECTION("a free makes room for the next birth") {
    f.feed(f.w.release(13, 0x2000));
    f.feed(f.w.alloc(14, 0x4000, 70, kS2));
    CHECK(f.row(kS2).outstanding_bytes == 70);
    CHECK(f.row(kS1).oldest_age_s.has_value());
    CHECK(f.tracker.counters().refused_blocks == 1);
    check_consistent(f);
  }
  SECTION("a birth at a live address replaces that block, so it takes no more room") {
    f.feed(f.w.alloc(13, 0x2000, 30, kS2));
    CHECK(f.tracker.counters().replaced_blocks == 1);
    CHECK(f.tracker.counters().refused_blocks == 1);
    CHECK(f.row(kS2).outstanding_bytes == 30);
    check_consistent(f);
  }
  SECTION("mappings count too: one past the cap is refused, its bytes page-rounded, its munmap a no-op") {
    f.feed(f.w.alloc(13, 0x100000, 5000, kS3, MS_FN_MMAP));
    CHECK(f.tracker.counters().refused_blocks == 2);
    CHECK(f.tracker.counters().refused_bytes == 50 + 2 * kPage);
    f.feed(f.w.release(14, 0x100000, 5000, MS_FN_MUNMAP));
    CHECK(f.proc(100).outstanding_bytes == 300);
    check_consistent(f);
  }
  SECTION("a realloc at the cap moves its block: the old side left first") {
    f.feed(f.w.move_begin(13, 0x1000));
    f.feed(f.w.move_end(14, 0x5000, 400, kS2));
    CHECK(f.row(kS2).outstanding_bytes == 400);
    CHECK(f.tracker.counters().refused_blocks == 1);
    check_consistent(f);
  }
  SECTION("a failed realloc's block comes back even when another birth took its room meanwhile") {
    test::Wire other{100, 101};
    f.feed(f.w.move_begin(13, 0x1000));
    f.feed(other.alloc(14, 0x6000, 8, kS3));      // admitted: the realloc's old block had left
    f.feed(f.w.move_end(15, 0, 1u << 30, 0));     // failed: the old block is still the program's
    CHECK(f.row(kS1).outstanding_bytes == 300);
    CHECK(f.tracker.live_blocks() == 3);          // past the cap by the one call in flight
    check_consistent(f);
  }
  SECTION("exec frees the room its blocks took; the refused count stays") {
    f.feed(f.w.exec(13));
    CHECK(f.tracker.live_blocks() == 0);
    f.feed(f.w.stack(14, kS2, {0xd0}));
    f.feed(f.w.alloc(15, 0x1000, 8, kS2));
    CHECK(f.row(kS2).outstanding_bytes == 8);
    CHECK(f.snap().lost.refused_blocks == 1);
    check_consistent(f);
  }
}

TEST_CASE("the cap counts the blocks of every process, exited ones included, and 0 is no cap") {
  SECTION("all processes share it") {
    Fixture f(capped(2));
    test::Wire other{200, 200};
    f.feed(f.w.alloc(10, 0x1000, 8, kS1));
    f.tracker.on_exit(100, 11);
    f.feed(other.stack(12, 0x41, {0xe0}));
    f.feed(other.alloc(13, 0x1000, 16, 0x41));
    f.feed(other.alloc(14, 0x2000, 16, 0x41));
    CHECK(f.tracker.counters().refused_blocks == 1);
    CHECK(f.proc(200).outstanding_bytes == 16);
    check_consistent(f);
  }
  SECTION("0: unlimited") {
    Fixture f(capped(0));
    for (uint64_t i = 0; i < 1000; ++i) f.feed(f.w.alloc(10 + i, 0x1000 + 16 * i, 16, kS1));
    CHECK(f.tracker.live_blocks() == 1000);
    CHECK(f.tracker.counters().refused_blocks == 0);
  }
  SECTION("the default is 8 Mi blocks") { CHECK(core::TrackerConfig{}.max_live_blocks == uint64_t{8} << 20); }
}

// Growth mode: page faults are births of one page (or one 2 MiB huge page); munmap, madvise and brk
// release ranges; mremap moves the resident pages with the range.
TEST_CASE("growth mode: resident pages per stack") {
  Fixture f;
  constexpr uint64_t kHuge = 2 << 20;
  for (uint64_t i = 0; i < 8; ++i) f.feed(f.w.alloc(10 + i, 0x100000 + i * kPage, kPage, kS1, MS_FN_PAGE_FAULT));
  f.feed(f.w.alloc(20, 0x40000000, kHuge, kS2, MS_FN_PAGE_FAULT));
  CHECK(f.row(kS1).outstanding_bytes == 8 * kPage);
  CHECK(f.row(kS1).outstanding_allocs == 8);
  CHECK(f.row(kS2).outstanding_bytes == kHuge);
  CHECK(f.proc(100).outstanding_bytes == 8 * kPage + kHuge);
  SECTION("a second fault on a page already counted replaces it (swap-in, a retried fault)") {
    f.feed(f.w.alloc(30, 0x100000, kPage, kS3, MS_FN_PAGE_FAULT));
    CHECK(f.row(kS1).outstanding_bytes == 7 * kPage);
    CHECK(f.row(kS3).outstanding_bytes == kPage);
    CHECK(f.proc(100).outstanding_bytes == 8 * kPage + kHuge);
  }
  SECTION("madvise(DONTNEED) over part of a huge page releases only that part") {
    f.feed(f.w.release(30, 0x40000000 + kPage, 2 * kPage, MS_FN_MADVISE));
    CHECK(f.row(kS2).outstanding_bytes == kHuge - 2 * kPage);
    CHECK(f.row(kS2).frees == 0);  // still partly resident
  }
  SECTION("brk moving down releases the pages above the new end") {
    f.feed(f.w.release(30, 0x100000 + 6 * kPage, 2 * kPage, MS_FN_BRK));
    CHECK(f.row(kS1).outstanding_bytes == 6 * kPage);
    CHECK(f.row(kS1).frees == 2);
  }
  SECTION("mremap moves resident pages to the same offsets, clipped to the new length") {
    f.feed(f.w.move_begin(30, 0x100000, 8 * kPage, MS_FN_PAGES_MOVE));
    f.feed(f.w.move_end(31, 0x900000, 5 * kPage, 0, MS_FN_PAGES_MOVE));
    CHECK(f.row(kS1).outstanding_bytes == 5 * kPage);
    CHECK(f.row(kS1).frees == 3);
    f.feed(f.w.release(32, 0x900000 + 4 * kPage, kPage, MS_FN_MUNMAP));  // the moved pages are where said
    CHECK(f.row(kS1).outstanding_bytes == 4 * kPage);
    f.feed(f.w.release(33, 0x100000, 8 * kPage, MS_FN_MUNMAP));  // nothing is left at the old place
    CHECK(f.row(kS1).outstanding_bytes == 4 * kPage);
  }
  SECTION("an exit record ends the process; forget_exited lets it go after the grace time") {
    f.feed(f.w.exit(40, "sixteen-chars-xx"));  // TASK_COMM_LEN bytes, no NUL: all of them kept
    CHECK(f.proc(100).exited);
    CHECK(f.proc(100).comm == std::optional<std::string>("sixteen-chars-xx"));
    CHECK(f.tracker.forget_exited(40).empty());  // exited at 40: not before 40
    CHECK(f.tracker.forget_exited(41) == std::vector<uint32_t>{100});
    CHECK(f.snap().processes.empty());
    CHECK(f.snap().stacks.empty());
    CHECK(f.tracker.live_blocks() == 0);
  }
}

TEST_CASE("growth mode sampled: each recorded fault stands for 1/p of its bytes; a release takes it back") {
  core::TrackerConfig config;
  config.fault_sample_bytes = 64 << 10;
  Fixture f(config);
  const double p = -std::expm1(-4096.0 / (64 << 10));
  const auto page_weight = static_cast<uint64_t>(std::llround(4096 / p));
  for (uint64_t i = 0; i < 3; ++i) f.feed(f.w.alloc(10 + i, 0x100000 + i * kPage, kPage, kS1, MS_FN_PAGE_FAULT));
  f.feed(f.w.alloc(20, 0x40000000, 2 << 20, kS2, MS_FN_PAGE_FAULT));  // p ~ 1 - e^-32: weight exactly 1
  CHECK(f.row(kS1).outstanding_bytes == 3 * page_weight);
  CHECK(f.row(kS1).outstanding_allocs == 3 * static_cast<uint64_t>(std::llround(1 / p)));
  CHECK(f.row(kS2).outstanding_bytes == 2 << 20);
  CHECK(f.snap().sample_bytes == std::optional<uint64_t>(64 << 10));
  f.feed(f.w.release(30, 0x100000 + kPage, kPage, MS_FN_MUNMAP));
  CHECK(f.row(kS1).outstanding_bytes == 2 * page_weight);
  f.feed(f.w.release(31, 0x40000000, kPage, MS_FN_MADVISE));  // part of the huge page: exact
  CHECK(f.row(kS2).outstanding_bytes == (2 << 20) - kPage);
  f.feed(f.w.release(32, 0, uint64_t{1} << 46, MS_FN_MUNMAP));
  CHECK(f.proc(100).outstanding_bytes == 0);
  CHECK(f.proc(100).outstanding_allocs == 0);
}

TEST_CASE("sampling by bytes: heap blocks count for what they stand for, and a free removes exactly that") {
  constexpr uint64_t kN = 65536;
  core::TrackerConfig config;
  config.sample_bytes = kN;
  Fixture f(config);
  const core::SampleWeight small = core::sample_weight(0x1000, 100, kN);
  REQUIRE(small.bytes > 100 * 600);  // ~N: a 100-byte block is taken about once in 656
  f.feed(f.w.alloc(10, 0x1000, 100, kS1));
  f.feed(f.w.alloc(11, 0x9000'0000, 3 * kN, kS2));  // at least N: always taken, counts as itself
  f.feed(f.w.alloc(12, 0x7000'0000, 10 * kPage, kS3, MS_FN_MMAP));  // mappings are always recorded
  CHECK(f.row(kS1).outstanding_bytes == small.bytes);
  CHECK(f.row(kS1).outstanding_allocs == small.allocs);
  CHECK(f.row(kS1).allocated_bytes == small.bytes);
  CHECK(f.row(kS2).outstanding_bytes == 3 * kN);
  CHECK(f.row(kS2).outstanding_allocs == 1);
  CHECK(f.row(kS3).outstanding_bytes == 10 * kPage);
  CHECK(f.proc(100).outstanding_bytes == small.bytes + 3 * kN + 10 * kPage);
  CHECK(f.snap().sample_bytes == kN);

  SECTION("a free") {
    f.feed(f.w.release(13, 0x1000));
    CHECK(f.row(kS1).outstanding_bytes == 0);
    CHECK(f.row(kS1).outstanding_allocs == 0);
    CHECK(f.row(kS1).frees == small.allocs);
  }
  SECTION("a failed realloc gives the old block back with its weight") {
    f.feed(f.w.move_begin(13, 0x1000));
    CHECK(f.row(kS1).outstanding_bytes == 0);
    f.feed(f.w.move_end(14, 0, 1 << 30, 0));
    CHECK(f.row(kS1).outstanding_bytes == small.bytes);
    CHECK(f.row(kS1).frees == 0);
  }
  SECTION("a realloc whose new block was not taken: the old one leaves, nothing comes back") {
    f.feed(f.w.move_begin(13, 0x1000));
    f.feed(f.w.move_end(14, 0, 0, 0));
    CHECK(f.row(kS1).outstanding_bytes == 0);
    CHECK(f.proc(100).outstanding_bytes == 3 * kN + 10 * kPage);
  }
}

TEST_CASE("without --sample-bytes the snapshot says the counts are exact") {
  Fixture f;
  f.feed(f.w.alloc(10, 0x1000, 100, kS1));
  CHECK_FALSE(f.snap().sample_bytes.has_value());
  CHECK(f.row(kS1).outstanding_bytes == 100);
}
