#include "cli/output_format.h"

#include <ostream>
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <ctime>
#include <utility>

namespace tern::cli {

using json = nlohmann::json;

namespace {

// Tolerant field access: the node's answer is input, not an invariant.
const json* field(const json& j, const char* key) {
  if (!j.is_object()) return nullptr;
  auto it = j.find(key);
  return it == j.end() ? nullptr : &*it;
}

std::string str(const json& j, const char* key) {
  const json* f = field(j, key);
  return f && f->is_string() ? f->get<std::string>() : std::string();
}

int64_t num(const json& j, const char* key) {
  const json* f = field(j, key);
  if (!f) return 0;
  if (f->is_number_unsigned()) {
    auto u = f->get<uint64_t>();
    return u > static_cast<uint64_t>(INT64_MAX) ? INT64_MAX : static_cast<int64_t>(u);
  }
  if (f->is_number_integer()) return f->get<int64_t>();
  if (f->is_number_float()) return static_cast<int64_t>(f->get<double>());
  return 0;
}

double real(const json& j, const char* key) {
  const json* f = field(j, key);
  return f && f->is_number() ? f->get<double>() : 0.0;
}

const json& array(const json& j, const char* key) {
  static const json kEmpty = json::array();
  const json* f = field(j, key);
  return f && f->is_array() ? *f : kEmpty;
}

// Columns a cell takes: UTF-8 lead bytes, not bytes ("…" is one column).
size_t displayWidth(std::string_view s) {
  return static_cast<size_t>(std::count_if(
      s.begin(), s.end(), [](char ch) { return (static_cast<unsigned char>(ch) & 0xc0) != 0x80; }));
}

// Key: value lines with the values aligned.
std::string renderFields(const std::vector<std::pair<std::string, std::string>>& fields) {
  size_t width = 0;
  for (const auto& [k, v] : fields) width = std::max(width, k.size() + 1);
  std::string out;
  for (const auto& [k, v] : fields) out += fmt::format("{:<{}}  {}\n", k + ":", width, v);
  return out;
}

std::string concurrencyText(int64_t c) {
  return c == 0 ? "unlimited (the node's worker slots)" : std::to_string(c);
}

// The strings of the array `key`, space-separated, or "-". With kQuoteSpaces, an item that
// holds a space (a cron expression) is shown in single quotes.
enum class ListStyle { kPlain, kQuoteSpaces };
std::string listText(const json& version, const char* key, ListStyle style = ListStyle::kPlain) {
  std::string out;
  for (const auto& item : array(version, key)) {
    if (!item.is_string()) continue;
    if (!out.empty()) out += ' ';
    std::string text = terminalSafe(item.get<std::string>());
    bool quote = style == ListStyle::kQuoteSpaces && text.find(' ') != std::string::npos;
    out += quote ? "'" + text + "'" : text;
  }
  return out.empty() ? "-" : out;
}

std::string envText(const json& version) { return listText(version, "env"); }

std::string moduleText(const json& version) {
  return fmt::format(
      "sha256 {}, {}", shortHash(str(version, "module_sha256")),
      formatBytes(static_cast<uint64_t>(std::max<int64_t>(0, num(version, "module_bytes")))));
}

std::string outcomeText(const json& record) {
  std::string outcome = terminalSafe(str(record, "outcome"));
  if (outcome == "exited") outcome += fmt::format(" {}", num(record, "exit_code"));
  return outcome;
}

}  // namespace

std::string formatBytes(uint64_t bytes) {
  if (bytes < 1024) return fmt::format("{} B", bytes);
  static constexpr const char* kUnits[] = {"KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes) / 1024.0;
  size_t unit = 0;
  while (v >= 1024.0 && unit + 1 < std::size(kUnits)) {
    v /= 1024.0;
    ++unit;
  }
  return fmt::format("{:.1f} {}", v, kUnits[unit]);
}

std::string formatAge(int64_t thenMs, int64_t nowMs) {
  int64_t s = (nowMs - thenMs) / 1000;
  if (s < 1) return "just now";
  if (s < 60) return fmt::format("{}s ago", s);
  if (s < 3600) return fmt::format("{}m ago", s / 60);
  if (s < 86400) return fmt::format("{}h ago", s / 3600);
  return fmt::format("{}d ago", s / 86400);
}

std::string formatTimestamp(int64_t ms, Millis millis) {
  std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  if (!localtime_r(&t, &tm)) return "-";
  char buf[32];
  size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
  std::string out(buf, n);
  if (millis == Millis::kShow) out += fmt::format(".{:03}", ((ms % 1000) + 1000) % 1000);
  return out;
}

std::string formatMicros(int64_t us) {
  if (us < 1000) return fmt::format("{} us", us);
  if (us < 1000000) return fmt::format("{:.1f} ms", static_cast<double>(us) / 1e3);
  return fmt::format("{:.2f} s", static_cast<double>(us) / 1e6);
}

std::string formatUptime(double seconds) {
  auto s = static_cast<int64_t>(seconds);
  if (s < 60) return fmt::format("{}s", s);
  if (s < 3600) return fmt::format("{}m {}s", s / 60, s % 60);
  if (s < 86400) return fmt::format("{}h {}m", s / 3600, s % 3600 / 60);
  return fmt::format("{}d {}h", s / 86400, s % 86400 / 3600);
}

std::string shortHash(std::string_view sha256) {
  if (sha256.empty()) return "-";
  if (sha256.size() <= 8) return terminalSafe(sha256);
  return terminalSafe(sha256.substr(0, 8)) + "\u2026";
}

std::string terminalSafe(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  auto escape = [&](unsigned char b) { out += fmt::format("\\x{:02x}", b); };
  size_t i = 0;
  while (i < text.size()) {
    auto b = static_cast<unsigned char>(text[i]);
    if (b < 0x80) {
      if ((b < 0x20 && b != '\t') || b == 0x7f) {
        escape(b);
      } else {
        out.push_back(static_cast<char>(b));
      }
      ++i;
      continue;
    }
    // A UTF-8 sequence: copied when well-formed and not a C1 control, else escaped.
    size_t len = b >= 0xf0 && b <= 0xf4 ? 4 : b >= 0xe0 ? 3 : b >= 0xc2 && b <= 0xdf ? 2 : 0;
    bool ok = len != 0 && i + len <= text.size();
    uint32_t cp = len == 2 ? b & 0x1f : len == 3 ? b & 0x0f : b & 0x07;
    for (size_t k = 1; ok && k < len; ++k) {
      auto c = static_cast<unsigned char>(text[i + k]);
      ok = (c & 0xc0) == 0x80;
      cp = (cp << 6) | (c & 0x3f);
    }
    if (ok) {
      ok = !(len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) &&
           !(len == 4 && (cp < 0x10000 || cp > 0x10ffff)) && !(cp >= 0x80 && cp <= 0x9f);
    }
    if (!ok) {
      escape(b);
      ++i;
      continue;
    }
    out.append(text.substr(i, len));
    i += len;
  }
  return out;
}

const nlohmann::json* answerField(const nlohmann::json& j, const char* key) {
  if (!j.is_object()) return nullptr;
  auto it = j.find(key);
  return it == j.end() ? nullptr : &*it;
}

std::string answerText(const nlohmann::json& j, const char* key) {
  const nlohmann::json* f = answerField(j, key);
  return f && f->is_string() ? terminalSafe(f->get<std::string>()) : std::string();
}

std::optional<double> answerNumber(const nlohmann::json& j, const char* key) {
  const nlohmann::json* f = answerField(j, key);
  if (!f || !f->is_number()) return std::nullopt;
  double v = f->get<double>();
  if (!std::isfinite(v)) return std::nullopt;
  return v;
}

std::string renderTable(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> widths;
  for (const auto& row : rows) {
    if (widths.size() < row.size()) widths.resize(row.size(), 0);
    for (size_t c = 0; c < row.size(); ++c) {
      widths[c] = std::max(widths[c], displayWidth(row[c]));
    }
  }
  std::string out;
  for (const auto& row : rows) {
    std::string line;
    for (size_t c = 0; c < row.size(); ++c) {
      line += row[c];
      if (c + 1 < row.size()) {
        line.append(widths[c] - displayWidth(row[c]) + 2, ' ');
      }
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line + "\n";
  }
  return out;
}

std::string formatDeployed(const json& version) {
  return fmt::format("deployed {} version {} ({})\n", terminalSafe(str(version, "name")),
                     num(version, "version"), moduleText(version));
}

std::string formatRolledBack(const json& version) {
  return fmt::format("rolled back {}: version {} is active ({})\n",
                     terminalSafe(str(version, "name")), num(version, "version"),
                     moduleText(version));
}

std::string formatFunctionList(const json& list, int64_t nowMs) {
  const json& fns = array(list, "functions");
  if (fns.empty()) return "no functions deployed\n";
  std::vector<std::vector<std::string>> rows{{"NAME", "VERSION", "VERSIONS", "UPDATED"}};
  for (const auto& f : fns) {
    int64_t active = num(f, "active_version");
    int64_t latest = num(f, "latest_version");
    std::string version = std::to_string(active);
    if (latest != active) version += fmt::format(" (latest {})", latest);
    rows.push_back({terminalSafe(str(f, "name")), version, std::to_string(num(f, "versions")),
                    formatAge(num(f, "updated_at_ms"), nowMs)});
  }
  return renderTable(rows);
}

std::string formatFunctionInfo(const json& info, int64_t nowMs) {
  std::vector<std::pair<std::string, std::string>> fields;
  fields.emplace_back("name", terminalSafe(str(info, "name")));
  fields.emplace_back("version", fmt::format("{} (active)", num(info, "version")));
  fields.emplace_back(
      "module",
      fmt::format(
          "sha256 {} ({})", terminalSafe(str(info, "module_sha256")),
          formatBytes(static_cast<uint64_t>(std::max<int64_t>(0, num(info, "module_bytes"))))));
  fields.emplace_back("memory", fmt::format("{} MiB", num(info, "memory_mb")));
  fields.emplace_back("timeout", fmt::format("{} ms", num(info, "timeout_ms")));
  fields.emplace_back("concurrency", concurrencyText(num(info, "concurrency")));
  fields.emplace_back("env", envText(info));
  if (!array(info, "triggers").empty()) {
    std::string triggers = listText(info, "triggers", ListStyle::kQuoteSpaces);
    if (std::string reply = str(info, "reply_topic"); !reply.empty()) {
      triggers += " (replies to " + terminalSafe(reply) + ")";
    }
    fields.emplace_back("triggers", triggers);
  }
  if (!array(info, "allow").empty()) fields.emplace_back("allow", listText(info, "allow"));
  int64_t created = num(info, "created_at_ms");
  fields.emplace_back("deployed",
                      fmt::format("{} ({})", formatTimestamp(created), formatAge(created, nowMs)));
  if (std::string tier = str(info, "tier"); !tier.empty()) {
    // The tier served now, the setting when it is not the default, and why, when not final.
    std::string text = terminalSafe(tier);
    if (std::string setting = str(info, "compile_tier"); !setting.empty() && setting != "auto") {
      text += " (compile tier " + terminalSafe(setting) + ")";
    }
    if (std::string note = str(info, "tier_note"); !note.empty()) {
      text += ": " + terminalSafe(note);
    }
    fields.emplace_back("tier", text);
  }
  if (field(info, "in_flight")) {
    fields.emplace_back("in flight", std::to_string(num(info, "in_flight")));
  }
  if (const json* counts = field(info, "invocations"); counts && counts->is_object()) {
    // Outcomes in a fixed, meaningful order; any the node adds later follow.
    static constexpr const char* kOrder[] = {"ok",
                                             "exited",
                                             "trap",
                                             "timeout",
                                             "memory_limit",
                                             "output_limit",
                                             "resource_exhausted",
                                             "invalid",
                                             "rejected"};
    std::vector<std::string> keys(std::begin(kOrder), std::end(kOrder));
    for (const auto& [k, v] : counts->items()) {
      if (std::find(keys.begin(), keys.end(), k) == keys.end()) keys.push_back(k);
    }
    std::string text;
    int64_t total = 0;
    for (const auto& k : keys) {
      int64_t n = num(*counts, k.c_str());
      if (n == 0) continue;
      total += n;
      if (!text.empty()) text += ", ";
      text += fmt::format("{} {}", n, terminalSafe(k));
    }
    fields.emplace_back("invocations", total == 0 ? std::string("none")
                                                  : fmt::format("{} ({} total)", text, total));
  }
  std::string out = renderFields(fields);

  const json& recent = array(info, "recent_invocations");
  if (!recent.empty()) {
    size_t first =
        recent.size() > kInfoRecentInvocations ? recent.size() - kInfoRecentInvocations : 0;
    size_t shown = recent.size() - first;
    out += fmt::format("\nlast {} invocation{}:\n", shown, shown == 1 ? "" : "s");
    std::vector<std::vector<std::string>> rows{
        {"ID", "VERSION", "STARTED", "DURATION", "QUEUED", "OUTCOME", "DETAIL"}};
    for (size_t i = first; i < recent.size(); ++i) {
      const json& r = recent[i];
      std::string detail = terminalSafe(str(r, "detail"));
      rows.push_back({terminalSafe(str(r, "id")), std::to_string(num(r, "version")),
                      formatTimestamp(num(r, "start_ms"), Millis::kShow),
                      formatMicros(num(r, "duration_us")), formatMicros(num(r, "queue_wait_us")),
                      outcomeText(r), detail.empty() ? "-" : detail});
    }
    out += renderTable(rows);
  }
  return out;
}

std::string formatVersions(const json& versions, int64_t nowMs) {
  int64_t active = num(versions, "active_version");
  std::vector<std::vector<std::string>> rows{
      {"", "VERSION", "SHA256", "SIZE", "MEMORY", "TIMEOUT", "CONCURRENCY", "ENV", "CREATED"}};
  for (const auto& v : array(versions, "versions")) {
    int64_t n = num(v, "version");
    int64_t c = num(v, "concurrency");
    rows.push_back(
        {n == active ? "*" : "", std::to_string(n), shortHash(str(v, "module_sha256")),
         formatBytes(static_cast<uint64_t>(std::max<int64_t>(0, num(v, "module_bytes")))),
         fmt::format("{} MiB", num(v, "memory_mb")), fmt::format("{} ms", num(v, "timeout_ms")),
         c == 0 ? "-" : std::to_string(c), envText(v),
         fmt::format("{} ({})", formatTimestamp(num(v, "created_at_ms")),
                     formatAge(num(v, "created_at_ms"), nowMs))});
  }
  return renderTable(rows);
}

std::string formatLogLines(const json& logs) {
  std::string out;
  for (const auto& l : array(logs, "lines")) {
    out += fmt::format("{} v{} {}  {}\n", formatTimestamp(num(l, "time_ms"), Millis::kShow),
                       num(l, "version"), terminalSafe(str(l, "invocation_id")),
                       terminalSafe(str(l, "text")));
  }
  return out;
}

std::string formatStatus(const json& status, std::string_view nodeUrl) {
  std::vector<std::pair<std::string, std::string>> fields;
  fields.emplace_back("node", std::string(nodeUrl));
  fields.emplace_back("version", terminalSafe(str(status, "version")));
  fields.emplace_back("uptime", formatUptime(real(status, "uptime_seconds")));
  fields.emplace_back("worker slots",
                      fmt::format("{} busy of {}", num(status, "running"), num(status, "slots")));
  fields.emplace_back("queued", std::to_string(num(status, "queued")));
  fields.emplace_back("rejected", std::to_string(num(status, "rejected")));
  fields.emplace_back("functions", std::to_string(num(status, "functions")));
  const json* sched = field(status, "scheduler");
  if (!sched || !sched->is_object()) return renderFields(fields);
  fields.emplace_back(
      "scheduler",
      fmt::format("{} (re-plans every {} ms: {} so far, {} on a sharp rise; last took {:.1f} us)",
                  terminalSafe(str(*sched, "policy")), num(*sched, "control_period_ms"),
                  num(*sched, "replans"), num(*sched, "sharp_replans"),
                  real(*sched, "last_replan_us")));
  std::string out = renderFields(fields);
  const json* fns = field(*sched, "functions");
  if (!fns || !fns->is_object() || fns->empty()) return out;
  // One row per function: objective, load, the model's target, the allocation and the
  // slots actually used, attainment over the window and refusals by reason.
  std::vector<std::vector<std::string>> rows{{"FUNCTION", "OBJECTIVE", "WEIGHT", "RATE/S",
                                              "SERVICE MS", "TARGET", "ALLOC", "USED",
                                              "ATTAINMENT", "REFUSED d/e/q"}};
  for (const auto& [name, f] : fns->items()) {
    std::string objective = "best effort";
    if (const json* o = field(f, "objective"); o && o->is_object()) {
      const json* p = field(*o, "percentile");
      objective = p && p->is_number()
                      ? fmt::format("p{:g} <= {:g} ms", p->get<double>(), real(*o, "slo_ms"))
                      : fmt::format("mean <= {:g} ms", real(*o, "slo_ms"));
    }
    const json* service = field(f, "service_ms");
    std::string serviceText =
        service ? fmt::format("{:.3g} (p95 {:.3g})", real(*service, "mean"), real(*service, "p95"))
                : "-";
    const json* att = field(f, "attainment");
    std::string attainment = att && att->is_number()
                                 ? fmt::format("{:.1f}%", att->get<double>() * 100)
                                 : std::string("-");
    const json* refused = field(f, "refused_window");
    std::string refusedText =
        refused ? fmt::format("{}/{}/{}", num(*refused, "deadline"), num(*refused, "expired"),
                              num(*refused, "queue_full"))
                : "-";
    if (const json* u = field(f, "objective_unreachable"); u && u->is_boolean() && u->get<bool>()) {
      attainment += " (objective below service time)";
    }
    rows.push_back({terminalSafe(name), objective, fmt::format("{:g}", real(f, "weight")),
                    fmt::format("{:.1f}", real(f, "arrival_rate")), serviceText,
                    fmt::format("{:.3g}", real(f, "target_slots")),
                    fmt::format("{:.2f}", real(f, "allocated_slots")),
                    fmt::format("{:.2f}", real(f, "used_slots")), attainment, refusedText});
  }
  return out + "\n" + renderTable(rows);
}

int reportFailure(std::ostream& err, const Error& e) {
  err << "tern: " << e.describe() << "\n";
  return errorKind(e.code()).exitStatus;
}

}  // namespace tern::cli
