#include "src/io/start_positions.h"

#include <fmt/format.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "src/core/fs_sync.h"

namespace ctrjoin {

namespace {

constexpr const char* kMagic = "ctrjoin-start 1";

}  // namespace

Result<SourcePositions> LoadStartPositions(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status::NotFound("no start positions at " + path);
  const Status damaged = Status::Corruption(
      path +
      " is damaged; remove it to resolve source.kafka.start again (records produced "
      "since the job first started may then be skipped or read again)");
  std::string line;
  if (!std::getline(in, line) || line != kMagic) return damaged;
  SourcePositions positions;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string stream;
    int32_t partition = 0;
    int64_t offset = 0;
    if (!(fields >> stream >> partition >> offset) || partition < 0 || offset < 0) return damaged;
    if (stream == "impressions") {
      positions[{StreamKind::kImpression, partition}] = offset;
    } else if (stream == "clicks") {
      positions[{StreamKind::kClick, partition}] = offset;
    } else {
      return damaged;
    }
  }
  return positions;
}

Status SaveStartPositions(const std::string& path, const SourcePositions& positions) {
  std::string text = std::string(kMagic) + "\n";
  for (const auto& [id, offset] : positions) {
    text +=
        fmt::format("{} {} {}\n", id.stream == StreamKind::kImpression ? "impressions" : "clicks",
                    id.partition, offset);
  }
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << text;
    if (!out.flush()) return Status::IoError("writing " + tmp);
  }
  CTRJOIN_RETURN_IF_ERROR(FsyncPath(tmp, /*directory=*/false));
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) return Status::IoError(fmt::format("renaming {}: {}", tmp, ec.message()));
  return FsyncPath(std::filesystem::path(path).parent_path(), /*directory=*/true);
}

}  // namespace ctrjoin
