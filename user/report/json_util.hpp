// What the JSON renderers share: key order as written (the contracts list keys in an order), and
// unknown values as null, never invented.
#pragma once

#include <optional>

#include <nlohmann/json.hpp>

namespace memsight::report {

using Json = nlohmann::ordered_json;

template <typename T>
Json or_null(const std::optional<T>& v) {
  return v ? Json(*v) : Json(nullptr);
}

}  // namespace memsight::report
