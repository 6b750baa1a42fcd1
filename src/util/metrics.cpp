#include "util/metrics.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace tern {

namespace {

// The hot path promises lock-free updates; a platform where double atomics take a lock would
// silently break that promise.
static_assert(std::atomic<double>::is_always_lock_free);
static_assert(std::atomic<uint64_t>::is_always_lock_free);

// Adds `d` to `a` with a compare-exchange loop. libstdc++ has atomic<double>::fetch_add since
// GCC 10, but it compiles to the same loop and this keeps us independent of library support.
void atomicAdd(std::atomic<double>& a, double d) {
  double cur = a.load(std::memory_order_relaxed);
  while (!a.compare_exchange_weak(cur, cur + d, std::memory_order_relaxed,
                                  std::memory_order_relaxed)) {
  }
}

// A registration the registry cannot render correctly. Debug builds stop here so the mistake
// is found where it is made; release builds carry on with a detached metric.
void registrationError([[maybe_unused]] const std::string& what) {
#ifndef NDEBUG
  std::fprintf(stderr, "tern: metrics registration error: %s\n", what.c_str());
  std::abort();
#endif
}

bool isMetricName(std::string_view s) {
  if (s.empty()) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
              (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

bool isLabelName(std::string_view s) {
  if (s.empty() || s.starts_with("__")) return false;  // `__` names are reserved
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
              (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

// Length of the well-formed UTF-8 sequence at the start of `s`, or 0 if it is not one
// (Unicode table 3-7: no overlong forms, no surrogates, nothing above U+10FFFF).
size_t utf8SequenceLength(std::string_view s) {
  auto byte = [&](size_t i) { return static_cast<unsigned char>(s[i]); };
  auto cont = [&](size_t i, unsigned char lo, unsigned char hi) {
    return i < s.size() && byte(i) >= lo && byte(i) <= hi;
  };
  unsigned char b = byte(0);
  if (b < 0x80) return 1;
  if (b >= 0xC2 && b <= 0xDF) return cont(1, 0x80, 0xBF) ? 2 : 0;
  if (b == 0xE0) return cont(1, 0xA0, 0xBF) && cont(2, 0x80, 0xBF) ? 3 : 0;
  if ((b >= 0xE1 && b <= 0xEC) || b == 0xEE || b == 0xEF)
    return cont(1, 0x80, 0xBF) && cont(2, 0x80, 0xBF) ? 3 : 0;
  if (b == 0xED) return cont(1, 0x80, 0x9F) && cont(2, 0x80, 0xBF) ? 3 : 0;
  if (b == 0xF0) return cont(1, 0x90, 0xBF) && cont(2, 0x80, 0xBF) && cont(3, 0x80, 0xBF) ? 4 : 0;
  if (b >= 0xF1 && b <= 0xF3)
    return cont(1, 0x80, 0xBF) && cont(2, 0x80, 0xBF) && cont(3, 0x80, 0xBF) ? 4 : 0;
  if (b == 0xF4) return cont(1, 0x80, 0x8F) && cont(2, 0x80, 0xBF) && cont(3, 0x80, 0xBF) ? 4 : 0;
  return 0;
}

enum class Quote { kEscape, kKeep };

// Appends `s` escaped for the text format: backslash and newline always, double quote in label
// values. The format requires UTF-8, and one malformed label value would make a scraper reject
// the whole page, so invalid bytes become U+FFFD.
void appendEscaped(std::string& out, std::string_view s, Quote quote) {
  while (!s.empty()) {
    size_t n = utf8SequenceLength(s);
    if (n == 0) {
      out += "\xEF\xBF\xBD";
      s.remove_prefix(1);
      continue;
    }
    if (n == 1) {
      char c = s[0];
      if (c == '\\') {
        out += "\\\\";
      } else if (c == '\n') {
        out += "\\n";
      } else if (c == '"' && quote == Quote::kEscape) {
        out += "\\\"";
      } else {
        out += c;
      }
    } else {
      out.append(s.substr(0, n));
    }
    s.remove_prefix(n);
  }
}

// A sample value or bucket bound, spelled as the Go and Python Prometheus clients spell it
// (Go's strconv 'g' with shortest precision: exponent form below 1e-4 and from 1e6 on). Bucket
// bounds become `le` label values, and a server that compares them as strings only sums
// buckets across clients when they agree, e.g. on "0.0001" rather than "1e-04".
std::string formatDouble(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[64];
  char* end = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::scientific).ptr;
  // "d[.ddd]e[+-]dd": to_chars writes at least two exponent digits, as Go does.
  const char* e = std::find(buf, end, 'e');
  int exp = 0;
  if (e + 2 < end) std::from_chars(e + 2, end, exp);
  if (e + 1 < end && e[1] == '-') exp = -exp;
  if (exp < -4 || exp >= 6) return std::string(buf, end);
  end = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::fixed).ptr;
  return std::string(buf, end);
}

// `{a="x",b="y"}` (plus `le` for buckets); nothing at all for an empty label set.
void appendLabels(std::string& out, const Labels& labels, const std::string* le = nullptr) {
  if (labels.empty() && le == nullptr) return;
  out += '{';
  bool first = true;
  for (const auto& [k, v] : labels) {
    if (!first) out += ',';
    first = false;
    out += k;
    out += "=\"";
    appendEscaped(out, v, Quote::kEscape);
    out += '"';
  }
  if (le != nullptr) {
    if (!first) out += ',';
    out += "le=\"";
    out += *le;
    out += '"';
  }
  out += '}';
}

void appendSample(std::string& out, const std::string& name, std::string_view suffix,
                  const Labels& labels, const std::string& value,
                  const std::string* le = nullptr) {
  out += name;
  out += suffix;
  appendLabels(out, labels, le);
  out += ' ';
  out += value;
  out += '\n';
}

}  // namespace

void Gauge::set(double v) { value_.store(v, std::memory_order_relaxed); }

void Gauge::add(double d) { atomicAdd(value_, d); }

double Gauge::value() const { return value_.load(std::memory_order_relaxed); }

Histogram::Histogram(std::vector<double> upperBounds) : bounds_(std::move(upperBounds)) {
  std::erase_if(bounds_, [](double b) { return !std::isfinite(b); });
  std::sort(bounds_.begin(), bounds_.end());
  bounds_.erase(std::unique(bounds_.begin(), bounds_.end()), bounds_.end());
  buckets_ = std::make_unique<std::atomic<uint64_t>[]>(bounds_.size() + 1);
}

void Histogram::observe(double v) {
  // Prometheus buckets are `le` (v <= bound): the first bound not less than v.
  size_t i = bounds_.size();
  if (!std::isnan(v)) {
    i = static_cast<size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin());
  }
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  atomicAdd(sum_, v);
}

Histogram::Snapshot Histogram::snapshot() const {
  Snapshot s;
  s.bounds = bounds_;
  s.cumulative.reserve(bounds_.size() + 1);
  uint64_t total = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    total += buckets_[i].load(std::memory_order_relaxed);
    s.cumulative.push_back(total);
  }
  s.count = total;
  s.sum = sum_.load(std::memory_order_relaxed);
  return s;
}

std::vector<double> latencyBuckets() {
  return {1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2,
          2.5e-2, 5e-2, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
}

// One label set's metric; exactly one of the pointers is set, matching the family's type.
struct MetricsRegistry::Series {
  std::unique_ptr<Counter> counter;
  std::unique_ptr<Gauge> gauge;
  std::unique_ptr<Histogram> histogram;
};

struct MetricsRegistry::Family {
  std::string help;
  Type type;
  std::vector<double> bounds;  // histograms: the bounds every series of the family uses
  std::map<Labels, std::unique_ptr<Series>> series;
};

MetricsRegistry::MetricsRegistry() = default;
MetricsRegistry::~MetricsRegistry() = default;

std::unique_ptr<MetricsRegistry::Series> MetricsRegistry::makeSeries(
    Type type, const std::vector<double>& bounds) {
  auto s = std::make_unique<Series>();
  switch (type) {
    case Type::kCounter: s->counter = std::make_unique<Counter>(); break;
    case Type::kGauge: s->gauge = std::make_unique<Gauge>(); break;
    case Type::kHistogram: s->histogram = std::make_unique<Histogram>(bounds); break;
  }
  return s;
}

MetricsRegistry::Series& MetricsRegistry::detached(Type type, const std::vector<double>& bounds) {
  retired_.push_back(makeSeries(type, bounds));
  return *retired_.back();
}

MetricsRegistry::Series& MetricsRegistry::series(const std::string& name, const std::string& help,
                                                 Type type, const Labels& labels,
                                                 const std::vector<double>& bounds) {
  if (!isMetricName(name)) {
    registrationError("invalid metric name '" + name + "'");
    return detached(type, bounds);
  }
  // Labels are kept sorted by name so that {a,b} and {b,a} are one series.
  Labels key = labels;
  std::stable_sort(key.begin(), key.end(),
                   [](const auto& x, const auto& y) { return x.first < y.first; });
  for (size_t i = 0; i < key.size(); ++i) {
    const std::string& k = key[i].first;
    if (!isLabelName(k) || (type == Type::kHistogram && k == "le")) {
      registrationError("invalid label name '" + k + "' in metric '" + name + "'");
      return detached(type, bounds);
    }
    if (i > 0 && key[i - 1].first == k) {
      registrationError("label '" + k + "' given twice in metric '" + name + "'");
      return detached(type, bounds);
    }
  }

  auto it = families_.find(name);
  if (it == families_.end()) {
    auto f = std::make_unique<Family>();
    f->help = help;
    f->type = type;
    f->bounds = bounds;
    it = families_.emplace(name, std::move(f)).first;
  } else if (it->second->type != type) {
    registrationError("metric '" + name + "' is already registered with another type");
    return detached(type, bounds);
  }
  Family& family = *it->second;

  auto sit = family.series.find(key);
  if (sit == family.series.end()) {
    sit = family.series.emplace(std::move(key), makeSeries(type, family.bounds)).first;
  }
  return *sit->second;
}

Counter& MetricsRegistry::counter(const std::string& name, const std::string& help,
                                  const Labels& labels) {
  MutexLock lock(mu_);
  return *series(name, help, Type::kCounter, labels, {}).counter;
}

Gauge& MetricsRegistry::gauge(const std::string& name, const std::string& help,
                              const Labels& labels) {
  MutexLock lock(mu_);
  return *series(name, help, Type::kGauge, labels, {}).gauge;
}

Histogram& MetricsRegistry::histogram(const std::string& name, const std::string& help,
                                      const Labels& labels, const std::vector<double>& bounds) {
  MutexLock lock(mu_);
  return *series(name, help, Type::kHistogram, labels, bounds).histogram;
}

void MetricsRegistry::removeSeries(const std::string& key, const std::string& value) {
  MutexLock lock(mu_);
  for (auto& [name, family] : families_) {
    for (auto it = family->series.begin(); it != family->series.end();) {
      const Labels& labels = it->first;
      bool match = std::any_of(labels.begin(), labels.end(), [&](const auto& kv) {
        return kv.first == key && kv.second == value;
      });
      if (!match) {
        ++it;
        continue;
      }
      retired_.push_back(std::move(it->second));
      it = family->series.erase(it);
    }
  }
}

std::string MetricsRegistry::render() const {
  MutexLock lock(mu_);
  std::string out;
  for (const auto& [name, family] : families_) {
    if (family->series.empty()) continue;  // every series removed
    if (!family->help.empty()) {
      out += "# HELP ";
      out += name;
      out += ' ';
      appendEscaped(out, family->help, Quote::kKeep);
      out += '\n';
    }
    out += "# TYPE ";
    out += name;
    switch (family->type) {
      case Type::kCounter: out += " counter\n"; break;
      case Type::kGauge: out += " gauge\n"; break;
      case Type::kHistogram: out += " histogram\n"; break;
    }
    for (const auto& [labels, s] : family->series) {
      switch (family->type) {
        case Type::kCounter:
          appendSample(out, name, "", labels, std::to_string(s->counter->value()));
          break;
        case Type::kGauge:
          appendSample(out, name, "", labels, formatDouble(s->gauge->value()));
          break;
        case Type::kHistogram: {
          Histogram::Snapshot snap = s->histogram->snapshot();
          for (size_t i = 0; i < snap.cumulative.size(); ++i) {
            std::string le = i < snap.bounds.size() ? formatDouble(snap.bounds[i]) : "+Inf";
            appendSample(out, name, "_bucket", labels, std::to_string(snap.cumulative[i]), &le);
          }
          appendSample(out, name, "_sum", labels, formatDouble(snap.sum));
          appendSample(out, name, "_count", labels, std::to_string(snap.count));
          break;
        }
      }
    }
  }
  return out;
}

}  // namespace tern
