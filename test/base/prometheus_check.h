// test/base/prometheus_check.h — a strict checker of the Prometheus text exposition format
// 0.0.4 for unit tests: in-process and fast (test/base/promtool.h runs the real promtool).
//
// CheckPrometheusText() returns "" when `text` is well-formed, else "line N: what is wrong".
// It holds what the format requires plus two conventions of ours: every family has a HELP line
// directly followed by its TYPE line, and a family's samples are contiguous, after its TYPE and
// never repeated later. Checked: metric and label names ([a-zA-Z_:][a-zA-Z0-9_:]* and
// [a-zA-Z_][a-zA-Z0-9_]*), HELP escapes (\\ and \n only), label value escapes (\\, \" and \n
// only), no duplicate label name in a sample, no duplicate series, values as Go's ParseFloat
// reads them (digits, exponents, NaN, +Inf, -Inf), an optional integer timestamp, '\n' after
// every line and no blank line.
#pragma once

#include <cctype>
#include <cstdlib>
#include <set>
#include <string>
#include <string_view>

namespace picket::testing {

inline bool PromMetricName(std::string_view s) {
  if (s.empty()) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (!(std::isalpha(c) || c == '_' || c == ':' || (i > 0 && std::isdigit(c)))) return false;
  }
  return true;
}

inline bool PromLabelName(std::string_view s) {
  return PromMetricName(s) && s.find(':') == std::string_view::npos;
}

inline bool PromValue(std::string_view s) {
  if (s == "NaN" || s == "+Inf" || s == "-Inf") return true;
  if (s.empty()) return false;
  const std::string copy(s);
  char* end = nullptr;
  std::strtod(copy.c_str(), &end);
  if (end != copy.c_str() + copy.size()) return false;
  for (char c : s) {  // strtod also takes hex and "inf"/"nan" spellings: refuse them
    if (!(std::isdigit(static_cast<unsigned char>(c)) || c == '.' || c == 'e' || c == 'E' ||
          c == '+' || c == '-')) {
      return false;
    }
  }
  return true;
}

inline std::string CheckPrometheusText(std::string_view text) {
  if (!text.empty() && text.back() != '\n') return "the text does not end with a line feed";
  std::set<std::string, std::less<>> families;
  std::set<std::string, std::less<>> series;
  std::string family, pending_help;
  size_t n = 0;
  while (!text.empty()) {
    ++n;
    const size_t eol = text.find('\n');
    const std::string_view line = text.substr(0, eol);
    text.remove_prefix(eol + 1);
    const std::string at = "line " + std::to_string(n) + ": ";
    if (line.empty()) return at + "blank line";
    if (line.starts_with("# HELP ")) {
      std::string_view rest = line.substr(7);
      const size_t sp = rest.find(' ');
      const std::string_view name = rest.substr(0, sp);
      if (!PromMetricName(name)) return at + "bad metric name in HELP";
      if (families.contains(name)) return at + "family " + std::string(name) + " seen before";
      const std::string_view help = sp == std::string_view::npos ? "" : rest.substr(sp + 1);
      for (size_t i = 0; i < help.size(); ++i) {
        if (help[i] != '\\') continue;
        if (i + 1 == help.size() || (help[i + 1] != '\\' && help[i + 1] != 'n')) {
          return at + "bad escape in HELP";
        }
        ++i;
      }
      pending_help = name;
      continue;
    }
    if (line.starts_with("# TYPE ")) {
      std::string_view rest = line.substr(7);
      const size_t sp = rest.find(' ');
      if (sp == std::string_view::npos) return at + "TYPE without a type";
      const std::string_view name = rest.substr(0, sp), type = rest.substr(sp + 1);
      if (name != pending_help) return at + "TYPE not directly after its HELP";
      if (type != "counter" && type != "gauge" && type != "histogram" && type != "summary" &&
          type != "untyped") {
        return at + "unknown type '" + std::string(type) + "'";
      }
      pending_help.clear();
      family = name;
      families.insert(family);
      continue;
    }
    if (line.starts_with("#")) continue;  // a comment
    if (!pending_help.empty()) return at + "HELP without TYPE";
    size_t i = 0;
    while (i < line.size() && line[i] != '{' && line[i] != ' ') ++i;
    const std::string_view name = line.substr(0, i);
    if (!PromMetricName(name)) return at + "bad metric name";
    if (name != family) return at + "sample of " + std::string(name) + " outside its family";
    std::string key(name);
    if (i < line.size() && line[i] == '{') {
      ++i;
      std::set<std::string, std::less<>> names;
      while (true) {
        if (i < line.size() && line[i] == '}') break;
        size_t j = i;
        while (j < line.size() && line[j] != '=') ++j;
        const std::string_view label = line.substr(i, j - i);
        if (!PromLabelName(label)) return at + "bad label name '" + std::string(label) + "'";
        if (!names.insert(std::string(label)).second) return at + "duplicate label";
        if (j + 1 >= line.size() || line[j + 1] != '"') return at + "label value not quoted";
        i = j + 2;
        while (i < line.size() && line[i] != '"') {
          if (line[i] == '\\') {
            if (i + 1 >= line.size() ||
                (line[i + 1] != '\\' && line[i + 1] != '"' && line[i + 1] != 'n')) {
              return at + "bad escape in label value";
            }
            ++i;
          }
          ++i;
        }
        if (i >= line.size()) return at + "unterminated label value";
        ++i;  // the closing quote
        if (i < line.size() && line[i] == ',') {
          ++i;
          continue;
        }
        if (i >= line.size() || line[i] != '}') return at + "expected ',' or '}'";
      }
      key += std::string(line.substr(name.size(), i + 1 - name.size()));
      ++i;
    }
    if (i >= line.size() || line[i] != ' ') return at + "no value";
    std::string_view rest = line.substr(i + 1);
    const size_t sp = rest.find(' ');
    if (!PromValue(rest.substr(0, sp))) return at + "bad value";
    if (sp != std::string_view::npos) {
      const std::string_view ts = rest.substr(sp + 1);
      if (ts.empty()) return at + "trailing space";
      for (size_t k = 0; k < ts.size(); ++k) {
        if (!(std::isdigit(static_cast<unsigned char>(ts[k])) || (k == 0 && ts[k] == '-'))) {
          return at + "bad timestamp";
        }
      }
    }
    if (!series.insert(key).second) return at + "duplicate series " + key;
  }
  if (!pending_help.empty()) return "HELP without TYPE at the end";
  return "";
}

}  // namespace picket::testing
