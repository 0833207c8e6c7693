#pragma once
// The interface between the pipeline and feature enrichment (the lookup join
// in joins/): before impressions are routed to the label join, the pipeline
// hands each batch's impressions to an Enricher, which fills in
// Impression::lookup_features as of each impression's ts. The batch moves on
// when `done` is called; batches are put back in order afterwards.
//
// EnrichAsync is called from pipeline worker threads, concurrently for
// different batches. It must never block on I/O: it answers from a cache or
// starts asynchronous lookups, and calls `done` exactly once — on any thread,
// possibly before returning. The impressions stay alive and untouched by the
// pipeline until then. A non-OK status ends the run.

#include <functional>
#include <vector>

#include "src/core/event.h"
#include "src/core/status.h"

namespace ctrjoin {

class Enricher {
 public:
  virtual ~Enricher() = default;
  virtual void EnrichAsync(std::vector<Impression*> impressions,
                           std::function<void(Status)> done) = 0;
  // Gives up on pending work: every pending `done` gets an error soon. Only
  // sets a flag, so it may be called from a signal handler.
  virtual void Cancel() = 0;
};

}  // namespace ctrjoin
