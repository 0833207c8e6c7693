#pragma once
// HBaseFeatureStore: the FeatureStore of real deployments, reading features
// through HBase's Thrift2 server with one getMultiple per batch: each fetch
// becomes a TGet of the row's family with timeRange [0, upper) and
// maxVersions, so HBase itself applies the point-in-time bound.
//
// Probe reads the table descriptor (getTableDescriptor; an HBase 1.x server
// lacks it, then an exists call checks table and wire) and tells a missing
// table or family, and a protocol or transport mismatch (the server accepts
// the connection but its answers cannot be read, three times in a row),
// from an outage.
//
// Thread-safe (HBaseClient's connection pool): called from the lookup
// service's io threads. Owns its client.

#include <memory>

#include "joins/feature_store.h"
#include "joins/hbase_client.h"

namespace ctrjoin {

class HBaseFeatureStore : public FeatureStore {
 public:
  static Result<std::unique_ptr<HBaseFeatureStore>> Open(const HBaseClientOptions& options);

  Result<std::vector<FetchedRow>> GetMultiple(const std::string& table, const std::string& family,
                                              std::span<const FeatureFetch> fetches,
                                              int max_versions) override;
  Result<StoreTableInfo> Probe(const std::string& table, const std::string& family) override;
  std::string Describe() const override { return description_; }

 private:
  HBaseFeatureStore(std::unique_ptr<HBaseClient> client, HBaseClientOptions options,
                    std::string description)
      : client_(std::move(client)),
        options_(std::move(options)),
        description_(std::move(description)) {}
  // One attempt of Probe; errors not yet told apart.
  Result<StoreTableInfo> ProbeOnce(const std::string& table, const std::string& family);

  std::unique_ptr<HBaseClient> client_;
  const HBaseClientOptions options_;
  std::string description_;
};

}  // namespace ctrjoin
