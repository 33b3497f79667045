// DirectorySource: whole states delivered on the loop, a ConfigMap volume's layout read once per
// object, a ConfigMap update (the `..data` link swapped) seen, broken links and link loops
// harmless, and a bad edit reported while the file's last good objects stay.
#include "control/source/directory_source.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "test/control/xds_test_util.h"

namespace picket::control::source {
namespace {

namespace fs = std::filesystem;
using testing::RunUntil;

std::string Pods(int count) {
  std::string out = "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n";
  for (int i = 0; i < count; ++i) {
    out += "---\napiVersion: v1\nkind: Pod\nmetadata: {name: web-" + std::to_string(i) +
           ", namespace: shop, labels: {app: web}}\nspec: {containers: [{name: c, image: x}]}\n"
           "status: {podIP: 10.0.0." +
           std::to_string(i + 1) + "}\n";
  }
  return out;
}

constexpr const char* kPolicy = R"(
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny, namespace: shop}
spec: {podSelector: {}, policyTypes: [Ingress]}
)";

class DirectorySourceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    uv_loop_init(&loop_);
    const char* tmp = std::getenv("TEST_TMPDIR");
    dir_ = fs::path(tmp != nullptr ? tmp : "/tmp") /
           ("directory_source_test_" + std::to_string(getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }

  void TearDown() override {
    if (source_) {
      bool closed = false;
      source_->Close([&] { closed = true; });
      EXPECT_TRUE(RunUntil(&loop_, [&] { return closed; }));
      source_.reset();
    }
    testing::DrainAndCloseLoop(&loop_);
    fs::remove_all(dir_);
  }

  void Write(const fs::path& path, const std::string& text) {
    fs::create_directories(path.parent_path());
    std::ofstream(path) << text;
  }

  // What kubelet's AtomicWriter does for a ConfigMap volume: the keys in a new timestamped
  // directory, `..data` re-pointed at it by a rename, the old directory removed, and a
  // top-level `key -> ..data/key` link per key.
  void PublishConfigMap(const std::string& timestamp,
                        const std::vector<std::pair<std::string, std::string>>& keys) {
    const fs::path data = dir_ / ("..2026_12_07_" + timestamp);
    for (const auto& [key, text] : keys) Write(data / key, text);
    fs::create_directory_symlink(data.filename(), dir_ / "..data_tmp");
    fs::path old;
    if (fs::is_symlink(dir_ / "..data")) old = dir_ / fs::read_symlink(dir_ / "..data");
    fs::rename(dir_ / "..data_tmp", dir_ / "..data");
    if (!old.empty()) fs::remove_all(old);
    for (const auto& [key, text] : keys) {
      if (!fs::is_symlink(dir_ / key)) fs::create_symlink(fs::path("..data") / key, dir_ / key);
    }
  }

  void Start() {
    source_ = std::make_unique<DirectorySource>(dir_.string(), /*debounce_ms=*/5);
    auto started = source_->Start(&loop_, [this](SourceUpdate u) { updates_.push_back(u); });
    ASSERT_TRUE(started.has_value()) << started.error().ToString();
  }

  const SourceUpdate& Last() { return updates_.back(); }

  uv_loop_t loop_;
  fs::path dir_;
  std::unique_ptr<DirectorySource> source_;
  std::vector<SourceUpdate> updates_;
};

TEST_F(DirectorySourceTest, ConfigMapVolumeLoadsEachObjectOnce) {
  PublishConfigMap("00_00_00.123", {{"pods.yaml", Pods(1)}, {"policy.yaml", kPolicy}});
  Start();
  // The first state is delivered during Start().
  ASSERT_EQ(updates_.size(), 1u);
  ASSERT_TRUE(Last().cluster.has_value());
  EXPECT_TRUE(Last().errors.empty()) << base::ToString(Last().errors);
  EXPECT_EQ(Last().cluster->namespaces.size(), 1u);
  EXPECT_EQ(Last().cluster->pods.size(), 1u);
  EXPECT_EQ(Last().cluster->policies.size(), 1u);
  EXPECT_EQ(source_->unit_count(), 2u);
  EXPECT_EQ(Last().parsed, 2u);
}

TEST_F(DirectorySourceTest, ConfigMapUpdateBySwappingDataLinkIsSeen) {
  PublishConfigMap("00_00_00.123", {{"pods.yaml", Pods(1)}, {"policy.yaml", kPolicy}});
  Start();
  ASSERT_EQ(Last().cluster->pods.size(), 1u);
  PublishConfigMap("00_01_00.456", {{"pods.yaml", Pods(3)}, {"policy.yaml", kPolicy}});
  ASSERT_TRUE(RunUntil(
      &loop_, [&] { return Last().cluster.has_value() && Last().cluster->pods.size() == 3; }));
  EXPECT_EQ(Last().parsed, 1u);  // policy.yaml's bytes did not change
  EXPECT_EQ(source_->unit_count(), 2u);
  EXPECT_TRUE(Last().errors.empty()) << base::ToString(Last().errors);
}

TEST_F(DirectorySourceTest, BrokenLinksAreSkipped) {
  Write(dir_ / "pods.yaml", Pods(1));
  fs::create_symlink("nowhere.yaml", dir_ / "dangling.yaml");
  fs::create_symlink(fs::path("..data") / "gone.yaml", dir_ / "gone.yaml");  // no ..data at all
  Start();
  ASSERT_TRUE(Last().cluster.has_value());
  EXPECT_EQ(Last().cluster->pods.size(), 1u);
  EXPECT_TRUE(Last().errors.empty()) << base::ToString(Last().errors);
  EXPECT_EQ(source_->unit_count(), 1u);
}

TEST_F(DirectorySourceTest, LinkLoopsAndAliasesReadEachFileOnce) {
  Write(dir_ / "a" / "pods.yaml", Pods(2));
  fs::create_directory_symlink("..", dir_ / "a" / "up");                 // a loop back to the top
  fs::create_directory_symlink(".", dir_ / "a" / "self");                // a loop onto itself
  fs::create_directory_symlink("a", dir_ / "b");                         // the same directory twice
  fs::create_symlink(fs::path("a") / "pods.yaml", dir_ / "alias.yaml");  // the same file twice
  Start();
  ASSERT_TRUE(Last().cluster.has_value());
  EXPECT_EQ(Last().cluster->pods.size(), 2u);
  EXPECT_TRUE(Last().errors.empty()) << base::ToString(Last().errors);
  EXPECT_EQ(source_->unit_count(), 1u);
}

TEST_F(DirectorySourceTest, BadEditReportsErrorsAndKeepsTheFilesLastGoodObjects) {
  Write(dir_ / "pods.yaml", Pods(1));
  Write(dir_ / "policy.yaml", kPolicy);
  Start();
  const size_t before = updates_.size();
  Write(dir_ / "policy.yaml",
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
        "metadata: {name: deny, namespace: shop}\n"
        "spec: {podSelector: {}, ingress: [{ports: [{port: 70000}]}]}\n");
  ASSERT_TRUE(RunUntil(&loop_, [&] { return updates_.size() > before && !Last().errors.empty(); }));
  EXPECT_FALSE(Last().cluster.has_value());  // nothing that validates changed
  EXPECT_NE(Last().errors[0].ToString().find("policy.yaml"), std::string::npos);
  EXPECT_NE(Last().errors[0].ToString().find("70000"), std::string::npos);
  // Another file's change delivers a state that still holds the old policy.
  Write(dir_ / "pods.yaml", Pods(2));
  ASSERT_TRUE(RunUntil(&loop_, [&] { return Last().cluster.has_value(); }));
  EXPECT_EQ(Last().cluster->pods.size(), 2u);
  EXPECT_EQ(Last().cluster->policies.size(), 1u);
  EXPECT_EQ(Last().errors.size(), 1u);
}

TEST_F(DirectorySourceTest, NoUpdateAfterClose) {
  Write(dir_ / "pods.yaml", Pods(1));
  Start();
  bool closed = false;
  source_->Close([&] { closed = true; });
  const size_t before = updates_.size();
  source_->Refresh();
  EXPECT_EQ(updates_.size(), before);
  ASSERT_TRUE(RunUntil(&loop_, [&] { return closed; }));
  source_.reset();
}

}  // namespace
}  // namespace picket::control::source
