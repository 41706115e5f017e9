// ms_bench_unwind_tables FILE...: the call-frame table memsight's stack walker would hold for each file
// (symbolize/unwind_table.hpp): rows, bytes, unsupported ranges, time to build. docs/unwinding.md quotes
// it for libc and libstdc++.
#include <fmt/format.h>

#include <chrono>
#include <cstdio>
#include <map>

#include "symbolize/elf_file.hpp"
#include "symbolize/unwind_table.hpp"

int main(int argc, char** argv) {
  using memsight::symbolize::ElfFile;
  uint64_t rows = 0, bytes = 0;
  int status = 0;
  fmt::print("{:<60}{:>9}{:>11}{:>13}{:>10}  rows by CFA rule\n", "file", "rows", "bytes", "unsupported",
             "ms");
  for (int i = 1; i < argc; ++i) {
    auto file = ElfFile::open(argv[i]);
    const auto start = std::chrono::steady_clock::now();
    auto table =
        file ? memsight::symbolize::build_unwind_table(file->elf())
             : tl::expected<memsight::symbolize::UnwindTable, std::string>(tl::unexpect, file.error());
    const double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    if (!table) {
      fmt::print(stderr, "{}: {}\n", argv[i], table.error());
      status = 1;
      continue;
    }
    std::map<int, size_t> kinds;  // MS_CFA_*: none, rsp, rbp, plt, signal, end
    for (const auto& row : table->rows) ++kinds[row.cfa_kind];
    std::string by_kind;
    for (const auto& [kind, n] : kinds) by_kind += fmt::format(" {}:{}", kind, n);
    fmt::print("{:<60}{:>9}{:>11}{:>13}{:>10.1f} {}\n", argv[i], table->rows.size(), table->bytes(),
               table->unsupported_ranges, ms, by_kind);
    rows += table->rows.size();
    bytes += table->bytes();
  }
  fmt::print("{:<60}{:>9}{:>11}  ({:.0f} KiB)\n", "total", rows, bytes, bytes / 1024.0);
  return status;
}
