#include "joins/hbase_feature_store.h"

#include <fmt/format.h>

namespace ctrjoin {

Result<std::unique_ptr<HBaseFeatureStore>> HBaseFeatureStore::Open(
    const HBaseClientOptions& options) {
  auto client = HBaseClient::Open(options);
  if (!client.ok()) return client.status();
  const std::string description =
      fmt::format("HBase Thrift2 {}:{} ({}, {})", options.host, options.port,
                  NameOf(options.protocol), NameOf(options.transport));
  return std::unique_ptr<HBaseFeatureStore>(
      new HBaseFeatureStore(std::move(client).value(), description));
}

Result<std::vector<FetchedRow>> HBaseFeatureStore::GetMultiple(
    const std::string& table, const std::string& family, std::span<const FeatureFetch> fetches,
    int max_versions) {
  std::vector<HBaseGet> gets;
  gets.reserve(fetches.size());
  for (const FeatureFetch& f : fetches) {
    gets.push_back(HBaseGet{f.row, family, f.upper_exclusive, max_versions});
  }
  auto rows = client_->GetMultiple(table, gets);
  if (!rows.ok()) return rows.status();
  std::vector<FetchedRow> out(rows->size());
  for (size_t i = 0; i < rows->size(); ++i) {
    for (HBaseCell& cell : (*rows)[i].cells) {
      out[i].cells.push_back(
          FeatureCell{std::move(cell.qualifier), std::move(cell.value), cell.timestamp});
    }
  }
  return out;
}

}  // namespace ctrjoin
