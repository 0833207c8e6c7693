#pragma once
// The label join's figures, summed over shards. Written by the shards' serial
// nodes (relaxed atomics) and, for the RocksDB memory gauges, by the scrape
// callback; read by /metrics and summaries. Owned by whoever assembles the
// pipeline; borrowed by every shard's LabelJoin and JoinState.

#include "src/ops/metrics.h"
#include "src/ops/prometheus.h"

namespace ctrjoin {

struct JoinMetrics {
  Counter positives;
  Counter negatives;
  Counter corrections;
  Counter duplicate_clicks;       // further clicks for an already-labelled impression
  Counter duplicate_impressions;  // impression ids seen again; the first wins
  Counter orphan_clicks;          // held clicks whose impression never came
  Counter late_clicks;            // clicks after the negative was emitted
  Counter clicks_outside_window;  // click ts before the impression or after ts + W
  Counter late_impressions;       // impressions whose window had already closed
  Gauge state_entries;            // keys held (in memory and spilled)
  Gauge state_memory_bytes;       // hot (in-memory) state bytes
  Gauge spilled_entries;          // keys whose state lives in RocksDB
  Counter spill_writes;           // entries moved to RocksDB
  // RocksDB block cache + memtables of every shard's spill store (SpillMemory),
  // refreshed when /metrics is scraped.
  Gauge rocksdb_memory_bytes;
  Gauge rocksdb_memory_limit_bytes;

  // Writes the families of these metrics (src/ops/README.md lists them).
  void Expose(Exposition& e) const;
};

}  // namespace ctrjoin
