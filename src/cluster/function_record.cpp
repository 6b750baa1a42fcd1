#include "cluster/function_record.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "store/deployments.h"
#include "util/names.h"

namespace tern::cluster {

using json = nlohmann::json;

namespace {

json settingsJson(const store::FunctionSettings& s) {
  return json{{"memory_mb", s.memoryMb},
              {"timeout_ms", s.timeoutMs},
              {"concurrency", s.concurrency},
              {"env", s.env},
              {"triggers", s.triggers},
              {"reply_topic", s.replyTopic},
              {"allow", s.allow},
              {"slo_ms", s.sloMs},
              {"slo_percentile", s.sloPercentile},
              {"weight", s.weight},
              {"placement",
               {{"sites", s.placement.sites},
                {"tier", s.placement.tier},
                {"labels", s.placement.labels}}},
              {"compile_tier", store::compileTierName(s.compileTier)}};
}

Error bad(std::string_view what) {
  return Error(ErrorCode::kInvalidArgument, fmt::format("function record: {}", what));
}

bool strings(const json& j, const char* key, std::vector<std::string>& out) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_array()) return false;
  for (const auto& e : *it) {
    if (!e.is_string()) return false;
    out.push_back(e.get<std::string>());
  }
  return true;
}

template <typename T>
bool unsignedField(const json& j, const char* key, T& out) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_number_unsigned()) return false;
  uint64_t v = it->get<uint64_t>();
  if (v > std::numeric_limits<T>::max()) return false;
  out = static_cast<T>(v);
  return true;
}

bool numberField(const json& j, const char* key, double& out) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_number()) return false;
  out = it->get<double>();
  return true;
}

bool stringField(const json& j, const char* key, std::string& out) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_string()) return false;
  out = it->get<std::string>();
  return true;
}

bool isHexHash(std::string_view h) {
  if (h.size() != 64) return false;
  for (char c : h) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

}  // namespace

std::string encodeFunctionRecord(const FunctionRecord& r) {
  const auto& v = r.version;
  return json{{"name", v.name},
              {"version", v.version},
              {"module_sha256", v.moduleHash},
              {"module_bytes", v.moduleSize},
              {"created_at_ms", v.createdAtMs},
              {"settings", settingsJson(v.settings)},
              {"deleted", r.deleted},
              {"origin", r.origin},
              {"updated_at_ms", r.updatedAtMs}}
      .dump(-1, ' ', false, json::error_handler_t::replace);
}

Result<FunctionRecord> decodeFunctionRecord(std::string_view payload) {
  auto j = json::parse(payload, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return bad("not a JSON object");
  FunctionRecord r;
  auto& v = r.version;
  if (!stringField(j, "name", v.name) || !isFunctionName(v.name)) {
    return bad("missing or invalid name");
  }
  auto del = j.find("deleted");
  if (del == j.end() || !del->is_boolean()) return bad("missing deleted flag");
  r.deleted = del->get<bool>();
  if (!stringField(j, "origin", r.origin)) return bad("missing origin");
  auto updated = j.find("updated_at_ms");
  if (updated == j.end() || !updated->is_number_integer()) return bad("missing updated_at_ms");
  r.updatedAtMs = updated->get<int64_t>();
  if (r.deleted) return r;
  if (!unsignedField(j, "version", v.version) || v.version == 0) return bad("bad version");
  if (!stringField(j, "module_sha256", v.moduleHash) || !isHexHash(v.moduleHash)) {
    return bad("bad module_sha256");
  }
  if (!unsignedField(j, "module_bytes", v.moduleSize) || v.moduleSize == 0) {
    return bad("bad module_bytes");
  }
  auto created = j.find("created_at_ms");
  if (created == j.end() || !created->is_number_integer()) return bad("bad created_at_ms");
  v.createdAtMs = created->get<int64_t>();
  auto s = j.find("settings");
  if (s == j.end() || !s->is_object()) return bad("missing settings");
  auto& st = v.settings;
  if (!unsignedField(*s, "memory_mb", st.memoryMb) || !unsignedField(*s, "timeout_ms", st.timeoutMs) ||
      !unsignedField(*s, "concurrency", st.concurrency) || !strings(*s, "env", st.env) ||
      !strings(*s, "triggers", st.triggers) || !stringField(*s, "reply_topic", st.replyTopic) ||
      !strings(*s, "allow", st.allow) || !numberField(*s, "slo_ms", st.sloMs) ||
      !numberField(*s, "slo_percentile", st.sloPercentile) || !numberField(*s, "weight", st.weight)) {
    return bad("settings have missing or mistyped fields");
  }
  auto p = s->find("placement");
  if (p == s->end() || !p->is_object() || !strings(*p, "sites", st.placement.sites) ||
      !stringField(*p, "tier", st.placement.tier) || !strings(*p, "labels", st.placement.labels)) {
    return bad("bad placement");
  }
  // Absent in records of nodes that predate compile tiers: auto.
  if (auto t = s->find("compile_tier"); t != s->end()) {
    auto tier = t->is_string() ? store::parseCompileTier(t->get<std::string>())
                               : Result<store::CompileTier>(bad("compile_tier is not a string"));
    if (!tier.ok()) return bad(tier.error().message());
    st.compileTier = *tier;
  }
  if (auto ok = store::checkPlacement(st.placement); !ok.ok()) return bad(ok.error().message());
  if (auto ok = store::checkObjectiveSettings(st); !ok.ok()) return bad(ok.error().message());
  if (st.memoryMb == 0 || st.timeoutMs == 0) return bad("memory_mb and timeout_ms must be positive");
  return r;
}

bool sameVersion(const store::FunctionVersion& a, const store::FunctionVersion& b) {
  return a.name == b.name && a.version == b.version && a.moduleHash == b.moduleHash &&
         a.moduleSize == b.moduleSize && settingsJson(a.settings) == settingsJson(b.settings);
}

std::string encodeManifest(const ModuleManifest& m) {
  return json{{"size", m.size}, {"chunks", m.chunks}}.dump();
}

Result<ModuleManifest> decodeManifest(std::string_view payload, uint64_t maxSize) {
  auto j = json::parse(payload, nullptr, /*allow_exceptions=*/false);
  ModuleManifest m;
  if (!j.is_object() || !unsignedField(j, "size", m.size) || !unsignedField(j, "chunks", m.chunks)) {
    return Error(ErrorCode::kInvalidArgument, "module manifest: malformed");
  }
  if (m.size == 0 || m.size > maxSize || m.chunks == 0 || m.chunks > 4096) {
    return Error(ErrorCode::kInvalidArgument,
                 fmt::format("module manifest: size {} or chunk count {} out of range", m.size,
                             m.chunks));
  }
  return m;
}

}  // namespace tern::cluster
