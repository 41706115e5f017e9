// Symbol names as people read them.
#pragma once

#include <string>
#include <string_view>
#include <unordered_map>

namespace memsight::symbolize {

// "_ZN4demo6Widget4growEi" -> "demo::Widget::grow(int)". A symbol-version suffix ("cfree@GLIBC_2.2.5")
// is dropped; names that are not Itanium-mangled, or fail to demangle, come back as they are.
std::string demangle(std::string_view name);

// Demangled names by the address of the raw name in a string table that outlives the cache
// (demangling a long C++ name costs microseconds; a lookup here, tens of nanoseconds).
using NameCache = std::unordered_map<const char*, std::string>;

}  // namespace memsight::symbolize
