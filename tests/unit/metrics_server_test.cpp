// The /metrics server, driven over real loopback sockets (no root needed).
#include "cli/metrics_server.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>

using namespace memsight;

namespace {

int connect_to(uint16_t port, int family = AF_INET) {
  const int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(fd >= 0);
  int rc;
  if (family == AF_INET6) {
    sockaddr_in6 addr{};
    addr.sin6_family = AF_INET6;
    addr.sin6_port = htons(port);
    addr.sin6_addr = in6addr_loopback;
    rc = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  } else {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    rc = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  }
  REQUIRE(rc == 0);
  return fd;
}

// Sends `request` and reads the whole answer (the server closes the connection after it).
std::string http_exchange(uint16_t port, const std::string& request, int family = AF_INET) {
  const int fd = connect_to(port, family);
  REQUIRE(send(fd, request.data(), request.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(request.size()));
  std::string reply;
  char buf[4096];
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    REQUIRE(poll(&p, 1, 5000) == 1);  // never hang the test suite
    const ssize_t n = read(fd, buf, sizeof(buf));
    if (n <= 0) break;
    reply.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  return reply;
}

std::string get(uint16_t port, const std::string& path) {
  return http_exchange(port, "GET " + path + " HTTP/1.1\r\nHost: localhost\r\nAccept: text/plain\r\n\r\n");
}

std::string body_of(const std::string& reply) {
  const size_t end = reply.find("\r\n\r\n");
  return end == std::string::npos ? "" : reply.substr(end + 4);
}

}  // namespace

TEST_CASE("metrics server: GET /metrics answers the latest published text") {
  auto server = cli::MetricsServer::start("127.0.0.1:0");
  REQUIRE(server);
  const uint16_t port = (*server)->port();
  REQUIRE(port != 0);
  CHECK((*server)->endpoint() == "127.0.0.1:" + std::to_string(port));

  (*server)->publish("memsight_up 1\n");
  (*server)->publish("# HELP memsight_x X.\n# TYPE memsight_x gauge\nmemsight_x 2\n");
  const auto reply = get(port, "/metrics");
  CHECK(reply.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
  CHECK(reply.find("\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n") != std::string::npos);
  CHECK(reply.find("\r\nConnection: close\r\n") != std::string::npos);
  CHECK(body_of(reply) == "# HELP memsight_x X.\n# TYPE memsight_x gauge\nmemsight_x 2\n");
  CHECK(reply.find("\r\nContent-Length: " + std::to_string(body_of(reply).size()) + "\r\n") !=
        std::string::npos);

  // Prometheus may add query parameters; they do not change the answer.
  CHECK(get(port, "/metrics?format=text").rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
}

TEST_CASE("metrics server: other paths 404, other methods 405, garbage 400") {
  auto server = cli::MetricsServer::start("127.0.0.1:0");
  REQUIRE(server);
  const uint16_t port = (*server)->port();
  CHECK(get(port, "/").rfind("HTTP/1.1 404 ", 0) == 0);
  CHECK(get(port, "/metricsx").rfind("HTTP/1.1 404 ", 0) == 0);
  const auto post = http_exchange(port, "POST /metrics HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc");
  CHECK(post.rfind("HTTP/1.1 405 ", 0) == 0);
  CHECK(post.find("\r\nAllow: GET\r\n") != std::string::npos);
  CHECK(http_exchange(port, "hello\r\n\r\n").rfind("HTTP/1.1 400 ", 0) == 0);
  // Still serving after all that.
  CHECK(get(port, "/metrics").rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
}

TEST_CASE("metrics server: a silent client neither blocks others for long nor the shutdown") {
  auto server = cli::MetricsServer::start(":0");  // loopback
  REQUIRE(server);
  const uint16_t port = (*server)->port();
  CHECK((*server)->endpoint() == "127.0.0.1:" + std::to_string(port));
  const int idle = connect_to(port);  // connects, says nothing
  const auto t0 = std::chrono::steady_clock::now();
  CHECK(get(port, "/metrics").rfind("HTTP/1.1 200 OK\r\n", 0) == 0);  // served once the idle one times out
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(4));

  const int idle2 = connect_to(port);
  usleep(100'000);  // let the server start waiting on it
  const auto t1 = std::chrono::steady_clock::now();
  server->reset();
  CHECK(std::chrono::steady_clock::now() - t1 < std::chrono::seconds(1));
  close(idle);
  close(idle2);
}

TEST_CASE("metrics server: a port in use is a runtime error naming it") {
  auto first = cli::MetricsServer::start("127.0.0.1:0");
  REQUIRE(first);
  const std::string taken = "127.0.0.1:" + std::to_string((*first)->port());
  const auto second = cli::MetricsServer::start(taken);
  REQUIRE_FALSE(second);
  CHECK(second.error().code == ExitCode::kRuntime);
  CHECK(second.error().message ==
        "cannot listen on " + taken +
            ": Address already in use (is another memsight or exporter using the port?)");
}

TEST_CASE("metrics server: malformed addresses are usage errors") {
  for (const char* bad : {"9464", "nonsense:80", "127.0.0.1:", "127.0.0.1:99999", "127.0.0.1:-1", "::1:9464",
                          "[::1]", "[nonsense]:80", "1.2.3:80", ":port"}) {
    INFO(bad);
    const auto server = cli::MetricsServer::start(bad);
    REQUIRE_FALSE(server);
    CHECK(server.error().code == ExitCode::kUsage);
    CHECK(server.error().message.find(bad) != std::string::npos);
  }
}

TEST_CASE("metrics server: IPv6 loopback") {
  auto server = cli::MetricsServer::start("[::1]:0");
  if (!server) {
    WARN("no IPv6 loopback here: " + server.error().message);
    return;
  }
  CHECK((*server)->endpoint() == "[::1]:" + std::to_string((*server)->port()));
  (*server)->publish("memsight_up 1\n");
  CHECK(body_of(http_exchange((*server)->port(), "GET /metrics HTTP/1.0\r\n\r\n", AF_INET6)) ==
        "memsight_up 1\n");
}
