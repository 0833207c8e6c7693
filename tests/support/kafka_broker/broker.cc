#include "tests/support/kafka_broker/broker.h"

#include "tests/support/kafka_broker/broker_core.h"
#include "tests/support/kafka_broker/logger.h"
#include "tests/support/kafka_broker/server.h"

namespace ctrjoin::testbroker {

Result<std::unique_ptr<TestBroker>> TestBroker::Start(const BrokerOptions& options) {
  CTRJOIN_RETURN_IF_ERROR(options.Validate());
  auto logger = std::make_unique<Logger>(options.log_level);
  auto server = Server::Listen(options.port, options.max_frame_bytes, logger.get());
  if (!server.ok()) return server.status();
  auto core = std::make_unique<BrokerCore>(options, server->get(), logger.get());
  CTRJOIN_RETURN_IF_ERROR(core->Load());
  (*server)->set_processor(core.get());
  return std::unique_ptr<TestBroker>(
      new TestBroker(options, std::move(logger), std::move(server).value(), std::move(core)));
}

TestBroker::TestBroker(BrokerOptions options, std::unique_ptr<Logger> logger,
                       std::unique_ptr<Server> server, std::unique_ptr<BrokerCore> core)
    : options_(std::move(options)),
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
  logger_->Info("stopped");
}

}  // namespace ctrjoin::testbroker
