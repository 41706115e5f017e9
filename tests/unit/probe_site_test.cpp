#include <catch2/catch.hpp>

#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "attach/probe_site.hpp"

namespace {

// A file holding `code` at offset 0x10 (after some padding), so offsets are file offsets as in an ELF.
struct CodeFile {
  std::string path;
  explicit CodeFile(const std::vector<uint8_t>& code) {
    char name[] = "/tmp/memsight-probe-site-XXXXXX";
    const int fd = mkstemp(name);
    path = name;
    std::vector<uint8_t> bytes(0x10, 0xcc);
    bytes.insert(bytes.end(), code.begin(), code.end());
    REQUIRE(write(fd, bytes.data(), bytes.size()) == static_cast<ssize_t>(bytes.size()));
    close(fd);
  }
  ~CodeFile() { unlink(path.c_str()); }
};

const std::vector<uint8_t> kTestRdi = {0x48, 0x85, 0xff};                     // test %rdi,%rdi
const std::vector<uint8_t> kJeNear = {0x0f, 0x84, 0xbf, 0x00, 0x00, 0x00};    // je rel32
const std::vector<uint8_t> kPushRbp = {0x55};                                 // push %rbp

std::vector<uint8_t> join(std::initializer_list<std::vector<uint8_t>> parts) {
  std::vector<uint8_t> out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

}  // namespace

TEST_CASE("free's NULL test is stepped over: the probe goes on the first instruction after the branch") {
  CodeFile glibc_free(join({kTestRdi, kJeNear, kPushRbp}));
  CHECK(memsight::attach::past_null_test(glibc_free.path, 0x10) == 0x10 + 9);
  CodeFile with_endbr(join({{0xf3, 0x0f, 0x1e, 0xfa}, kTestRdi, {0x74, 0x20}, kPushRbp}));  // je rel8
  CHECK(memsight::attach::past_null_test(with_endbr.path, 0x10) == 0x10 + 4 + 3 + 2);
}

TEST_CASE("anything else keeps the entry") {
  CodeFile push_first(join({kPushRbp, kTestRdi, kJeNear}));
  CHECK(memsight::attach::past_null_test(push_first.path, 0x10) == 0x10);
  CodeFile other_register(join({{0x48, 0x85, 0xf6}, kJeNear}));  // test %rsi,%rsi
  CHECK(memsight::attach::past_null_test(other_register.path, 0x10) == 0x10);
  CodeFile jne(join({kTestRdi, {0x75, 0x20}}));  // jne: the non-NULL path would be skipped
  CHECK(memsight::attach::past_null_test(jne.path, 0x10) == 0x10);
  CodeFile short_file({0x48});
  CHECK(memsight::attach::past_null_test(short_file.path, 0x10) == 0x10);
  CHECK(memsight::attach::past_null_test("/nonexistent/libc.so.6", 0x42) == 0x42);
}
