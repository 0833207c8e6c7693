#include "tests/support/kafka_broker/server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <limits>

namespace ctrjoin::testbroker {
namespace {

constexpr std::size_t kReadChunk = 256 * 1024;
// Stop reading from a connection whose unsent responses exceed this.
constexpr std::size_t kMaxPendingOutput = 64 * 1024 * 1024;
constexpr int kMaxIovecs = 64;
constexpr std::size_t kMinFrameSize = 10;  // api key, version, correlation id, client id length
constexpr std::int64_t kAcceptFirstDelayMs = 10;
constexpr std::int64_t kAcceptMaxDelayMs = 1000;
constexpr std::int64_t kAcceptReportEveryMs = 10000;
constexpr std::uint64_t kListenTag = 0;
constexpr std::uint64_t kWakeTag = std::numeric_limits<std::uint64_t>::max();

std::string ErrnoText(const char* what) { return std::string(what) + ": " + std::strerror(errno); }

// Growable byte buffer for a connection's unparsed input; avoids the
// zero-fill of std::vector::resize on large frames.
class InputBuffer {
 public:
  std::size_t size() const { return end_ - begin_; }
  const std::uint8_t* data() const { return data_.get() + begin_; }
  void Consume(std::size_t n) {
    begin_ += n;
    if (begin_ == end_) begin_ = end_ = 0;
  }
  // Makes room for at least |n| more bytes after the current content.
  std::uint8_t* Reserve(std::size_t n) {
    if (capacity_ - end_ >= n) return data_.get() + end_;
    std::size_t used = size();
    if (capacity_ >= used + n && begin_ > 0) {
      std::memmove(data_.get(), data_.get() + begin_, used);
    } else {
      std::size_t cap = std::max(capacity_ * 2, used + n);
      auto fresh = std::make_unique_for_overwrite<std::uint8_t[]>(cap);
      if (used > 0) std::memcpy(fresh.get(), data_.get() + begin_, used);
      data_ = std::move(fresh);
      capacity_ = cap;
    }
    begin_ = 0;
    end_ = used;
    return data_.get() + end_;
  }
  void Commit(std::size_t n) { end_ += n; }
  // Frees a large buffer once it is empty so idle connections stay small.
  void ShrinkIfEmpty() {
    if (size() == 0 && capacity_ > 4 * kReadChunk) {
      data_.reset();
      capacity_ = begin_ = end_ = 0;
    }
  }

 private:
  std::unique_ptr<std::uint8_t[]> data_;
  std::size_t capacity_ = 0;
  std::size_t begin_ = 0;
  std::size_t end_ = 0;
};

}  // namespace

std::int64_t SteadyNowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

struct Server::Connection {
  std::uint64_t id = 0;
  int fd = -1;
  std::string peer;
  InputBuffer in;
  std::deque<OutSegment> out;
  std::size_t out_offset = 0;  // bytes of out.front() already sent
  std::size_t out_bytes = 0;   // unsent bytes in |out|
  bool awaiting_reply = false;
  bool in_dispatch = false;
  bool closing = false;
  std::uint32_t interest = 0;  // current epoll event mask
};

Result<std::unique_ptr<Server>> Server::Listen(std::uint16_t port, std::size_t max_frame_bytes,
                                               const Logger* logger) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return Status::IoError(ErrnoText("socket"), Effect::kNoEffect);
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 || ::listen(fd, 128) != 0) {
    Status st = Status::IoError(ErrnoText("bind/listen on 127.0.0.1"), Effect::kNoEffect);
    ::close(fd);
    return st;
  }
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  int epoll_fd = ::epoll_create1(EPOLL_CLOEXEC);
  int wake_fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (epoll_fd < 0 || wake_fd < 0) {
    Status st = Status::IoError(ErrnoText("epoll/eventfd"), Effect::kNoEffect);
    ::close(fd);
    if (epoll_fd >= 0) ::close(epoll_fd);
    if (wake_fd >= 0) ::close(wake_fd);
    return st;
  }
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kListenTag;
  ::epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &ev);
  ev.data.u64 = kWakeTag;
  ::epoll_ctl(epoll_fd, EPOLL_CTL_ADD, wake_fd, &ev);
  return std::unique_ptr<Server>(
      new Server(fd, epoll_fd, wake_fd, ntohs(addr.sin_port), max_frame_bytes, logger));
}

Server::Server(int listen_fd, int epoll_fd, int wake_fd, std::uint16_t port,
               std::size_t max_frame_bytes, const Logger* logger)
    : listen_fd_(listen_fd),
      epoll_fd_(epoll_fd),
      wake_fd_(wake_fd),
      port_(port),
      max_frame_bytes_(max_frame_bytes),
      logger_(logger) {}

Server::~Server() {
  for (auto& [id, conn] : connections_) ::close(conn->fd);
  ::close(listen_fd_);
  ::close(epoll_fd_);
  ::close(wake_fd_);
}

void Server::RequestStop() {
  std::uint64_t one = 1;
  [[maybe_unused]] ssize_t n = ::write(wake_fd_, &one, sizeof(one));
}

void Server::Run() {
  epoll_event events[64];
  while (!stop_) {
    std::int64_t now = SteadyNowMs();
    std::int64_t deadline = processor_->NextDeadlineMs();
    int timeout = 1000;
    if (accept_backoff_.paused) deadline = std::min(deadline, accept_backoff_.resume_ms);
    if (deadline <= now || !resume_.empty()) {
      timeout = 0;
    } else if (deadline - now < timeout) {
      timeout = static_cast<int>(deadline - now);
    }
    int n = ::epoll_wait(epoll_fd_, events, 64, timeout);
    if (n < 0 && errno != EINTR) {
      logger_->Warn("epoll_wait: {}", std::strerror(errno));
      break;
    }
    for (int i = 0; i < n; ++i) {
      std::uint64_t tag = events[i].data.u64;
      if (tag == kWakeTag) {
        stop_ = true;
        continue;
      }
      if (tag == kListenTag) {
        Accept();
        continue;
      }
      auto it = connections_.find(tag);
      if (it == connections_.end() || it->second->closing) continue;
      Connection& conn = *it->second;
      if (events[i].events & EPOLLOUT) {
        Flush(conn);
        // Input may have been held back while the send queue was full.
        if (!conn.closing) ProcessInput(conn);
      }
      // Requests that arrived before a hang-up are still read and served.
      if (!conn.closing && (events[i].events & EPOLLIN)) OnReadable(conn);
      if (!conn.closing && (events[i].events & (EPOLLERR | EPOLLHUP))) {
        MarkClosing(conn, "hang-up");
      }
    }
    DrainResumes();
    CloseMarked();
    ResumeAcceptingIfDue(SteadyNowMs());
  }
  for (auto& [id, conn] : connections_) ::close(conn->fd);
  connections_.clear();
}

void Server::DrainResumes() {
  // Parked requests completing can unblock connections, whose next requests
  // can append data that completes more parked requests: iterate until quiet.
  for (int round = 0; round < 16; ++round) {
    processor_->Poll(SteadyNowMs());
    if (resume_.empty()) return;
    std::vector<std::uint64_t> ids;
    ids.swap(resume_);
    for (std::uint64_t id : ids) {
      auto it = connections_.find(id);
      if (it != connections_.end() && !it->second->closing) ProcessInput(*it->second);
    }
  }
}

void Server::Accept() {
  for (;;) {
    sockaddr_in addr{};
    socklen_t len = sizeof(addr);
    int fd = ::accept4(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len,
                       SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      // ECONNABORTED: that one connection went away while queued.
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        AcceptRecovered();
      } else {
        PauseAccepting(errno);
      }
      return;
    }
    AcceptRecovered();
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    auto conn = std::make_unique<Connection>();
    conn->id = next_connection_id_++;
    conn->fd = fd;
    char ip[INET_ADDRSTRLEN] = "?";
    ::inet_ntop(AF_INET, &addr.sin_addr, ip, sizeof(ip));
    conn->peer = std::string(ip) + ":" + std::to_string(ntohs(addr.sin_port));
    conn->interest = EPOLLIN;
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = conn->id;
    ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev);
    logger_->Info("connection {} from {}", conn->id, conn->peer);
    connections_[conn->id] = std::move(conn);
  }
}

void Server::PauseAccepting(int error) {
  AcceptBackoff& b = accept_backoff_;
  const std::int64_t now = SteadyNowMs();
  b.delay_ms = b.delay_ms == 0 ? kAcceptFirstDelayMs : std::min(b.delay_ms * 2, kAcceptMaxDelayMs);
  if (now >= b.next_report_ms) {
    logger_->Warn(
        "accept: {}; not accepting for {} ms, doubling up to {} ms while it fails; "
        "{} more failures since the last report (at most one every {} s)",
        std::strerror(error), b.delay_ms, kAcceptMaxDelayMs, b.unreported,
        kAcceptReportEveryMs / 1000);
    b.failure_reported = true;
    b.unreported = 0;
    b.next_report_ms = now + kAcceptReportEveryMs;
  } else {
    ++b.unreported;
  }
  b.resume_ms = now + b.delay_ms;
  if (!b.paused) {
    ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, listen_fd_, nullptr);
    b.paused = true;
  }
}

void Server::ResumeAcceptingIfDue(std::int64_t now_ms) {
  if (!accept_backoff_.paused || now_ms < accept_backoff_.resume_ms) return;
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kListenTag;
  ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, listen_fd_, &ev);
  accept_backoff_.paused = false;
  Accept();
}

void Server::AcceptRecovered() {
  AcceptBackoff& b = accept_backoff_;
  if (b.delay_ms == 0) return;
  b.delay_ms = 0;
  // Said once per reported failure; the report interval keeps running, so a
  // socket that flaps between failing and working logs no more than that.
  if (!b.failure_reported) return;
  logger_->Warn("accept: works again ({} more failures since the last report)", b.unreported);
  b.failure_reported = false;
  b.unreported = 0;
}

void Server::OnReadable(Connection& conn) {
  // Read what is there (bounded per wake-up so one client cannot starve the
  // others), then dispatch complete frames. Requests that arrived before the
  // peer closed are still served (e.g. an acks=0 Produce).
  std::size_t total = 0;
  bool peer_closed = false;
  while (total < 4 * kReadChunk) {
    std::size_t want = kReadChunk;
    if (conn.in.size() >= 4) {
      auto frame = static_cast<std::uint32_t>(LoadBe32(conn.in.data()));
      if (frame <= max_frame_bytes_ && frame + 4 > conn.in.size()) {
        want = std::max(want, frame + 4 - conn.in.size());
      }
    }
    std::uint8_t* dst = conn.in.Reserve(want);
    ssize_t n = ::read(conn.fd, dst, want);
    if (n > 0) {
      conn.in.Commit(static_cast<std::size_t>(n));
      total += static_cast<std::size_t>(n);
      if (static_cast<std::size_t>(n) < want) break;
      continue;
    }
    if (n == 0) {
      peer_closed = true;
      break;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) break;
    MarkClosing(conn, "read error");
    return;
  }
  ProcessInput(conn);
  if (peer_closed) MarkClosing(conn, "closed by peer");
}

void Server::ProcessInput(Connection& conn) {
  while (!conn.closing && !conn.awaiting_reply && conn.out_bytes < kMaxPendingOutput &&
         conn.in.size() >= 4) {
    std::int32_t size = LoadBe32(conn.in.data());
    if (size < static_cast<std::int32_t>(kMinFrameSize) ||
        static_cast<std::size_t>(size) > max_frame_bytes_) {
      logger_->Warn("connection {}: bad frame size {}", conn.id, size);
      MarkClosing(conn, "bad frame size");
      return;
    }
    auto frame_size = static_cast<std::size_t>(size);
    if (conn.in.size() < frame_size + 4) break;
    Dispatch(conn, Bytes(conn.in.data() + 4, frame_size));
    conn.in.Consume(frame_size + 4);
  }
  conn.in.ShrinkIfEmpty();
  UpdateInterest(conn);
}

void Server::Dispatch(Connection& conn, Bytes frame) {
  WireReader r(frame);
  RequestHeader header;
  header.api_key = r.Int16();
  header.api_version = r.Int16();
  header.correlation_id = r.Int32();
  header.client_id = r.NullableString();
  if (!r.ok()) {
    MarkClosing(conn, "malformed request header");
    return;
  }
  conn.awaiting_reply = true;
  conn.in_dispatch = true;
  HandlerOutcome outcome = processor_->Handle(header, {conn.id, header.correlation_id}, r);
  conn.in_dispatch = false;
  switch (outcome.disposition) {
    case Disposition::kRespond:
      conn.awaiting_reply = false;
      Enqueue(conn, std::move(*outcome.frame));
      break;
    case Disposition::kNoResponse: conn.awaiting_reply = false; break;
    case Disposition::kDeferred: break;
    case Disposition::kClose:
      logger_->Info(
          "connection {} ({}): closing after unsupported or malformed request "
          "(api key {}, version {})",
          conn.id, conn.peer, header.api_key, header.api_version);
      MarkClosing(conn, "bad request");
      break;
  }
}

void Server::Reply(const ReplyTarget& target, OutFrame frame) {
  auto it = connections_.find(target.connection_id);
  if (it == connections_.end() || it->second->closing) return;
  Connection& conn = *it->second;
  conn.awaiting_reply = false;
  Enqueue(conn, std::move(frame));
  if (!conn.in_dispatch) resume_.push_back(conn.id);
}

void Server::Enqueue(Connection& conn, OutFrame frame) {
  for (OutSegment& seg : std::move(frame).Finish()) {
    if (seg.length() == 0) continue;
    conn.out_bytes += seg.length();
    conn.out.push_back(std::move(seg));
  }
  Flush(conn);
}

void Server::Flush(Connection& conn) {
  while (conn.out_bytes > 0) {
    iovec iov[kMaxIovecs];
    int count = 0;
    std::size_t skip = conn.out_offset;
    for (auto it = conn.out.begin(); it != conn.out.end() && count < kMaxIovecs; ++it) {
      iov[count].iov_base = const_cast<std::uint8_t*>(it->bytes()) + skip;
      iov[count].iov_len = it->length() - skip;
      skip = 0;
      ++count;
    }
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = static_cast<std::size_t>(count);
    // MSG_NOSIGNAL: a peer that went away must not SIGPIPE the host process.
    ssize_t n = ::sendmsg(conn.fd, &msg, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      MarkClosing(conn, "write error");
      return;
    }
    auto written = static_cast<std::size_t>(n);
    conn.out_bytes -= written;
    while (written > 0) {
      std::size_t left = conn.out.front().length() - conn.out_offset;
      if (written < left) {
        conn.out_offset += written;
        break;
      }
      written -= left;
      conn.out.pop_front();
      conn.out_offset = 0;
    }
  }
  UpdateInterest(conn);
}

void Server::UpdateInterest(Connection& conn) {
  if (conn.closing) return;
  std::uint32_t want = 0;
  // Reading while a reply is pending only buffers; cap it at one frame.
  if (conn.out_bytes < kMaxPendingOutput &&
      (!conn.awaiting_reply || conn.in.size() < max_frame_bytes_ + 4)) {
    want |= EPOLLIN;
  }
  if (conn.out_bytes > 0) want |= EPOLLOUT;
  if (want == conn.interest) return;
  epoll_event ev{};
  ev.events = want;
  ev.data.u64 = conn.id;
  ::epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, conn.fd, &ev);
  conn.interest = want;
}

void Server::MarkClosing(Connection& conn, const char* why) {
  if (conn.closing) return;
  logger_->Info("connection {} ({}): {}", conn.id, conn.peer, why);
  conn.closing = true;
  ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, conn.fd, nullptr);
  closing_.push_back(conn.id);
}

void Server::CloseMarked() {
  for (std::uint64_t id : closing_) {
    auto it = connections_.find(id);
    if (it == connections_.end()) continue;
    ::close(it->second->fd);
    connections_.erase(it);
  }
  closing_.clear();
}

}  // namespace ctrjoin::testbroker
