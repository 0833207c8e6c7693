// HttpServer (src/ops/http_server.h) on 127.0.0.1 with an ephemeral port: the
// routes, the errors it answers on its own (404, 405, 400, 431, 500), and
// that Stop interrupts a client that never finishes its request.
#include "src/ops/http_server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <future>
#include <string>

#include "tests/support/http_client.h"

namespace ctrjoin {
namespace {

using test_support::HttpExchange;
using test_support::HttpGet;
using test_support::HttpReply;

HttpRoutes Routes() {
  HttpRoutes routes;
  routes["/metrics"] = [] {
    return HttpResponse{200, "text/plain; version=0.0.4; charset=utf-8", "ctrjoin_up 1\n"};
  };
  routes["/healthz"] = [] { return HttpResponse{200, "text/plain; charset=utf-8", "ok\n"}; };
  routes["/ready"] = [] {
    return HttpResponse{503, "text/plain; charset=utf-8", "not ready: starting\n"};
  };
  routes["/boom"] = []() -> HttpResponse { throw std::runtime_error("handler failed"); };
  return routes;
}

class HttpServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    HttpServerOptions o;
    o.address = "127.0.0.1:0";
    o.max_request_bytes = 1024;
    o.io_timeout_ms = 600'000;  // only Stop may end a slow connection early
    auto s = HttpServer::Start(o, Routes());
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    server_ = std::move(s).value();
    ASSERT_NE(server_->port(), 0);
  }

  HttpReply Get(const std::string& target) {
    Result<HttpReply> r = HttpGet(server_->port(), target);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : HttpReply{};
  }
  HttpReply Exchange(const std::string& request) {
    Result<HttpReply> r = HttpExchange(server_->port(), request);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : HttpReply{};
  }

  std::unique_ptr<HttpServer> server_;
};

TEST_F(HttpServerTest, ServesItsRoutes) {
  EXPECT_EQ(server_->Url(), "http://127.0.0.1:" + std::to_string(server_->port()));
  HttpReply metrics = Get("/metrics");
  EXPECT_EQ(metrics.status, 200);
  EXPECT_EQ(metrics.body, "ctrjoin_up 1\n");
  EXPECT_NE(metrics.headers.find("Content-Type: text/plain; version=0.0.4; charset=utf-8"),
            std::string::npos)
      << metrics.headers;
  EXPECT_NE(metrics.headers.find("Connection: close"), std::string::npos);
  EXPECT_NE(metrics.headers.find("Content-Length: 13"), std::string::npos);

  HttpReply health = Get("/healthz");
  EXPECT_EQ(health.status, 200);
  EXPECT_EQ(health.body, "ok\n");
  HttpReply ready = Get("/ready");
  EXPECT_EQ(ready.status, 503);
  EXPECT_EQ(ready.body, "not ready: starting\n");
  EXPECT_EQ(Get("/metrics?name[]=ctrjoin_up").status, 200) << "the query string is ignored";
  EXPECT_EQ(Exchange("GET /healthz HTTP/1.0\r\n\r\n").status, 200);
  EXPECT_EQ(server_->requests_served(), 5u);
}

TEST_F(HttpServerTest, AnswersWhatItDoesNotServe) {
  HttpReply missing = Get("/metrics/extra");
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(Get("/").status, 404);
  HttpReply post = Exchange("POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
  EXPECT_EQ(post.status, 405);
  EXPECT_NE(post.headers.find("Allow: GET"), std::string::npos) << post.headers;
  EXPECT_EQ(Exchange("HEAD /metrics HTTP/1.1\r\n\r\n").status, 405);
  EXPECT_EQ(Exchange("GET /metrics\r\n\r\n").status, 400);
  EXPECT_EQ(Exchange("GET metrics HTTP/1.1\r\n\r\n").status, 400);
  EXPECT_EQ(Exchange("GET /metrics SPDY/3\r\n\r\n").status, 400);
  HttpReply boom = Get("/boom");
  EXPECT_EQ(boom.status, 500);
  EXPECT_EQ(boom.body, "internal error\n");
}

TEST_F(HttpServerTest, RejectsOversizedRequests) {
  const std::string huge =
      "GET /metrics HTTP/1.1\r\nX-Filler: " + std::string(4096, 'x') + "\r\n\r\n";
  HttpReply r = Exchange(huge);
  EXPECT_EQ(r.status, 431);
  // Still serving afterwards.
  EXPECT_EQ(Get("/healthz").status, 200);
}

TEST_F(HttpServerTest, ASecondServerOnTheSamePortFailsNamingTheKey) {
  HttpServerOptions o;
  o.address = "127.0.0.1:" + std::to_string(server_->port());
  auto second = HttpServer::Start(o, Routes());
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), StatusCode::kIoError);
  EXPECT_TRUE(second.status().message().starts_with("http.address: cannot listen on " + o.address))
      << second.status().message();
}

TEST_F(HttpServerTest, StopInterruptsAClientThatNeverFinishesItsRequest) {
  // A client that sends half a request and then waits: the server is busy
  // with it (one connection at a time) until Stop.
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(server_->port());
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  const std::string half = "GET /metrics HTTP/1.1\r\n";
  ASSERT_EQ(::send(fd, half.data(), half.size(), 0), static_cast<ssize_t>(half.size()));

  // A Stop that did not interrupt the connection would wait out
  // io_timeout_ms (10 min). Bounded wait, with a generous bound.
  auto stopped = std::async(std::launch::async, [&] { server_->Stop(); });
  EXPECT_EQ(stopped.wait_for(std::chrono::seconds(60)), std::future_status::ready);
  stopped.get();
  // Closed without an answer: an orderly close, or a reset when the server
  // closed before it had read the half request (unread data makes the
  // kernel send RST).
  char c;
  const ssize_t got = ::recv(fd, &c, 1, 0);
  EXPECT_TRUE(got == 0 || (got < 0 && errno == ECONNRESET))
      << "closed without an answer; recv returned " << got << ", errno " << errno;
  ::close(fd);
  EXPECT_EQ(server_->requests_served(), 0u);
  EXPECT_FALSE(HttpGet(server_->port(), "/healthz").ok()) << "no longer listening";
  server_->Stop();  // idempotent
}

}  // namespace
}  // namespace ctrjoin
