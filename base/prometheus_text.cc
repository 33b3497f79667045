// base/prometheus_text.cc — see prometheus_text.h.
#include "base/prometheus_text.h"

#include <cassert>
#include <charconv>
#include <cmath>

#include "base/version.h"

namespace picket::base {
namespace {

[[maybe_unused]] bool ValidName(std::string_view name) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
    if (!alpha && !(i > 0 && c >= '0' && c <= '9')) return false;
  }
  return true;
}

// HELP text: "\" and line feed are escaped; a double quote is not.
void AppendHelp(std::string& out, std::string_view help) {
  for (char c : help) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
}

}  // namespace

std::string EscapeLabelValue(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

PrometheusText& PrometheusText::Family(std::string_view name, std::string_view type,
                                       std::string_view help) {
  assert(ValidName(name));
  assert(type == "counter" || type == "gauge");
  family_ = name;
  out_ += "# HELP ";
  out_ += name;
  out_ += ' ';
  AppendHelp(out_, help);
  out_ += "\n# TYPE ";
  out_ += name;
  out_ += ' ';
  out_ += type;
  out_ += '\n';
  return *this;
}

void PrometheusText::SampleHead(const Labels& labels) {
  assert(!family_.empty());
  out_ += family_;
  if (labels.empty()) return;
  out_ += '{';
  bool first = true;
  for (const auto& [name, value] : labels) {
    assert(ValidName(name));
    if (!first) out_ += ',';
    first = false;
    out_ += name;
    out_ += "=\"";
    out_ += EscapeLabelValue(value);
    out_ += '"';
  }
  out_ += '}';
}

PrometheusText& PrometheusText::Sample(uint64_t value, const Labels& labels) {
  SampleHead(labels);
  out_ += ' ';
  out_ += std::to_string(value);
  out_ += '\n';
  return *this;
}

PrometheusText& PrometheusText::Sample(double value, const Labels& labels) {
  SampleHead(labels);
  out_ += ' ';
  if (std::isnan(value)) {
    out_ += "NaN";
  } else if (std::isinf(value)) {
    out_ += value > 0 ? "+Inf" : "-Inf";
  } else {
    char buf[32];  // shortest text that reads back as the same double
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, value);
    out_.append(buf, ec == std::errc() ? end : buf);
  }
  out_ += '\n';
  return *this;
}

PrometheusText& PrometheusText::BuildInfo() {
  return Family("picket_build_info", "gauge",
                "Always 1; the labels say which build of Picket this process runs.")
      .Sample(uint64_t{1},
              {{"version", std::string(Version())}, {"revision", std::string(GitCommit())}});
}

}  // namespace picket::base
