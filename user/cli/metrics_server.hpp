// The /metrics endpoint of `record --metrics ADDR:PORT`: a deliberately tiny HTTP/1.1 server that
// serves one text, the latest the recorder published, and nothing else.
//
//   recorder thread ── publish(text) ──► [mutex: latest text] ◄── server thread: accept, read one
//                                                                 request (≤ 8 KiB, ≤ 2 s), answer, close
//
// One connection at a time, each closed after its answer: Prometheus scrapes every few seconds, and a
// client that stalls only delays the next scrape by the request timeout.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "core/error.hpp"

namespace memsight::cli {

class MetricsServer {
 public:
  // "ADDR:PORT", ":PORT" (127.0.0.1: loopback unless an address is given) or "[IPv6]:PORT"; ADDR is
  // numeric or "localhost". Port 0 picks a free port (see port()). Binds, listens and starts serving.
  // Errors: a malformed address → kUsage; the port taken or not bindable → kRuntime.
  static Result<std::unique_ptr<MetricsServer>> start(const std::string& addr_port);

  ~MetricsServer();  // stops serving and joins the thread; an open connection is dropped
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  // The text GET /metrics answers from now on (Prometheus text format 0.0.4). Thread-safe.
  void publish(std::string text);

  uint16_t port() const { return port_; }                    // the bound port, also when 0 was asked for
  const std::string& endpoint() const { return endpoint_; }  // "127.0.0.1:9464", "[::1]:9464"

 private:
  MetricsServer(int listen_fd, int wake_read_fd, int wake_write_fd, uint16_t port, std::string endpoint);
  void serve();
  void answer(int fd);
  std::shared_ptr<const std::string> latest();

  int listen_fd_;
  int wake_read_fd_;  // readable once the destructor wants the thread to stop (self-pipe)
  int wake_write_fd_;
  uint16_t port_;
  std::string endpoint_;
  std::mutex mutex_;
  std::shared_ptr<const std::string> text_;  // swapped whole under mutex_, so a reader copies no bytes
  std::thread thread_;
};

}  // namespace memsight::cli
