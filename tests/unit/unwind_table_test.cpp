// The call-frame table builder (symbolize/unwind_table.hpp) on the project's own binaries and on the
// system's libc and libstdc++, checked against binutils' own reading of the same CFI
// (readelf --debug-dump=frames-interp), an implementation independent of libdw.
#include "symbolize/unwind_table.hpp"

#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <span>
#include <sstream>
#include <string>
#include <vector>

#include "symbolize/elf_file.hpp"
#include "symbolize/unwind_registry.hpp"

using memsight::symbolize::build_unwind_table;
using memsight::symbolize::ElfFile;
using memsight::symbolize::find_unwind_row;
using memsight::symbolize::UnwindTable;

namespace {

const char* const kLibc = "/lib/x86_64-linux-gnu/libc.so.6";
const char* const kLibstdcxx = "/usr/lib/x86_64-linux-gnu/libstdc++.so.6";

UnwindTable table_of(const std::string& path) {
  auto file = ElfFile::open(path);
  REQUIRE(file);
  auto table = build_unwind_table(file->elf());
  INFO(path);
  REQUIRE(table);
  return *table;
}

// ELF virtual address -> file offset, through the PT_LOAD that holds it.
uint64_t offset_of(const ElfFile& file, uint64_t vaddr) {
  for (const auto& seg : file.load_segments())
    if (seg.vaddr <= vaddr && vaddr < seg.vaddr + seg.file_size) return vaddr - seg.vaddr + seg.offset;
  FAIL("address " << vaddr << " in no PT_LOAD");
  return 0;
}

// A function's address from .symtab.
uint64_t symbol(const ElfFile& file, const char* name) {
  Elf_Scn* scn = nullptr;
  while ((scn = elf_nextscn(file.elf(), scn)) != nullptr) {
    GElf_Shdr shdr;
    if (gelf_getshdr(scn, &shdr) == nullptr || shdr.sh_type != SHT_SYMTAB) continue;
    Elf_Data* data = elf_getdata(scn, nullptr);
    for (size_t i = 0; data && i < shdr.sh_size / shdr.sh_entsize; ++i) {
      GElf_Sym sym;
      if (gelf_getsym(data, static_cast<int>(i), &sym) == nullptr) continue;
      const char* n = elf_strptr(file.elf(), shdr.sh_link, sym.st_name);
      if (n && std::strcmp(n, name) == 0 && sym.st_value) return sym.st_value;
    }
  }
  FAIL("no symbol " << name);
  return 0;
}

std::vector<uint8_t> bytes_at(const std::string& path, uint64_t offset, size_t n) {
  std::vector<uint8_t> out(n);
  FILE* f = std::fopen(path.c_str(), "rb");
  REQUIRE(f != nullptr);
  REQUIRE(std::fseek(f, static_cast<long>(offset), SEEK_SET) == 0);
  REQUIRE(std::fread(out.data(), 1, n, f) == n);
  std::fclose(f);
  return out;
}

// One row of readelf's interpreted frame table: the CFA rule and the rbp and ra columns, as printed.
struct ReadelfRow {
  uint64_t loc;
  std::string cfa, rbp, ra;
};

std::vector<ReadelfRow> readelf_rows(const std::string& path) {
  std::vector<ReadelfRow> rows;
  const std::string command = "readelf --debug-dump=frames-interp '" + path + "' 2>/dev/null";
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(command.c_str(), "r"), pclose);
  REQUIRE(pipe);
  std::vector<std::string> columns;
  bool in_fde = false;
  char line[1024];
  while (std::fgets(line, sizeof(line), pipe.get())) {
    std::istringstream in(line);
    std::vector<std::string> words;
    for (std::string w; in >> w;) words.push_back(w);
    if (words.empty()) continue;
    if (words.size() > 3 && words[3] == "FDE") in_fde = true;
    if (words.size() > 3 && words[3] == "CIE") in_fde = false;
    if (words[0] == "LOC") {
      columns = words;
      continue;
    }
    if (!in_fde || words.size() != columns.size() || words[0].size() != 16) continue;
    ReadelfRow row{std::stoull(words[0], nullptr, 16), words[1], "u", ""};
    for (size_t i = 2; i < columns.size(); ++i) {
      if (columns[i] == "rbp") row.rbp = words[i];
      if (columns[i] == "ra") row.ra = words[i];
    }
    rows.push_back(row);
  }
  return rows;
}

std::string cfa_text(const ms_unwind_row& row) {
  switch (row.cfa_kind) {
    case MS_CFA_RSP: return "rsp+" + std::to_string(row.cfa_off);
    case MS_CFA_RBP: return "rbp+" + std::to_string(row.cfa_off);
    case MS_CFA_PLT:
    case MS_CFA_SIGNAL: return "exp";
    default: return "?";
  }
}

// Every row readelf prints must be what the table says at that address.
void check_against_readelf(const std::string& path) {
  auto file = ElfFile::open(path);
  REQUIRE(file);
  const UnwindTable table = table_of(path);
  const auto rows = readelf_rows(path);
  REQUIRE(rows.size() > 10);
  size_t compared = 0;
  for (const ReadelfRow& want : rows) {
    const ms_unwind_row* got = find_unwind_row(table, offset_of(*file, want.loc));
    INFO(path << " at 0x" << std::hex << want.loc << ": readelf CFA " << want.cfa << " rbp " << want.rbp
              << " ra " << want.ra);
    REQUIRE(got != nullptr);
    if (want.ra == "u") {
      CHECK(got->cfa_kind == MS_CFA_END);
      continue;
    }
    if (got->cfa_kind == MS_CFA_NONE) {
      // Rules the walker does not follow: only expressions readelf cannot print simply either, or a
      // return address not at CFA - 8.
      CHECK((want.cfa == "exp" || want.ra != "c-8"));
      continue;
    }
    CHECK(cfa_text(*got) == want.cfa);
    if (got->cfa_kind == MS_CFA_SIGNAL) continue;
    if (want.rbp == "u")
      CHECK((got->rbp_kind == MS_RBP_SAME || got->rbp_kind == MS_RBP_UNKNOWN));
    else if (want.rbp.rfind("c", 0) == 0) {
      CHECK(got->rbp_kind == MS_RBP_AT_CFA);
      CHECK(std::to_string(got->rbp_off) == want.rbp.substr(1));
    }
    ++compared;
  }
  CHECK(compared > rows.size() / 2);
}

}  // namespace

TEST_CASE("unwind table: a frame-pointer prologue, row by row") {
  const std::string path = MS_WORKLOAD_FP;  // built with -fno-omit-frame-pointer
  auto file = ElfFile::open(path);
  REQUIRE(file);
  const UnwindTable table = table_of(path);
  uint64_t at = offset_of(*file, symbol(*file, "leak_block"));
  auto code = bytes_at(path, at, 8);
  if (code[0] == 0xf3 && code[1] == 0x0f && code[2] == 0x1e && code[3] == 0xfa) {  // endbr64
    at += 4;
    code = bytes_at(path, at, 8);
  }
  REQUIRE(code[0] == 0x55);                                          // push %rbp
  REQUIRE((code[1] == 0x48 && code[2] == 0x89 && code[3] == 0xe5));  // mov %rsp,%rbp
  const ms_unwind_row* entry = find_unwind_row(table, at);
  REQUIRE(entry != nullptr);
  CHECK(entry->cfa_kind == MS_CFA_RSP);  // nothing pushed yet: the return address is at rsp
  CHECK(entry->cfa_off == 8);
  CHECK(entry->rbp_kind == MS_RBP_SAME);
  const ms_unwind_row* pushed = find_unwind_row(table, at + 1);
  CHECK(pushed->cfa_kind == MS_CFA_RSP);  // after push %rbp
  CHECK(pushed->cfa_off == 16);
  CHECK(pushed->rbp_kind == MS_RBP_AT_CFA);
  CHECK(pushed->rbp_off == -16);
  const ms_unwind_row* framed = find_unwind_row(table, at + 4);
  CHECK(framed->cfa_kind == MS_CFA_RBP);  // after mov %rsp,%rbp
  CHECK(framed->cfa_off == 16);
  CHECK(framed->rbp_kind == MS_RBP_AT_CFA);
}

TEST_CASE("unwind table: rows sorted, neighbours differ, the last one ends the code") {
  for (const std::string& path : {std::string(MS_NOFP), std::string(kLibc)}) {
    const UnwindTable table = table_of(path);
    INFO(path);
    REQUIRE(table.rows.size() > 2);
    CHECK(table.source == ".eh_frame");
    for (size_t i = 1; i < table.rows.size(); ++i) {
      CHECK(table.rows[i - 1].pc < table.rows[i].pc);
      const auto& a = table.rows[i - 1];
      const auto& b = table.rows[i];
      CHECK_FALSE((a.cfa_kind == b.cfa_kind && a.cfa_off == b.cfa_off && a.rbp_kind == b.rbp_kind &&
                   a.rbp_off == b.rbp_off));
    }
    CHECK(table.rows.back().cfa_kind == MS_CFA_NONE);
  }
}

TEST_CASE("unwind table agrees with readelf on a program without frame pointers") {
  check_against_readelf(MS_NOFP);
}

TEST_CASE("unwind table agrees with readelf on libc and libstdc++") {
  check_against_readelf(kLibc);
  check_against_readelf(kLibstdcxx);
}

TEST_CASE("unwind table: libc's PLT, signal trampoline and outermost frame are told apart") {
  const UnwindTable table = table_of(kLibc);
  std::map<int, int> kinds;
  for (const auto& row : table.rows) kinds[row.cfa_kind]++;
  CHECK(kinds[MS_CFA_PLT] >= 1);     // .plt: rsp + 8, + 8 once the entry pushed its index
  CHECK(kinds[MS_CFA_SIGNAL] == 1);  // __restore_rt, the 'S' FDE
  CHECK(kinds[MS_CFA_RSP] > 10000);
  for (const auto& row : table.rows)
    if (row.cfa_kind == MS_CFA_PLT) CHECK(row.cfa_off == 11);  // push at byte 6, 5 bytes: past it from 11
}

TEST_CASE("unwind table: the program's entry is the outermost frame") {
  auto file = ElfFile::open(MS_NOFP);
  REQUIRE(file);
  const UnwindTable table = table_of(MS_NOFP);
  const ms_unwind_row* start = find_unwind_row(table, offset_of(*file, symbol(*file, "_start")) + 4);
  REQUIRE(start != nullptr);
  CHECK(start->cfa_kind == MS_CFA_END);
}

TEST_CASE("unwind table: the estimate from the section's size is close to the rows built") {
  for (const std::string& path : {std::string(kLibc), std::string(kLibstdcxx)}) {
    auto file = ElfFile::open(path);
    REQUIRE(file);
    const double built = static_cast<double>(table_of(path).rows.size());
    const double estimate = static_cast<double>(memsight::symbolize::estimate_unwind_rows(file->elf()));
    INFO(path << ": " << estimate << " estimated, " << built << " built");
    CHECK(estimate >= built);  // never under: a table refused as too large would not have fitted
    CHECK(estimate <= 1.3 * built);
  }
}

TEST_CASE("unwind table: what is not ELF for x86-64 fails with a reason") {
  auto table = build_unwind_table(nullptr);
  REQUIRE_FALSE(table);
  CHECK(table.error() == "not an ELF file");
}

// The registry, with a sink that remembers what the walker would have been given.
namespace {

class FakeSink final : public memsight::core::UnwindSink {
 public:
  explicit FakeSink(uint32_t capacity) : capacity_(capacity) {}
  uint32_t capacity_rows() const override { return capacity_; }
  memsight::Result<void> write_rows(uint32_t first, std::span<const ms_unwind_row> rows) override {
    writes.emplace_back(first, rows.size());
    return {};
  }
  memsight::Result<void> add_module(const ms_unwind_file& file, const ms_unwind_module& run) override {
    modules.emplace_back(file, run);
    return {};
  }
  std::vector<std::pair<uint32_t, size_t>> writes;
  std::vector<std::pair<ms_unwind_file, ms_unwind_module>> modules;

 private:
  uint32_t capacity_;
};

}  // namespace

TEST_CASE("unwind registry: one table per file, placed after the last, under the cap") {
  FakeSink sink(1u << 20);
  memsight::symbolize::UnwindRegistry registry(sink);
  registry.add_file(MS_NOFP);
  registry.add_file(kLibc);
  registry.add_file(kLibc);  // known: nothing more
  REQUIRE(sink.writes.size() == 2);
  REQUIRE(sink.modules.size() == 2);
  CHECK(sink.writes[0].first == 0);
  CHECK(sink.writes[1].first == sink.writes[0].second);  // runs follow each other, never overlap
  CHECK(sink.modules[1].second.row_first == sink.writes[1].first);
  CHECK(sink.modules[1].second.row_count == sink.writes[1].second);
  const auto& stats = registry.stats();
  CHECK(stats.files == 2);
  CHECK(stats.tables == 2);
  CHECK(stats.rows == sink.writes[0].second + sink.writes[1].second);
  CHECK(stats.bytes() == stats.rows * 12);
  CHECK(stats.failures == 0);
}

TEST_CASE("unwind registry: a program comes with its dynamic loader") {
  FakeSink sink(1u << 20);
  memsight::symbolize::UnwindRegistry registry(sink);
  registry.add_program(MS_NOFP);
  CHECK(registry.stats().files == 2);  // ld-linux-x86-64.so.2, then the program
  CHECK(registry.stats().failures == 0);
}

TEST_CASE("unwind registry: a table over the cap is left out and said; a file that is not ELF fails") {
  FakeSink sink(1000);  // holds ms_nofp's table (~100 rows), not libc's (~28,000)
  memsight::symbolize::UnwindRegistry registry(sink);
  registry.add_file(MS_NOFP);
  registry.add_file(kLibc);
  registry.add_file("/proc/self/status");
  const auto& stats = registry.stats();
  CHECK(sink.modules.size() == 1);
  CHECK(stats.refused_at_cap == 1);
  CHECK(stats.failures == 1);
  CHECK(stats.capacity_bytes() == 12000);
  CHECK(stats.last_error.find("/proc/self/status") != std::string::npos);
}
