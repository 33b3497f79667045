// base/log.h — the one log setup of every binary (picket-proxy, picket-control, picket-inject,
// picket-init).
//
// Owns: the line format (text or JSON lines), the accepted level names, and the named loggers by
// concern (conn, policy, xds, inject, admin) writing to stderr (or stdout: LogOptions::to_stdout,
// e.g. picket-proxy's bootstrap `process_log: stdout`). Every line carries an RFC 3339
// UTC time with milliseconds, the level, the logger name and the message:
//   text: 2026-12-07T02:51:23.123Z info conn [c42] ...
//   json: {"time":"2026-12-07T02:51:23.123Z","level":"info","logger":"conn","msg":"[c42] ..."}
//
// SetUpLogging: call once from main() before any thread starts. Loggers are thread-safe after.
// //config and //policy must never depend on this (they stay free of spdlog).
#pragma once

#include <spdlog/common.h>
#include <spdlog/formatter.h>

#include <array>
#include <memory>
#include <string>
#include <string_view>

#include "base/error.h"

namespace picket::base {

enum class LogFormat : uint8_t { kText, kJson };

// The accepted --log-level values, quietest last.
inline constexpr std::array<std::string_view, 7> kLogLevels = {"trace", "debug",    "info", "warn",
                                                               "error", "critical", "off"};
inline constexpr std::array<std::string_view, 2> kLogFormats = {"text", "json"};

// The loggers by concern; SetUpLogging creates every one of them.
inline constexpr std::array<const char*, 5> kLoggerNames = {"conn", "policy", "xds", "inject",
                                                            "admin"};

struct LogOptions {
  std::string level = "info";   // one of kLogLevels
  std::string format = "text";  // one of kLogFormats
  // stdout instead of stderr (one stream for `kubectl logs` and log shippers that keep only
  // stdout). Each line is flushed on its own under spdlog's console mutex.
  bool to_stdout = false;
};

// Errors name the flag and the allowed set.
[[nodiscard]] Result<spdlog::level::level_enum> ParseLogLevel(std::string_view text);
[[nodiscard]] Result<LogFormat> ParseLogFormat(std::string_view text);

// The formatter of one line in `format` (what SetUpLogging installs; tests use it on their own
// sink).
std::unique_ptr<spdlog::formatter> MakeLogFormatter(LogFormat format);

// Creates the loggers of kLoggerNames (stderr, or stdout with `to_stdout`) plus `default_logger` as
// spdlog's default logger (what spdlog::info() writes to, e.g. "control"), and applies the format
// and level to all of them and to any logger created later.
[[nodiscard]] Result<void> SetUpLogging(const LogOptions& options, std::string_view default_logger);

}  // namespace picket::base
