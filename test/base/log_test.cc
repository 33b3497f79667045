#include "base/log.h"

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <sstream>

namespace picket::base {
namespace {

// 2026-12-07T02:51:23.123Z
spdlog::log_clock::time_point FixedTime() {
  using namespace std::chrono;
  return spdlog::log_clock::time_point(sys_days(2026y / December / 7).time_since_epoch() +
                                       hours(2) + minutes(51) + seconds(23) + milliseconds(123) +
                                       microseconds(456));
}

std::string Format(LogFormat format, spdlog::level::level_enum level, std::string_view logger,
                   std::string_view msg) {
  std::ostringstream out;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_st>(out);
  spdlog::logger l(std::string(logger), sink);
  l.set_formatter(MakeLogFormatter(format));
  l.set_level(spdlog::level::trace);
  l.log(FixedTime(), spdlog::source_loc{}, level, msg);
  return out.str();
}

TEST(LogTest, TextLine) {
  EXPECT_EQ(Format(LogFormat::kText, spdlog::level::info, "conn", "[c42] accepted"),
            "2026-12-07T02:51:23.123Z info conn [c42] accepted\n");
  EXPECT_EQ(Format(LogFormat::kText, spdlog::level::warn, "xds", "x"),
            "2026-12-07T02:51:23.123Z warn xds x\n");
}

TEST(LogTest, JsonLineIsExact) {
  EXPECT_EQ(Format(LogFormat::kJson, spdlog::level::err, "admin", "port in use"),
            R"({"time":"2026-12-07T02:51:23.123Z","level":"error","logger":"admin",)"
            R"("msg":"port in use"})"
            "\n");
}

TEST(LogTest, JsonEscapesWhatJsonMust) {
  const std::string msg = "quote \" backslash \\ newline \n tab \t cr \r bell \x07 del \x7f é";
  const std::string line = Format(LogFormat::kJson, spdlog::level::debug, "po\"licy", msg);
  ASSERT_FALSE(line.empty());
  EXPECT_EQ(line.back(), '\n');
  EXPECT_EQ(line.find('\n'), line.size() - 1) << "one line per record";
  EXPECT_NE(line.find(R"(quote \" backslash \\ newline \n tab \t cr \r bell \u0007 del \u007f é)"),
            std::string::npos)
      << line;
  EXPECT_EQ(line, R"({"time":"2026-12-07T02:51:23.123Z","level":"debug","logger":"po\"licy","msg":)"
                  R"("quote \" backslash \\ newline \n tab \t cr \r bell \u0007 del \u007f é"})"
                  "\n");
}

TEST(LogTest, LevelsAreAFixedSet) {
  for (std::string_view name : kLogLevels) {
    auto level = ParseLogLevel(name);
    ASSERT_TRUE(level.has_value()) << name;
    if (name != "off") {
      EXPECT_EQ(Format(LogFormat::kText, *level, "conn", "m"),
                "2026-12-07T02:51:23.123Z " + std::string(name) + " conn m\n");
    }
  }
  auto bad = ParseLogLevel("verbose");
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(
      bad.error().ToString(),
      "--log-level: \"verbose\" is not one of trace, debug, info, warn, error, critical, off");
  EXPECT_FALSE(ParseLogLevel("warning").has_value());
  EXPECT_FALSE(ParseLogLevel("").has_value());
  EXPECT_TRUE(ParseLogFormat("json").has_value());
  EXPECT_EQ(ParseLogFormat("yaml").error().field, "--log-format");
}

TEST(LogTest, SetUpCreatesTheLoggersByConcern) {
  EXPECT_FALSE(SetUpLogging({.level = "verbose"}, "main").has_value());
  ASSERT_TRUE(SetUpLogging({.level = "warn", .format = "json"}, "main").has_value());
  for (const char* name : kLoggerNames) {
    auto logger = spdlog::get(name);
    ASSERT_NE(logger, nullptr) << name;
    EXPECT_EQ(logger->level(), spdlog::level::warn) << name;
  }
  EXPECT_EQ(spdlog::default_logger()->name(), "main");
  // A logger created later by name gets the same level.
  EXPECT_EQ(spdlog::stderr_color_mt("late")->level(), spdlog::level::warn);
}

}  // namespace
}  // namespace picket::base
