// policy/address_table.h — a flat open-addressing hash table keyed by IpAddress.
//
// Owns: the address → value map on every lookup path (the snapshot's address map, the cluster's
// address index). One contiguous array with linear probing (load ≤ 1/2) and backward-shift
// deletion: a lookup is usually one cache line, unlike a node-based std::unordered_map.
// Thread-compatible: concurrent const lookups are safe; mutation needs exclusive access.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "policy/ip_address.h"

namespace picket::policy {

template <typename V>
class AddressTable {
 public:
  // Inserts if absent; returns the value stored for `key` (the existing one if present).
  V* Insert(const IpAddress& key, V value) {
    if ((size_ + 1) * 2 > slots_.size()) Grow();
    size_t i = Home(key);
    while (slots_[i].used) {
      if (slots_[i].key == key) return &slots_[i].value;
      i = (i + 1) & mask_;
    }
    slots_[i] = Slot{key, true, value};
    ++size_;
    return &slots_[i].value;
  }

  const V* Find(const IpAddress& key) const {
    if (size_ == 0) return nullptr;
    for (size_t i = Home(key);; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (!s.used) return nullptr;
      if (s.key == key) return &s.value;
    }
  }

  bool Erase(const IpAddress& key) {
    if (size_ == 0) return false;
    size_t i = Home(key);
    while (true) {
      if (!slots_[i].used) return false;
      if (slots_[i].key == key) break;
      i = (i + 1) & mask_;
    }
    // Backward-shift: pull later members of the probe run into the hole so lookups never stop
    // early at it.
    size_t hole = i;
    for (size_t j = (i + 1) & mask_; slots_[j].used; j = (j + 1) & mask_) {
      const size_t home = Home(slots_[j].key);
      const bool movable = hole <= j ? (home <= hole || home > j) : (home <= hole && home > j);
      if (movable) {
        slots_[hole] = slots_[j];
        hole = j;
      }
    }
    slots_[hole].used = false;
    --size_;
    return true;
  }

  size_t size() const { return size_; }

 private:
  struct Slot {
    IpAddress key;
    bool used = false;  // in the key's padding: a slot is the key and the value, no more
    V value{};
  };

  size_t Home(const IpAddress& key) const { return IpAddressHash()(key) & mask_; }

  void Grow() {
    std::vector<Slot> old = std::move(slots_);
    slots_.assign(old.empty() ? 16 : old.size() * 2, Slot{});
    mask_ = slots_.size() - 1;
    size_ = 0;
    for (const Slot& s : old) {
      if (s.used) Insert(s.key, s.value);
    }
  }

  std::vector<Slot> slots_;
  size_t mask_ = 0;
  size_t size_ = 0;
};

}  // namespace picket::policy
