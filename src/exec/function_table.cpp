#include "exec/function_table.h"

#include <chrono>

namespace tern::exec {

Environment versionEnvironment(const FunctionVersionConfig& config) {
  Environment env(config.env);
  env.add("TERN_FUNCTION_VERSION", std::to_string(config.version));
  return env;
}

wasm::SandboxLimits sandboxLimits(const FunctionVersionConfig& config) {
  wasm::SandboxLimits limits;
  limits.memoryPages = config.memoryMb * 16;  // 64 KiB pages
  return limits;
}

FunctionLog::FunctionLog(size_t maxRecords, size_t maxLines)
    : maxRecords_(maxRecords), maxLines_(maxLines) {}

void FunctionLog::add(const InvocationRecord& record, const std::string& stderrText) {
  std::vector<LogLine> added;
  std::vector<std::shared_ptr<const Listener>> listeners;
  {
    MutexLock lock(mu_);
    size_t pos = 0;
    while (pos < stderrText.size()) {
      size_t end = stderrText.find('\n', pos);
      if (end == std::string::npos) end = stderrText.size();
      lines_.push_back(LogLine{nextSeq_++, record.startMs, record.id, record.version,
                               stderrText.substr(pos, end - pos)});
      if (!listeners_.empty()) added.push_back(lines_.back());
      if (lines_.size() > maxLines_) lines_.pop_front();
      pos = end + 1;
    }
    series_.record(record.startMs + record.durationUs / 1000, record.durationUs,
                   record.outcome == "ok");
    for (const auto& [id, l] : listeners_) listeners.push_back(l);
    if (records_.size() < maxRecords_) {
      records_.push_back(record);
    } else if (maxRecords_ > 0) {
      records_[recordsStart_] = record;
      recordsStart_ = (recordsStart_ + 1) % maxRecords_;
    }
    grew_.notify_all();
  }
  for (const auto& l : listeners) (*l)(record, added);
}

std::vector<SeriesPoint> FunctionLog::series(int64_t nowMs) const {
  MutexLock lock(mu_);
  return series_.points(nowMs);
}

std::unique_ptr<FunctionLog::Subscription> FunctionLog::subscribe(Listener listener) const {
  MutexLock lock(mu_);
  uint64_t id = nextListener_++;
  listeners_.emplace(id, std::make_shared<const Listener>(std::move(listener)));
  return std::unique_ptr<Subscription>(new Subscription(this, id));
}

void FunctionLog::unsubscribe(uint64_t id) const {
  MutexLock lock(mu_);
  listeners_.erase(id);
}

FunctionLog::Subscription::~Subscription() { log_->unsubscribe(id_); }

std::vector<InvocationRecord> FunctionLog::records() const {
  MutexLock lock(mu_);
  std::vector<InvocationRecord> out;
  out.reserve(records_.size());
  auto oldest = records_.begin() + static_cast<std::ptrdiff_t>(recordsStart_);
  out.insert(out.end(), oldest, records_.end());
  out.insert(out.end(), records_.begin(), oldest);
  return out;
}

std::vector<LogLine> FunctionLog::lines(uint64_t after, size_t limit,
                                        std::chrono::milliseconds wait) const {
  MutexLock lock(mu_);
  lock.waitFor(grew_, wait, [&]() TERN_REQUIRES(mu_) { return closed_ || nextSeq_ - 1 > after; });
  std::vector<LogLine> out;
  for (const auto& l : lines_) {
    if (l.seq > after && out.size() < limit) out.push_back(l);
  }
  return out;
}

void FunctionLog::close() {
  MutexLock lock(mu_);
  closed_ = true;
  grew_.notify_all();
}

FunctionEntry::FunctionEntry(std::string n) : name(std::move(n)) {}

std::shared_ptr<const ActiveVersion> FunctionEntry::active() const {
  MutexLock lock(mu_);
  return active_;
}

void FunctionEntry::setActive(std::shared_ptr<const ActiveVersion> v) {
  MutexLock lock(mu_);
  active_ = std::move(v);
}

bool FunctionEntry::replaceModule(const std::shared_ptr<const wasm::CompiledModule>& from,
                                  std::shared_ptr<const wasm::CompiledModule> to,
                                  std::string note) {
  MutexLock lock(mu_);
  if (!active_ || active_->module != from) return false;
  auto next = std::make_shared<ActiveVersion>(*active_);
  next->module = std::move(to);
  next->tierNote = std::move(note);
  active_ = std::move(next);
  return true;
}

FunctionTable::FunctionTable(MetricsRegistry& metrics) : metrics_(metrics) {}

std::shared_ptr<FunctionEntry> FunctionTable::find(const std::string& name) const {
  MutexLock lock(mu_);
  auto it = entries_.find(name);
  return it == entries_.end() ? nullptr : it->second;
}

void FunctionTable::setObserver(Observer observer) {
  MutexLock lock(mu_);
  observer_ = std::make_shared<const Observer>(std::move(observer));
}

std::shared_ptr<FunctionEntry> FunctionTable::install(std::shared_ptr<const ActiveVersion> version) {
  std::shared_ptr<FunctionEntry> entry;
  std::shared_ptr<const Observer> observer;
  {
    MutexLock lock(mu_);
    entry = installLocked(version);
    observer = observer_;
  }
  if (observer) (*observer)(entry->name, version.get());
  return entry;
}

std::shared_ptr<FunctionEntry> FunctionTable::installLocked(
    const std::shared_ptr<const ActiveVersion>& version) {
  auto& slot = entries_[version->config.name];
  if (!slot) {
    slot = std::make_shared<FunctionEntry>(version->config.name);
    Labels fn{{"function", slot->name}};
    slot->duration = &metrics_.histogram("tern_invocation_duration_seconds",
                                         "Time from start to end of an invocation", fn);
    slot->queueWait = &metrics_.histogram("tern_invocation_queue_wait_seconds",
                                          "Time an invocation waited for a worker slot", fn);
    slot->inFlight = &metrics_.gauge("tern_invocations_in_flight",
                                     "Invocations currently running", fn);
    for (int i = 0; i <= FunctionEntry::kRejected; ++i) {
      const char* outcome = i == FunctionEntry::kRejected
                                ? "rejected"
                                : wasm::outcomeName(static_cast<wasm::Outcome>(i));
      slot->outcomes[i] = &metrics_.counter("tern_invocations_total", "Invocations by outcome",
                                            {{"function", slot->name}, {"outcome", outcome}});
    }
  }
  slot->admission.limit = version->config.concurrency;
  slot->admission.sloMs = version->config.sloMs;
  slot->admission.percentile = version->config.sloPercentile;
  slot->admission.weight = version->config.weight;
  slot->setActive(version);
  return slot;
}

void FunctionTable::remove(const std::string& name) {
  std::shared_ptr<FunctionEntry> gone;
  std::shared_ptr<const Observer> observer;
  {
    MutexLock lock(mu_);
    auto it = entries_.find(name);
    if (it == entries_.end()) return;
    gone = std::move(it->second);
    entries_.erase(it);
    observer = observer_;
  }
  if (observer) (*observer)(name, nullptr);
  gone->log.close();
  metrics_.removeSeries("function", name);
}

std::vector<std::shared_ptr<FunctionEntry>> FunctionTable::all() const {
  MutexLock lock(mu_);
  std::vector<std::shared_ptr<FunctionEntry>> out;
  for (const auto& [_, e] : entries_) out.push_back(e);
  return out;
}

}  // namespace tern::exec
