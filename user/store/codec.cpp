#include "codec.hpp"

#include <fmt/format.h>

#include <charconv>

namespace memsight::store {

void put_varint(std::vector<uint8_t>& out, uint64_t value) {
  while (value >= 0x80) {
    out.push_back(static_cast<uint8_t>(value | 0x80));
    value >>= 7;
  }
  out.push_back(static_cast<uint8_t>(value));
}

std::optional<uint64_t> get_varint(const std::vector<uint8_t>& in, size_t& pos) {
  uint64_t value = 0;
  for (int shift = 0; shift < 64 && pos < in.size(); shift += 7) {
    const uint8_t byte = in[pos++];
    value |= uint64_t{byte & 0x7fu} << shift;
    if (!(byte & 0x80)) return value;
  }
  return std::nullopt;
}

std::vector<uint8_t> encode_epochs(const std::vector<core::Epoch>& epochs) {
  std::vector<uint8_t> out;
  out.reserve(epochs.size() * 6);
  for (const auto& e : epochs) {
    put_varint(out, e.born_bytes);
    put_varint(out, e.live_bytes);
    put_varint(out, e.births);
  }
  return out;
}

std::optional<std::vector<core::Epoch>> decode_epochs(const std::vector<uint8_t>& blob) {
  std::vector<core::Epoch> epochs;
  size_t pos = 0;
  while (pos < blob.size()) {
    auto born = get_varint(blob, pos);
    auto live = get_varint(blob, pos);
    auto births = get_varint(blob, pos);
    if (!born || !live || !births) return std::nullopt;
    epochs.push_back(core::Epoch{*born, *live, *births});
  }
  return epochs;
}

std::string encode_addresses(const std::vector<uint64_t>& addresses) {
  std::string out;
  for (uint64_t a : addresses) {
    if (!out.empty()) out += ' ';
    out += fmt::format("{:#x}", a);
  }
  return out;
}

std::vector<uint64_t> decode_addresses(std::string_view text) {
  std::vector<uint64_t> out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find(' ', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view word = text.substr(pos, end - pos);
    if (word.size() > 2 && word[0] == '0' && (word[1] == 'x' || word[1] == 'X')) word.remove_prefix(2);
    uint64_t value = 0;
    std::from_chars(word.data(), word.data() + word.size(), value, 16);
    if (!word.empty()) out.push_back(value);
    pos = end + 1;
  }
  return out;
}

core::VerdictKind verdict_kind(std::string_view name) {
  using core::VerdictKind;
  for (auto kind : {VerdictKind::kLeak, VerdictKind::kBounded, VerdictKind::kTransient, VerdictKind::kBacklog,
                    VerdictKind::kStartup})
    if (name == core::verdict_name(kind)) return kind;
  return VerdictKind::kUndecided;
}

}  // namespace memsight::store
