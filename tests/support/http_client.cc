#include "tests/support/http_client.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace ctrjoin::test_support {

namespace {

// Closes the descriptor when it goes out of scope.
struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

sockaddr_in Loopback(uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

Status Errno(const std::string& what) {
  return Status::IoError(fmt::format("{}: {}", what, std::strerror(errno)));
}

}  // namespace

Result<HttpReply> HttpExchange(uint16_t port, const std::string& request) {
  Fd s{::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)};
  if (s.fd < 0) return Errno("socket");
  timeval timeout{30, 0};
  ::setsockopt(s.fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  ::setsockopt(s.fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
  const sockaddr_in addr = Loopback(port);
  if (::connect(s.fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
    return Errno(fmt::format("connect 127.0.0.1:{}", port));
  }
  size_t sent = 0;
  while (sent < request.size()) {
    const ssize_t n = ::send(s.fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return Errno("send");
    sent += static_cast<size_t>(n);
  }
  std::string raw;
  char buf[8192];
  while (true) {
    const ssize_t n = ::recv(s.fd, buf, sizeof(buf), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Errno("recv");
    if (n == 0) break;
    raw.append(buf, static_cast<size_t>(n));
  }
  const size_t head_end = raw.find("\r\n\r\n");
  if (head_end == std::string::npos || !raw.starts_with("HTTP/1.")) {
    return Status::IoError("not an HTTP response: '" + raw.substr(0, 200) + "'");
  }
  HttpReply reply;
  reply.headers = raw.substr(0, head_end);
  reply.body = raw.substr(head_end + 4);
  const size_t sp = reply.headers.find(' ');
  reply.status = sp == std::string::npos ? 0 : std::atoi(reply.headers.c_str() + sp + 1);
  return reply;
}

Result<HttpReply> HttpGet(uint16_t port, const std::string& target) {
  return HttpExchange(port, fmt::format("GET {} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n"
                                        "Connection: close\r\n\r\n",
                                        target, port));
}

Result<uint16_t> FreeLoopbackPort() {
  Fd s{::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)};
  if (s.fd < 0) return Errno("socket");
  sockaddr_in addr = Loopback(0);
  if (::bind(s.fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) return Errno("bind");
  socklen_t len = sizeof(addr);
  if (::getsockname(s.fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    return Errno("getsockname");
  }
  return static_cast<uint16_t>(ntohs(addr.sin_port));
}

}  // namespace ctrjoin::test_support
