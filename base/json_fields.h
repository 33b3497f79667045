// base/json_fields.h — THE field reader for untrusted JSON objects.
//
// Owns: `JsonFields`, which reads one JSON object member by member and collects every problem
// into `base::Errors` as `field.path: reason`, in the words of Kubernetes' validation:
//   `Required value`, `Invalid value: 70000: must be between 1 and 65535, inclusive`,
//   `Invalid value: 42: expected a string`, `unknown field "x"`, `duplicate field "x"`.
// simdjson keeps duplicate keys, so the reader reports them (once per key) when it opens an
// object; `Finish()` reports every member no getter asked for.
//
// A null member reads as absent (as Kubernetes' decoder does). Getters return nullopt after
// reporting; a reader of a value that is not an object reports that once and reads nothing.
// Not thread-safe; one reader per object, on one thread. `errors` outlives the reader; the
// reader's views live as long as the document.
#pragma once

#include <concepts>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "base/field_path.h"
#include "base/json.h"

namespace picket::base {

enum class Need : uint8_t { kOptional, kRequired };

// The value as an error shows it: JSON text, cut at 64 bytes ("..." appended); `[...]` and
// `{...}` for containers.
std::string ShowJson(const JsonValue& v);

class JsonFields {
 public:
  // Reads `value`, which should be an object, at field path `path` ("" at the top).
  JsonFields(JsonValue value, std::string path, Errors* errors);

  // The member `key`, marked as read; nullopt when absent or null (and `Required value` when
  // `need` is kRequired).
  std::optional<JsonValue> Value(std::string_view key, Need need = Need::kOptional);

  // A string of at most `max_bytes` bytes.
  std::optional<std::string_view> String(std::string_view key, Need need = Need::kOptional,
                                         size_t max_bytes = 1 << 20);
  std::optional<bool> Bool(std::string_view key, Need need = Need::kOptional);
  // An integer token in [min, max].
  std::optional<int64_t> Int(std::string_view key, int64_t min, int64_t max,
                             Need need = Need::kOptional);
  template <std::integral T>
  std::optional<T> Int(std::string_view key, Need need = Need::kOptional,
                       T min = std::numeric_limits<T>::min(),
                       T max = std::numeric_limits<T>::max()) {
    auto v = Int(key, static_cast<int64_t>(min), static_cast<int64_t>(max), need);
    if (!v) return std::nullopt;
    return static_cast<T>(*v);
  }
  std::optional<uint64_t> Uint64(std::string_view key, Need need = Need::kOptional);
  std::optional<uint32_t> Uint32(std::string_view key, Need need = Need::kOptional) {
    return Int<uint32_t>(key, need);
  }

  // A nested object's reader, at path `path.key` (the caller Finish()es it).
  std::optional<JsonFields> Object(std::string_view key, Need need = Need::kOptional);

  // Calls `fn(item, item_path)` for each element of the array `key` (paths `key[i]`); false
  // when the member is absent, null or not an array (the last reported).
  template <typename Fn>
  bool Array(std::string_view key, Need need, Fn&& fn) {
    std::optional<JsonValue> v = Value(key, need);
    if (!v) return false;
    if (!v->IsArray()) {
      Report(key, InvalidValue(ShowJson(*v), "expected an array"));
      return false;
    }
    const std::string path = Path(key);
    size_t i = 0;
    for (JsonValue item : v->Elements()) fn(item, Index(path, i++));
    return true;
  }

  // Reports every member that no getter read. Call once, after the getters.
  void Finish();

  // `path.key`, and an error there (key "" for the object itself).
  std::string Path(std::string_view key) const { return key.empty() ? path_ : Child(path_, key); }
  void Report(std::string_view key, std::string reason);

  const std::string& path() const { return path_; }
  JsonValue object() const { return object_; }
  // True when nothing was reported through this reader (nested readers report on their own).
  bool ok() const { return reported_ == 0; }
  Errors* errors() const { return errors_; }

 private:
  JsonValue object_;
  std::string path_;
  Errors* errors_;
  size_t reported_ = 0;
  bool is_object_ = false;
  std::vector<std::string_view> read_;  // keys asked for (few; a linear scan beats a set)
};

// Reads one value as a string / an integer in [min, max] outside any object (array items),
// reporting at `path`.
std::optional<std::string_view> JsonString(const JsonValue& v, const std::string& path,
                                           Errors* errors);
std::optional<int64_t> JsonInt(const JsonValue& v, int64_t min, int64_t max,
                               const std::string& path, Errors* errors);

}  // namespace picket::base
