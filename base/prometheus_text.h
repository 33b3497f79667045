// base/prometheus_text.h — writes the Prometheus text exposition format, version 0.0.4.
//
// Owns: `PrometheusText`, the one writer of /stats/prometheus bodies (the sidecar's admin and the
// control server's), and `picket_build_info`, the family both expose.
// Per the format ("Exposition formats", text format 0.0.4): each metric family is one
// `# HELP name text` line (backslash and line feed escaped), one `# TYPE name type` line, then
// all of its samples, `name{label="value",...} value`, with label values escaping backslash,
// double quote and line feed. A family's samples are contiguous; every line ends with '\n'.
// Metric and label names are the caller's constants ([a-zA-Z_:][a-zA-Z0-9_:]*, checked in
// debug builds); values and help text may be anything.
//
// Not thread-safe; a value type.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace picket::base {

class PrometheusText {
 public:
  using Labels = std::vector<std::pair<std::string_view, std::string>>;

  // Starts a family: `type` is "counter" or "gauge". The samples that follow belong to it.
  PrometheusText& Family(std::string_view name, std::string_view type, std::string_view help);
  // One sample of the current family.
  PrometheusText& Sample(uint64_t value, const Labels& labels = {});
  PrometheusText& Sample(double value, const Labels& labels = {});
  // Family() and one unlabelled Sample().
  PrometheusText& Single(std::string_view name, std::string_view type, std::string_view help,
                         uint64_t value) {
    return Family(name, type, help).Sample(value);
  }

  // `picket_build_info{version="0.2.0",revision="8e79ccc65050"} 1` (base/version.h): the
  // Prometheus convention for joining a build's identity onto any series.
  PrometheusText& BuildInfo();

  const std::string& text() const { return out_; }
  std::string Take() { return std::move(out_); }

 private:
  void SampleHead(const Labels& labels);

  std::string out_;
  std::string family_;
};

// `value` escaped for a label value (\\, \", \n).
std::string EscapeLabelValue(std::string_view value);

}  // namespace picket::base
