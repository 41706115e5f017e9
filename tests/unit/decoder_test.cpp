#include <catch2/catch.hpp>

#include "core/decoder.hpp"
#include "wire.hpp"

using namespace memsight;
using test::Bytes;

namespace {

// Remembers what the decoder delivered.
struct Collected final : core::RecordSink {
  std::vector<core::AllocRecord> allocs;
  std::vector<core::FreeRecord> frees;
  std::vector<core::MoveEndRecord> moves;
  std::vector<std::vector<uint64_t>> stacks;
  std::vector<bool> truncated;
  int execs = 0;
  std::vector<uint32_t> forks;
  std::vector<core::AllocFailRecord> fails;
  void on_stack(const core::StackRecord& r) override {
    stacks.emplace_back(r.frames.begin(), r.frames.end());
    truncated.push_back(r.truncated);
  }
  void on_alloc(const core::AllocRecord& r) override { allocs.push_back(r); }
  void on_free(const core::FreeRecord& r) override { frees.push_back(r); }
  void on_move_end(const core::MoveEndRecord& r) override { moves.push_back(r); }
  void on_exec(const core::RecordHeader&) override { ++execs; }
  void on_fork(const core::ForkRecord& r) override { forks.push_back(r.child); }
  void on_alloc_fail(const core::AllocFailRecord& r) override { fails.push_back(r); }
};

// A sink written before failures existed: it overrides none of it, and still compiles and decodes.
struct Unaware final : core::RecordSink {
  int records = 0;
  void on_stack(const core::StackRecord&) override { ++records; }
  void on_alloc(const core::AllocRecord&) override { ++records; }
  void on_free(const core::FreeRecord&) override { ++records; }
  void on_move_end(const core::MoveEndRecord&) override { ++records; }
  void on_exec(const core::RecordHeader&) override { ++records; }
  void on_fork(const core::ForkRecord&) override { ++records; }
};

}  // namespace

TEST_CASE("decoder delivers every record kind with its fields") {
  Collected sink;
  core::Decoder d(sink);
  test::Wire w{7, 8};
  REQUIRE(d.decode(w.stack(1, 0x11, {0x1000, 0x2000, 0x3000}, MS_STACK_TRUNCATED)) == core::DecodeStatus::kOk);
  REQUIRE(d.decode(w.alloc(2, 0xabc0, 48, 0x11, MS_FN_CALLOC)) == core::DecodeStatus::kOk);
  REQUIRE(d.decode(w.release(3, 0xabc0)) == core::DecodeStatus::kOk);
  REQUIRE(d.decode(w.move_begin(4, 0x5000, 8192, MS_FN_MREMAP)) == core::DecodeStatus::kOk);
  REQUIRE(d.decode(w.move_end(5, 0x9000, 16384, 0x11, MS_FN_MREMAP)) == core::DecodeStatus::kOk);
  REQUIRE(d.decode(w.exec(6)) == core::DecodeStatus::kOk);
  REQUIRE(d.decode(w.fork(7, 99)) == core::DecodeStatus::kOk);

  REQUIRE(sink.stacks == std::vector<std::vector<uint64_t>>{{0x1000, 0x2000, 0x3000}});
  CHECK(sink.truncated[0]);
  REQUIRE(sink.allocs.size() == 1);
  CHECK(sink.allocs[0].h.pid == 7);
  CHECK(sink.allocs[0].h.tid == 8);
  CHECK(sink.allocs[0].h.time_ns == 2);
  CHECK(sink.allocs[0].address == 0xabc0);
  CHECK(sink.allocs[0].size == 48);
  CHECK(sink.allocs[0].stack_id == 0x11);
  CHECK(sink.allocs[0].fn == MS_FN_CALLOC);
  REQUIRE(sink.frees.size() == 2);
  CHECK_FALSE(sink.frees[0].move_begin);
  CHECK(sink.frees[1].move_begin);
  CHECK(sink.frees[1].size == 8192);
  REQUIRE(sink.moves.size() == 1);
  CHECK(sink.moves[0].address == 0x9000);
  CHECK(sink.execs == 1);
  CHECK(sink.forks == std::vector<uint32_t>{99});
  CHECK(d.counters().records == 7);
  CHECK(d.counters().rejected() == 0);
}

TEST_CASE("decoder rejects truncated records and counts them") {
  Collected sink;
  core::Decoder d(sink);
  test::Wire w;
  Bytes alloc = w.alloc(1, 0x10, 8, 3);
  for (size_t n : {size_t{0}, size_t{1}, size_t{23}, size_t{24}, alloc.size() - 1}) {
    INFO("bytes: " << n);
    CHECK(d.decode(std::span(alloc).first(n)) == core::DecodeStatus::kTruncated);
  }
  Bytes stack = w.stack(1, 0x11, {1, 2, 3});
  CHECK(d.decode(std::span(stack).first(stack.size() - 8)) == core::DecodeStatus::kTruncated);
  CHECK(sink.allocs.empty());
  CHECK(sink.stacks.empty());
  CHECK(d.counters().truncated == 6);
}

TEST_CASE("decoder rejects sizes that do not fit the kind") {
  Collected sink;
  core::Decoder d(sink);
  test::Wire w;
  Bytes alloc = w.alloc(1, 0x10, 8, 3);
  alloc.resize(alloc.size() + 8);  // size field still says 56: extra bytes are ignored
  CHECK(d.decode(alloc) == core::DecodeStatus::kOk);
  Bytes lying = w.alloc(1, 0x10, 8, 3);
  lying[2] = std::byte{48};  // size field 48: too small for an alloc record
  CHECK(d.decode(lying) == core::DecodeStatus::kBadSize);
  Bytes stack = w.stack(1, 0x11, {1, 2, 3});
  stack[offsetof(ms_stack, nr_frames)] = std::byte{4};  // says 4 frames, carries 3
  CHECK(d.decode(stack) == core::DecodeStatus::kBadSize);
  Bytes empty = w.stack(1, 0x11, {});
  CHECK(d.decode(empty) == core::DecodeStatus::kBadSize);
  CHECK(d.counters().bad_size == 3);
  CHECK(sink.allocs.size() == 1);
}

TEST_CASE("decoder survives garbage without delivering anything") {
  Collected sink;
  core::Decoder d(sink);
  uint64_t state = 0x9e3779b97f4a7c15ull;
  for (int i = 0; i < 20000; ++i) {
    Bytes junk(1 + (state % 700));
    for (auto& b : junk) {
      state ^= state << 13, state ^= state >> 7, state ^= state << 17;
      b = std::byte(state);
    }
    d.decode(junk);
  }
  // Random bytes almost never form a valid record; whatever was accepted passed every size check
  // and reached the sink.
  CHECK(d.counters().records + d.counters().rejected() == 20000);
  CHECK(d.counters().rejected() > 19900);
  CHECK(sink.allocs.size() + sink.frees.size() + sink.moves.size() + sink.stacks.size() + size_t(sink.execs) +
            sink.forks.size() + sink.fails.size() ==
        d.counters().records);
  Bytes unknown = test::Wire{}.exec(1);
  unknown[0] = std::byte{200};
  CHECK(d.decode(unknown) == core::DecodeStatus::kUnknownKind);
}

TEST_CASE("decoder delivers an allocation failure with its limits") {
  Collected sink;
  core::Decoder d(sink);
  test::Wire w{7, 8};
  const uint64_t gib = uint64_t{1} << 30;
  REQUIRE(d.decode(w.alloc_fail(9, gib, 0x11, MS_FN_CALLOC, 200 << 20, UINT64_MAX, 5000, 1200)) ==
          core::DecodeStatus::kOk);
  REQUIRE(sink.fails.size() == 1);
  const core::AllocFailRecord& r = sink.fails[0];
  CHECK(r.h.pid == 7);
  CHECK(r.h.tid == 8);
  CHECK(r.h.time_ns == 9);
  CHECK(r.size == gib);
  CHECK(r.stack_id == 0x11);
  CHECK(r.rlimit_as == 200 << 20);
  CHECK(r.rlimit_data == UINT64_MAX);
  CHECK(r.total_vm_pages == 5000);
  CHECK(r.data_vm_pages == 1200);
  CHECK(r.fn == MS_FN_CALLOC);
  CHECK(sink.allocs.empty());
  CHECK(d.counters().records == 1);

  Unaware unaware;
  core::Decoder quiet(unaware);
  CHECK(quiet.decode(w.alloc_fail(9, gib, 0x11)) == core::DecodeStatus::kOk);
  CHECK(unaware.records == 0);
  CHECK(quiet.counters().records == 1);
}

TEST_CASE("decoder rejects a short allocation failure and counts it") {
  Collected sink;
  core::Decoder d(sink);
  test::Wire w;
  Bytes fail = w.alloc_fail(1, 64, 0x11);
  CHECK(d.decode(std::span(fail).first(fail.size() - 1)) == core::DecodeStatus::kTruncated);
  CHECK(d.decode(std::span(fail).first(sizeof(ms_header))) == core::DecodeStatus::kTruncated);
  Bytes lying = fail;
  lying[offsetof(ms_header, size)] = std::byte{sizeof(ms_alloc) & 0xff};  // an alloc's size: too small
  CHECK(d.decode(lying) == core::DecodeStatus::kBadSize);
  CHECK(sink.fails.empty());
  CHECK(d.counters().truncated == 2);
  CHECK(d.counters().bad_size == 1);
  CHECK(d.counters().records == 0);
}
