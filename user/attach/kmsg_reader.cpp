#include "kmsg_reader.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string_view>
#include <utility>

namespace memsight::attach {
namespace {

// A record is at most ~1 KiB of text plus its dictionary; read(2) fails with EINVAL on a smaller buffer.
constexpr size_t kRecordBytes = 8192;

}  // namespace

Result<KmsgReader> KmsgReader::open() {
  const int fd = ::open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    const ExitCode code = err == EPERM || err == EACCES ? ExitCode::kPrivilege : ExitCode::kRuntime;
    return fail(code, fmt::format("cannot read the kernel log /dev/kmsg: {} (needs root or CAP_SYSLOG "
                                  "when kernel.dmesg_restrict=1)",
                                  std::strerror(err)));
  }
  // Only kills from now on: what the log held before memsight started is history.
  if (::lseek(fd, 0, SEEK_END) < 0) {
    const int err = errno;
    ::close(fd);
    return fail(ExitCode::kRuntime, fmt::format("cannot seek /dev/kmsg to its end: {}", std::strerror(err)));
  }
  return KmsgReader(fd);
}

KmsgReader::KmsgReader(KmsgReader&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      overwritten_(other.overwritten_),
      malformed_(other.malformed_),
      last_seq_(other.last_seq_),
      gap_(other.gap_) {}

KmsgReader& KmsgReader::operator=(KmsgReader&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(other.fd_, -1);
    overwritten_ = other.overwritten_;
    malformed_ = other.malformed_;
    last_seq_ = other.last_seq_;
    gap_ = other.gap_;
  }
  return *this;
}

KmsgReader::~KmsgReader() {
  if (fd_ >= 0) ::close(fd_);
}

// Sequence numbers are consecutive: a jump counts the records overwritten before we read them (EPIPE
// says that happened; the jump says how many).
void KmsgReader::count_gap(uint64_t seq) {
  if (last_seq_ && seq > *last_seq_ + 1)
    overwritten_ += seq - *last_seq_ - 1;
  else if (!last_seq_ && gap_)
    overwritten_ += 1;  // at least one, how many is unknown
  last_seq_ = seq;
  gap_ = false;
}

Result<uint64_t> KmsgReader::read_available(const std::function<void(const core::KmsgRecord&)>& on_record) {
  char buffer[kRecordBytes];
  uint64_t records = 0;
  for (;;) {
    const ssize_t n = ::read(fd_, buffer, sizeof(buffer));
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) return records;
      // The reader fell behind and the records it was about to read were overwritten; the next
      // read resumes at the oldest record still held.
      if (errno == EPIPE) {
        gap_ = true;
        continue;
      }
      return fail(ExitCode::kRuntime, fmt::format("reading /dev/kmsg failed: {}", std::strerror(errno)));
    }
    if (n == 0) return records;
    ++records;
    auto record = core::parse_kmsg_record(std::string_view(buffer, static_cast<size_t>(n)));
    if (!record) {
      ++malformed_;
      continue;
    }
    count_gap(record->seq);
    on_record(*record);
  }
}

}  // namespace memsight::attach
