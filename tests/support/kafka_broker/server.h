#pragma once
// The broker's network layer: a single-threaded epoll loop that accepts
// connections on 127.0.0.1, splits the byte stream into Kafka request
// frames, hands each to a RequestProcessor and writes the responses back.
//
// Ordering: Kafka clients pipeline requests and expect responses in request
// order. A connection is "awaiting a reply" from the moment one of its
// requests is dispatched until that request is answered (at once, or later
// through Reply() for parked requests such as a long-poll Fetch or a
// JoinGroup); no further request of that connection is dispatched
// meanwhile. Other connections are never blocked.
//
// Running out of descriptors (EMFILE, ENFILE) or any other lasting accept()
// failure does not spin the loop: the listening socket leaves the epoll set
// for a delay that starts at 10 ms and doubles up to 1 s while accept()
// keeps failing, and other connections are served meanwhile. A failure is
// logged at most once every 10 s with the count of those not logged since,
// and a logged failure is followed by one line when accept() works again.
//
// Threads: Run() is the event-loop thread and the only one that touches
// connections or calls the processor. RequestStop() may be called from any
// thread. Owns the listening socket, the epoll and wake-up descriptors and
// all connections.

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "src/core/status.h"
#include "tests/support/kafka_broker/logger.h"
#include "tests/support/kafka_broker/out_frame.h"
#include "tests/support/kafka_broker/wire.h"

namespace ctrjoin::testbroker {

struct RequestHeader {
  std::int16_t api_key = 0;
  std::int16_t api_version = 0;
  std::int32_t correlation_id = 0;
  std::optional<std::string> client_id;
};

// Where a (possibly deferred) response goes.
struct ReplyTarget {
  std::uint64_t connection_id = 0;
  std::int32_t correlation_id = 0;
};

enum class Disposition {
  kRespond,     // |frame| is the response
  kNoResponse,  // e.g. Produce with acks=0
  kDeferred,    // the processor calls Server::Reply later (or already did)
  kClose,       // malformed or unsupported request: drop the connection
};

struct HandlerOutcome {
  Disposition disposition = Disposition::kClose;
  std::optional<OutFrame> frame;

  static HandlerOutcome Respond(OutFrame frame) {
    return {Disposition::kRespond, std::move(frame)};
  }
  static HandlerOutcome NoResponse() { return {Disposition::kNoResponse, std::nullopt}; }
  static HandlerOutcome Deferred() { return {Disposition::kDeferred, std::nullopt}; }
  static HandlerOutcome Close() { return {Disposition::kClose, std::nullopt}; }
};

// Implemented by the broker core; called on the event-loop thread only.
class RequestProcessor {
 public:
  virtual ~RequestProcessor() = default;
  // |body| holds the request after the header's client id.
  virtual HandlerOutcome Handle(const RequestHeader& header, const ReplyTarget& target,
                                WireReader& body) = 0;
  // Called after every batch of socket events and at NextDeadlineMs():
  // completes parked requests whose condition or deadline has come.
  virtual void Poll(std::int64_t now_ms) = 0;
  // Steady-clock ms at which Poll() must run next; 0 = at once.
  virtual std::int64_t NextDeadlineMs() const = 0;
};

// Milliseconds of the steady clock, the time base of all loop deadlines.
std::int64_t SteadyNowMs();

class Server {
 public:
  // Binds 127.0.0.1:|port| (0 = ephemeral) and listens.
  static Result<std::unique_ptr<Server>> Listen(std::uint16_t port, std::size_t max_frame_bytes,
                                                const Logger* logger);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  std::uint16_t port() const { return port_; }
  void set_processor(RequestProcessor* processor) { processor_ = processor; }

  // Runs the loop until RequestStop(); closes all connections on return.
  void Run();
  // Thread-safe; makes Run() return promptly.
  void RequestStop();

  // Sends the answer to a deferred request. Dropped if the connection has
  // gone. Event-loop thread only.
  void Reply(const ReplyTarget& target, OutFrame frame);

 private:
  struct Connection;

  Server(int listen_fd, int epoll_fd, int wake_fd, std::uint16_t port, std::size_t max_frame_bytes,
         const Logger* logger);

  void Accept();
  // Takes the listening socket out of the epoll set after accept() failed
  // with |error|, for the next back-off delay.
  void PauseAccepting(int error);
  // Puts the listening socket back once its delay is over, and accepts.
  void ResumeAcceptingIfDue(std::int64_t now_ms);
  // Ends a back-off after accept() succeeded or found nothing to accept.
  void AcceptRecovered();
  void OnReadable(Connection& conn);
  void ProcessInput(Connection& conn);
  void Dispatch(Connection& conn, Bytes frame);
  void Enqueue(Connection& conn, OutFrame frame);
  void Flush(Connection& conn);
  void UpdateInterest(Connection& conn);
  void MarkClosing(Connection& conn, const char* why);
  void CloseMarked();
  void DrainResumes();

  int listen_fd_;
  int epoll_fd_;
  int wake_fd_;
  std::uint16_t port_;
  std::size_t max_frame_bytes_;
  const Logger* logger_;
  RequestProcessor* processor_ = nullptr;
  std::uint64_t next_connection_id_ = 1;
  std::unordered_map<std::uint64_t, std::unique_ptr<Connection>> connections_;
  std::vector<std::uint64_t> resume_;   // connections whose deferred reply came
  std::vector<std::uint64_t> closing_;  // connections to close at a safe point
  bool stop_ = false;

  // The accept back-off (see the top of this file).
  struct AcceptBackoff {
    bool paused = false;              // the listening socket is out of the epoll set
    std::int64_t delay_ms = 0;        // current delay; 0 while accept() works
    std::int64_t resume_ms = 0;       // when a paused socket goes back in
    bool failure_reported = false;    // a failure was logged and no recovery since
    std::uint64_t unreported = 0;     // failures not logged since the last line
    std::int64_t next_report_ms = 0;  // no failure line before this
  };
  AcceptBackoff accept_backoff_;
};

}  // namespace ctrjoin::testbroker
