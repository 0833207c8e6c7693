#include "src/pipeline/run_control.h"

namespace ctrjoin {

void RunControl::Fail(Status status) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (failed_.exchange(true)) return;
    error_ = status;
  }
  if (on_failure_) on_failure_(status);
}

Status RunControl::error() const {
  std::lock_guard<std::mutex> lock(mu_);
  return error_;
}

}  // namespace ctrjoin
