// PrometheusText writes text format 0.0.4: HELP/TYPE lines, escaped label values and help, and
// values Prometheus reads; the test's checker (prometheus_check.h) accepts it and refuses the
// malformed texts it is meant to catch.
#include "base/prometheus_text.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "base/version.h"
#include "test/base/prometheus_check.h"

namespace picket::base {
namespace {

using testing::CheckPrometheusText;

TEST(PrometheusTextTest, FamiliesSamplesAndEscapes) {
  PrometheusText p;
  p.Single("a_total", "counter", "Plain help.", 3);
  p.Family("b", "gauge", "Help with a \\ backslash\nand a line feed.");
  p.Sample(uint64_t{1}, {{"kind", "Pod"}});
  p.Sample(uint64_t{2}, {{"kind", "quote \" back \\ lf \n end"}, {"code", "429"}});
  p.Family("c_seconds", "gauge", "Doubles.");
  p.Sample(0.25, {{"k", "x"}});
  p.Sample(std::numeric_limits<double>::infinity(), {{"k", "y"}});
  p.Sample(std::nan(""), {{"k", "z"}});
  const std::string text = p.Take();
  EXPECT_EQ(text,
            "# HELP a_total Plain help.\n"
            "# TYPE a_total counter\n"
            "a_total 3\n"
            "# HELP b Help with a \\\\ backslash\\nand a line feed.\n"
            "# TYPE b gauge\n"
            "b{kind=\"Pod\"} 1\n"
            "b{kind=\"quote \\\" back \\\\ lf \\n end\",code=\"429\"} 2\n"
            "# HELP c_seconds Doubles.\n"
            "# TYPE c_seconds gauge\n"
            "c_seconds{k=\"x\"} 0.25\n"
            "c_seconds{k=\"y\"} +Inf\n"
            "c_seconds{k=\"z\"} NaN\n");
  EXPECT_EQ(CheckPrometheusText(text), "");
}

TEST(PrometheusTextTest, BuildInfoIsAGaugeOfOneWithVersionAndRevision) {
  PrometheusText p;
  const std::string text = p.BuildInfo().Take();
  EXPECT_EQ(text,
            "# HELP picket_build_info Always 1; the labels say which build of Picket this "
            "process runs.\n# TYPE picket_build_info gauge\npicket_build_info{version=\"" +
                std::string(Version()) + "\",revision=\"" + std::string(GitCommit()) + "\"} 1\n");
  EXPECT_EQ(CheckPrometheusText(text), "");
}

TEST(PrometheusTextTest, CheckerRefusesMalformedText) {
  const std::string head = "# HELP m h\n# TYPE m gauge\n";
  EXPECT_EQ(CheckPrometheusText(head + "m 1\n"), "");
  EXPECT_EQ(CheckPrometheusText(head + "m{a=\"x\"} 1 1700000000000\n"), "");
  EXPECT_NE(CheckPrometheusText(head + "m 1"), "");                          // no final LF
  EXPECT_NE(CheckPrometheusText(head + "m{a=\"x\\t\"} 1\n"), "");            // bad escape
  EXPECT_NE(CheckPrometheusText(head + "m{a=\"x\"\"} 1\n"), "");             // stray quote
  EXPECT_NE(CheckPrometheusText(head + "m{a=\"x\",a=\"y\"} 1\n"), "");       // duplicate label
  EXPECT_NE(CheckPrometheusText(head + "m{1a=\"x\"} 1\n"), "");              // bad label name
  EXPECT_NE(CheckPrometheusText(head + "m one\n"), "");                      // bad value
  EXPECT_NE(CheckPrometheusText(head + "m 0x10\n"), "");                     // hex is not a value
  EXPECT_NE(CheckPrometheusText(head + "n 1\n"), "");                        // outside its family
  EXPECT_NE(CheckPrometheusText(head + "m 1\nm 2\n"), "");                   // duplicate series
  EXPECT_NE(CheckPrometheusText(head + "m 1\n" + head + "m 2\n"), "");       // family twice
  EXPECT_NE(CheckPrometheusText("# TYPE m gauge\nm 1\n"), "");               // TYPE without HELP
  EXPECT_NE(CheckPrometheusText("# HELP m h\n# TYPE m gauge2\nm 1\n"), "");  // unknown type
  EXPECT_NE(CheckPrometheusText("# HELP m a\\x\n# TYPE m gauge\n"), "");     // bad HELP escape
  EXPECT_NE(CheckPrometheusText(head + "\nm 1\n"), "");                      // blank line
}

}  // namespace
}  // namespace picket::base
