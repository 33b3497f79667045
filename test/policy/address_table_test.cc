#include "policy/address_table.h"

#include <gtest/gtest.h>

#include <map>
#include <random>
#include <string>

namespace picket::policy {
namespace {

IpAddress V4(uint32_t n) {
  const uint8_t b[4] = {static_cast<uint8_t>(n >> 24), static_cast<uint8_t>(n >> 16),
                        static_cast<uint8_t>(n >> 8), static_cast<uint8_t>(n)};
  return IpAddress::V4(b);
}

TEST(AddressTableTest, InsertFindErase) {
  AddressTable<int> t;
  EXPECT_EQ(t.Find(V4(1)), nullptr);
  EXPECT_FALSE(t.Erase(V4(1)));
  EXPECT_EQ(*t.Insert(V4(1), 10), 10);
  EXPECT_EQ(*t.Insert(V4(1), 20), 10) << "existing value kept";
  EXPECT_EQ(*t.Find(V4(1)), 10);
  EXPECT_EQ(t.Find(*IpAddress::Parse("::1")), nullptr);
  EXPECT_TRUE(t.Erase(V4(1)));
  EXPECT_EQ(t.Find(V4(1)), nullptr);
  EXPECT_EQ(t.size(), 0u);
}

// Random inserts and erases against std::map: exercises growth and backward-shift deletion.
TEST(AddressTableTest, MatchesReferenceUnderChurn) {
  AddressTable<uint32_t> t;
  std::map<uint32_t, uint32_t> ref;
  std::mt19937 rng(7);
  for (int step = 0; step < 20000; ++step) {
    const uint32_t key = rng() % 3000;
    if (rng() % 3 == 0) {
      EXPECT_EQ(t.Erase(V4(key)), ref.erase(key) == 1);
    } else {
      t.Insert(V4(key), key * 2);
      ref.emplace(key, key * 2);
    }
    if (step % 997 == 0) {
      for (uint32_t k = 0; k < 3000; ++k) {
        const uint32_t* v = t.Find(V4(k));
        auto it = ref.find(k);
        ASSERT_EQ(v != nullptr, it != ref.end()) << k;
        if (v != nullptr) {
          EXPECT_EQ(*v, it->second);
        }
      }
    }
  }
  EXPECT_EQ(t.size(), ref.size());
}

}  // namespace
}  // namespace picket::policy
