// Database files (`memsight report --db FILE` reads whatever it is given) through the store's Reader:
// open, then every query `report` makes. Any answer is fine, an error included; a crash, hang or leak
// is not. The input is written to a file of its own for each run (SQLite reads files).
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_input.hpp"
#include "store/store.hpp"

using namespace memsight;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = fuzz::scratch_dir() + "/fuzz.db";
  for (const char* suffix : {"", "-wal", "-shm", "-journal"}) ::unlink((path + suffix).c_str());
  fuzz::write_file(path, data, size);
  auto reader = store::Reader::open(path);
  if (!reader) return 0;
  store::Reader& r = **reader;
  (void)r.span();
  auto snapshot = r.snapshot({});
  auto pids = r.pids();
  if (pids && !pids->empty()) (void)r.snapshot({}, pids->front());
  (void)r.snapshot({uint64_t{0}, std::nullopt});  // a range from before the history
  if (snapshot && !snapshot->stacks.empty()) {
    const core::StackRow& s = snapshot->stacks.front();
    (void)r.series(s.pid, s.stack_id, {});
  }
  return 0;
}
