// Writes the binary seeds of the fuzz corpora (tests/fuzz/corpus/): ring-buffer record sequences made as
// the BPF side writes them (tests/unit/wire.hpp), OOM victim records, and a small database written by
// the real Recorder. Run by tests/fuzz/make_corpus; the text and ELF seeds are made there.
//   fuzz_seed_corpus CORPUS_DIR
#include <sqlite3.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/decoder.hpp"
#include "core/tracker.hpp"
#include "memsight/abi.h"
#include "store/store.hpp"
#include "wire.hpp"

namespace {

using namespace memsight;
using test::Bytes;
using test::Wire;
namespace fs = std::filesystem;

constexpr uint64_t kMs = 1'000'000;

// Chunks as the decoder and OOM targets read them: a 2-byte little-endian length, then the bytes.
struct Framed {
  Bytes out;
  Framed& add(const Bytes& record) {
    out.push_back(std::byte(record.size() & 0xff));
    out.push_back(std::byte(record.size() >> 8));
    out.insert(out.end(), record.begin(), record.end());
    return *this;
  }
  // One of the decoder target's calls (0xFFFF sample, 0xFFFE exit, 0xFFFD add_process), with its pid.
  Framed& op(uint16_t code, uint32_t pid = 0) {
    out.push_back(std::byte(code & 0xff));
    out.push_back(std::byte(code >> 8));
    if (code != 0xFFFF)
      for (int i = 0; i < 4; ++i) out.push_back(std::byte(pid >> (8 * i)));
    return *this;
  }
};

void write(const fs::path& path, const Bytes& bytes) {
  fs::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

void decoder_seeds(const fs::path& dir) {
  Wire w;
  Wire child{200, 201};
  const std::vector<uint64_t> frames = {0x7f0000001000, 0x401234, 0x401100};
  write(dir / "malloc_free.bin", Framed{}
                                     .add(w.stack(1, 11, frames))
                                     .add(w.alloc(2, 0x1000, 100, 11))
                                     .add(w.alloc(3, 0x2000, 200, 11, MS_FN_CALLOC))
                                     .add(w.release(4, 0x1000))
                                     .op(0xFFFF)
                                     .add(w.alloc(5, 0x3000, 50, 13))  // a stack that never came
                                     .out);
  write(dir / "realloc.bin", Framed{}
                                 .add(w.stack(1, 11, frames))
                                 .add(w.alloc(2, 0x1000, 64, 11))
                                 .add(w.move_begin(3, 0x1000))
                                 .add(w.move_end(4, 0x5000, 128, 11))  // moved
                                 .add(w.move_begin(5, 0x5000))
                                 .add(w.move_end(6, 0, 4096, 11))  // failed: the old block stays
                                 .add(w.move_begin(7, 0x5000))
                                 .add(w.move_end(8, 0, 0, 11))  // realloc(p, 0): freed
                                 .out);
  write(dir / "mmap.bin", Framed{}
                              .add(w.stack(1, 21, frames))
                              .add(w.alloc(2, 0x10000, 5 * 4096, 21, MS_FN_MMAP))
                              .add(w.release(3, 0x11000, 4096, MS_FN_MUNMAP))  // a hole: split
                              .add(w.move_begin(4, 0x13000, 8192, MS_FN_MREMAP))
                              .add(w.move_end(5, 0x40000, 3 * 4096, 21, MS_FN_MREMAP))
                              .add(w.move_begin(6, 0x40000, 4096, MS_FN_MREMAP))
                              .add(w.move_end(7, 0, 4096, 21, MS_FN_MREMAP))  // failed: restored
                              .add(w.release(8, 0x0, 0x100000, MS_FN_MUNMAP))
                              .out);
  write(dir / "fork_exec_exit.bin", Framed{}
                                        .op(0xFFFD, 100)
                                        .add(w.stack(1, 11, frames, MS_STACK_TRUNCATED))
                                        .add(w.alloc(2, 0x1000, 10, 11))
                                        .add(w.fork(3, 200))
                                        .add(child.release(4, 0x1000))  // inherited: unmatched
                                        .add(child.stack(5, 31, frames))
                                        .add(child.alloc(6, 0x1000, 20, 31))
                                        .add(child.exec(7))
                                        .op(0xFFFF)
                                        .op(0xFFFE, 100)
                                        .add(w.alloc(9, 0x9000, 10, 11))  // after exit: ignored
                                        .out);
  write(dir / "out_of_order.bin", Framed{}
                                      .add(w.stack(1, 11, frames))
                                      .add(w.release(5, 0x1000))  // its birth comes later
                                      .add(w.alloc(4, 0x1000, 10, 11))
                                      .add(w.alloc(6, 0x2000, 10, 11))
                                      .add(w.alloc(7, 0x2000, 30, 0))  // the free was lost: replaced
                                      .add(w.stack(8, 11, {0x1, 0x2}))  // same id, other frames
                                      .out);
  Bytes cut = w.stack(1, 11, frames);
  cut.resize(30);  // shorter than a stack record's header
  Bytes bad_size = w.alloc(1, 0x1000, 1, 11);
  bad_size[2] = std::byte(40);  // ms_header.size: not an alloc record's
  Bytes unknown = w.exec(1);
  unknown[0] = std::byte(99);  // ms_header.kind
  write(dir / "rejected.bin", Framed{}.add(cut).add(bad_size).add(unknown).add(Bytes(10)).out);
}

ms_oom_victim victim(uint32_t pid, uint64_t memcg, uint32_t trigger, uint64_t t_ns, uint32_t flags) {
  ms_oom_victim r{};
  r.h.kind = MS_REC_OOM_VICTIM;
  r.h.size = sizeof(r);
  r.h.tgid = trigger;
  r.h.tid = trigger;
  r.h.time_ns = t_ns;
  r.victim_tgid = pid;
  r.victim_pid = pid;
  r.oom_score_adj = 0;
  r.flags = flags;
  r.memcg_id = memcg;
  r.trigger_memcg_id = memcg;
  r.rss_anon_pages = 16384;
  r.rss_file_pages = 377;
  r.total_vm_pages = 17011;
  r.pgtables_bytes = 184320;
  std::memcpy(r.comm, "ms_hog", 6);
  std::memcpy(r.trigger_comm, "0123456789abcdef", 16);
  return r;
}

void oom_seeds(const fs::path& dir) {
  write(dir / "one_victim.bin", Framed{}.add(test::bytes_of(victim(2561, 4242, 2561, 5 * kMs, 0))).out);
  write(dir / "group_kill.bin", Framed{}
                                    .add(test::bytes_of(victim(10, 500, 10, 1000 * kMs, MS_OOM_RSS_APPROX)))
                                    .add(test::bytes_of(victim(11, 500, 10, 1000 * kMs + 1, MS_OOM_EXITING)))
                                    .add(test::bytes_of(victim(12, 0, 77, 1001 * kMs, MS_OOM_NO_MEMCG)))
                                    .add(test::bytes_of(victim(13, 600, 78, 3000 * kMs,
                                                               MS_OOM_NO_MM | MS_OOM_NO_PGTABLES)))
                                    .out);
}

// A real recording, small: a few seconds of a tracker fed like the unit tests, with named frames.
void store_seed(const fs::path& dir) {
  fs::create_directories(dir);
  const std::string path = (dir / "recording.db").string();
  fs::remove(path);
  core::Tracker tracker;
  core::Decoder decoder(tracker);
  Wire w;
  decoder.decode(w.stack(0, 11, {0x7f0000001000, 0x401234}));
  decoder.decode(w.stack(0, 13, {0x7f0000001000, 0x401300, 0x401100}));
  auto rec = store::Recorder::open(path, {});
  if (!rec) throw std::runtime_error(rec.error().message);
  const uint64_t t0 = 1'700'000'000'000'000'000;
  for (uint64_t i = 1; i <= 4; ++i) {
    decoder.decode(w.alloc(i * 1000 * kMs, 0x1000 * i, 100 * i, 11));
    decoder.decode(w.alloc(i * 1000 * kMs + 1, 0x100000 + i, 64, 13));
    if (i > 1) decoder.decode(w.release(i * 1000 * kMs + 2, 0x100000 + i - 1));
    tracker.sample(i * 1000 * kMs);
    core::Snapshot snap = tracker.snapshot(i * 1000 * kMs + 5, {});
    snap.time_unix_ns = t0 + i * 1000 * kMs;
    for (auto& p : snap.processes) p.comm = "app";
    for (auto& s : snap.stacks)
      for (uint64_t a : s.frames)
        s.symbols.push_back(core::Frame{a, a == 0x7f0000001000 ? "malloc" : "work", "/app", "app.c", 7, false});
    if (auto ok = (*rec)->write(snap, {1, "exact", i == 4}); !ok) throw std::runtime_error(ok.error().message);
  }
  rec->reset();
  // Small pages and no WAL: the same content in a few KiB, so mutations reach every page.
  sqlite3* db = nullptr;
  if (sqlite3_open(path.c_str(), &db) != SQLITE_OK ||
      sqlite3_exec(db, "PRAGMA journal_mode = DELETE; PRAGMA page_size = 512; VACUUM;", nullptr, nullptr,
                   nullptr) != SQLITE_OK)
    throw std::runtime_error(std::string("vacuum: ") + sqlite3_errmsg(db));
  sqlite3_close(db);
  fs::remove(path + ".lock");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
    return 2;
  }
  const fs::path corpus = argv[1];
  try {
    decoder_seeds(corpus / "decoder");
    oom_seeds(corpus / "oom_record");
    store_seed(corpus / "store_reader");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fuzz_seed_corpus: %s\n", e.what());
    return 1;
  }
  return 0;
}
