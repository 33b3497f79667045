// base/log.cc — see log.h.
#include "base/log.h"

#include <spdlog/details/log_msg.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <ctime>

namespace picket::base {
namespace {

constexpr spdlog::level::level_enum kLevels[] = {
    spdlog::level::trace, spdlog::level::debug,    spdlog::level::info, spdlog::level::warn,
    spdlog::level::err,   spdlog::level::critical, spdlog::level::off};
static_assert(std::size(kLevels) == kLogLevels.size());

std::string_view LevelName(spdlog::level::level_enum level) {
  for (size_t i = 0; i < std::size(kLevels); ++i) {
    if (kLevels[i] == level) return kLogLevels[i];
  }
  return "unknown";
}

template <size_t N>
std::string OneOf(const std::array<std::string_view, N>& names) {
  std::string out;
  for (std::string_view n : names) out.append(out.empty() ? "" : ", ").append(n);
  return out;
}

void Append(spdlog::memory_buf_t& dest, std::string_view s) {
  dest.append(s.data(), s.data() + s.size());
}

// 2026-12-07T02:51:23.123Z
void AppendTime(spdlog::memory_buf_t& dest, spdlog::log_clock::time_point time) {
  const auto since_epoch = time.time_since_epoch();
  const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(since_epoch);
  const auto millis = std::chrono::duration_cast<std::chrono::milliseconds>(since_epoch - seconds);
  const std::time_t t = static_cast<std::time_t>(seconds.count());
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[40];
  const int n = std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
                              tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                              tm.tm_sec, static_cast<int>(millis.count()));
  dest.append(buf, buf + n);
}

// A JSON string body (RFC 8259 section 7): quote, backslash and control characters escaped;
// other bytes are copied as they are.
void AppendJsonEscaped(spdlog::memory_buf_t& dest, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    switch (c) {
      case '"':
        Append(dest, "\\\"");
        break;
      case '\\':
        Append(dest, "\\\\");
        break;
      case '\n':
        Append(dest, "\\n");
        break;
      case '\r':
        Append(dest, "\\r");
        break;
      case '\t':
        Append(dest, "\\t");
        break;
      case '\b':
        Append(dest, "\\b");
        break;
      case '\f':
        Append(dest, "\\f");
        break;
      default:
        if (u < 0x20 || u == 0x7f) {
          const char esc[] = {'\\', 'u', '0', '0', kHex[u >> 4], kHex[u & 0xf]};
          dest.append(esc, esc + sizeof esc);
        } else {
          dest.push_back(c);
        }
    }
  }
}

class LineFormatter final : public spdlog::formatter {
 public:
  explicit LineFormatter(LogFormat format) : format_(format) {}

  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    const std::string_view level = LevelName(msg.level);
    const std::string_view logger(msg.logger_name.data(), msg.logger_name.size());
    const std::string_view text(msg.payload.data(), msg.payload.size());
    if (format_ == LogFormat::kJson) {
      Append(dest, "{\"time\":\"");
      AppendTime(dest, msg.time);
      Append(dest, "\",\"level\":\"");
      Append(dest, level);
      Append(dest, "\",\"logger\":\"");
      AppendJsonEscaped(dest, logger);
      Append(dest, "\",\"msg\":\"");
      AppendJsonEscaped(dest, text);
      Append(dest, "\"}\n");
      return;
    }
    AppendTime(dest, msg.time);
    dest.push_back(' ');
    msg.color_range_start = dest.size();  // a color sink on a terminal colors the level only
    Append(dest, level);
    msg.color_range_end = dest.size();
    dest.push_back(' ');
    Append(dest, logger);
    dest.push_back(' ');
    Append(dest, text);
    dest.push_back('\n');
  }

  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<LineFormatter>(format_);
  }

 private:
  LogFormat format_;
};

}  // namespace

Result<spdlog::level::level_enum> ParseLogLevel(std::string_view text) {
  for (size_t i = 0; i < kLogLevels.size(); ++i) {
    if (kLogLevels[i] == text) return kLevels[i];
  }
  return std::unexpected(
      Error::At("--log-level", "\"" + std::string(text) + "\" is not one of " + OneOf(kLogLevels)));
}

Result<LogFormat> ParseLogFormat(std::string_view text) {
  if (text == "text") return LogFormat::kText;
  if (text == "json") return LogFormat::kJson;
  return std::unexpected(Error::At(
      "--log-format", "\"" + std::string(text) + "\" is not one of " + OneOf(kLogFormats)));
}

std::unique_ptr<spdlog::formatter> MakeLogFormatter(LogFormat format) {
  return std::make_unique<LineFormatter>(format);
}

Result<void> SetUpLogging(const LogOptions& options, std::string_view default_logger) {
  auto level = ParseLogLevel(options.level);
  if (!level) return std::unexpected(std::move(level).error());
  auto format = ParseLogFormat(options.format);
  if (!format) return std::unexpected(std::move(format).error());
  auto make = [&options](const std::string& name) {
    return options.to_stdout ? spdlog::stdout_color_mt(name) : spdlog::stderr_color_mt(name);
  };
  for (const char* name : kLoggerNames) {
    if (!spdlog::get(name)) make(name);
  }
  const std::string main_name(default_logger);
  std::shared_ptr<spdlog::logger> main = spdlog::get(main_name);
  if (!main) main = make(main_name);
  spdlog::set_default_logger(main);
  // Both apply to every registered logger and to the ones created later (e.g. lazily by name).
  spdlog::set_formatter(MakeLogFormatter(*format));
  spdlog::set_level(*level);
  return {};
}

}  // namespace picket::base
