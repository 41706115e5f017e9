// Paths of a traced process resolved inside its root (symbolize/root_path.hpp): a "container" is a temp
// directory whose symlinks point out of it, the way a hostile image would.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <string>

#include "data/symbolize_fixtures.hpp"
#include "symbolize/root_path.hpp"

using namespace memsight::symbolize;
using testing::read_file;
using testing::TempDir;
using testing::write_file;
namespace fs = std::filesystem;

namespace {

// What the descriptor open_in_root gave reads as (through open_for_reading), or the error.
std::string contents(const std::string& root, const std::string& path, RootResolution how) {
  auto named = open_in_root(root, path, how);
  if (!named) return "error: " + named.error();
  auto fd = open_for_reading(*named, path);
  if (!fd) return "error: " + fd.error();
  return read_file(fd_path(fd->get()));
}

// A container root: /etc/passwd of its own, and links that lead out of it if followed from the host.
struct Container {
  TempDir tmp;
  std::string root = (tmp.path() / "root").string();
  Container() {
    write_file(tmp.path() / "root" / "etc" / "passwd", "inside\n");
    fs::create_directory_symlink("/etc", tmp.path() / "root" / "lib");            // absolute
    fs::create_directory_symlink("../../../../../..", tmp.path() / "root" / "up");  // climbs
    REQUIRE(::mkfifo((tmp.path() / "root" / "fifo").c_str(), 0600) == 0);
  }
};

}  // namespace

TEST_CASE("a symlink in a target's root resolves inside that root, never on the host", "[root_path]") {
  if (root_resolution() != RootResolution::kOpenat2) {
    WARN("no openat2 on this kernel: nothing to check");
    return;
  }
  Container c;
  // Through the host's /proc/PID/root these would read the host's /etc/passwd.
  CHECK(contents(c.root, "/lib/passwd", RootResolution::kOpenat2) == "inside\n");
  CHECK(contents(c.root, "/up/etc/passwd", RootResolution::kOpenat2) == "inside\n");
  CHECK(contents(c.root, "/../../etc/passwd", RootResolution::kOpenat2) == "inside\n");
  CHECK(contents(c.root, "/etc/passwd", RootResolution::kOpenat2) == "inside\n");
  CHECK(read_file("/etc/passwd") != "inside\n");  // the host's is another file
  CHECK(contents(c.root, "/lib/no-such-file", RootResolution::kOpenat2).find("No such file") != std::string::npos);
}

TEST_CASE("magic links (/proc/PID/root, /proc/PID/fd/N) met inside a root are refused", "[root_path]") {
  if (root_resolution() != RootResolution::kOpenat2) {
    WARN("no openat2 on this kernel: nothing to check");
    return;
  }
  // As if a container's /proc were the root: its "root" entry is a magic link to memsight's own root.
  const std::string error = contents("/proc/self", "/root/etc/passwd", RootResolution::kOpenat2);
  CHECK(error.find("refused: it leads through a /proc magic link") != std::string::npos);
}

TEST_CASE("without openat2, symlinks and '..' are refused instead of followed", "[root_path]") {
  Container c;
  const auto walk = RootResolution::kNoFollowWalk;
  CHECK(contents(c.root, "/etc/passwd", walk) == "inside\n");
  CHECK(contents(c.root, "//etc/./passwd", walk) == "inside\n");
  CHECK(contents(c.root, "/lib/passwd", walk).find("refused: lib is a symlink") != std::string::npos);
  CHECK(contents(c.root, "/up/etc/passwd", walk).find("refused: up is a symlink") != std::string::npos);
  CHECK(contents(c.root, "/etc/../etc/passwd", walk).find("refused: '..'") != std::string::npos);
}

TEST_CASE("only regular files are opened: a FIFO or a directory is refused unopened", "[root_path]") {
  Container c;
  for (const auto how : {RootResolution::kNoFollowWalk, root_resolution()}) {
    CHECK(contents(c.root, "/fifo", how).find("not a regular file") != std::string::npos);  // would block if opened
    CHECK(contents(c.root, "/etc", how).find("not a regular file") != std::string::npos);
  }
}
