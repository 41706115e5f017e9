#include <catch2/catch.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <set>
#include <string>

#include "attach/code_scan.hpp"
#include "attach/elf_symbols.hpp"
#include "attach/known_allocators.hpp"
#include "attach/probe_table.hpp"

using namespace memsight::attach;

namespace {

const std::set<std::string> kNews = {"_Znwm", "_Znam", "_ZnwmRKSt9nothrow_t", "_ZnamRKSt9nothrow_t"};

bool readable(const char* path) { return access(path, R_OK) == 0; }

uint8_t byte_at(const std::string& path, uint64_t offset) {
  uint8_t b = 0;
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  REQUIRE(fd >= 0);
  REQUIRE(pread(fd, &b, 1, static_cast<off_t>(offset)) == 1);
  close(fd);
  return b;
}

}  // namespace

TEST_CASE("known allocators are recognized by file name, whatever the directory or version suffix") {
  CHECK(std::string(allocator_of_file("/usr/lib/x86_64-linux-gnu/libc.so.6")->name) == "glibc");
  CHECK(std::string(allocator_of_file("/opt/app/lib/libjemalloc.so.2")->name) == "jemalloc");
  CHECK(std::string(allocator_of_file("/usr/lib/libtcmalloc_minimal.so.4.5.10")->name) == "tcmalloc");
  CHECK(std::string(allocator_of_file("libmimalloc.so.2.0")->name) == "mimalloc");
  CHECK(allocator_of_file("/usr/lib/x86_64-linux-gnu/libstdc++.so.6") == nullptr);
  CHECK(allocator_of_file("/usr/lib/libcrypto.so.3") == nullptr);
  const auto prefixes = known_prefixes();
  CHECK(std::count(prefixes.begin(), prefixes.end(), "je_") == 1);
}

TEST_CASE("the probe table spells prefixed names only for the C API") {
  const auto names = symbols_of(Role::kMalloc, "je_");
  CHECK(std::count(names.begin(), names.end(), "je_malloc") == 1);
  CHECK(std::count(names.begin(), names.end(), "mmap") == 1);  // a system call wrapper keeps its name
  for (const auto& n : symbols_of(Role::kOwnNew, "je_")) CHECK(n.rfind("_Z", 0) == 0);
}

TEST_CASE("every call to operator new in a program is found, and each site follows a call instruction") {
  const std::string program = MS_CXX_WORKLOAD;
  const auto sites = return_sites(program, {}, kNews);
  // leak_node, leak_array, keep_vector, churn_node, the two bad-alloc functions and the vectors' allocators.
  CHECK(sites.size() >= 6);
  for (uint64_t site : sites) CHECK(byte_at(program, site - 5) == 0xe8);  // call rel32 to new@plt
  CHECK(return_sites(program, {}, {"no_such_function"}).empty());
}

TEST_CASE("jemalloc: plain delete ends in free (probed already), sized delete frees inline (probed itself)") {
  const char* jemalloc = "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2";
  if (!readable(jemalloc)) {
    WARN("libjemalloc2 is not installed: tools/setup installs it");
    return;
  }
  const std::vector<std::string> wanted = {"free", "sdallocx", "_ZdlPv", "_ZdlPvm", "_ZdlPvmSt11align_val_t"};
  auto facts = read_elf_facts(jemalloc, wanted);
  REQUIRE(facts);
  const std::set<uint64_t> releases = {facts->functions.at("free"), facts->functions.at("sdallocx")};
  const std::set<std::string> names = {"free", "sdallocx"};
  auto reaches = [&](const char* fn) {
    return reaches_release(jemalloc, facts->functions.at(fn), facts->sizes.at(fn), releases, names);
  };
  CHECK(reaches("_ZdlPv"));
  CHECK_FALSE(reaches("_ZdlPvm"));
  CHECK(reaches("_ZdlPvmSt11align_val_t"));  // through sdallocx@plt
}
