// Errors as values at the boundaries: a message the user can act on, and the exit code of the
// contract (architecture.md) that the command line ends with.
#pragma once

#include <string>
#include <utility>

#include <tl/expected.hpp>

namespace memsight {

enum class ExitCode : int {
  kOk = 0,
  kRuntime = 1,       // a runtime failure
  kUsage = 2,         // bad usage
  kPrivilege = 3,     // missing privilege or kernel support
  kTargetMissing = 4, // target not found, or gone before memsight could attach
};

struct Error {
  ExitCode code = ExitCode::kRuntime;
  std::string message;  // what went wrong and what to do about it
};

template <typename T>
using Result = tl::expected<T, Error>;

inline tl::unexpected<Error> fail(ExitCode code, std::string message) {
  return tl::unexpected<Error>(Error{code, std::move(message)});
}

}  // namespace memsight
