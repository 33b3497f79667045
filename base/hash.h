// base/hash.h — THE content hash of Picket: 64-bit FNV-1a as 16 lowercase hex digits.
//
// Owns: `HashVersion`, the version of anything identified by its content (a pushed resource's
// encoded text, a type's name=version list, a watched file). One definition, so every component
// that shows a version (the control server's /status, a sidecar's /config_dump) shows the same
// one for the same bytes. Not cryptographic: a change detector, never a security boundary.
//
// FNV-1a as specified by Fowler, Noll and Vo (IETF draft-eastlake-fnv): 64-bit offset basis
// 14695981039346656037, prime 1099511628211. Depends on nothing of ours. Pure; any thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace picket::base {

inline constexpr uint64_t kFnv1a64OffsetBasis = 14695981039346656037ull;
inline constexpr uint64_t kFnv1a64Prime = 1099511628211ull;

// The raw 64-bit FNV-1a of `data`.
constexpr uint64_t Fnv1a64(std::string_view data) {
  uint64_t h = kFnv1a64OffsetBasis;
  for (const char c : data) {
    h ^= static_cast<uint8_t>(c);
    h *= kFnv1a64Prime;
  }
  return h;
}

// Fnv1a64(data) as exactly 16 lowercase hex digits ("" → "cbf29ce484222325").
inline std::string HashVersion(std::string_view data) {
  static constexpr char kHex[] = "0123456789abcdef";
  uint64_t h = Fnv1a64(data);
  std::string out(16, '0');
  for (int i = 15; i >= 0; --i, h >>= 4) out[static_cast<size_t>(i)] = kHex[h & 0xF];
  return out;
}

}  // namespace picket::base
