#pragma once
// One response frame on its way to a socket: the size prefix, the response
// header (correlation id) and the body, kept as a list of segments so that
// record batches from the log are referenced (and kept alive by a
// shared_ptr) rather than copied.
//
// Built by a request handler on the event-loop thread, then moved into the
// connection's send queue. Owns its encoded bytes; shares log chunks.

#include <cstdint>
#include <deque>
#include <memory>
#include <string>

#include "tests/support/kafka_broker/wire.h"

namespace ctrjoin::testbroker {

struct OutSegment {
  std::string owned;  // used when |shared| is null
  std::shared_ptr<const void> shared;
  const std::uint8_t* data = nullptr;
  std::size_t size = 0;

  const std::uint8_t* bytes() const {
    return shared ? data : reinterpret_cast<const std::uint8_t*>(owned.data());
  }
  std::size_t length() const { return shared ? size : owned.size(); }
};

class OutFrame {
 public:
  // Starts a frame with response header v0: size (patched by Finish) and
  // the correlation id.
  explicit OutFrame(std::int32_t correlation_id) : segments_(1), writer_(&segments_[0].owned) {
    writer_.Int32(0);
    writer_.Int32(correlation_id);
  }

  // The writer for the body; appends after everything added so far.
  WireWriter& w() {
    writer_.Rebind(&segments_.back().owned);
    return writer_;
  }

  // Appends bytes owned by |keep_alive| without copying them.
  void AppendShared(std::shared_ptr<const void> keep_alive, const std::uint8_t* data,
                    std::size_t size) {
    OutSegment seg;
    seg.shared = std::move(keep_alive);
    seg.data = data;
    seg.size = size;
    segments_.push_back(std::move(seg));
    segments_.emplace_back();
    total_shared_ += size;
  }

  // Patches the size prefix and hands over the segments.
  std::deque<OutSegment> Finish() && {
    std::size_t total = total_shared_;
    for (const OutSegment& s : segments_) total += s.owned.size();
    writer_.Rebind(&segments_.front().owned);
    writer_.PatchInt32(0, static_cast<std::int32_t>(total - 4));
    return std::move(segments_);
  }

 private:
  std::deque<OutSegment> segments_;
  WireWriter writer_;
  std::size_t total_shared_ = 0;
};

}  // namespace ctrjoin::testbroker
