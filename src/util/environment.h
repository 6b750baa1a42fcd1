#pragma once
// An invocation's environment: "KEY=VALUE" entries kept one after the other in one buffer,
// each followed by a NUL, which is the layout WASI's environ_get writes into the guest. A
// request's variables are added in place (no string per variable) and a function version's
// own variables are joined once, when the version is activated, and appended with one copy.

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <iterator>
#include <string>
#include <string_view>
#include <vector>

namespace tern {

class Environment {
 public:
  Environment() = default;
  Environment(std::initializer_list<std::string_view> entries) {
    for (std::string_view e : entries) add(e);
  }
  explicit Environment(const std::vector<std::string>& entries) {
    for (const auto& e : entries) add(e);
  }

  // `entry` is "KEY=VALUE". An entry ends at its first NUL, as the guest would read it: what
  // follows a NUL is dropped, so it can never become a variable of its own.
  void add(std::string_view entry) { put(untilNul(entry), {}, 0); }
  void add(std::string_view key, std::string_view value) {
    if (untilNul(key).size() != key.size()) return add(key);
    put(key, untilNul(value), 1);
  }
  void append(const Environment& other) {
    bytes_.append(other.bytes_);
    count_ += other.count_;
  }
  void reserve(size_t bytes) { bytes_.reserve(bytes); }

  size_t size() const { return count_; }
  bool empty() const { return count_ == 0; }
  // Every entry followed by its NUL.
  std::string_view bytes() const { return bytes_; }

  // The entries in order, without their NULs.
  class const_iterator {
   public:
    using iterator_category = std::forward_iterator_tag;
    using value_type = std::string_view;
    using difference_type = std::ptrdiff_t;
    using pointer = const std::string_view*;
    using reference = std::string_view;
    const_iterator() = default;
    std::string_view operator*() const { return std::string_view(at_); }
    const_iterator& operator++() {
      at_ += std::char_traits<char>::length(at_) + 1;
      return *this;
    }
    const_iterator operator++(int) {
      auto before = *this;
      ++*this;
      return before;
    }
    bool operator==(const const_iterator& o) const { return at_ == o.at_; }

   private:
    friend class Environment;
    explicit const_iterator(const char* at) : at_(at) {}
    const char* at_ = nullptr;
  };
  const_iterator begin() const { return const_iterator(bytes_.data()); }
  const_iterator end() const { return const_iterator(bytes_.data() + bytes_.size()); }

  std::vector<std::string> list() const { return {begin(), end()}; }

  bool operator==(const Environment& o) const { return bytes_ == o.bytes_; }

 private:
  static std::string_view untilNul(std::string_view s) {
    const void* nul = s.empty() ? nullptr : std::memchr(s.data(), '\0', s.size());
    return nul ? s.substr(0, static_cast<size_t>(static_cast<const char*>(nul) - s.data())) : s;
  }
  // Appends key, '=' (when `equals`), value and the NUL with one resize: on every request
  // this runs once per variable.
  void put(std::string_view key, std::string_view value, size_t equals) {
    size_t at = bytes_.size();
    bytes_.resize(at + key.size() + equals + value.size() + 1);
    char* p = bytes_.data() + at;
    if (!key.empty()) std::memcpy(p, key.data(), key.size());
    p += key.size();
    if (equals) *p++ = '=';
    if (!value.empty()) std::memcpy(p, value.data(), value.size());
    p[value.size()] = '\0';
    ++count_;
  }

  std::string bytes_;
  size_t count_ = 0;
};

}  // namespace tern
