#include "joins/hbase_feature_store.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <thread>

namespace ctrjoin {

Result<std::unique_ptr<HBaseFeatureStore>> HBaseFeatureStore::Open(
    const HBaseClientOptions& options) {
  auto client = HBaseClient::Open(options);
  if (!client.ok()) return client.status();
  const std::string description =
      fmt::format("HBase Thrift2 {}:{} ({}, {})", options.host, options.port,
                  NameOf(options.protocol), NameOf(options.transport));
  return std::unique_ptr<HBaseFeatureStore>(
      new HBaseFeatureStore(std::move(client).value(), options, description));
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

namespace {

// A failure that says the server's answers cannot be read: a connection
// that was accepted, then closed mid-call, answered with bytes that do not
// decode, or never answered (a buffered server reading a framed request
// waits for bytes that never come). A refused connection or a connect
// timeout is an outage.
bool LooksLikeWireMismatch(const Status& st) {
  if (st.code() == StatusCode::kInternal) return true;
  return (st.code() == StatusCode::kUnavailable || st.code() == StatusCode::kTimedOut) &&
         st.effect() == Effect::kEffectUnknown;
}

}  // namespace

Result<StoreTableInfo> HBaseFeatureStore::ProbeOnce(const std::string& table,
                                                    const std::string& family) {
  auto descriptor = client_->GetTableDescriptor(table);
  if (!descriptor.ok()) return descriptor.status();
  if (!descriptor->has_value()) {
    // No descriptors (HBase 1.x): an exists call checks table and wire.
    auto exists = client_->Exists(table, HBaseGet{"ctrjoin-start-up-probe", family});
    if (!exists.ok()) return exists.status();
    return StoreTableInfo{};
  }
  const std::vector<HBaseFamilyDescriptor>& families = (*descriptor)->families;
  auto it = std::find_if(families.begin(), families.end(),
                         [&](const HBaseFamilyDescriptor& f) { return f.name == family; });
  if (it == families.end()) {
    std::string names;
    for (const HBaseFamilyDescriptor& f : families) names += (names.empty() ? "" : ", ") + f.name;
    return StoreTableInfo{StoreTableInfo::Missing::kFamily,
                          fmt::format("table '{}' on {} has no column family '{}' (it has: {})",
                                      table, description_, family, names)};
  }
  return StoreTableInfo{.family_max_versions = it->max_versions};
}

Result<StoreTableInfo> HBaseFeatureStore::Probe(const std::string& table,
                                                const std::string& family) {
  constexpr int kAttempts = 3;
  Status last;
  for (int attempt = 1; attempt <= kAttempts; ++attempt) {
    Result<StoreTableInfo> info = ProbeOnce(table, family);
    if (info.ok()) return info;
    last = info.status();
    const std::string& message = last.message();
    if (last.code() == StatusCode::kIoError) {
      // HBase names its Java exception in the TIOError's message.
      if (message.find("TableNotFoundException") != std::string::npos) {
        return StoreTableInfo{
            StoreTableInfo::Missing::kTable,
            fmt::format("table '{}' does not exist on {} ({})", table, description_, message)};
      }
      if (message.find("NoSuchColumnFamilyException") != std::string::npos) {
        return StoreTableInfo{StoreTableInfo::Missing::kFamily,
                              fmt::format("table '{}' on {} has no column family '{}' ({})", table,
                                          description_, family, message)};
      }
      return Status::Unavailable(message);  // e.g. a region in transition
    }
    if (!LooksLikeWireMismatch(last)) return last;  // an outage: the caller waits
    if (attempt < kAttempts) std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  return Status::InvalidArgument(fmt::format(
      "{} accepts connections but its answers cannot be read or do not come within "
      "feature_store.hbase.request_timeout_ms ({} attempts; last: {}): "
      "feature_store.hbase.protocol ({}) and feature_store.hbase.transport ({}) must match "
      "the server's (HBase: hbase.regionserver.thrift.compact, "
      "hbase.regionserver.thrift.framed)",
      description_, kAttempts, last.message(), NameOf(options_.protocol),
      NameOf(options_.transport)));
}

}  // namespace ctrjoin
