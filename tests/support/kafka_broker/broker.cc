#include "tests/support/kafka_broker/broker.h"

#include "tests/support/kafka_broker/broker_core.h"
#include "tests/support/kafka_broker/logger.h"
#include "tests/support/kafka_broker/server.h"

namespace ctrjoin::testbroker {
namespace {

// The lock on a persistent broker's data directory; null for an in-memory
// broker.
Result<std::unique_ptr<DirectoryLock>> LockDataDir(const std::string& dir) {
  if (dir.empty()) return std::unique_ptr<DirectoryLock>();
  auto lock = DirectoryLock::Acquire(dir, "data_dir");
  // InvalidArgument: held by someone else. Said here without the advice in
  // DirectoryLock's message, which is about ctrjoin's own options.
  if (lock.ok() || lock.status().code() != StatusCode::kInvalidArgument) return lock;
  const long holder = DirectoryLock::HolderPid(dir);
  return Status::InvalidArgument(
      "data_dir " + dir + " is in use by another process (" +
      (holder > 0 ? "pid " + std::to_string(holder) : std::string("pid unknown")) +
      "); one broker per data directory");
}

}  // namespace

Result<std::unique_ptr<TestBroker>> TestBroker::Start(const BrokerOptions& options) {
  CTRJOIN_RETURN_IF_ERROR(options.Validate());
  auto lock = LockDataDir(options.data_dir);
  if (!lock.ok()) return lock.status();
  auto logger = std::make_unique<Logger>(options.log_level, options.log_sink);
  auto server = Server::Listen(options.port, options.max_frame_bytes, logger.get());
  if (!server.ok()) return server.status();
  auto core = std::make_unique<BrokerCore>(options, server->get(), logger.get());
  CTRJOIN_RETURN_IF_ERROR(core->Load());
  (*server)->set_processor(core.get());
  return std::unique_ptr<TestBroker>(new TestBroker(options, std::move(lock).value(),
                                                    std::move(logger), std::move(server).value(),
                                                    std::move(core)));
}

TestBroker::TestBroker(BrokerOptions options, std::unique_ptr<DirectoryLock> data_dir_lock,
                       std::unique_ptr<Logger> logger, std::unique_ptr<Server> server,
                       std::unique_ptr<BrokerCore> core)
    : options_(std::move(options)),
      data_dir_lock_(std::move(data_dir_lock)),
      logger_(std::move(logger)),
      server_(std::move(server)),
      core_(std::move(core)),
      port_(server_->port()) {
  logger_->Info("listening on 127.0.0.1:{}", port_);
  loop_ = std::thread([server = server_.get()] { server->Run(); });
}

TestBroker::~TestBroker() { Stop(); }

void TestBroker::Stop() {
  std::lock_guard<std::mutex> lock(stop_mu_);
  if (!loop_.joinable()) return;
  server_->RequestStop();
  loop_.join();
  data_dir_lock_.reset();
  logger_->Info("stopped");
}

}  // namespace ctrjoin::testbroker
