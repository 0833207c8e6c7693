#pragma once
// HttpServer: a minimal HTTP/1.1 server for the operational endpoints
// (/metrics, /healthz, /ready; see src/ops/ops_endpoints.h). GET only, one
// request per connection (`Connection: close`), requests bounded in size
// (max_request_bytes, else 431) and time (io_timeout_ms, else dropped);
// unknown paths get 404, other methods 405. No TLS, keep-alive or request
// bodies: it is meant for scrapes over loopback, not for the open internet.
//
// Plain POSIX sockets and one thread, which accepts and then serves each
// connection in turn, so route handlers never run concurrently with each
// other. Start() binds and starts the thread; Stop() (or the destructor)
// wakes it through a pipe, even in the middle of a slow request, and joins
// it. Stop may be called from any thread except the server's own (a handler
// must not stop its server).
//
// Owns the listening socket, the wake pipe and the thread. The routes are
// called on the server thread; whatever they reference must outlive Stop().

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <thread>

#include "src/core/status.h"

namespace ctrjoin {

struct HttpServerOptions {
  // host:port to listen on. host is an IPv4 literal, an IPv6 literal in
  // brackets ("[::1]:9464") or "localhost"; no name lookups. Port 0 picks a
  // free port (HttpServer::port() tells which). The default serves this
  // machine only: another interface (0.0.0.0, a NIC's address) is served
  // only when configured explicitly.
  std::string address = "127.0.0.1:9464";
  // Not config keys (fixed for the binary; tests shrink them):
  size_t max_request_bytes = 8192;  // request line + headers, 256 .. 1 MiB
  int io_timeout_ms = 5'000;        // a connection slower than this is dropped, 10 .. 600000

  Status Validate() const;  // "http.address: ..."
};

// A numeric host and a port, as parsed from HttpServerOptions::address.
struct HostPort {
  std::string host;  // "127.0.0.1", "::1" (no brackets)
  uint16_t port = 0;
  bool loopback = false;  // 127.0.0.0/8 or ::1
};
// `key` names the setting in errors ("http.address: ...").
Result<HostPort> ParseHostPort(std::string_view address, std::string_view key);

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
};

// Path (without the query string) -> handler. A handler that throws
// answers 500.
using HttpRoutes = std::map<std::string, std::function<HttpResponse()>, std::less<>>;

class HttpServer {
 public:
  static Result<std::unique_ptr<HttpServer>> Start(const HttpServerOptions& options,
                                                   HttpRoutes routes);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Abandons a connection being served, joins the thread and closes the
  // listening socket (new connections are refused). Idempotent.
  void Stop();
  // The port bound (the chosen one when the address said port 0).
  uint16_t port() const { return port_; }
  // "http://127.0.0.1:9464" (IPv6 hosts in brackets).
  std::string Url() const;
  uint64_t requests_served() const { return served_.load(std::memory_order_relaxed); }

 private:
  HttpServer(HttpServerOptions options, HttpRoutes routes);
  Status Listen(const HostPort& where);
  void Loop();
  void Serve(int fd);
  HttpResponse Respond(std::string_view request);

  const HttpServerOptions options_;
  const HttpRoutes routes_;
  std::string host_;
  uint16_t port_ = 0;
  int listen_fd_ = -1;
  int wake_read_ = -1;
  int wake_write_ = -1;
  std::atomic<uint64_t> served_{0};
  std::thread thread_;
};

}  // namespace ctrjoin
