// net/json.h — a small, strict JSON value, parser and writer for protocol frames.
//
// Owns: `Json` (null, bool, number, string, array, object), `ParseJson` (RFC 8259, strict: no
// trailing commas, no comments, no duplicate object keys, no invalid UTF-8, bounded nesting) and
// `Json::Serialize` (compact, deterministic: object keys sorted). Input to `ParseJson` is
// untrusted (it comes off the wire): every failure is a value naming the byte offset and the
// reason, never a crash or an exception.
//
// Plain values; thread-compatible. No libuv or BoringSSL here, so it is usable anywhere.
#pragma once

#include <cstdint>
#include <expected>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace picket::net {

class Json {
 public:
  using Array = std::vector<Json>;
  using Object = std::map<std::string, Json, std::less<>>;

  enum class Type : uint8_t { kNull, kBool, kNumber, kString, kArray, kObject };

  Json() = default;  // null
  Json(std::nullptr_t) {}
  Json(bool b) : value_(b) {}
  Json(int v) : value_(static_cast<double>(v)) {}
  Json(int64_t v) : value_(static_cast<double>(v)) {}
  Json(uint64_t v) : value_(static_cast<double>(v)) {}
  Json(double v) : value_(v) {}
  Json(const char* s) : value_(std::string(s)) {}
  Json(std::string s) : value_(std::move(s)) {}
  Json(std::string_view s) : value_(std::string(s)) {}
  Json(Array a) : value_(std::move(a)) {}
  Json(Object o) : value_(std::move(o)) {}

  static Json MakeObject() { return Json(Object{}); }
  static Json MakeArray() { return Json(Array{}); }

  Type type() const { return static_cast<Type>(value_.index()); }
  bool is_null() const { return type() == Type::kNull; }
  bool is_bool() const { return type() == Type::kBool; }
  bool is_number() const { return type() == Type::kNumber; }
  bool is_string() const { return type() == Type::kString; }
  bool is_array() const { return type() == Type::kArray; }
  bool is_object() const { return type() == Type::kObject; }

  // Accessors; callers check the type first (a wrong type is a programming error).
  bool as_bool() const { return std::get<bool>(value_); }
  double as_number() const { return std::get<double>(value_); }
  const std::string& as_string() const { return std::get<std::string>(value_); }
  const Array& as_array() const { return std::get<Array>(value_); }
  Array& as_array() { return std::get<Array>(value_); }
  const Object& as_object() const { return std::get<Object>(value_); }
  Object& as_object() { return std::get<Object>(value_); }

  // The number as an integer if it is one exactly and lies in [min, max].
  std::optional<int64_t> as_int(int64_t min, int64_t max) const;

  // Object member or nullptr (also nullptr when this is not an object).
  const Json* Find(std::string_view key) const;
  // Object member, created as null if missing. This must be an object.
  Json& operator[](std::string_view key);
  // Appends to an array. This must be an array.
  void Push(Json v) { as_array().push_back(std::move(v)); }

  // Compact text; object keys in sorted order, so equal values serialize identically.
  std::string Serialize() const;
  void SerializeTo(std::string& out) const;

  friend bool operator==(const Json&, const Json&) = default;

 private:
  std::variant<std::nullptr_t, bool, double, std::string, Array, Object> value_;
};

struct JsonLimits {
  int max_depth = 64;
};

// Parses exactly one JSON value (surrounding whitespace allowed). Errors read
// "offset N: reason".
[[nodiscard]] std::expected<Json, std::string> ParseJson(std::string_view text,
                                                         const JsonLimits& limits = {});

// Appends `s` as a JSON string literal (quoted, escaped).
void AppendJsonString(std::string& out, std::string_view s);

}  // namespace picket::net
