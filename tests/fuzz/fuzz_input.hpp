// Helpers shared by the fuzz targets: the input cut into length-prefixed chunks, and the input as a file
// (for the readers that take a path or a descriptor).
#pragma once

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <span>
#include <string>

namespace memsight::fuzz {

// The input read front to back. Most targets read it as a sequence of chunks, each a 2-byte
// little-endian length then that many bytes (fewer when the input ends first): one input carries
// several ring-buffer records, so state built by earlier ones (the tracker's blocks, the OOM grouper's
// episodes) meets the later ones.
class Chunks {
 public:
  Chunks(const uint8_t* data, size_t size) : data_(data), size_(size) {}

  // A 2-byte little-endian length; false when fewer than 2 bytes are left.
  bool length(uint16_t& out) {
    if (size_ - at_ < 2) return false;
    out = static_cast<uint16_t>(data_[at_] | (data_[at_ + 1] << 8));
    at_ += 2;
    return true;
  }
  // The next `n` bytes, or what is left when fewer.
  std::span<const std::byte> take(size_t n) {
    n = n < size_ - at_ ? n : size_ - at_;
    std::span<const std::byte> out{reinterpret_cast<const std::byte*>(data_ + at_), n};
    at_ += n;
    return out;
  }
  // A length and the bytes it announces; false when the input is used up.
  bool next(std::span<const std::byte>& body) {
    uint16_t n = 0;
    if (!length(n)) return false;
    body = take(n);
    return true;
  }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t at_ = 0;
};

// Little-endian integer at `offset` of `b`, or 0 where the bytes run out.
template <typename T>
T read_le(std::span<const std::byte> b, size_t offset) {
  T v = 0;
  for (size_t i = 0; i < sizeof(T) && offset + i < b.size(); ++i)
    v |= static_cast<T>(static_cast<uint8_t>(b[offset + i])) << (8 * i);
  return v;
}

// Checks an invariant of the code under test; a violation is a finding (abort, so libFuzzer keeps the input).
inline void require(bool ok, const char* what) {
  if (ok) return;
  std::fprintf(stderr, "fuzz invariant violated: %s\n", what);
  std::abort();
}

// A private directory for the inputs written as files, made once per process and removed at exit.
inline const std::string& scratch_dir() {
  // Never destroyed: the exit handler that removes the directory runs after static destructors.
  static const std::string& dir = *[] {
    const char* tmp = std::getenv("TMPDIR");
    auto* made = new std::string(std::string(tmp && *tmp ? tmp : "/tmp") + "/memsight-fuzz.XXXXXX");
    if (::mkdtemp(made->data()) == nullptr) {
      std::perror("mkdtemp");
      std::abort();
    }
    std::atexit([] {
      std::error_code ec;
      std::filesystem::remove_all(scratch_dir(), ec);
    });
    return made;
  }();
  return dir;
}

// Writes the input to `path` (replacing it); aborts on a write error, which is the harness's, not a finding.
inline void write_file(const std::string& path, const uint8_t* data, size_t size) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    std::perror(path.c_str());
    std::abort();
  }
  for (size_t done = 0; done < size;) {
    const ssize_t n = ::write(fd, data + done, size - done);
    if (n <= 0) {
      std::perror("write");
      std::abort();
    }
    done += static_cast<size_t>(n);
  }
  ::close(fd);
}

// The input in an anonymous in-memory file, read from its start: a real descriptor without disk I/O.
inline int memory_file(const uint8_t* data, size_t size) {
  const int fd = ::memfd_create("memsight-fuzz", MFD_CLOEXEC);
  if (fd < 0) {
    std::perror("memfd_create");
    std::abort();
  }
  if (size != 0 && ::pwrite(fd, data, size, 0) != static_cast<ssize_t>(size)) {
    std::perror("pwrite");
    std::abort();
  }
  return fd;
}

}  // namespace memsight::fuzz
