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

#include <algorithm>
#include <cstdint>
#include <expected>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace picket::net {

class Json;

// A JSON object: members kept sorted by key in one vector (one allocation per object, binary
// search lookups; frames carry tens of thousands of small objects, so node-based maps cost).
class JsonObject {
 public:
  using value_type = std::pair<std::string, Json>;
  using Items = std::vector<value_type>;
  using iterator = Items::iterator;
  using const_iterator = Items::const_iterator;

  JsonObject() = default;
  JsonObject(std::initializer_list<value_type> items);

  // Defined after Json (they need it complete).
  iterator begin();
  iterator end();
  const_iterator begin() const;
  const_iterator end() const;
  size_t size() const;
  bool empty() const;

  const_iterator find(std::string_view key) const;
  iterator find(std::string_view key);
  bool contains(std::string_view key) const;
  // Inserts if absent; returns the member and whether it was inserted.
  std::pair<iterator, bool> emplace(std::string key, Json value);

  // For parsers: takes members in any order; false (and `duplicate` set) if a key repeats.
  bool AssignUnsorted(Items items, std::string* duplicate);

  friend bool operator==(const JsonObject& a, const JsonObject& b);

 private:
  iterator LowerBound(std::string_view key);
  Items items_;
};

class Json {
 public:
  using Array = std::vector<Json>;
  using Object = JsonObject;

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

inline bool operator==(const JsonObject& a, const JsonObject& b) { return a.items_ == b.items_; }
inline JsonObject::iterator JsonObject::begin() { return items_.begin(); }
inline JsonObject::iterator JsonObject::end() { return items_.end(); }
inline JsonObject::const_iterator JsonObject::begin() const { return items_.begin(); }
inline JsonObject::const_iterator JsonObject::end() const { return items_.end(); }
inline size_t JsonObject::size() const { return items_.size(); }
inline bool JsonObject::empty() const { return items_.empty(); }
inline bool JsonObject::contains(std::string_view key) const { return find(key) != end(); }

}  // namespace picket::net
