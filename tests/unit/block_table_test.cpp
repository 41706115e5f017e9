#include <catch2/catch.hpp>
#include <map>
#include <random>
#include <unordered_map>
#include <vector>

#include "core/block_table.hpp"

using memsight::core::BlockTable;

namespace {

struct Value {
  uint64_t a = 0;
  uint64_t b = 0;
  bool operator==(const Value&) const = default;
};
using Table = BlockTable<Value>;

// Every entry the table iterates over, by key: each key must come out once.
std::map<uint64_t, Value> contents(const Table& t) {
  std::map<uint64_t, Value> out;
  for (const auto& [key, value] : t) REQUIRE(out.emplace(key, value).second);
  return out;
}

// `n` distinct non-zero keys whose probes start at slot `home` of a table grown to hold what `t` holds.
std::vector<uint64_t> keys_at(const Table& t, size_t home, size_t n, uint64_t from = 1) {
  std::vector<uint64_t> out;
  for (uint64_t k = from; out.size() < n; ++k)
    if (t.home(k) == home) out.push_back(k);
  return out;
}

}  // namespace

TEST_CASE("block table: insert, find, assign, erase", "[block_table]") {
  Table t;
  CHECK(t.find(0x1000) == nullptr);
  CHECK(t.size() == 0);
  CHECK(t.insert_or_assign(0x1000, {1, 2}));
  CHECK(t.insert_or_assign(0x2000, {3, 4}));
  CHECK_FALSE(t.insert_or_assign(0x1000, {5, 6}));  // an existing key is assigned, not added
  CHECK(t.size() == 2);
  REQUIRE(t.find(0x1000) != nullptr);
  CHECK(t.find(0x1000)->value == Value{5, 6});
  CHECK(t.find(0x2000)->value == Value{3, 4});
  CHECK(t.find(0x3000) == nullptr);
  const auto [found, made] = t.try_emplace(0x2000);  // an existing entry, as it is
  CHECK_FALSE(made);
  CHECK(found->value == Value{3, 4});
  const auto [fresh, made_fresh] = t.try_emplace(0x3000);  // a new one, with a default value
  CHECK(made_fresh);
  CHECK(fresh->value == Value{});
  CHECK(t.erase(0x3000));
  CHECK(t.erase(0x1000));
  CHECK_FALSE(t.erase(0x1000));
  CHECK(t.find(0x1000) == nullptr);
  CHECK(t.find(0x2000)->value == Value{3, 4});
  CHECK(t.size() == 1);
  CHECK(contents(t) == std::map<uint64_t, Value>{{0x2000, {3, 4}}});
}

TEST_CASE("block table: key 0 is an entry like any other", "[block_table]") {
  Table t;
  CHECK(t.find(0) == nullptr);
  CHECK(t.insert_or_assign(0, {7, 7}));
  CHECK(t.size() == 1);
  CHECK(t.find(0)->value == Value{7, 7});
  CHECK(t.find(1) == nullptr);
  CHECK(t.insert_or_assign(1, {1, 1}));
  CHECK(contents(t) == std::map<uint64_t, Value>{{0, {7, 7}}, {1, {1, 1}}});
  for (uint64_t k = 2; k < 1000; ++k) t.insert_or_assign(k, {k, k});  // grows: key 0 moves along
  CHECK(t.find(0)->value == Value{7, 7});
  CHECK(t.erase(0));
  CHECK(t.find(0) == nullptr);
  CHECK(t.size() == 999);
}

TEST_CASE("block table: grows by half past 4/5 load and keeps every entry", "[block_table]") {
  Table t;
  size_t last_capacity = 0;
  for (uint64_t k = 1; k <= 100'000; ++k) {
    t.insert_or_assign(k * 16, {k, 0});
    if (t.capacity() != last_capacity) {
      if (last_capacity) CHECK(t.capacity() == last_capacity + last_capacity / 2);
      last_capacity = t.capacity();
    }
    REQUIRE(t.size() * 5 <= t.capacity() * 4);
  }
  CHECK(t.capacity() >= Table::kMinCapacity);
  for (uint64_t k = 1; k <= 100'000; ++k) {
    const auto* s = t.find(k * 16);
    REQUIRE(s != nullptr);
    REQUIRE(s->value.a == k);
  }
  // The bound the tracker relies on: at most 60 bytes per entry of a 32-byte slot, load >= 0.53.
  CHECK(double(t.memory_bytes()) / double(t.size()) <= 61.0);
}

TEST_CASE("block table: erasing inside a probe chain keeps the rest findable", "[block_table]") {
  Table t;
  t.insert_or_assign(1, {});  // allocates the smallest table; home() depends on the capacity
  t.erase(1);
  REQUIRE(t.capacity() == Table::kMinCapacity);
  const size_t last = t.capacity() - 1;

  SECTION("a chain at one home: erase its first, middle and last") {
    const auto keys = keys_at(t, 3, 4);
    const auto displaced = keys_at(t, 4, 1).front();  // home 4, pushed past the chain to slot 7
    for (uint64_t k : keys) t.insert_or_assign(k, {k, 0});
    t.insert_or_assign(displaced, {displaced, 0});
    REQUIRE(t.capacity() == Table::kMinCapacity);
    for (uint64_t gone : {keys[0], keys[2], keys[3]}) {
      t.erase(gone);
      CHECK(t.find(gone) == nullptr);
    }
    CHECK(t.find(keys[1])->value.a == keys[1]);
    CHECK(t.find(displaced)->value.a == displaced);
    CHECK(contents(t).size() == 2);
  }
  SECTION("a chain that wraps from the last slot to the first") {
    const auto keys = keys_at(t, last, 3);
    const auto at_zero = keys_at(t, 0, 1).front();
    for (uint64_t k : keys) t.insert_or_assign(k, {k, 0});  // slots last, 0, 1
    t.insert_or_assign(at_zero, {at_zero, 0});              // home 0, lands in slot 2
    t.erase(keys[0]);
    for (uint64_t k : {keys[1], keys[2], at_zero}) CHECK(t.find(k)->value.a == k);
    t.erase(keys[1]);
    for (uint64_t k : {keys[2], at_zero}) CHECK(t.find(k)->value.a == k);
    CHECK(t.size() == 2);
  }
  SECTION("an entry at its home is not moved, one behind it is") {
    const auto a = keys_at(t, 5, 2);  // slots 5, 6
    const auto b = keys_at(t, 7, 1);                // home 7, at its home
    const auto c = keys_at(t, 5, 1, a.back() + 1);  // home 5, at slot 8: must move back, past b
    for (uint64_t k : {a[0], a[1], b[0], c[0]}) t.insert_or_assign(k, {k, 0});
    t.erase(a[1]);
    for (uint64_t k : {a[0], b[0], c[0]}) CHECK(t.find(k)->value.a == k);
    t.erase(a[0]);
    for (uint64_t k : {b[0], c[0]}) CHECK(t.find(k)->value.a == k);
  }
}

TEST_CASE("block table: random operations agree with std::unordered_map", "[block_table]") {
  std::mt19937_64 rng(GENERATE(1, 2, 3));
  Table t;
  std::unordered_map<uint64_t, Value> model;
  // Few distinct keys (hits and re-insertions are common), key 0 among them, 16-byte steps like addresses.
  const auto key = [&] { return rng() % 3000 * 16; };
  for (int op = 0; op < 200'000; ++op) {
    const uint64_t k = key();
    switch (rng() % 4) {
      case 0:
      case 1: {
        const Value v{rng(), uint64_t(op)};
        REQUIRE(t.insert_or_assign(k, v) == model.insert_or_assign(k, v).second);
        break;
      }
      case 2:
        REQUIRE(t.erase(k) == (model.erase(k) == 1));
        break;
      case 3: {
        const auto* s = t.find(k);
        const auto m = model.find(k);
        REQUIRE((s != nullptr) == (m != model.end()));
        if (s) REQUIRE(s->value == m->second);
        break;
      }
    }
    REQUIRE(t.size() == model.size());
    if (op % 20'000 == 0) REQUIRE(contents(t) == std::map<uint64_t, Value>(model.begin(), model.end()));
  }
  REQUIRE(contents(t) == std::map<uint64_t, Value>(model.begin(), model.end()));
}
