#include "tests/support/kafka_broker/log_manager.h"

#include <algorithm>
#include <sstream>

#include "tests/support/kafka_broker/storage.h"

namespace ctrjoin::testbroker {
namespace {

constexpr std::int32_t kMaxPartitions = 10000;

}  // namespace

bool IsValidTopicName(std::string_view name) {
  if (name.empty() || name.size() > 249 || name == "." || name == "..") return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
  });
}

std::string LogManager::LogPath(const std::string& topic, std::int32_t partition) const {
  return data_dir_ + "/logs/" + topic + "-" + std::to_string(partition) + ".log";
}

Result<LogManager::Partitions> LogManager::OpenPartitions(const std::string& topic,
                                                          std::int32_t count, bool recover) {
  Partitions partitions;
  for (std::int32_t p = 0; p < count; ++p) {
    if (!persistent()) {
      partitions.push_back(std::make_unique<PartitionLog>(std::nullopt, &appends_));
      continue;
    }
    std::string path = LogPath(topic, p);
    std::string contents;
    if (recover) {
      auto read = ReadWholeFile(path);
      if (read.ok()) {
        contents = std::move(read).value();
      } else if (read.status().code() != StatusCode::kNotFound) {
        return read.status();
      }
    }
    auto file = AppendOnlyFile::Open(path);
    if (!file.ok()) return file.status();
    if (!recover) CTRJOIN_RETURN_IF_ERROR(file->Truncate(0));
    auto log = std::make_unique<PartitionLog>(std::move(file).value(), &appends_);
    CTRJOIN_RETURN_IF_ERROR(log->Recover(
        Bytes(reinterpret_cast<const std::uint8_t*>(contents.data()), contents.size())));
    max_recovered_producer_id_ = std::max(max_recovered_producer_id_, log->max_producer_id());
    partitions.push_back(std::move(log));
  }
  return partitions;
}

Status LogManager::Load() {
  if (!persistent()) return Status::Ok();
  CTRJOIN_RETURN_IF_ERROR(MakeDirectories(data_dir_ + "/logs"));
  auto listing = ReadWholeFile(data_dir_ + "/topics");
  if (!listing.ok()) {
    if (listing.status().code() == StatusCode::kNotFound) return Status::Ok();
    return listing.status();
  }
  std::istringstream lines(listing.value());
  std::string name;
  std::int32_t count = 0;
  while (lines >> name >> count) {
    if (!IsValidTopicName(name) || count < 1 || count > kMaxPartitions) {
      return Status::Corruption("bad line in " + data_dir_ + "/topics: " + name);
    }
    auto partitions = OpenPartitions(name, count, /*recover=*/true);
    if (!partitions.ok()) return partitions.status();
    topics_[name] = std::move(partitions).value();
  }
  return Status::Ok();
}

KafkaError LogManager::CheckCreate(const std::string& name, std::int32_t partitions) const {
  if (!IsValidTopicName(name)) return KafkaError::kInvalidTopic;
  if (topics_.contains(name)) return KafkaError::kTopicAlreadyExists;
  if (partitions < 1 || partitions > kMaxPartitions) return KafkaError::kInvalidPartitions;
  return KafkaError::kNone;
}

KafkaError LogManager::CreateTopic(const std::string& name, std::int32_t partitions) {
  KafkaError err = CheckCreate(name, partitions);
  if (err != KafkaError::kNone) return err;
  auto opened = OpenPartitions(name, partitions, /*recover=*/false);
  if (!opened.ok()) return KafkaError::kKafkaStorageError;
  topics_[name] = std::move(opened).value();
  if (!SaveTopics().ok()) return KafkaError::kKafkaStorageError;
  return KafkaError::kNone;
}

Status LogManager::SaveTopics() const {
  if (!persistent()) return Status::Ok();
  std::string listing;
  for (const auto& [name, partitions] : topics_) {
    listing += name + " " + std::to_string(partitions.size()) + "\n";
  }
  return WriteFileAtomically(data_dir_ + "/topics", listing);
}

PartitionLog* LogManager::Find(std::string_view topic, std::int32_t partition) {
  auto it = topics_.find(topic);
  if (it == topics_.end() || partition < 0 ||
      static_cast<std::size_t>(partition) >= it->second.size()) {
    return nullptr;
  }
  return it->second[static_cast<std::size_t>(partition)].get();
}

std::int32_t LogManager::PartitionCount(std::string_view topic) const {
  auto it = topics_.find(topic);
  return it == topics_.end() ? -1 : static_cast<std::int32_t>(it->second.size());
}

std::vector<std::string> LogManager::TopicNames() const {
  std::vector<std::string> names;
  for (const auto& [name, partitions] : topics_) names.push_back(name);
  return names;
}

}  // namespace ctrjoin::testbroker
