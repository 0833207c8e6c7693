#include "tests/support/kafka_broker/log_manager.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <system_error>

#include "tests/support/kafka_broker/storage.h"

namespace ctrjoin::testbroker {
namespace {

constexpr std::int32_t kMaxPartitions = 10000;
// Characters of a topic's name kept in its directory's name, for people
// looking at the data directory; the hash of the whole name follows.
constexpr std::size_t kDirNamePrefix = 40;

std::uint64_t Fnv1a64(std::string_view s) {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (char c : s) {
    h ^= static_cast<std::uint8_t>(c);
    h *= 0x100000001b3ULL;
  }
  return h;
}

}  // namespace

bool IsValidTopicName(std::string_view name) {
  if (name.empty() || name.size() > 249 || name == "." || name == "..") return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
  });
}

std::string LogManager::TopicDir(const std::string& topic) const {
  return fmt::format("{}/logs/{}-{:016x}", data_dir_,
                     std::string_view(topic).substr(0, kDirNamePrefix), Fnv1a64(topic));
}

Status LogManager::ClaimTopicDir(const std::string& topic) const {
  const std::string dir = TopicDir(topic);
  CTRJOIN_RETURN_IF_ERROR(MakeDirectories(dir));
  const std::string name_file = dir + "/topic";
  auto held = ReadWholeFile(name_file);
  if (held.ok()) {
    if (held.value() == topic + "\n") return Status::Ok();
    return Status::Corruption(name_file + " names another topic than " + topic);
  }
  if (held.status().code() != StatusCode::kNotFound) return held.status();
  return WriteFileAtomically(name_file, topic + "\n");
}

Status LogManager::AdoptFlatLog(const std::string& topic, std::int32_t partition,
                                const std::string& path) const {
  const std::string flat = data_dir_ + "/logs/" + topic + "-" + std::to_string(partition) + ".log";
  std::error_code ec;
  if (std::filesystem::exists(path, ec)) return Status::Ok();
  std::filesystem::rename(flat, path, ec);
  // A name too long for the flat layout never had a file in it.
  if (!ec || ec == std::errc::no_such_file_or_directory || ec == std::errc::filename_too_long) {
    return Status::Ok();
  }
  return Status::IoError("moving " + flat + " to " + path + ": " + ec.message());
}

Result<LogManager::Partitions> LogManager::OpenPartitions(const std::string& topic,
                                                          std::int32_t count, bool recover) {
  Partitions partitions;
  if (persistent()) CTRJOIN_RETURN_IF_ERROR(ClaimTopicDir(topic));
  for (std::int32_t p = 0; p < count; ++p) {
    if (!persistent()) {
      partitions.push_back(std::make_unique<PartitionLog>(std::nullopt, &appends_));
      continue;
    }
    std::string path = TopicDir(topic) + "/" + std::to_string(p) + ".log";
    std::string contents;
    if (recover) {
      CTRJOIN_RETURN_IF_ERROR(AdoptFlatLog(topic, p, path));
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
    // The log start DeleteRecords left (within what the log still holds).
    const std::string start_path = LogStartPath(topic, p);
    auto start = ReadWholeFile(start_path);
    if (recover && start.ok()) {
      log->DeleteBefore(
          std::min<std::int64_t>(std::strtoll(start->c_str(), nullptr, 10), log->high_watermark()));
    } else if (start.ok()) {
      std::filesystem::remove(start_path);
    } else if (start.status().code() != StatusCode::kNotFound) {
      return start.status();
    }
    max_recovered_producer_id_ = std::max(max_recovered_producer_id_, log->max_producer_id());
    partitions.push_back(std::move(log));
  }
  return partitions;
}

std::string LogManager::LogStartPath(const std::string& topic, std::int32_t partition) const {
  return TopicDir(topic) + "/" + std::to_string(partition) + ".start";
}

std::pair<KafkaError, std::int64_t> LogManager::DeleteRecords(std::string_view topic,
                                                              std::int32_t partition,
                                                              std::int64_t offset) {
  PartitionLog* log = Find(topic, partition);
  if (log == nullptr) return {KafkaError::kUnknownTopicOrPartition, -1};
  const std::int64_t before = log->log_start_offset();
  auto result = log->DeleteBefore(offset);
  if (result.first != KafkaError::kNone || !persistent() || result.second == before) {
    return result;
  }
  Status st = WriteFileAtomically(LogStartPath(std::string(topic), partition),
                                  std::to_string(result.second));
  if (!st.ok()) return {KafkaError::kKafkaStorageError, result.second};
  return result;
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
