#include "metrics_server.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

namespace memsight::cli {
namespace {

using Clock = std::chrono::steady_clock;

constexpr size_t kMaxRequestBytes = 8192;                // a scrape's request is a few hundred bytes
constexpr auto kReadTimeout = std::chrono::seconds(2);   // for the whole request, however it trickles in
constexpr auto kWriteTimeout = std::chrono::seconds(5);  // for the whole answer
constexpr int kBacklog = 16;

struct Endpoint {
  sockaddr_storage addr{};
  socklen_t len = 0;
  std::string host;   // as shown in messages: "127.0.0.1", "[::1]"
  uint16_t port = 0;  // as asked: 0 lets the kernel pick
};

Result<uint16_t> parse_port(const std::string& text, const std::string& whole) {
  const bool digits =
      !text.empty() && text.size() <= 5 && text.find_first_not_of("0123456789") == std::string::npos;
  if (!digits || std::stoul(text) > 65535) {
    return fail(ExitCode::kUsage,
                fmt::format("--metrics {}: the port must be a number from 0 to 65535", whole));
  }
  return static_cast<uint16_t>(std::stoul(text));
}

// ":PORT" and "localhost:PORT" mean the loopback: metrics say what runs on the host, so they are not
// exposed to the network unless an address asks for it.
Result<Endpoint> parse_endpoint(const std::string& addr_port) {
  const auto usage = [&] {
    return fail(ExitCode::kUsage,
                fmt::format("--metrics {}: expected ADDR:PORT, :PORT or [IPV6]:PORT (e.g. 127.0.0.1:9464)",
                            addr_port));
  };
  const size_t colon = addr_port.rfind(':');
  if (colon == std::string::npos) return usage();
  std::string host = addr_port.substr(0, colon);
  const auto port = parse_port(addr_port.substr(colon + 1), addr_port);
  if (!port) return tl::unexpected(port.error());

  Endpoint e;
  if (host.empty() || host == "localhost") host = "127.0.0.1";
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    auto* in6 = reinterpret_cast<sockaddr_in6*>(&e.addr);
    if (inet_pton(AF_INET6, host.substr(1, host.size() - 2).c_str(), &in6->sin6_addr) != 1) return usage();
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(*port);
    e.len = sizeof(sockaddr_in6);
  } else {
    auto* in4 = reinterpret_cast<sockaddr_in*>(&e.addr);
    if (inet_pton(AF_INET, host.c_str(), &in4->sin_addr) != 1) return usage();  // "::1:9464" too: needs []
    in4->sin_family = AF_INET;
    in4->sin_port = htons(*port);
    e.len = sizeof(sockaddr_in);
  }
  e.host = host;
  e.port = *port;
  return e;
}

std::string bind_hint(int err) {
  switch (err) {
    case EADDRINUSE: return " (is another memsight or exporter using the port?)";
    case EACCES: return " (ports below 1024 need root or CAP_NET_BIND_SERVICE; pick another port)";
    case EADDRNOTAVAIL: return " (no interface of this host has that address)";
    default: return "";
  }
}

Result<int> listen_on(const Endpoint& e) {
  const int fd = socket(e.addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return fail(ExitCode::kRuntime, fmt::format("cannot create a socket: {}", std::strerror(errno)));
  }
  const int on = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));  // restart at once despite TIME_WAIT
  if (bind(fd, reinterpret_cast<const sockaddr*>(&e.addr), e.len) != 0 || listen(fd, kBacklog) != 0) {
    const int err = errno;
    close(fd);
    return fail(ExitCode::kRuntime, fmt::format("cannot listen on {}:{}: {}{}", e.host, e.port,
                                                std::strerror(err), bind_hint(err)));
  }
  return fd;
}

uint16_t bound_port(int fd) {
  sockaddr_storage addr{};
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  if (addr.ss_family == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6*>(&addr)->sin6_port);
  return ntohs(reinterpret_cast<const sockaddr_in*>(&addr)->sin_port);
}

// Waits until `fd` is ready for `events`; false on the deadline, on an error, or when `wake_fd` says stop.
bool wait_for(int fd, short events, Clock::time_point deadline, int wake_fd) {
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return false;
    pollfd fds[] = {{fd, events, 0}, {wake_fd, POLLIN, 0}};
    const int n = poll(fds, 2, static_cast<int>(left));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 || fds[1].revents) return false;
    if (n > 0) return (fds[0].revents & events) != 0;
  }
}

// The request line and headers, up to the blank line that ends them; empty if the client sent none
// in time. Anything past kMaxRequestBytes is not read.
std::string read_request(int fd, int wake_fd) {
  const auto deadline = Clock::now() + kReadTimeout;
  std::string request;
  char buf[1024];
  while (request.size() < kMaxRequestBytes && request.find("\r\n\r\n") == std::string::npos &&
         request.find("\n\n") == std::string::npos) {
    const ssize_t n = read(fd, buf, std::min(sizeof(buf), kMaxRequestBytes - request.size()));
    if (n > 0) {
      request.append(buf, static_cast<size_t>(n));
    } else if (n == 0 || (errno != EAGAIN && errno != EINTR) ||
               (errno == EAGAIN && !wait_for(fd, POLLIN, deadline, wake_fd))) {
      break;
    }
  }
  return request;
}

void write_all(int fd, std::string_view data, int wake_fd) {
  const auto deadline = Clock::now() + kWriteTimeout;
  while (!data.empty()) {
    const ssize_t n = send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n > 0) {
      data.remove_prefix(static_cast<size_t>(n));
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n == 0 || errno != EAGAIN || !wait_for(fd, POLLOUT, deadline, wake_fd)) {
      return;
    }
  }
}

std::string response(std::string_view status, std::string_view extra_headers, std::string_view content_type,
                     std::string_view body) {
  return fmt::format("HTTP/1.1 {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n{}Connection: close\r\n\r\n{}",
                     status, content_type, body.size(), extra_headers, body);
}

}  // namespace

Result<std::unique_ptr<MetricsServer>> MetricsServer::start(const std::string& addr_port) {
  const auto endpoint = parse_endpoint(addr_port);
  if (!endpoint) return tl::unexpected(endpoint.error());
  const auto fd = listen_on(*endpoint);
  if (!fd) return tl::unexpected(fd.error());
  int wake[2];
  if (pipe2(wake, O_CLOEXEC | O_NONBLOCK) != 0) {
    close(*fd);
    return fail(ExitCode::kRuntime, fmt::format("cannot create a pipe: {}", std::strerror(errno)));
  }
  const uint16_t port = bound_port(*fd);
  return std::unique_ptr<MetricsServer>(
      new MetricsServer(*fd, wake[0], wake[1], port, fmt::format("{}:{}", endpoint->host, port)));
}

MetricsServer::MetricsServer(int listen_fd, int wake_read_fd, int wake_write_fd, uint16_t port,
                             std::string endpoint)
    : listen_fd_(listen_fd),
      wake_read_fd_(wake_read_fd),
      wake_write_fd_(wake_write_fd),
      port_(port),
      endpoint_(std::move(endpoint)),
      text_(std::make_shared<const std::string>()),
      thread_([this] { serve(); }) {}

MetricsServer::~MetricsServer() {
  const char stop = 1;
  while (write(wake_write_fd_, &stop, 1) < 0 && errno == EINTR) {
  }
  thread_.join();
  close(listen_fd_);
  close(wake_read_fd_);
  close(wake_write_fd_);
}

void MetricsServer::publish(std::string text) {
  auto next = std::make_shared<const std::string>(std::move(text));
  std::lock_guard lock(mutex_);
  text_.swap(next);
}  // the old text is freed here, outside the lock, when no request still holds it

std::shared_ptr<const std::string> MetricsServer::latest() {
  std::lock_guard lock(mutex_);
  return text_;
}

void MetricsServer::serve() {
  for (;;) {
    pollfd fds[] = {{listen_fd_, POLLIN, 0}, {wake_read_fd_, POLLIN, 0}};
    if (poll(fds, 2, -1) < 0 && errno != EINTR) return;
    if (fds[1].revents) return;
    if (!(fds[0].revents & POLLIN)) continue;
    const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) continue;  // the client gave up already, or out of descriptors: the next scrape retries
    answer(fd);
    close(fd);
  }
}

void MetricsServer::answer(int fd) {
  const std::string request = read_request(fd, wake_read_fd_);
  const size_t eol = request.find('\n');
  if (eol == std::string::npos) return;  // nothing sensible in time: just close
  std::string line = request.substr(0, eol);
  if (!line.empty() && line.back() == '\r') line.pop_back();
  const size_t sp1 = line.find(' '), sp2 = line.rfind(' ');
  constexpr std::string_view kText = "text/plain; charset=utf-8";
  std::string reply;
  if (sp1 == std::string::npos || sp1 == sp2 || line.compare(sp2 + 1, 5, "HTTP/") != 0) {
    reply = response("400 Bad Request", "", kText, "bad request\n");
  } else if (line.compare(0, sp1, "GET") != 0) {
    reply = response("405 Method Not Allowed", "Allow: GET\r\n", kText, "only GET is served\n");
  } else {
    const std::string target = line.substr(sp1 + 1, sp2 - sp1 - 1);
    if (target.substr(0, target.find('?')) != "/metrics") {
      reply = response("404 Not Found", "", kText, "memsight serves /metrics only\n");
    } else {
      const auto text = latest();
      reply = response("200 OK", "", "text/plain; version=0.0.4; charset=utf-8", *text);
    }
  }
  write_all(fd, reply, wake_read_fd_);
  // Read what else the client sent (a body) before closing: unread bytes make the kernel answer the
  // close with a reset, which can destroy the reply before the client reads it.
  shutdown(fd, SHUT_WR);
  // Only what has already arrived, and a bounded amount of it: a client that keeps sending is cut off.
  char sink[1024];
  for (size_t drained = 0; drained < kMaxRequestBytes;) {
    const ssize_t n = read(fd, sink, sizeof(sink));
    if (n <= 0) break;
    drained += static_cast<size_t>(n);
  }
}

}  // namespace memsight::cli
