#include "workflow/data_ops.h"

#include <fmt/format.h>

#include <charconv>
#include <cmath>

#include "workflow/afcl.h"

namespace tern::workflow {

using json = nlohmann::json;

bool isReference(std::string_view s) {
  size_t slash = s.find('/');
  return slash != std::string_view::npos && !s.starts_with('/') && !s.ends_with('/');
}

json parseConstant(std::string_view text) {
  json v = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (v.is_discarded()) return std::string(text);
  return v;
}

json coerce(json value, std::string_view type) {
  if (!value.is_string()) return value;
  const std::string& s = value.get_ref<const std::string&>();
  if (type == "number") {
    json v = parseConstant(s);
    if (v.is_number()) return v;
  } else if (type == "boolean") {
    if (s == "true") return true;
    if (s == "false") return false;
  } else if (type == "collection" || type == "array" || type == "object") {
    json v = parseConstant(s);
    if (v.is_array() || v.is_object()) return v;
  }
  return value;
}

bool isCollectionOp(std::string_view name) {
  return name == "element-index" || name == "block" || name == "replicate" || name == "split" ||
         name == "distribution";
}

namespace {

// A value as JSON text for messages; bytes that are not UTF-8 are replaced, never thrown on.
std::string shown(const json& v) { return v.dump(-1, ' ', false, json::error_handler_t::replace); }

}  // namespace

namespace {

// The most elements a collection operation may produce.
constexpr int64_t kMaxElements = 10000000;

Error opError(std::string_view name, std::string_view args, std::string_view why) {
  return Error(ErrorCode::kInvalidArgument, fmt::format("{} \"{}\": {}", name, args, why));
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  return s;
}

std::vector<std::string_view> splitOn(std::string_view s, char sep) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (true) {
    size_t at = s.find(sep, start);
    parts.push_back(trim(s.substr(start, at == std::string_view::npos ? std::string_view::npos : at - start)));
    if (at == std::string_view::npos) break;
    start = at + 1;
  }
  return parts;
}

// An integer argument: a number, or a reference read through `resolve`.
Result<int64_t> integer(std::string_view text, const ResolveNumber& resolve, std::string_view name,
                        std::string_view args) {
  double v = 0;
  if (isReference(text)) {
    auto r = resolve(text);
    if (!r.ok()) return r.error();
    v = *r;
  } else {
    auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec != std::errc() || p != text.data() + text.size()) {
      return opError(name, args, fmt::format("\"{}\" is not a number", text));
    }
  }
  if (v != std::floor(v) || std::fabs(v) > 1e15) {
    return opError(name, args, fmt::format("{} is not a whole number", v));
  }
  return static_cast<int64_t>(v);
}

Result<json> elementIndex(const json& a, std::string_view args, const ResolveNumber& resolve) {
  json out = json::array();
  auto parts = splitOn(args, ',');
  int64_t n = static_cast<int64_t>(a.size());
  for (auto part : parts) {
    auto fields = splitOn(part, ':');
    if (fields.size() == 1) {
      auto i = integer(fields[0], resolve, "element-index", args);
      if (!i.ok()) return i.error();
      if (*i < 0 || *i >= n) return opError("element-index", args, fmt::format("index {} is outside 0..{}", *i, n - 1));
      out.push_back(a[static_cast<size_t>(*i)]);
      continue;
    }
    if (fields.size() != 3) return opError("element-index", args, "a part is i or start:end:stride");
    int64_t start = 0, end = n - 1, stride = 1;
    for (int f = 0; f < 3; ++f) {
      if (fields[f].empty()) continue;
      auto v = integer(fields[f], resolve, "element-index", args);
      if (!v.ok()) return v.error();
      (f == 0 ? start : f == 1 ? end : stride) = *v;
    }
    if (stride <= 0) return opError("element-index", args, "the stride must be positive");
    if (start < 0 || end >= n) return opError("element-index", args, fmt::format("range {}..{} is outside 0..{}", start, end, n - 1));
    if (static_cast<int64_t>(out.size()) + (end - start) / stride + 1 > kMaxElements) {
      return opError("element-index", args, fmt::format("the result would exceed {} elements", kMaxElements));
    }
    for (int64_t i = start; i <= end; i += stride) out.push_back(a[static_cast<size_t>(i)]);
  }
  if (parts.size() == 1 && splitOn(parts[0], ':').size() == 1) return out[0];
  return out;
}

Result<json> block(const json& a, int64_t size, int64_t overlap, std::string_view args) {
  if (size < 1 || overlap < 0 || overlap >= size) {
    return opError("block", args, "needs size >= 1 and 0 <= overlap < size");
  }
  json out = json::array();
  int64_t n = static_cast<int64_t>(a.size());
  // Overlapping blocks copy elements again: bound what the result holds.
  if (n > 0 && (n / (size - overlap) + 1) * size > kMaxElements) {
    return opError("block", args, fmt::format("the result would exceed {} elements", kMaxElements));
  }
  for (int64_t start = 0; start < n; start += size - overlap) {
    json b = json::array();
    for (int64_t i = start; i < std::min(n, start + size); ++i) b.push_back(a[static_cast<size_t>(i)]);
    out.push_back(std::move(b));
    if (start + size >= n) break;
  }
  return out;
}

// "size" or "size,overlap" (each a number or a reference).
Result<std::pair<int64_t, int64_t>> blockArgs(std::string_view text, std::string_view args,
                                              const ResolveNumber& resolve, std::string_view name) {
  auto parts = splitOn(text, ',');
  if (parts.size() > 2) return opError(name, args, "is size or size,overlap");
  auto size = integer(parts[0], resolve, name, args);
  if (!size.ok()) return size.error();
  int64_t overlap = 0;
  if (parts.size() == 2) {
    auto o = integer(parts[1], resolve, name, args);
    if (!o.ok()) return o.error();
    overlap = *o;
  }
  return std::pair{*size, overlap};
}

}  // namespace

Result<json> applyCollectionOp(const json& value, std::string_view name, std::string_view args,
                               const ResolveNumber& resolve) {
  if (!value.is_array()) return opError(name, args, "applies to a collection (a JSON array)");
  if (name == "element-index") return elementIndex(value, args, resolve);
  if (name == "block") {
    auto sz = blockArgs(args, args, resolve, name);
    if (!sz.ok()) return sz.error();
    return block(value, sz->first, sz->second, args);
  }
  if (name == "replicate" || name == "split") {
    auto n = integer(trim(args), resolve, name, args);
    if (!n.ok()) return n.error();
    if (*n < 1 || *n > 1000000) return opError(name, args, "needs a count in 1..1000000");
    json out = json::array();
    if (name == "replicate") {
      if (static_cast<int64_t>(value.size()) * *n > kMaxElements) {
        return opError(name, args, fmt::format("the result would exceed {} elements", kMaxElements));
      }
      for (const auto& e : value) {
        for (int64_t i = 0; i < *n; ++i) out.push_back(e);
      }
      return out;
    }
    size_t per = (value.size() + static_cast<size_t>(*n) - 1) / static_cast<size_t>(*n);
    return block(value, static_cast<int64_t>(std::max<size_t>(per, 1)), 0, args);
  }
  if (name == "distribution") {
    // AFCL 1.0: BLOCK(n), BLOCK(n,overlap), REPLICATE(n|*). REPLICATE hands every iteration
    // the whole collection, which is how a non-iterated dataIn reaches them anyway.
    std::string_view a = trim(args);
    auto inner = [&](std::string_view prefix) -> std::optional<std::string_view> {
      if (!a.starts_with(prefix) || !a.ends_with(')')) return std::nullopt;
      return a.substr(prefix.size(), a.size() - prefix.size() - 1);
    };
    if (auto b = inner("BLOCK(")) {
      auto sz = blockArgs(*b, args, resolve, name);
      if (!sz.ok()) return sz.error();
      if (sz->first == 1 && sz->second == 0) return value;  // one element per iteration: as is
      return block(value, sz->first, sz->second, args);
    }
    if (inner("REPLICATE(")) return value;
    return opError(name, args, "is BLOCK(n), BLOCK(n,overlap) or REPLICATE(n)");
  }
  return opError(name, args, "unknown collection operation");
}

namespace {

const char* jsonKind(const json& v) {
  if (v.is_number()) return "number";
  if (v.is_string()) return "string";
  if (v.is_boolean()) return "boolean";
  if (v.is_array()) return "collection";
  if (v.is_null()) return "null";
  return "object";
}

Result<double> asNumber(const json& v) {
  if (v.is_number()) return v.get<double>();
  if (v.is_array()) return static_cast<double>(v.size()) - 1;  // Apollo: size - 1
  if (v.is_string()) {
    json p = parseConstant(v.get_ref<const std::string&>());
    if (p.is_number()) return p.get<double>();
  }
  return Error(ErrorCode::kInvalidArgument, fmt::format("{} is not a number", shown(v)));
}

}  // namespace

Result<bool> compare(const json& a, const json& b, std::string_view op, std::string_view typeIn) {
  std::string type(typeIn);
  if (type.empty()) {
    type = a.is_number() || b.is_number() ? "number" : a.is_boolean() || b.is_boolean() ? "boolean"
           : a.is_string() && b.is_string()                                             ? "string"
                                                                                        : "object";
  }
  auto bad = [&](std::string_view why) {
    return Error(ErrorCode::kInvalidArgument, fmt::format("condition {} {} {} ({}): {}", shown(a), op, shown(b), type, why));
  };
  if (type == "number") {
    auto x = asNumber(a);
    if (!x.ok()) return bad(x.error().message());
    auto y = asNumber(b);
    if (!y.ok()) return bad(y.error().message());
    constexpr double kEpsilon = 1e-9;
    if (op == "==") return std::fabs(*x - *y) < kEpsilon;
    if (op == "!=") return std::fabs(*x - *y) >= kEpsilon;
    if (op == "<") return *x < *y;
    if (op == "<=") return *x <= *y;
    if (op == ">") return *x > *y;
    if (op == ">=") return *x >= *y;
    return bad("not an operator for numbers");
  }
  if (type == "string") {
    auto text = [](const json& v) { return v.is_string() ? v.get<std::string>() : shown(v); };
    std::string x = text(a), y = text(b);
    if (op == "==") return x == y;
    if (op == "!=") return x != y;
    if (op == "contains") return x.find(y) != std::string::npos;
    if (op == "startsWith") return x.starts_with(y);
    if (op == "endsWith") return x.ends_with(y);
    return bad("not an operator for strings");
  }
  json x = coerce(a, type), y = coerce(b, type);
  if (type == "boolean" && (!x.is_boolean() || !y.is_boolean())) {
    return bad(fmt::format("a {} is not a boolean", jsonKind(x.is_boolean() ? y : x)));
  }
  if (op == "==") return x == y;
  if (op == "!=") return x != y;
  return bad(fmt::format("{}s compare only with == and !=", type));
}

Result<bool> evaluateCondition(const std::vector<ConditionItem>& items,
                               const std::vector<std::pair<json, json>>& values) {
  bool acc = false;
  for (size_t i = 0; i < items.size(); ++i) {
    auto v = compare(values[i].first, values[i].second, items[i].op, items[i].type);
    if (!v.ok()) return v.error();
    bool item = items[i].negation ? !*v : *v;
    acc = i == 0 ? item : (items[i - 1].orNext ? (acc || item) : (acc && item));
  }
  return acc;
}

}  // namespace tern::workflow
