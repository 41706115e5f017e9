// Compact encodings of what the store keeps as one column: epoch histograms as varint blobs, raw
// addresses as text, verdict kinds by name.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/verdict.hpp"

namespace memsight::store {

// Unsigned LEB128: 7 bits per byte, low first, high bit set on every byte but the last.
void put_varint(std::vector<uint8_t>& out, uint64_t value);
// Reads one varint at `pos` and advances it; empty on a truncated or over-long varint.
std::optional<uint64_t> get_varint(const std::vector<uint8_t>& in, size_t& pos);

// Three varints per epoch, oldest first: born_bytes, live_bytes, births.
std::vector<uint8_t> encode_epochs(const std::vector<core::Epoch>& epochs);
std::optional<std::vector<core::Epoch>> decode_epochs(const std::vector<uint8_t>& blob);

// "0x401136 0x7f12ab..." : lower-case hex, one space between.
std::string encode_addresses(const std::vector<uint64_t>& addresses);
std::vector<uint64_t> decode_addresses(std::string_view text);

// The inverse of core::verdict_name; an unknown name reads as undecided.
core::VerdictKind verdict_kind(std::string_view name);

}  // namespace memsight::store
