// /dev/kmsg, read from "now" on without blocking: each read(2) returns one whole record, which is
// parsed (core::parse_kmsg_record) and handed on. Records the kernel overwrote before we read them
// (EPIPE) are counted, never silent.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>

#include "core/error.hpp"
#include "core/kmsg_oom.hpp"

namespace memsight::attach {

class KmsgReader {
 public:
  // Opens /dev/kmsg (O_RDONLY|O_NONBLOCK) positioned after the newest record.
  static Result<KmsgReader> open();

  KmsgReader(KmsgReader&& other) noexcept;
  KmsgReader& operator=(KmsgReader&& other) noexcept;
  KmsgReader(const KmsgReader&) = delete;
  KmsgReader& operator=(const KmsgReader&) = delete;
  ~KmsgReader();

  int fd() const { return fd_; }  // poll(2) for POLLIN: new records
  // Reads every record waiting, calling on_record for each well-formed one. Returns records read.
  Result<uint64_t> read_available(const std::function<void(const core::KmsgRecord&)>& on_record);

  uint64_t overwritten() const { return overwritten_; }  // records lost to the log's wrap-around (EPIPE)
  uint64_t malformed() const { return malformed_; }      // records parse_kmsg_record rejected

 private:
  explicit KmsgReader(int fd) : fd_(fd) {}
  void count_gap(uint64_t seq);

  int fd_ = -1;
  uint64_t overwritten_ = 0;
  uint64_t malformed_ = 0;
  std::optional<uint64_t> last_seq_;  // sequence number of the last record read
  bool gap_ = false;                  // EPIPE seen since that record
};

}  // namespace memsight::attach
