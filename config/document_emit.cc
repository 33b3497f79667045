// config/document_emit.cc — the writers of document.h: block YAML (EmitYaml,
// EmitYamlDocuments, IsPlainSafeYamlString) and compact JSON (EmitJson).
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <utility>

#include "base/json.h"
#include "config/document.h"
#include "config/document_scalar.h"

namespace picket::config {
namespace {

Node ResolvePlain(const std::string& s) { return document_internal::ResolvePlainScalar(s); }

}  // namespace

// ---------------------------------------------------------------------------------------------
// Writers

namespace {

std::string FormatDouble(double d) {
  char buf[64];
  auto [ptr, ec] = std::to_chars(buf, buf + sizeof buf, d);
  std::string s(buf, ec == std::errc() ? ptr : buf);
  if (s.find_first_of(".eEn") == std::string::npos) s += ".0";  // stays a float when read back
  return s;
}

std::string YamlDouble(double d) {
  if (std::isnan(d)) return ".nan";
  if (std::isinf(d)) return d > 0 ? ".inf" : "-.inf";
  return FormatDouble(d);
}

// Code points a YAML reader may treat specially outside quotes or even inside them: the byte
// order mark U+FEFF, and NEL U+0085, LS U+2028, PS U+2029 (line breaks in YAML 1.1). They are
// written as escapes in double-quoted scalars and never left plain.
constexpr std::pair<std::string_view, std::string_view> kSpecialCodePoints[] = {
    {"\xEF\xBB\xBF", "\\uFEFF"},
    {"\xC2\x85", "\\u0085"},
    {"\xE2\x80\xA8", "\\u2028"},
    {"\xE2\x80\xA9", "\\u2029"},
};

bool HasSpecialCodePoint(std::string_view s) {
  for (const auto& [bytes, escape] : kSpecialCodePoints) {
    if (s.find(bytes) != std::string_view::npos) return true;
  }
  return false;
}

std::string DoubleQuoted(std::string_view s) {
  std::string out = "\"";
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    unsigned char u = static_cast<unsigned char>(c);
    bool escaped = false;
    for (const auto& [bytes, escape] : kSpecialCodePoints) {
      if (s.substr(i, bytes.size()) == bytes) {
        out += escape;
        i += bytes.size() - 1;
        escaped = true;
        break;
      }
    }
    if (escaped) continue;
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\0':
        out += "\\0";
        break;
      default:
        if (u < 0x20 || u == 0x7f) {
          char buf[8];
          snprintf(buf, sizeof buf, "\\x%02x", u);
          out += buf;
        } else {
          out.push_back(c);
        }
    }
  }
  out += '"';
  return out;
}

// A literal block (`|`) reads best for multi-line text (scripts, config files in ConfigMaps).
// Used only when it round-trips exactly.
bool LiteralBlockFits(std::string_view s) {
  if (s.find('\n') == std::string_view::npos) return false;
  if (HasSpecialCodePoint(s)) return false;
  if (s.empty() || s[0] == ' ' || s[0] == '\t' || s[0] == '\n') return false;
  for (char c : s) {
    unsigned char u = static_cast<unsigned char>(c);
    if ((u < 0x20 && c != '\n' && c != '\t') || u == 0x7f) return false;
  }
  // A BOM or other oddities would also need care; plain printable UTF-8 is what we accept.
  return true;
}

void EmitLiteralBlock(std::string_view s, size_t indent, std::string& out) {
  size_t trailing = 0;
  while (trailing < s.size() && s[s.size() - 1 - trailing] == '\n') ++trailing;
  out += trailing == 0 ? "|-" : (trailing == 1 ? "|" : "|+");
  out += '\n';
  std::string_view body = s.substr(0, s.size() - trailing);
  size_t start = 0;
  while (true) {
    size_t nl = body.find('\n', start);
    std::string_view line = body.substr(start, nl == std::string_view::npos ? nl : nl - start);
    if (!line.empty()) out.append(indent, ' ').append(line);
    out += '\n';
    if (nl == std::string_view::npos) break;
    start = nl + 1;
  }
  for (size_t i = 1; i < trailing; ++i) out += '\n';
}

std::string ScalarText(const Node& n) {
  switch (n.type()) {
    case Node::Type::kNull:
      return "null";
    case Node::Type::kBool:
      return n.AsBool() ? "true" : "false";
    case Node::Type::kInt:
      return std::to_string(n.AsInt());
    case Node::Type::kDouble:
      return YamlDouble(n.AsDouble());
    case Node::Type::kString:
      return IsPlainSafeYamlString(n.AsString()) ? n.AsString() : DoubleQuoted(n.AsString());
    default:
      return "";
  }
}

bool IsBlockCollection(const Node& n) {
  return (n.IsMapping() && !n.members().empty()) || (n.IsSequence() && !n.items().empty());
}

void EmitBlock(const Node& n, size_t indent, std::string& out);

// The text after "key:" or "-" for a scalar or an empty collection, including the newline.
void EmitInline(const Node& n, size_t indent, std::string& out) {
  if (n.IsMapping()) {
    out += " {}\n";
  } else if (n.IsSequence()) {
    out += " []\n";
  } else if (n.IsString() && LiteralBlockFits(n.AsString())) {
    out += ' ';
    EmitLiteralBlock(n.AsString(), indent, out);
  } else {
    out += ' ';
    out += ScalarText(n);
    out += '\n';
  }
}

// An implicit key is at most 1024 characters (YAML 1.2 §7.4.2, as yaml-cpp enforces); a longer
// one, or one whose quoting makes it longer, is written in the explicit form "? key\n: value".
constexpr size_t kMaxImplicitKey = 1000;

void EmitMapping(const Node& n, size_t indent, std::string& out) {
  for (const Member& m : n.members()) {
    out.append(indent, ' ');
    const std::string key = IsPlainSafeYamlString(m.key) ? m.key : DoubleQuoted(m.key);
    if (key.size() > kMaxImplicitKey) {
      out.append("? ").append(key).append("\n").append(indent, ' ').append(":");
      if (IsBlockCollection(m.value)) {
        out += '\n';
        EmitBlock(m.value, indent + 2, out);
      } else {
        EmitInline(m.value, indent + 2, out);
      }
      continue;
    }
    out += key;
    out += ':';
    if (m.value.IsMapping() && !m.value.members().empty()) {
      out += '\n';
      EmitMapping(m.value, indent + 2, out);
    } else if (m.value.IsSequence() && !m.value.items().empty()) {
      out += '\n';
      EmitBlock(m.value, indent, out);  // kubectl style: "- " at the key's indentation
    } else {
      EmitInline(m.value, indent + 2, out);
    }
  }
}

void EmitSequence(const Node& n, size_t indent, std::string& out) {
  for (const Node& item : n.items()) {
    if (IsBlockCollection(item)) {
      // Emit the item as if it were indented by two more, then put "- " over the first two
      // columns of its first line.
      std::string nested;
      if (item.IsMapping()) {
        EmitMapping(item, indent + 2, nested);
      } else {
        EmitSequence(item, indent + 2, nested);
      }
      nested.replace(indent, 2, "- ");
      out += nested;
    } else {
      out.append(indent, ' ');
      out += '-';
      EmitInline(item, indent + 2, out);
    }
  }
}

void EmitBlock(const Node& n, size_t indent, std::string& out) {
  if (n.IsMapping()) {
    EmitMapping(n, indent, out);
  } else {
    EmitSequence(n, indent, out);
  }
}

void EmitJsonTo(const Node& n, std::string& out) {
  switch (n.type()) {
    case Node::Type::kNull:
      out += "null";
      break;
    case Node::Type::kBool:
      out += n.AsBool() ? "true" : "false";
      break;
    case Node::Type::kInt:
      out += std::to_string(n.AsInt());
      break;
    case Node::Type::kDouble:
      out += std::isfinite(n.AsDouble()) ? FormatDouble(n.AsDouble()) : "null";
      break;
    case Node::Type::kString:
      base::AppendJsonString(out, n.AsString());
      break;
    case Node::Type::kSequence: {
      out += '[';
      bool first = true;
      for (const Node& item : n.items()) {
        if (!first) out += ',';
        first = false;
        EmitJsonTo(item, out);
      }
      out += ']';
      break;
    }
    case Node::Type::kMapping: {
      out += '{';
      bool first = true;
      for (const Member& m : n.members()) {
        if (!first) out += ',';
        first = false;
        base::AppendJsonString(out, m.key);
        out += ':';
        EmitJsonTo(m.value, out);
      }
      out += '}';
      break;
    }
  }
}

}  // namespace

bool IsPlainSafeYamlString(std::string_view s) {
  if (s.empty() || s.front() == ' ' || s.back() == ' ' || s.back() == ':') return false;
  if (HasSpecialCodePoint(s)) return false;
  // Indicators that start a non-plain node, and characters that start a number, a date or a
  // special float (quoting every digit-led string also keeps YAML 1.1 timestamps and
  // sexagesimals like 1:20 from being read as something else).
  // A leading '-' is fine when a non-space, non-number character follows ("--flag=x").
  const bool dash_ok =
      s.size() > 1 && s[0] == '-' && std::strchr(" \t.0123456789", s[1]) == nullptr;
  if (!dash_ok && std::strchr("-?:,[]{}#&*!|>'\"%@`0123456789+.=~<", s.front()) != nullptr) {
    return false;
  }
  for (size_t i = 0; i < s.size(); ++i) {
    unsigned char u = static_cast<unsigned char>(s[i]);
    if (u < 0x20 || u == 0x7f) return false;
    if (s[i] == ':' && i + 1 < s.size() && s[i + 1] == ' ') return false;
    if (s[i] == '#' && i > 0 && s[i - 1] == ' ') return false;
  }
  if (s.size() >= 3 && (s.substr(0, 3) == "---" || s.substr(0, 3) == "...")) return false;
  return ResolvePlain(std::string(s)).IsString();
}

std::string EmitYaml(const Node& node) {
  std::string out;
  if (IsBlockCollection(node)) {
    EmitBlock(node, 0, out);
  } else if (node.IsMapping()) {
    out = "{}\n";
  } else if (node.IsSequence()) {
    out = "[]\n";
  } else if (node.IsString() && LiteralBlockFits(node.AsString())) {
    EmitLiteralBlock(node.AsString(), 2, out);
  } else {
    out = ScalarText(node) + "\n";
  }
  return out;
}

std::string EmitYamlDocuments(const std::vector<Node>& documents) {
  std::string out;
  for (size_t i = 0; i < documents.size(); ++i) {
    if (i > 0) out += "---\n";
    out += EmitYaml(documents[i]);
  }
  return out;
}

std::string EmitJson(const Node& node) {
  std::string out;
  EmitJsonTo(node, out);
  return out;
}

}  // namespace picket::config
