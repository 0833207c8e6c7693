#include "src/ops/http_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>

namespace ctrjoin {

namespace {

using Clock = std::chrono::steady_clock;

constexpr size_t kMinRequestBytes = 256;
constexpr size_t kMaxRequestBytes = 1 << 20;
constexpr int kMinIoTimeoutMs = 10;
constexpr int kMaxIoTimeoutMs = 600'000;
constexpr int kListenBacklog = 16;

const char* Reason(int status) {
  switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
  }
  return "Unknown";
}

HttpResponse Plain(int status, std::string body) {
  return HttpResponse{status, "text/plain; charset=utf-8", std::move(body)};
}

void CloseFd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

enum class Wait { kReady, kStopped, kTimedOut };

// Waits until fd has `events` or the wake pipe is readable (Stop) or the
// deadline passes.
Wait WaitFor(int fd, short events, int wake_fd, Clock::time_point deadline) {
  while (true) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return Wait::kTimedOut;
    pollfd fds[2] = {{fd, events, 0}, {wake_fd, POLLIN, 0}};
    const int n = ::poll(fds, 2, static_cast<int>(std::min<int64_t>(left, 1'000'000)));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Wait::kStopped;  // cannot wait: give the connection up
    if (fds[1].revents != 0) return Wait::kStopped;
    if (fds[0].revents != 0) return Wait::kReady;
  }
}

bool SendAll(int fd, std::string_view data, int wake_fd, Clock::time_point deadline) {
  while (!data.empty()) {
    const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n > 0) {
      data.remove_prefix(static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (WaitFor(fd, POLLOUT, wake_fd, deadline) != Wait::kReady) return false;
      continue;
    }
    return false;
  }
  return true;
}

std::string Serialize(const HttpResponse& r, bool method_not_allowed) {
  std::string out = fmt::format(
      "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n"
      "Cache-Control: no-store\r\n",
      r.status, Reason(r.status), r.content_type, r.body.size());
  if (method_not_allowed) out += "Allow: GET\r\n";
  out += "\r\n";
  out += r.body;
  return out;
}

// The end of the request head ("\r\n\r\n", or "\n\n" from lax clients), or npos.
size_t HeadEnd(std::string_view request) {
  const size_t crlf = request.find("\r\n\r\n");
  const size_t lf = request.find("\n\n");
  return std::min(crlf, lf);
}

}  // namespace

Result<HostPort> ParseHostPort(std::string_view address, std::string_view key) {
  auto bad = [&](std::string_view why) {
    return Status::InvalidArgument(
        fmt::format("{}: {}, got '{}' (expected host:port, e.g. 127.0.0.1:9464, [::1]:9464 or "
                    "0.0.0.0:9464 to serve other machines)",
                    key, why, address));
  };
  const size_t colon = address.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return bad("no host:port");
  std::string_view host = address.substr(0, colon);
  const std::string_view port_text = address.substr(colon + 1);
  unsigned port = 0;
  auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (port_text.empty() || ec != std::errc() || end != port_text.data() + port_text.size() ||
      port > 65535) {
    return bad("the port must be a number in [0, 65535]");
  }
  const bool bracketed = host.size() >= 2 && host.front() == '[' && host.back() == ']';
  if (bracketed) host = host.substr(1, host.size() - 2);
  HostPort hp;
  hp.port = static_cast<uint16_t>(port);
  if (host == "localhost" && !bracketed) {
    hp.host = "127.0.0.1";
    hp.loopback = true;
    return hp;
  }
  hp.host = std::string(host);
  in_addr v4{};
  in6_addr v6{};
  if (!bracketed && ::inet_pton(AF_INET, hp.host.c_str(), &v4) == 1) {
    hp.loopback = (ntohl(v4.s_addr) >> 24) == 127;
    return hp;
  }
  if (bracketed && ::inet_pton(AF_INET6, hp.host.c_str(), &v6) == 1) {
    hp.loopback = IN6_IS_ADDR_LOOPBACK(&v6);
    return hp;
  }
  return bad(bracketed || host.find(':') != std::string_view::npos
                 ? "the host must be an IP address (IPv6 in brackets)"
                 : "the host must be an IP address or localhost");
}

Status HttpServerOptions::Validate() const {
  Result<HostPort> hp = ParseHostPort(address, "http.address");
  if (!hp.ok()) return hp.status();
  if (max_request_bytes < kMinRequestBytes || max_request_bytes > kMaxRequestBytes) {
    return Status::InvalidArgument(
        fmt::format("http server: max_request_bytes must be in [{}, {}], got {}", kMinRequestBytes,
                    kMaxRequestBytes, max_request_bytes));
  }
  if (io_timeout_ms < kMinIoTimeoutMs || io_timeout_ms > kMaxIoTimeoutMs) {
    return Status::InvalidArgument(
        fmt::format("http server: io_timeout_ms must be in [{}, {}], got {}", kMinIoTimeoutMs,
                    kMaxIoTimeoutMs, io_timeout_ms));
  }
  return Status::Ok();
}

HttpServer::HttpServer(HttpServerOptions options, HttpRoutes routes)
    : options_(std::move(options)), routes_(std::move(routes)) {}

Result<std::unique_ptr<HttpServer>> HttpServer::Start(const HttpServerOptions& options,
                                                      HttpRoutes routes) {
  CTRJOIN_RETURN_IF_ERROR(options.Validate());
  Result<HostPort> where = ParseHostPort(options.address, "http.address");
  if (!where.ok()) return where.status();
  std::unique_ptr<HttpServer> server(new HttpServer(options, std::move(routes)));
  CTRJOIN_RETURN_IF_ERROR(server->Listen(*where));
  if (!where->loopback) {
    spdlog::warn("http: serving {} to other machines too (http.address is not a loopback address)",
                 server->Url());
  }
  server->thread_ = std::thread([s = server.get()] { s->Loop(); });
  return server;
}

Status HttpServer::Listen(const HostPort& where) {
  const std::string context = fmt::format("http.address: cannot listen on {}", options_.address);
  auto sys_error = [&](const char* call) {
    return Status::IoError(fmt::format("{}: {}: {}", context, call, std::strerror(errno)),
                           Effect::kNoEffect);
  };
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE;
  addrinfo* info = nullptr;
  const std::string port = std::to_string(where.port);
  if (int rc = ::getaddrinfo(where.host.c_str(), port.c_str(), &hints, &info); rc != 0) {
    return Status::InvalidArgument(fmt::format("{}: {}", context, ::gai_strerror(rc)));
  }
  std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> owned(info, &::freeaddrinfo);
  listen_fd_ = ::socket(info->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (listen_fd_ < 0) return sys_error("socket");
  const int one = 1;
  if (::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0) {
    return sys_error("setsockopt");
  }
  if (::bind(listen_fd_, info->ai_addr, info->ai_addrlen) != 0) return sys_error("bind");
  if (::listen(listen_fd_, kListenBacklog) != 0) return sys_error("listen");
  sockaddr_storage bound{};
  socklen_t len = sizeof(bound);
  if (::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&bound), &len) != 0) {
    return sys_error("getsockname");
  }
  port_ = ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                            : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  host_ = where.host;
  int wake[2];
  if (::pipe2(wake, O_CLOEXEC | O_NONBLOCK) != 0) return sys_error("pipe2");
  wake_read_ = wake[0];
  wake_write_ = wake[1];
  return Status::Ok();
}

HttpServer::~HttpServer() {
  Stop();
  CloseFd(listen_fd_);
  CloseFd(wake_read_);
  CloseFd(wake_write_);
}

void HttpServer::Stop() {
  if (!thread_.joinable()) return;
  const char byte = 0;
  // The pipe only has to become readable; a full pipe already is.
  while (::write(wake_write_, &byte, 1) < 0 && errno == EINTR) {
  }
  thread_.join();
  CloseFd(listen_fd_);  // from now on connections are refused
}

std::string HttpServer::Url() const {
  return host_.find(':') != std::string::npos ? fmt::format("http://[{}]:{}", host_, port_)
                                              : fmt::format("http://{}:{}", host_, port_);
}

void HttpServer::Loop() {
  while (true) {
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {wake_read_, POLLIN, 0}};
    const int n = ::poll(fds, 2, -1);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      spdlog::error("http: poll: {}; no longer serving {}", std::strerror(errno), Url());
      return;
    }
    if (fds[1].revents != 0) return;  // Stop
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) {
      // Out of descriptors: the connection stays queued; do not spin on it.
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        pollfd wake{wake_read_, POLLIN, 0};
        ::poll(&wake, 1, 100);
      }
      continue;  // or the client went away
    }
    Serve(fd);
    ::close(fd);
  }
}

void HttpServer::Serve(int fd) {
  const Clock::time_point deadline =
      Clock::now() + std::chrono::milliseconds(options_.io_timeout_ms);
  std::string request;
  char buf[4096];
  HttpResponse response;
  bool method_not_allowed = false;
  while (true) {
    // The limit holds for the head however the bytes arrived: a head that
    // ends past it is too large even if it ended within the last read.
    const size_t head_end = HeadEnd(request);
    const size_t head_size = head_end != std::string::npos ? head_end : request.size();
    if (head_size > options_.max_request_bytes) {
      response = Plain(431, "request too large\n");
      break;
    }
    if (head_end != std::string::npos) {
      response = Respond(request);
      method_not_allowed = response.status == 405;
      break;
    }
    const ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n > 0) {
      request.append(buf, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (WaitFor(fd, POLLIN, wake_read_, deadline) != Wait::kReady) return;
      continue;
    }
    return;  // closed before a whole request, or a socket error
  }
  if (SendAll(fd, Serialize(response, method_not_allowed), wake_read_, deadline)) {
    served_.fetch_add(1, std::memory_order_relaxed);
  }
  ::shutdown(fd, SHUT_WR);
}

HttpResponse HttpServer::Respond(std::string_view request) {
  const size_t eol = request.find('\n');
  std::string_view line = request.substr(0, eol);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  // METHOD SP request-target SP HTTP-version
  const size_t sp1 = line.find(' ');
  const size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != std::string_view::npos) {
    return Plain(400, "malformed request line\n");
  }
  const std::string_view method = line.substr(0, sp1);
  std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  const std::string_view version = line.substr(sp2 + 1);
  if (!version.starts_with("HTTP/1.") || target.empty() || target.front() != '/') {
    return Plain(400, "expected an HTTP/1.x request for a path\n");
  }
  if (method != "GET") return Plain(405, "only GET is served\n");
  target = target.substr(0, target.find_first_of("?#"));
  auto route = routes_.find(target);
  if (route == routes_.end()) return Plain(404, "not found\n");
  try {
    return route->second();
  } catch (const std::exception& e) {
    spdlog::error("http: {}: {}", target, e.what());
    return Plain(500, "internal error\n");
  }
}

}  // namespace ctrjoin
