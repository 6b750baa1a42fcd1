#pragma once
// An invocation's environment: "KEY=VALUE" entries kept one after the other in one buffer,
// each followed by a NUL, which is the layout WASI's environ_get writes into the guest. A
// request's variables are added in place (no string per variable) and a function version's
// own variables are joined once, when the version is activated, and appended with one copy.
// The buffer is tern's own (not a std::string, whose resize fills every new byte before the
// copy does): each variable is written with its copies alone.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <algorithm>
#include <initializer_list>
#include <iterator>
#include <new>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tern {

class Environment {
 public:
  Environment() = default;
  Environment(const Environment& o) { append(o); }
  Environment(Environment&& o) noexcept
      : data_(std::exchange(o.data_, nullptr)),
        size_(std::exchange(o.size_, 0)),
        capacity_(std::exchange(o.capacity_, 0)),
        count_(std::exchange(o.count_, 0)) {}
  Environment& operator=(const Environment& o) {
    if (this != &o) {
      size_ = count_ = 0;
      append(o);
    }
    return *this;
  }
  Environment& operator=(Environment&& o) noexcept {
    if (this != &o) {
      std::free(data_);
      data_ = std::exchange(o.data_, nullptr);
      size_ = std::exchange(o.size_, 0);
      capacity_ = std::exchange(o.capacity_, 0);
      count_ = std::exchange(o.count_, 0);
    }
    return *this;
  }
  ~Environment() { std::free(data_); }
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
    if (other.size_ == 0) return;
    std::memcpy(grow(other.size_), other.data_, other.size_);
    count_ += other.count_;
  }
  void reserve(size_t bytes) {
    if (bytes > capacity_) reallocate(bytes);
  }

  size_t size() const { return count_; }
  bool empty() const { return count_ == 0; }
  // Every entry followed by its NUL.
  std::string_view bytes() const { return {data_, size_}; }

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
  const_iterator begin() const { return const_iterator(data_); }
  const_iterator end() const { return const_iterator(data_ + size_); }

  std::vector<std::string> list() const { return {begin(), end()}; }

  bool operator==(const Environment& o) const { return bytes() == o.bytes(); }

 private:
  static std::string_view untilNul(std::string_view s) {
    const void* nul = s.empty() ? nullptr : std::memchr(s.data(), '\0', s.size());
    return nul ? s.substr(0, static_cast<size_t>(static_cast<const char*>(nul) - s.data())) : s;
  }
  // Appends key, '=' (when `equals`), value and the NUL: on every request this runs once per
  // variable.
  void put(std::string_view key, std::string_view value, size_t equals) {
    char* p = grow(key.size() + equals + value.size() + 1);
    if (!key.empty()) std::memcpy(p, key.data(), key.size());
    p += key.size();
    if (equals) *p++ = '=';
    if (!value.empty()) std::memcpy(p, value.data(), value.size());
    p[value.size()] = '\0';
    ++count_;
  }
  // Room for `n` more bytes, counted as used; where they begin.
  char* grow(size_t n) {
    if (capacity_ - size_ < n) reallocate(std::max(size_ + n, 2 * capacity_));
    char* at = data_ + size_;
    size_ += n;
    return at;
  }
  [[gnu::noinline]] void reallocate(size_t capacity) {
    void* p = std::realloc(data_, capacity);
    if (!p) throw std::bad_alloc();
    data_ = static_cast<char*>(p);
    capacity_ = capacity;
  }

  char* data_ = nullptr;
  size_t size_ = 0;
  size_t capacity_ = 0;
  size_t count_ = 0;
};

}  // namespace tern
