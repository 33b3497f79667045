#include "control/flags.h"

#include <gtest/gtest.h>

#include <CLI/CLI.hpp>

#include "config/document.h"

namespace picket::control {
namespace {

std::vector<std::string> Reversed(std::vector<std::string> args) {
  return {args.rbegin(), args.rend()};
}

// --output yaml: the JSON document as YAML that reads back (yaml-cpp, Kubernetes' scalar rules)
// as the very same document — strings that look like numbers, booleans or null stay strings.
TEST(FlagsTest, JsonAsYamlReadsBackAsTheSameDocument) {
  const std::string json =
      R"({"probes":[{"from":"x/a","to":"y/b","port":80,"protocol":"TCP","allowed":true}],)"
      R"("tricky":["true","80","","null","a: b","- x","#c","yes","0x1F","1e3"],"none":null,)"
      R"("empty":{},"list":[],"nested":[[1,2],[]],"neg":-5,"text":"line1\nline2"})";
  const std::string yaml = JsonAsYaml(json);
  EXPECT_EQ(yaml.rfind("probes:\n", 0), 0u) << "block style, key order kept: " << yaml;
  EXPECT_NE(yaml.find("probes:\n- from: x/a\n  to: y/b\n  port: 80\n  protocol: TCP\n"
                      "  allowed: true\n"),
            std::string::npos)
      << yaml;
  auto back = config::ParseYamlDocuments(yaml, "out.yaml");
  ASSERT_TRUE(back.has_value()) << back.error().ToString() << "\n" << yaml;
  ASSERT_EQ(back->size(), 1u);
  auto want = config::ParseJson(json, "in.json");
  ASSERT_TRUE(want.has_value());
  EXPECT_EQ((*back)[0], *want) << yaml;
  EXPECT_EQ(JsonAsYaml("not json"), "not json");
}

TEST(FlagsTest, FilesRepeatAndTakeEveryValue) {
  CLI::App app;
  std::vector<std::string> files;
  std::string ports;
  AddFilesFlag(app, &files);
  app.add_option("--ports", ports);
  app.parse(Reversed({"-f", "a.yaml", "dir", "--ports", "80,81", "--file=b", "-f", "c"}));
  EXPECT_EQ(files, (std::vector<std::string>{"a.yaml", "dir", "b", "c"}));
  EXPECT_EQ(ports, "80,81");
}

TEST(FlagsTest, FilesAreRequiredAndNeedAValue) {
  CLI::App app;
  std::vector<std::string> files;
  AddFilesFlag(app, &files);
  EXPECT_THROW(app.parse(Reversed({})), CLI::RequiredError);
  app.clear();
  EXPECT_THROW(app.parse(Reversed({"-f"})), CLI::ArgumentMismatch);
}

}  // namespace
}  // namespace picket::control
