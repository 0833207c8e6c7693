// JSON log lines and the log configuration.
#include "src/ops/logging.h"

#include <gtest/gtest.h>

namespace ctrjoin {
namespace {

TEST(LoggingTest, JsonLinesEscapeTheMessage) {
  EXPECT_EQ(JsonLogLine("2026-11-21T10:00:00.000Z", "info", "a \"b\"\n\tc\\"),
            "{\"ts\":\"2026-11-21T10:00:00.000Z\",\"level\":\"info\",\"msg\":\"a "
            "\\\"b\\\"\\n\\tc\\\\\"}\n");
  EXPECT_EQ(JsonLogLine("t", "warn", std::string("x\x01y")),
            "{\"ts\":\"t\",\"level\":\"warn\",\"msg\":\"x\\u0001y\"}\n");
  EXPECT_FALSE(ConfigureLogging("xml", "info").ok());
  EXPECT_FALSE(ConfigureLogging("text", "loud").ok());
  EXPECT_TRUE(ConfigureLogging("json", "info").ok());
  EXPECT_TRUE(ConfigureLogging("text", "info").ok()) << "configuring twice replaces the logger";
}

}  // namespace
}  // namespace ctrjoin
