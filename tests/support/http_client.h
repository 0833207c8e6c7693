#pragma once
// Test support: a blocking HTTP/1.1 client for servers on 127.0.0.1 (ours
// and Prometheus), and a free loopback port. Never connects anywhere else.
// Any thread; no shared state.

#include <cstdint>
#include <string>

#include "src/core/status.h"

namespace ctrjoin::test_support {

struct HttpReply {
  int status = 0;
  std::string headers;  // the status line and header lines, as received
  std::string body;
};

// Sends `request` verbatim to 127.0.0.1:port and reads until the server
// closes the connection (every server we talk to answers Connection: close
// when asked). Fails after 30 s without progress.
Result<HttpReply> HttpExchange(uint16_t port, const std::string& request);
// GET target (path and query) with Host and Connection: close headers.
Result<HttpReply> HttpGet(uint16_t port, const std::string& target);

// A port that was free on 127.0.0.1 a moment ago (bound to port 0, then
// released): for servers that must be told their port up front.
Result<uint16_t> FreeLoopbackPort();

}  // namespace ctrjoin::test_support
