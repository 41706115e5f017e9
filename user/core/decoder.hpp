// Ring-buffer bytes -> typed records. Checks every size before it reads a field and never casts the
// buffer to a struct: a truncated or garbage record is rejected and counted, not trusted.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "records.hpp"

namespace memsight::core {

enum class DecodeStatus {
  kOk,
  kTruncated,    // fewer bytes than the header, or than the header's own size field
  kBadSize,      // the size field does not fit the record kind
  kUnknownKind,  // a kind this version does not know
};

struct DecodeCounters {
  uint64_t records = 0;  // decoded and delivered
  uint64_t truncated = 0;
  uint64_t bad_size = 0;
  uint64_t unknown_kind = 0;
  uint64_t rejected() const { return truncated + bad_size + unknown_kind; }
};

class Decoder {
 public:
  explicit Decoder(RecordSink& sink) : sink_(sink) {}

  // Decode one record (as one ring-buffer sample) and deliver it to the sink.
  DecodeStatus decode(std::span<const std::byte> bytes);

  const DecodeCounters& counters() const { return counters_; }

 private:
  DecodeStatus reject(DecodeStatus status);

  RecordSink& sink_;
  DecodeCounters counters_;
  std::vector<uint64_t> frames_;  // reused across stack records
};

}  // namespace memsight::core
