// ParseYamlDocuments: document splitting, line offsets, per-document parse errors, and the
// malformed streams on which yaml-cpp 0.7's LoadAll never returns.
#include "config/yaml_documents.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace picket::config {
namespace {

TEST(YamlDocumentsTest, SplitsAtMarkersAndKeepsFileLines) {
  std::vector<YamlDocument> docs =
      ParseYamlDocuments("a: 1\n---\n# c\nb: 2\n...\n--- {c: 3}\n---\n", "f.yaml");
  ASSERT_EQ(docs.size(), 4u);
  EXPECT_EQ(docs[0].root["a"].Scalar(), "1");
  EXPECT_EQ(docs[0].line_offset, 0);
  EXPECT_EQ(docs[1].root["b"].Scalar(), "2");
  EXPECT_EQ(docs[1].line_offset, 1);
  EXPECT_EQ(docs[1].root["b"].Mark().line + 1 + docs[1].line_offset, 4);
  EXPECT_EQ(docs[2].root["c"].Scalar(), "3");
  EXPECT_EQ(docs[2].line_offset, 5);
  EXPECT_TRUE(docs[3].root.IsNull());  // the trailing empty document
  for (const YamlDocument& d : docs) EXPECT_FALSE(d.parse_error.has_value());
}

TEST(YamlDocumentsTest, MarkersInsideScalarsAreNotSplitPoints) {
  // Only column-0 markers split; indented `---` is scalar content.
  std::vector<YamlDocument> docs = ParseYamlDocuments("a: |\n  x\n  ---\n  y\n", "f.yaml");
  ASSERT_EQ(docs.size(), 1u);
  EXPECT_EQ(docs[0].root["a"].Scalar(), "x\n---\ny\n");
  EXPECT_EQ(ParseYamlDocuments("----\n", "f.yaml").size(), 1u);  // not a marker
}

TEST(YamlDocumentsTest, ABrokenDocumentDoesNotHideTheOthers) {
  std::vector<YamlDocument> docs = ParseYamlDocuments("a: 1\n---\nb: [\n---\nc: 3\n", "f.yaml");
  ASSERT_EQ(docs.size(), 3u);
  EXPECT_FALSE(docs[0].parse_error);
  ASSERT_TRUE(docs[1].parse_error);
  EXPECT_EQ(docs[1].parse_error->file, "f.yaml");
  EXPECT_EQ(docs[1].parse_error->line, 4);
  EXPECT_THAT(docs[1].parse_error->reason, ::testing::StartsWith("YAML parse error: "));
  EXPECT_EQ(docs[2].root["c"].Scalar(), "3");
}

TEST(YamlDocumentsTest, InputsThatHangLoadAllAreErrors) {
  for (const char* text : {",", ",\n", "a: 1\n---\n, 0755, 0x1f, .inf]\nb: *x\n", "- !+(.,.)"}) {
    SCOPED_TRACE(text);
    std::vector<YamlDocument> docs = ParseYamlDocuments(text, "f.yaml");
    bool any_error = false;
    for (const YamlDocument& d : docs) any_error = any_error || d.parse_error.has_value();
    EXPECT_TRUE(any_error);
  }
}

TEST(YamlDocumentsTest, NullDocumentsAreNotErrors) {
  for (const char* text : {"", "\n", "# only\n", "---\n", "--- ~\n", "null\n", "...\n"}) {
    SCOPED_TRACE(text);
    for (const YamlDocument& d : ParseYamlDocuments(text, "f.yaml")) {
      EXPECT_FALSE(d.parse_error.has_value());
      EXPECT_TRUE(d.root.IsNull());
    }
  }
}

}  // namespace
}  // namespace picket::config
