#include "src/pipeline/source_feeder.h"

namespace ctrjoin {

SourceFeeder::SourceFeeder(SourceStage* stage, size_t max_inflight)
    : stage_(stage), tokens_(max_inflight) {}

SourceFeeder::~SourceFeeder() { Join(); }

void SourceFeeder::Start(Gateway& gateway) {
  gateway.reserve_wait();
  thread_ = std::thread([this, &gateway] { Loop(gateway); });
}

void SourceFeeder::Join() {
  if (thread_.joinable()) thread_.join();
}

void SourceFeeder::ReturnToken() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++tokens_;
  }
  cv_.notify_one();
}

void SourceFeeder::Loop(Gateway& gateway) {
  while (true) {
    {
      // Every message put reaches the sink, which returns its token, also
      // when the run fails: this wait ends.
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return tokens_ > 0; });
      --tokens_;
    }
    SourcePtr msg = stage_->Next();
    if (msg == nullptr) break;
    const bool last = msg->last;
    gateway.try_put(msg);  // try_put takes a const reference: the pointer is copied
    if (last) break;
  }
  gateway.release_wait();
}

}  // namespace ctrjoin
