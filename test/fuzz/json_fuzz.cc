// libFuzzer target for base/json.h: bytes → ParseJson → every value visited (and each object
// read through JsonFields) → JsonWriter → ParseJson again. Whatever the input, parsing returns a
// value or an error; a parsed value re-written by the writer reads back as the same text.
// Build and run: test/fuzz/build_json.sh run json 60
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "base/json.h"
#include "base/json_fields.h"

namespace {

using picket::base::JsonType;
using picket::base::JsonValue;
using picket::base::JsonWriter;

// Writes `v` through the writer's typed calls (not Value()), so every writer path is used.
void Rewrite(JsonWriter& w, const JsonValue& v, picket::base::Errors& errors) {
  switch (v.type()) {
    case JsonType::kObject: {
      picket::base::JsonFields fields(v, "o", &errors);
      w.BeginObject();
      for (const picket::base::JsonMember& m : v.Members()) {
        (void)fields.Value(m.key);
        w.Key(m.key);
        Rewrite(w, m.value, errors);
      }
      fields.Finish();
      w.EndObject();
      break;
    }
    case JsonType::kArray:
      w.BeginArray();
      for (const JsonValue& item : v.Elements()) Rewrite(w, item, errors);
      w.EndArray();
      break;
    case JsonType::kString:
      w.String(*v.AsString());
      break;
    case JsonType::kInt64:
      w.Int(*v.AsInt64());
      break;
    case JsonType::kUint64:
      w.Uint(*v.AsUint64());
      break;
    case JsonType::kDouble:
      w.Double(*v.AsDouble());
      break;
    case JsonType::kBool:
      w.Bool(*v.AsBool());
      break;
    case JsonType::kNull:
      w.Null();
      break;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  auto doc = picket::base::ParseJson(input, {.max_bytes = 1 << 20, .max_depth = 64});
  if (!doc) {
    if (doc.error().reason.empty()) abort();
    return 0;
  }
  picket::base::Errors errors;
  JsonWriter w;
  Rewrite(w, doc->root(), errors);
  const std::string text = w.Take();
  auto again = picket::base::ParseJson(text, {.max_bytes = 8 << 20, .max_depth = 64});
  if (!again) abort();
  // Doubles may print differently from their input spelling, but the writer's own text is a
  // fixed point.
  JsonWriter w2;
  Rewrite(w2, again->root(), errors);
  if (w2.Take() != text) abort();
  if (again->root().ToJson().size() == 0) abort();
  return 0;
}
