#include "demangle.hpp"

#include <cxxabi.h>

#include <cstdlib>
#include <memory>

namespace memsight::symbolize {

std::string demangle(std::string_view name) {
  size_t at = name.find('@');
  if (at != std::string_view::npos && at > 0) name = name.substr(0, at);
  if (!name.starts_with("_Z")) return std::string(name);
  std::string mangled(name);  // __cxa_demangle needs a terminated string
  int status = 0;
  std::unique_ptr<char, decltype(&std::free)> out(
      abi::__cxa_demangle(mangled.c_str(), nullptr, nullptr, &status), &std::free);
  if (status != 0 || out == nullptr) return mangled;
  return std::string(out.get());
}

}  // namespace memsight::symbolize
