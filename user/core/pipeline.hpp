// Where decoded records go: the tracker, and the symbol source, which must see each stack while its
// process is alive (to fix where each address lies) and forget a process's addresses when it execs.
#pragma once

#include "records.hpp"
#include "symbol_source.hpp"
#include "tracker.hpp"

namespace memsight::core {

class Pipeline final : public RecordSink {
 public:
  Pipeline(Tracker& tracker, SymbolSource& symbols) : tracker_(tracker), symbols_(symbols) {}

  void on_stack(const StackRecord& r) override {
    symbols_.note_stack(r.h.pid, r.frames);
    tracker_.on_stack(r);
  }
  void on_alloc(const AllocRecord& r) override { tracker_.on_alloc(r); }
  void on_free(const FreeRecord& r) override { tracker_.on_free(r); }
  void on_move_end(const MoveEndRecord& r) override { tracker_.on_move_end(r); }
  void on_exec(const RecordHeader& h) override {
    symbols_.forget(h.pid);
    tracker_.on_exec(h);
  }
  void on_fork(const ForkRecord& r) override { tracker_.on_fork(r); }
  void on_alloc_fail(const AllocFailRecord& r) override { tracker_.on_alloc_fail(r); }
  void on_process_exit(const ExitRecord& r) override { tracker_.on_process_exit(r); }

 private:
  Tracker& tracker_;
  SymbolSource& symbols_;
};

}  // namespace memsight::core
