#pragma once

namespace memsight::cli {

// `memsight demo`: a bundled leaking program in a memory cgroup memsight makes, recorded until the
// kernel kills it, and the kill explained; the cgroup and the database are removed afterwards.
int run_demo();

}  // namespace memsight::cli
