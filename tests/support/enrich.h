#pragma once
// Test support: starts an Enricher on a batch of impressions; the returned
// future resolves when the enricher calls `done`. The impressions must stay
// alive until then. Used from the test thread by tests and benchmarks.

#include <future>
#include <memory>
#include <vector>

#include "src/pipeline/enricher.h"

namespace ctrjoin::test_support {

inline std::future<Status> EnrichAsync(Enricher& enricher, std::vector<Impression>& impressions) {
  auto promise = std::make_shared<std::promise<Status>>();
  std::vector<Impression*> ptrs;
  for (Impression& i : impressions) ptrs.push_back(&i);
  enricher.EnrichAsync(std::move(ptrs), [promise](Status st) { promise->set_value(st); });
  return promise->get_future();
}

}  // namespace ctrjoin::test_support
