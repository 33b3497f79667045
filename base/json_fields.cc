// base/json_fields.cc — see json_fields.h.
#include "base/json_fields.h"

#include <algorithm>

namespace picket::base {
namespace {

constexpr size_t kShownBytes = 64;

}  // namespace

std::string ShowJson(const JsonValue& v) {
  switch (v.type()) {
    case JsonType::kArray:
      return "[...]";
    case JsonType::kObject:
      return "{...}";
    case JsonType::kString: {
      std::string_view s = *v.AsString();
      std::string out;
      AppendJsonString(out, s.substr(0, kShownBytes));
      if (s.size() > kShownBytes) out.insert(out.size() - 1, "...");
      return out;
    }
    default:
      return v.ToJson();
  }
}

JsonFields::JsonFields(JsonValue value, std::string path, Errors* errors)
    : object_(value), path_(std::move(path)), errors_(errors) {
  if (!object_.IsObject()) {
    Report("", InvalidValue(ShowJson(object_), "expected an object"));
    return;
  }
  is_object_ = true;
  // simdjson keeps repeated keys; a repeated key is an error once (Kubernetes' strict decoder
  // says `duplicate field "x"`). Objects are small: compare sorted keys.
  if (object_.size() < 2) return;
  std::vector<std::string_view> keys;
  keys.reserve(object_.size());
  for (const JsonMember& m : object_.Members()) keys.push_back(m.key);
  std::sort(keys.begin(), keys.end());
  for (size_t i = 1; i < keys.size(); ++i) {
    if (keys[i] == keys[i - 1] && (i < 2 || keys[i - 2] != keys[i])) {
      Report(keys[i], DuplicateField(keys[i]));
    }
  }
}

void JsonFields::Report(std::string_view key, std::string reason) {
  ++reported_;
  errors_->push_back(Error::At(Path(key), std::move(reason)));
}

std::optional<JsonValue> JsonFields::Value(std::string_view key, Need need) {
  if (!is_object_) return std::nullopt;
  if (std::find(read_.begin(), read_.end(), key) == read_.end()) read_.push_back(key);
  std::optional<JsonValue> v = object_.Find(key);
  if (!v || v->IsNull()) {
    if (need == Need::kRequired) Report(key, std::string(kRequiredValue));
    return std::nullopt;
  }
  return v;
}

std::optional<std::string_view> JsonFields::String(std::string_view key, Need need,
                                                   size_t max_bytes) {
  std::optional<JsonValue> v = Value(key, need);
  if (!v) return std::nullopt;
  std::optional<std::string_view> s = v->AsString();
  if (!s) {
    Report(key, InvalidValue(ShowJson(*v), "expected a string"));
    return std::nullopt;
  }
  if (s->size() > max_bytes) {
    Report(key, "Too long: may not be longer than " + std::to_string(max_bytes) + " bytes");
    return std::nullopt;
  }
  return s;
}

std::optional<bool> JsonFields::Bool(std::string_view key, Need need) {
  std::optional<JsonValue> v = Value(key, need);
  if (!v) return std::nullopt;
  std::optional<bool> b = v->AsBool();
  if (!b) Report(key, InvalidValue(ShowJson(*v), "expected a boolean"));
  return b;
}

std::optional<int64_t> JsonFields::Int(std::string_view key, int64_t min, int64_t max, Need need) {
  std::optional<JsonValue> v = Value(key, need);
  if (!v) return std::nullopt;
  size_t before = errors_->size();
  std::optional<int64_t> i = JsonInt(*v, min, max, Path(key), errors_);
  reported_ += errors_->size() - before;
  return i;
}

std::optional<uint64_t> JsonFields::Uint64(std::string_view key, Need need) {
  std::optional<JsonValue> v = Value(key, need);
  if (!v) return std::nullopt;
  std::optional<uint64_t> u = v->AsUint64();
  if (!u) Report(key, InvalidValue(ShowJson(*v), "expected an unsigned 64-bit integer"));
  return u;
}

std::optional<JsonFields> JsonFields::Object(std::string_view key, Need need) {
  std::optional<JsonValue> v = Value(key, need);
  if (!v) return std::nullopt;
  if (!v->IsObject()) {
    Report(key, InvalidValue(ShowJson(*v), "expected an object"));
    return std::nullopt;
  }
  return JsonFields(*v, Path(key), errors_);
}

void JsonFields::Finish() {
  if (!is_object_) return;
  for (const JsonMember& m : object_.Members()) {
    if (std::find(read_.begin(), read_.end(), m.key) != read_.end()) continue;
    Report(m.key, UnknownField(m.key));
    read_.push_back(m.key);  // a repeated unknown key is reported once (as a duplicate too)
  }
}

std::optional<std::string_view> JsonString(const JsonValue& v, const std::string& path,
                                           Errors* errors) {
  std::optional<std::string_view> s = v.AsString();
  if (!s) errors->push_back(Error::At(path, InvalidValue(ShowJson(v), "expected a string")));
  return s;
}

std::optional<int64_t> JsonInt(const JsonValue& v, int64_t min, int64_t max,
                               const std::string& path, Errors* errors) {
  if (!v.IsInteger()) {
    errors->push_back(Error::At(path, InvalidValue(ShowJson(v), "expected an integer")));
    return std::nullopt;
  }
  std::optional<int64_t> i = v.AsInt(min, max);
  if (!i) {
    errors->push_back(Error::At(
        path, InvalidValue(ShowJson(v), "must be between " + std::to_string(min) + " and " +
                                            std::to_string(max) + ", inclusive")));
  }
  return i;
}

}  // namespace picket::base
