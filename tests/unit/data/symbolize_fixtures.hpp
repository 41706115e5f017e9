// Fixtures of symbolize_test: temporary directories, the symbolize_target child process, fake procfs trees.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "symbolize/maps.hpp"

namespace memsight::symbolize::testing {

namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "symbolize_test.XXXXXX").string();
    REQUIRE(::mkdtemp(pattern.data()) != nullptr);
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

inline void write_file(const fs::path& path, const std::string& bytes) {
  fs::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  REQUIRE(out.good());
}

inline std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream bytes;
  bytes << in.rdbuf();
  return bytes.str();
}

// symbolize_target as a child: its "KEY VALUE..." lines are read up to "ready"; then it waits until
// kill() (or the destructor) ends it.
class Target {
 public:
  explicit Target(const std::string& exe) {
    int to_child[2], from_child[2];
    REQUIRE(::pipe2(to_child, O_CLOEXEC) == 0);
    REQUIRE(::pipe2(from_child, O_CLOEXEC) == 0);
    pid_ = ::fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      ::dup2(to_child[0], STDIN_FILENO);
      ::dup2(from_child[1], STDOUT_FILENO);
      ::execl(exe.c_str(), exe.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    ::close(to_child[0]);
    ::close(from_child[1]);
    stdin_fd_ = to_child[1];
    FILE* out = ::fdopen(from_child[0], "r");
    char line[256];
    while (std::fgets(line, sizeof line, out) != nullptr && std::string(line) != "ready\n") {
      std::istringstream fields(line);
      std::string key, value;
      fields >> key;
      while (fields >> value) values_[key].push_back(std::stoull(value, nullptr, 0));
    }
    std::fclose(out);
    REQUIRE(values_.size() == 5);
  }
  ~Target() { kill(); }
  Target(const Target&) = delete;
  Target& operator=(const Target&) = delete;

  uint32_t pid() const { return static_cast<uint32_t>(pid_); }
  uint64_t value(const std::string& key, size_t index = 0) const { return values_.at(key).at(index); }
  // Ends the child and reaps it: afterwards /proc/PID is gone.
  void kill() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    ::close(stdin_fd_);
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
  }

 private:
  pid_t pid_ = -1;
  int stdin_fd_ = -1;
  std::map<std::string, std::vector<uint64_t>> values_;
};

// A fake procfs process: PROC/PID/maps maps `bytes`, stored at PROC/PID/root/PATH, at `start`.
inline void fake_process(const fs::path& proc, uint32_t pid, const std::string& bytes,
                         const std::string& path, uint64_t start, uint64_t end, uint64_t inode_delta = 0) {
  fs::path dir = proc / std::to_string(pid);
  fs::path file = dir / "root" / fs::path(path).relative_path();
  write_file(file, bytes);
  struct stat st;
  REQUIRE(::stat(file.c_str(), &st) == 0);
  char line[512];
  std::snprintf(line, sizeof line, "%lx-%lx r-xp 00000000 %02x:%02x %lu                 %s\n",
                static_cast<unsigned long>(start), static_cast<unsigned long>(end), major(st.st_dev),
                minor(st.st_dev), static_cast<unsigned long>(st.st_ino + inode_delta), path.c_str());
  write_file(dir / "maps", line);
}

inline const Mapping* mapping_of(const ParsedMaps& maps, uint64_t address) {
  const Mapping* m = maps.find(address);
  REQUIRE(m != nullptr);
  return m;
}

}  // namespace memsight::symbolize::testing
