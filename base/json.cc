// base/json.cc — see json.h. simdjson's DOM parser builds the tape; the parser itself (with
// its structural index, ~4 bytes per input byte) is dropped after the parse and only the
// document (tape and unescaped strings) is kept.
#include "base/json.h"

#include <simdjson.h>

#include <bit>
#include <cassert>
#include <charconv>
#include <cmath>
#include <cstring>

namespace picket::base {
namespace {

using Element = simdjson::dom::element;
using ArrayIt = simdjson::dom::array::iterator;
using ObjectIt = simdjson::dom::object::iterator;

static_assert(sizeof(Element) == 16 && std::is_trivially_copyable_v<Element>);
static_assert(sizeof(ArrayIt) == 16 && std::is_trivially_copyable_v<ArrayIt>);
static_assert(sizeof(ObjectIt) == 16 && std::is_trivially_copyable_v<ObjectIt>);

template <typename T>
T Load(const unsigned char (&bytes)[16]) {
  T t;
  std::memcpy(static_cast<void*>(&t), bytes, sizeof(T));
  return t;
}
template <typename T>
void Store(unsigned char (&bytes)[16], const T& t) {
  std::memcpy(bytes, static_cast<const void*>(&t), sizeof(T));
}

bool IsBlank(const unsigned char (&bytes)[16]) {
  static constexpr unsigned char kZero[16] = {};
  return std::memcmp(bytes, kZero, sizeof(kZero)) == 0;
}

// simdjson's error, in words a reader of our logs can act on.
std::string Describe(simdjson::error_code code, const JsonLimits& limits) {
  switch (code) {
    case simdjson::DEPTH_ERROR:
      return "nested deeper than " + std::to_string(limits.max_depth) + " levels";
    case simdjson::UTF8_ERROR:
      return "the input is not valid UTF-8";
    case simdjson::STRING_ERROR:
      return "a string has an invalid escape or \\u sequence";
    case simdjson::UNESCAPED_CHARS:
      return "a string holds an unescaped control character";
    case simdjson::UNCLOSED_STRING:
      return "a string is not closed";
    case simdjson::T_ATOM_ERROR:
    case simdjson::F_ATOM_ERROR:
    case simdjson::N_ATOM_ERROR:
      return "an invalid literal (expected true, false or null)";
    case simdjson::NUMBER_ERROR:
      return "an invalid number (or an integer beyond 64 bits)";
    case simdjson::NUMBER_OUT_OF_RANGE:
      return "a number out of the 64-bit range";
    case simdjson::EMPTY:
      return "no value (empty input)";
    case simdjson::TAPE_ERROR:
    case simdjson::INCOMPLETE_ARRAY_OR_OBJECT:
      return "malformed structure (a missing or superfluous comma, colon, brace or bracket)";
    case simdjson::TRAILING_CONTENT:
      return "trailing content after the value";
    case simdjson::CAPACITY:
      return "larger than " + std::to_string(limits.max_bytes) + " bytes";
    case simdjson::MEMALLOC:
      return "out of memory";
    default:
      return simdjson::error_message(code);
  }
}

}  // namespace

std::string_view DescribeJsonType(JsonType type) {
  switch (type) {
    case JsonType::kNull:
      return "null";
    case JsonType::kBool:
      return "a boolean";
    case JsonType::kInt64:
    case JsonType::kUint64:
      return "an integer";
    case JsonType::kDouble:
      return "a number";
    case JsonType::kString:
      return "a string";
    case JsonType::kArray:
      return "an array";
    case JsonType::kObject:
      return "an object";
  }
  return "a value";
}

// --- JsonValue ------------------------------------------------------------------------------

JsonType JsonValue::type() const {
  if (IsBlank(bytes_)) return JsonType::kNull;
  switch (Load<Element>(bytes_).type()) {
    case simdjson::dom::element_type::ARRAY:
      return JsonType::kArray;
    case simdjson::dom::element_type::OBJECT:
      return JsonType::kObject;
    case simdjson::dom::element_type::INT64:
      return JsonType::kInt64;
    case simdjson::dom::element_type::UINT64:
      return JsonType::kUint64;
    case simdjson::dom::element_type::DOUBLE:
      return JsonType::kDouble;
    case simdjson::dom::element_type::STRING:
      return JsonType::kString;
    case simdjson::dom::element_type::BOOL:
      return JsonType::kBool;
    case simdjson::dom::element_type::NULL_VALUE:
      return JsonType::kNull;
  }
  return JsonType::kNull;
}

bool JsonValue::IsNumber() const {
  JsonType t = type();
  return t == JsonType::kInt64 || t == JsonType::kUint64 || t == JsonType::kDouble;
}

bool JsonValue::IsInteger() const {
  JsonType t = type();
  return t == JsonType::kInt64 || t == JsonType::kUint64;
}

std::optional<bool> JsonValue::AsBool() const {
  if (!IsBool()) return std::nullopt;
  return Load<Element>(bytes_).get_bool().value_unsafe();
}

// simdjson stores an integer token as int64 when it fits, else as uint64.
std::optional<int64_t> JsonValue::AsInt64() const {
  if (type() != JsonType::kInt64) return std::nullopt;
  return Load<Element>(bytes_).get_int64().value_unsafe();
}

std::optional<uint64_t> JsonValue::AsUint64() const {
  switch (type()) {
    case JsonType::kInt64: {
      int64_t v = Load<Element>(bytes_).get_int64().value_unsafe();
      if (v < 0) return std::nullopt;
      return static_cast<uint64_t>(v);
    }
    case JsonType::kUint64:
      return Load<Element>(bytes_).get_uint64().value_unsafe();
    default:
      return std::nullopt;
  }
}

std::optional<int64_t> JsonValue::AsInt(int64_t min, int64_t max) const {
  std::optional<int64_t> v = AsInt64();
  if (!v || *v < min || *v > max) return std::nullopt;
  return v;
}

std::optional<double> JsonValue::AsDouble() const {
  if (!IsNumber()) return std::nullopt;
  return Load<Element>(bytes_).get_double().value_unsafe();
}

std::optional<std::string_view> JsonValue::AsString() const {
  if (!IsString()) return std::nullopt;
  return Load<Element>(bytes_).get_string().value_unsafe();
}

size_t JsonValue::size() const {
  switch (type()) {
    case JsonType::kArray:
      return Load<Element>(bytes_).get_array().value_unsafe().size();
    case JsonType::kObject:
      return Load<Element>(bytes_).get_object().value_unsafe().size();
    default:
      return 0;
  }
}

JsonRange<JsonValue> JsonValue::Elements() const {
  JsonRange<JsonValue> range;
  if (IsArray()) {
    simdjson::dom::array a = Load<Element>(bytes_).get_array().value_unsafe();
    Store(range.b.bytes_, a.begin());
    Store(range.e.bytes_, a.end());
  }
  return range;
}

JsonRange<JsonMember> JsonValue::Members() const {
  JsonRange<JsonMember> range;
  if (IsObject()) {
    simdjson::dom::object o = Load<Element>(bytes_).get_object().value_unsafe();
    Store(range.b.bytes_, o.begin());
    Store(range.e.bytes_, o.end());
  }
  return range;
}

std::optional<JsonValue> JsonValue::Find(std::string_view key) const {
  if (!IsObject()) return std::nullopt;
  Element found;
  if (Load<Element>(bytes_).get_object().value_unsafe().at_key(key).get(found)) {
    return std::nullopt;
  }
  JsonValue v;
  Store(v.bytes_, found);
  return v;
}

std::optional<JsonValue> JsonValue::At(size_t index) const {
  if (!IsArray()) return std::nullopt;
  Element found;
  if (Load<Element>(bytes_).get_array().value_unsafe().at(index).get(found)) return std::nullopt;
  JsonValue v;
  Store(v.bytes_, found);
  return v;
}

std::string JsonValue::ToJson() const {
  if (IsBlank(bytes_)) return "null";
  return simdjson::to_string(Load<Element>(bytes_));
}

template <>
JsonValue JsonIterator<JsonValue>::operator*() const {
  JsonValue v;
  Store(v.bytes_, *Load<ArrayIt>(bytes_));
  return v;
}
template <>
JsonIterator<JsonValue>& JsonIterator<JsonValue>::operator++() {
  ArrayIt it = Load<ArrayIt>(bytes_);
  ++it;
  Store(bytes_, it);
  return *this;
}
template <>
bool JsonIterator<JsonValue>::operator==(const JsonIterator& other) const {
  return std::memcmp(bytes_, other.bytes_, sizeof(bytes_)) == 0;
}

template <>
JsonMember JsonIterator<JsonMember>::operator*() const {
  ObjectIt it = Load<ObjectIt>(bytes_);
  JsonMember m;
  m.key = it.key();
  Store(m.value.bytes_, it.value());
  return m;
}
template <>
JsonIterator<JsonMember>& JsonIterator<JsonMember>::operator++() {
  ObjectIt it = Load<ObjectIt>(bytes_);
  ++it;
  Store(bytes_, it);
  return *this;
}
template <>
bool JsonIterator<JsonMember>::operator==(const JsonIterator& other) const {
  return std::memcmp(bytes_, other.bytes_, sizeof(bytes_)) == 0;
}

// --- JsonDocument / ParseJson ---------------------------------------------------------------

struct JsonDocument::State {
  simdjson::dom::document document;
};

JsonDocument::JsonDocument() : state_(std::make_unique<State>()) {}
JsonDocument::JsonDocument(JsonDocument&&) noexcept = default;
JsonDocument& JsonDocument::operator=(JsonDocument&&) noexcept = default;
JsonDocument::~JsonDocument() = default;

Result<JsonDocument> ParseJson(std::string_view text, const JsonLimits& limits) {
  if (text.size() > limits.max_bytes) {
    return std::unexpected(
        Error::Of("invalid JSON: larger than " + std::to_string(limits.max_bytes) + " bytes"));
  }
  JsonDocument doc;
  simdjson::dom::parser parser;  // its own size limit (4 GiB) is above ours
  Element root;
  simdjson::error_code code = parser.allocate(text.size(), limits.max_depth);
  if (!code) {
    // The bytes are copied into a padded buffer of the parser (simdjson reads past the end).
    // An empty view may have no data at all (std::string_view()); simdjson copies from the
    // pointer whatever the size, and memcpy from null is undefined (found by the jsonpatch
    // fuzzer).
    const char* data = text.data() != nullptr ? text.data() : "";
    code = parser.parse_into_document(doc.state_->document, data, text.size(), true).get(root);
  }
  if (code) return std::unexpected(Error::Of("invalid JSON: " + Describe(code, limits)));
  Store(doc.root_.bytes_, root);
  return doc;
}

}  // namespace picket::base
