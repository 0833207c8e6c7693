#pragma once
// SourceFeeder: runs the SourceStage on a thread of its own and hands each
// message to the graph through an async_node's gateway, with at most
// `max_inflight` batches in the graph at once (a token per message, given
// back by the sink node once every shard has delivered it).
//
// Why a thread: a source waits (a Kafka poll, a paced replay, the end of a
// file that grows). Waiting inside a graph node holds one of oneTBB's worker
// threads, and on 2 cores that is half of the pipeline (src/README.md,
// "Threads").
//
// Start and Join are called by the thread that runs the pipeline
// (Start before g.wait_for_all(), Join after it); ReturnToken by the sink
// node. Owns the reader thread and the tokens; borrows the stage, the
// gateway and the RunControl.

#include <oneapi/tbb/flow_graph.h>

#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <thread>

#include "src/pipeline/graph_messages.h"
#include "src/pipeline/run_control.h"
#include "src/pipeline/source_stage.h"

namespace ctrjoin {

class SourceFeeder {
 public:
  using Gateway =
      oneapi::tbb::flow::async_node<oneapi::tbb::flow::continue_msg, SourcePtr>::gateway_type;

  SourceFeeder(SourceStage* stage, size_t max_inflight);
  ~SourceFeeder();  // joins the thread (Join should have been called)

  // Keeps the graph's wait_for_all() from returning until the last message
  // was put, and starts the reader thread.
  void Start(Gateway& gateway);
  void Join();
  // One message has left the graph: the reader may put another.
  void ReturnToken();

 private:
  void Loop(Gateway& gateway);

  SourceStage* const stage_;
  std::mutex mu_;
  std::condition_variable cv_;
  size_t tokens_;  // guarded by mu_
  std::thread thread_;
};

}  // namespace ctrjoin
