#include "triggers/coap_server.h"

#include <arpa/inet.h>
#include <coap3/coap.h>
#include <dirent.h>
#include <fmt/format.h>
#include <netdb.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <deque>
#include <fstream>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "util/thread_annotations.h"

namespace tern::triggers {

int coapCode(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidArgument: return 400;
    case ErrorCode::kUnauthorized: return 401;
    case ErrorCode::kForbidden: return 403;
    // A token's own rate, not the node's capacity: 4.29 with Max-Age (RFC 8516).
    case ErrorCode::kRateLimited: return 429;
    case ErrorCode::kNotFound: return 404;
    case ErrorCode::kConflict: return 409;
    case ErrorCode::kBodyTooLarge: return 413;
    case ErrorCode::kModuleTooLarge: return 413;
    case ErrorCode::kInvalidModule: return 422;  // RFC 8132
    // Node-wide capacity, not a per-client rate: 5.03 with Max-Age (RFC 7252 5.9.3.4).
    case ErrorCode::kSaturated: return 503;
    case ErrorCode::kResourceExhausted: return 503;
    case ErrorCode::kUnavailable: return 503;
    case ErrorCode::kTimeout: return 504;
    case ErrorCode::kCompileFailed:
    case ErrorCode::kTrap:
    case ErrorCode::kMemoryLimit:
    case ErrorCode::kOutputLimit:
    case ErrorCode::kIo:
    case ErrorCode::kFunctionFailed:
    case ErrorCode::kInternal: return 500;
  }
  return 500;
}

namespace {

constexpr size_t kMaxDiagnosticBytes = 512;

// libcoap's log lines, written through tern's logger and rate-limited: most are caused by
// what unauthenticated senders put in datagrams. libcoap keeps one log handler per process,
// a plain function pointer without a context argument, so this limiter is process-wide
// too (the one piece of mutable state here that is not owned by a CoapServer).
struct LibcoapLog {
  Mutex mu;
  LogLineLimiter limiter TERN_GUARDED_BY(mu){LogLineLimiter::Options{}};
};

LibcoapLog& libcoapLog() {
  static LibcoapLog log;
  return log;
}

void reportSuppressedLibcoapLines(LogLineLimiter::Clock::time_point now) {
  LibcoapLog& log = libcoapLog();
  uint64_t suppressed;
  {
    MutexLock lock(log.mu);
    suppressed = log.limiter.takeSuppressed(now);
  }
  if (suppressed) spdlog::warn("libcoap: {} log line(s) suppressed (rate limit)", suppressed);
}

void onLibcoapLog(coap_log_t level, const char* message) {
  LibcoapLog& log = libcoapLog();
  auto now = LogLineLimiter::Clock::now();
  {
    MutexLock lock(log.mu);
    if (!log.limiter.admit(now)) return;
  }
  reportSuppressedLibcoapLines(now);
  std::string_view text(message ? message : "");
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.remove_suffix(1);
  auto spdLevel = level <= LOG_ERR       ? spdlog::level::err
                  : level == LOG_WARNING ? spdlog::level::warn
                  : level <= LOG_INFO    ? spdlog::level::info
                                         : spdlog::level::debug;
  spdlog::log(spdLevel, "libcoap: {}", text);
}

// Invocation results handed from worker threads to the CoAP thread, which is woken
// through the eventfd. Shared with the invocations' callbacks, so a callback that fires
// after the server stopped finds it closed instead of freed.
class Completions {
 public:
  Completions() : fd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}
  ~Completions() {
    if (fd_ >= 0) ::close(fd_);
  }
  int fd() const { return fd_; }

  void push(uint64_t id, exec::InvokeOutput out) {
    {
      MutexLock lock(mu_);
      if (closed_) return;
      done_.emplace_back(id, std::move(out));
    }
    wake();
  }
  void wake() {
    uint64_t one = 1;
    ssize_t n = ::write(fd_, &one, sizeof one);
    (void)n;  // EAGAIN only when the counter is saturated, which still wakes the loop
  }
  // The result of `id` when it is already here (the invocation finished inside invoke()).
  std::optional<exec::InvokeOutput> take(uint64_t id) {
    MutexLock lock(mu_);
    for (auto it = done_.begin(); it != done_.end(); ++it) {
      if (it->first == id) {
        auto out = std::move(it->second);
        done_.erase(it);
        return out;
      }
    }
    return std::nullopt;
  }
  std::vector<std::pair<uint64_t, exec::InvokeOutput>> takeAll() {
    uint64_t count;
    ssize_t n = ::read(fd_, &count, sizeof count);
    (void)n;  // EAGAIN when nothing was signalled
    MutexLock lock(mu_);
    return std::exchange(done_, {});
  }
  void close() {
    MutexLock lock(mu_);
    closed_ = true;
    done_.clear();
  }

 private:
  const int fd_;
  Mutex mu_;
  std::vector<std::pair<uint64_t, exec::InvokeOutput>> done_ TERN_GUARDED_BY(mu_);
  bool closed_ TERN_GUARDED_BY(mu_) = false;
};

std::string methodName(coap_pdu_code_t code) {
  switch (code) {
    case COAP_REQUEST_CODE_GET: return "GET";
    case COAP_REQUEST_CODE_POST: return "POST";
    case COAP_REQUEST_CODE_PUT: return "PUT";
    case COAP_REQUEST_CODE_DELETE: return "DELETE";
    case COAP_REQUEST_CODE_FETCH: return "FETCH";
    case COAP_REQUEST_CODE_PATCH: return "PATCH";
    case COAP_REQUEST_CODE_IPATCH: return "iPATCH";
    default: return "";
  }
}

// The media type for a Content-Format number (RFC 7252 12.3), for CONTENT_TYPE.
std::string mediaType(unsigned format) {
  switch (format) {
    case COAP_MEDIATYPE_TEXT_PLAIN: return "text/plain; charset=utf-8";
    case COAP_MEDIATYPE_APPLICATION_LINK_FORMAT: return "application/link-format";
    case COAP_MEDIATYPE_APPLICATION_XML: return "application/xml";
    case COAP_MEDIATYPE_APPLICATION_OCTET_STREAM: return "application/octet-stream";
    case COAP_MEDIATYPE_APPLICATION_EXI: return "application/exi";
    case COAP_MEDIATYPE_APPLICATION_JSON: return "application/json";
    case COAP_MEDIATYPE_APPLICATION_CBOR: return "application/cbor";
    default: return fmt::format("application/x-coap-format-{}", format);
  }
}

std::string addressText(const coap_address_t* a) {
  char buf[INET6_ADDRSTRLEN] = "";
  if (!a) return "";
  if (a->addr.sa.sa_family == AF_INET) {
    inet_ntop(AF_INET, &a->addr.sin.sin_addr, buf, sizeof buf);
  } else if (a->addr.sa.sa_family == AF_INET6) {
    inet_ntop(AF_INET6, &a->addr.sin6.sin6_addr, buf, sizeof buf);
  }
  return buf;
}

// A request to /fn/NAME[/REST][?QUERY], decoded from its options.
struct Target {
  std::string function;
  std::string pathInfo;
  std::string query;
  std::optional<unsigned> contentFormat;
  std::optional<std::string> token;  // the Uri-Query option token=TOKEN, kept out of `query`
};

Result<Target> parseTarget(const coap_pdu_t* request) {
  std::vector<std::string> path;
  Target t;
  coap_opt_iterator_t it;
  if (!coap_option_iterator_init(request, &it, COAP_OPT_ALL)) {
    return Error(ErrorCode::kInvalidArgument, "cannot read the request options");
  }
  while (coap_opt_t* opt = coap_option_next(&it)) {
    std::string_view value(reinterpret_cast<const char*>(coap_opt_value(opt)),
                           coap_opt_length(opt));
    bool uri = it.number == COAP_OPTION_URI_PATH || it.number == COAP_OPTION_URI_QUERY;
    if (uri && value.find('\0') != std::string_view::npos) {
      return Error(ErrorCode::kInvalidArgument, "Uri-Path and Uri-Query may not contain NUL");
    }
    if (it.number == COAP_OPTION_URI_PATH) {
      if (value.find('/') != std::string_view::npos) {
        return Error(ErrorCode::kInvalidArgument,
                     fmt::format("a Uri-Path segment may not contain '/': \"{}\"", value));
      }
      path.emplace_back(value);
    } else if (it.number == COAP_OPTION_URI_QUERY && value.starts_with("token=")) {
      if (t.token) return Error(ErrorCode::kInvalidArgument, "token= may be given once");
      t.token = std::string(value.substr(6));
    } else if (it.number == COAP_OPTION_URI_QUERY) {
      if (!t.query.empty()) t.query += '&';
      t.query += value;
    } else if (it.number == COAP_OPTION_CONTENT_FORMAT) {
      t.contentFormat = coap_decode_var_bytes(coap_opt_value(opt), coap_opt_length(opt));
    }
  }
  if (path.size() < 2 || path[0] != "fn" || path[1].empty()) {
    std::string shown;
    for (const auto& p : path) shown += "/" + p;
    return Error(ErrorCode::kNotFound,
                 fmt::format("no route for {}; functions are at /fn/NAME", shown.empty() ? "/" : shown));
  }
  t.function = path[1];
  for (size_t i = 2; i < path.size(); ++i) t.pathInfo += "/" + path[i];
  return t;
}

// The UDP socket of the context's only endpoint: the one datagram socket among the
// descriptors in libcoap's epoll set (listed in /proc/self/fdinfo, see proc(5)).
int findEndpointSocket(int epollFd) {
  std::ifstream info(fmt::format("/proc/self/fdinfo/{}", epollFd));
  std::string line;
  while (std::getline(info, line)) {
    if (!line.starts_with("tfd:")) continue;
    int fd = std::atoi(line.c_str() + 4);
    int type = 0;
    socklen_t len = sizeof type;
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 && type == SOCK_DGRAM) return fd;
  }
  return -1;
}

}  // namespace

struct CoapServer::Impl {
  exec::Invoker& invoker;
  CoapOptions options;
  Counter* responses[3];  // 2.xx, 4.xx, 5.xx
  Counter& garbage;

  coap_context_t* ctx = nullptr;
  int epollFd = -1;
  int socketFd = -1;
  uint16_t boundPort = 0;
  std::shared_ptr<Completions> completions = std::make_shared<Completions>();
  std::thread thread;
  std::atomic<bool> stopRequested{false};
  std::atomic<bool> refusing{false};  // new requests get 5.03
  CoapDrain drain;

  // The answer to one invocation request: an error, or the function's stdout.
  struct Answer {
    coap_pdu_code_t method = COAP_REQUEST_CODE_GET;
    std::optional<Error> error;
    std::shared_ptr<const std::string> payload;
  };
  // An invocation whose answer is a separate response. CoAP thread only.
  struct Call {
    coap_session_t* session = nullptr;  // referenced while the call lives
    std::vector<uint8_t> token;
    std::string exchange;  // the request's dedup key
    coap_pdu_code_t method = COAP_REQUEST_CODE_GET;
    std::optional<Answer> answer;  // set when the async is triggered
  };
  std::unordered_map<uint64_t, Call> calls;
  uint64_t nextCallId = 1;
  // Response bodies that libcoap sends block by block; each holder is freed by libcoap's
  // release callback (or at destruction).
  std::unordered_set<std::shared_ptr<const std::string>*> sending;
  // Answers by exchange (peer address, port and message ID), so a retransmitted request
  // gets the same answer without running the function again (RFC 7252 4.5): kept for
  // EXCHANGE_LIFETIME (247 s) within a byte budget, oldest dropped first.
  static constexpr auto kExchangeLifetime = std::chrono::seconds(247);
  static constexpr size_t kAnswerBudgetBytes = 16u << 20;
  std::unordered_map<std::string, Answer> answers;
  std::deque<std::pair<std::chrono::steady_clock::time_point, std::string>> answerOrder;
  size_t answerBytes = 0;
  std::vector<uint8_t> datagram;  // readDatagrams' buffer

  Impl(exec::Invoker& inv, MetricsRegistry& metrics, CoapOptions opts)
      : invoker(inv),
        options(std::move(opts)),
        garbage(metrics.counter("tern_coap_garbage_datagrams_total",
                                "CoAP datagrams dropped or reset as malformed")) {
    const char* help = "CoAP requests answered, by response class";
    responses[0] = &metrics.counter("tern_coap_requests_total", help, {{"class", "2.xx"}});
    responses[1] = &metrics.counter("tern_coap_requests_total", help, {{"class", "4.xx"}});
    responses[2] = &metrics.counter("tern_coap_requests_total", help, {{"class", "5.xx"}});
  }

  void count(int code) { responses[code >= 500 ? 2 : code >= 400 ? 1 : 0]->inc(); }

  static void onRequest(coap_resource_t* resource, coap_session_t* session,
                        const coap_pdu_t* request, const coap_string_t* query,
                        coap_pdu_t* response) {
    static_cast<Impl*>(coap_resource_get_userdata(resource))
        ->handle(resource, session, request, query, response);
  }
  static void releaseBody(coap_session_t* session, void* holder) {
    auto* self = static_cast<Impl*>(coap_get_app_data(coap_session_get_context(session)));
    auto* h = static_cast<std::shared_ptr<const std::string>*>(holder);
    if (self->sending.erase(h)) delete h;
  }
  static std::string exchangeKey(coap_session_t* session, const coap_pdu_t* request) {
    const coap_address_t* peer = coap_session_get_addr_remote(session);
    return fmt::format("{}|{}|{}", addressText(peer), peer ? coap_address_get_port(peer) : 0,
                       coap_pdu_get_mid(request));
  }
  void remember(const std::string& key, const Answer& a) {
    auto now = std::chrono::steady_clock::now();
    size_t bytes = key.size() + (a.payload ? a.payload->size() : 0);
    if (!answers.emplace(key, a).second) return;
    answerOrder.emplace_back(now, key);
    answerBytes += bytes;
    while (!answerOrder.empty() && (answerBytes > kAnswerBudgetBytes ||
                                    now - answerOrder.front().first > kExchangeLifetime)) {
      auto it = answers.find(answerOrder.front().second);
      if (it != answers.end()) {
        answerBytes -= it->first.size() + (it->second.payload ? it->second.payload->size() : 0);
        answers.erase(it);
      }
      answerOrder.pop_front();
    }
  }
  static Answer answerOf(coap_pdu_code_t method, exec::InvokeOutput& out) {
    Answer a;
    a.method = method;
    a.error = std::move(out.error);
    if (!a.error) a.payload = std::make_shared<const std::string>(std::move(out.result.stdoutData));
    return a;
  }

  void handle(coap_resource_t* resource, coap_session_t* session, const coap_pdu_t* request,
              const coap_string_t* query, coap_pdu_t* response);
  void respondError(coap_pdu_t* response, const Error& e);
  // 4.01 (naming why), 4.03 (naming the scope) or 4.29 with Max-Age.
  void respondRefusal(coap_pdu_t* response, const Refusal& refusal);
  void respond(coap_resource_t* resource, coap_session_t* session, const coap_pdu_t* request,
               const coap_string_t* query, coap_pdu_t* response, const Answer& answer);
  void deliverCompletions();
  void readDatagrams(epoll_event endpointReady);
  void run();
  void release(Call& call) {
    if (call.session) coap_session_release(call.session);
    call.session = nullptr;
  }
};

void CoapServer::Impl::respondError(coap_pdu_t* response, const Error& e) {
  int code = coapCode(e.code());
  coap_pdu_set_code(response, static_cast<coap_pdu_code_t>(COAP_RESPONSE_CODE(code)));
  uint8_t buf[4];
  if (e.code() == ErrorCode::kSaturated || e.code() == ErrorCode::kResourceExhausted) {
    coap_add_option(response, COAP_OPTION_MAXAGE, coap_encode_var_safe(buf, sizeof buf, 1), buf);
  }
  if (e.code() == ErrorCode::kBodyTooLarge) {  // the largest body accepted (RFC 7959 4)
    coap_add_option(response, COAP_OPTION_SIZE1,
                    coap_encode_var_safe(buf, sizeof buf, static_cast<unsigned>(options.maxInvokeBody)),
                    buf);
  }
  // A diagnostic payload: human-readable text without a Content-Format (RFC 7252 5.5.2).
  std::string text = e.describe().substr(0, kMaxDiagnosticBytes);
  coap_add_data(response, text.size(), reinterpret_cast<const uint8_t*>(text.data()));
  count(code);
}

void CoapServer::Impl::respondRefusal(coap_pdu_t* response, const Refusal& refusal) {
  if (refusal.reason.empty()) return respondError(response, refusal.error);  // the store failed
  int code = coapCode(refusal.error.code());
  coap_pdu_set_code(response, static_cast<coap_pdu_code_t>(COAP_RESPONSE_CODE(code)));
  uint8_t buf[4];
  if (refusal.error.code() == ErrorCode::kRateLimited) {
    coap_add_option(response, COAP_OPTION_MAXAGE,
                    coap_encode_var_safe(buf, sizeof buf, static_cast<unsigned>(refusal.retryAfterSeconds)), buf);
  }
  std::string message = refusal.reason == "missing"
                            ? std::string("a token is required: add the Uri-Query option token=TOKEN")
                            : refusal.error.message();
  std::string text = fmt::format("{} ({}): {}", errorKind(refusal.error.code()).summary, refusal.reason, message)
                         .substr(0, kMaxDiagnosticBytes);
  coap_add_data(response, text.size(), reinterpret_cast<const uint8_t*>(text.data()));
  count(code);
}

void CoapServer::Impl::respond(coap_resource_t* resource, coap_session_t* session,
                               const coap_pdu_t* request, const coap_string_t* query,
                               coap_pdu_t* response, const Answer& answer) {
  if (answer.error) return respondError(response, *answer.error);
  // 2.05 answers GET; 2.04 answers POST and PUT, with the result as payload (RFC 7252
  // 5.9.1.4, 5.9.1.5).
  int code = answer.method == COAP_REQUEST_CODE_GET ? 205 : 204;
  coap_pdu_set_code(response, static_cast<coap_pdu_code_t>(COAP_RESPONSE_CODE(code)));
  count(code);
  auto* holder = new std::shared_ptr<const std::string>(answer.payload);
  sending.insert(holder);
  const std::string& body = *answer.payload;
  // Without Max-Age: libcoap keeps the body for the Block2 requests that follow.
  if (!coap_add_data_large_response(resource, session, request, response, query,
                                    COAP_MEDIATYPE_APPLICATION_OCTET_STREAM, -1, 0, body.size(),
                                    reinterpret_cast<const uint8_t*>(body.data()), releaseBody,
                                    holder)) {
    if (sending.erase(holder)) delete holder;
    coap_pdu_set_code(response, COAP_RESPONSE_CODE_INTERNAL_ERROR);
  }
}

void CoapServer::Impl::handle(coap_resource_t* resource, coap_session_t* session,
                              const coap_pdu_t* request, const coap_string_t* query,
                              coap_pdu_t* response) {
  coap_bin_const_t token = coap_pdu_get_token(request);
  if (coap_async_t* async = coap_find_async(session, token)) {
    auto it = calls.find(reinterpret_cast<uintptr_t>(coap_async_get_app_data(async)));
    // A retransmission of a request still running: no response code, so a Confirmable
    // one is acknowledged again with an empty ACK.
    if (it == calls.end() || !it->second.answer) return;
    respond(resource, session, request, query, response, *it->second.answer);
    release(it->second);
    calls.erase(it);
    return;  // libcoap removes the async once this handler returns
  }

  std::string exchange = exchangeKey(session, request);
  if (auto seen = answers.find(exchange); seen != answers.end()) {  // a retransmission
    return respond(resource, session, request, query, response, seen->second);
  }
  coap_pdu_code_t method = coap_pdu_get_code(request);
  if (method != COAP_REQUEST_CODE_GET && method != COAP_REQUEST_CODE_POST &&
      method != COAP_REQUEST_CODE_PUT) {
    coap_pdu_set_code(response, COAP_RESPONSE_CODE_NOT_ALLOWED);
    std::string text = fmt::format("method not allowed: {} (use GET, POST or PUT)",
                                   methodName(method));
    coap_add_data(response, text.size(), reinterpret_cast<const uint8_t*>(text.data()));
    count(405);
    return;
  }
  if (refusing.load()) {
    return respondError(response, Error(ErrorCode::kUnavailable, "the node is shutting down"));
  }
  auto target = parseTarget(request);
  if (!target.ok()) return respondError(response, target.error());
  if (options.invokeAuth == InvokeAuth::kRequired) {
    auto who = options.auth ? options.auth->authorizeToken(target->token, Access{Need::kInvoke, target->function})
                            : AuthResult(Refusal{Error(ErrorCode::kUnauthorized, "this node knows no tokens"),
                                                 "unknown", {}, 0});
    if (auto* refusal = std::get_if<Refusal>(&who)) return respondRefusal(response, *refusal);
  }
  size_t length = 0, offset = 0, total = 0;
  const uint8_t* data = nullptr;
  if (!coap_get_data_large(request, &length, &data, &offset, &total)) {
    length = total = 0;  // no payload
  }
  if (total > options.maxInvokeBody || length > options.maxInvokeBody) {
    return respondError(response,
                        Error(ErrorCode::kBodyTooLarge,
                              fmt::format("the payload of {} bytes exceeds the limit of {} bytes",
                                          std::max(total, length), options.maxInvokeBody)));
  }

  exec::InvokeInput in;
  in.function = std::move(target->function);
  if (method == COAP_REQUEST_CODE_POST || method == COAP_REQUEST_CODE_PUT) {
    in.body.assign(reinterpret_cast<const char*>(data), length);
  }
  in.env.add("REQUEST_METHOD", methodName(method));
  in.env.add("SCRIPT_NAME", "/fn/" + in.function);
  in.env.add("PATH_INFO", target->pathInfo);
  in.env.add("QUERY_STRING", target->query);
  in.env.add("SERVER_PROTOCOL=CoAP/1");
  in.env.add("REMOTE_ADDR", addressText(coap_session_get_addr_remote(session)));
  in.env.add("CONTENT_LENGTH", std::to_string(in.body.size()));
  if (target->contentFormat) in.env.add("CONTENT_TYPE", mediaType(*target->contentFormat));
  in.env.add("TERN_TRIGGER=coap");

  uint64_t id = nextCallId++;
  invoker.invoke(std::move(in), [sink = completions, id](exec::InvokeOutput out) {
    sink->push(id, std::move(out));
  });
  // Finished already (run inline, refused, or not found): a piggybacked response.
  if (auto out = completions->take(id)) {
    Answer answer = answerOf(method, *out);
    remember(exchange, answer);
    return respond(resource, session, request, query, response, answer);
  }
  // Otherwise a separate response: an empty ACK now (for a Confirmable request), the
  // answer when the invocation finishes and deliverCompletions() triggers the async.
  coap_async_t* async = coap_register_async(session, request, 0);
  if (!async) {  // the finished invocation will find no call and be dropped
    return respondError(response,
                        Error(ErrorCode::kInternal, "cannot defer the response"));
  }
  coap_async_set_app_data(async, reinterpret_cast<void*>(static_cast<uintptr_t>(id)));
  Call& call = calls[id];
  call.session = coap_session_reference(session);
  call.token.assign(token.s, token.s + token.length);
  call.exchange = std::move(exchange);
  call.method = method;
}

void CoapServer::Impl::deliverCompletions() {
  for (auto& [id, out] : completions->takeAll()) {
    auto it = calls.find(id);
    if (it == calls.end()) continue;
    Call& call = it->second;
    coap_bin_const_t token{call.token.size(), call.token.data()};
    coap_async_t* async = coap_find_async(call.session, token);
    if (!async) {  // the session went away
      release(call);
      calls.erase(it);
      continue;
    }
    call.answer = answerOf(call.method, out);
    remember(call.exchange, *call.answer);
    coap_async_trigger(async);
  }
}

// Every read of the endpoint socket is decided here. libcoap 3 (4.3.1) cannot be handed a
// datagram (its coap_handle_dgram and the context's network_read hook are internal), nor
// adopt a socket, so tern drives libcoap's event loop itself and holds back the socket's
// readiness: it reads each waiting datagram first (MSG_PEEK, the whole datagram), screens
// it, and either consumes it as garbage or passes libcoap the readiness event, on which
// libcoap reads exactly one datagram (coap_read_endpoint). This thread is the socket's only
// reader and datagrams leave the queue in order, so that one is the datagram just screened.
void CoapServer::Impl::readDatagrams(epoll_event endpointReady) {
  endpointReady.events = EPOLLIN;  // what libcoap reads on, whatever else was reported
  // Large enough for any UDP datagram, so a verdict never rests on a truncated read.
  static constexpr size_t kMaxUdpDatagram = 65536;
  // The rest waits for the next round, so a flood cannot starve completions and timers.
  static constexpr int kDatagramsPerRound = 64;
  std::vector<uint8_t>& buf = datagram;
  buf.resize(kMaxUdpDatagram);
  for (int i = 0; i < kDatagramsPerRound; ++i) {
    ssize_t n = ::recv(socketFd, buf.data(), buf.size(), MSG_PEEK | MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      continue;  // a pending ICMP error (ECONNREFUSED ...), cleared by this read
    }
    std::span<const uint8_t> d(buf.data(), static_cast<size_t>(n));
    auto verdict = checkDatagram(d);
    if (verdict == DatagramVerdict::kWellFormed) {
      coap_io_do_epoll(ctx, &endpointReady, 1);
      continue;
    }
    sockaddr_storage from{};
    socklen_t fromLen = sizeof from;
    n = ::recvfrom(socketFd, buf.data(), buf.size(), MSG_DONTWAIT,
                   reinterpret_cast<sockaddr*>(&from), &fromLen);
    if (n < 0) continue;  // cannot happen with one reader; the next peek decides afresh
    garbage.inc();
    if (verdict == DatagramVerdict::kReset) {
      auto reset = resetFor(std::span<const uint8_t>(buf.data(), static_cast<size_t>(n)));
      ::sendto(socketFd, reset.data(), reset.size(), MSG_DONTWAIT,
               reinterpret_cast<sockaddr*>(&from), fromLen);
    }
  }
}

void CoapServer::Impl::run() {
  using Clock = std::chrono::steady_clock;
  // While stopping: until when invocations may run, then until when acknowledgements may
  // come (set once the invocations are done).
  std::optional<Clock::time_point> invocationsDeadline, acknowledgementsDeadline;
  for (;;) {
    auto now = Clock::now();
    if (stopRequested.load() && !invocationsDeadline) {
      refusing = true;
      invocationsDeadline = now + drain.invocations;
    }
    if (invocationsDeadline) {
      if (!acknowledgementsDeadline && (calls.empty() || now >= *invocationsDeadline)) {
        acknowledgementsDeadline = now + drain.acknowledgements;
      }
      bool acknowledged = acknowledgementsDeadline && coap_can_exit(ctx);
      if (acknowledged || (acknowledgementsDeadline && now >= *acknowledgementsDeadline)) {
        if (!calls.empty()) {
          spdlog::warn("CoAP: stopped with {} invocation(s) unanswered", calls.size());
        }
        if (!acknowledged) {
          spdlog::warn("CoAP: stopped before every separate response was acknowledged");
        }
        return;
      }
    }
    // Sends what is due (retransmissions, triggered separate responses) and arms libcoap's
    // timer, which is in libcoap's epoll set with the endpoint socket.
    coap_tick_t ticks;
    coap_ticks(&ticks);
    coap_io_prepare_epoll(ctx, ticks);
    pollfd fds[2] = {{epollFd, POLLIN, 0}, {completions->fd(), POLLIN, 0}};
    // The bound paces the drain checks while stopping and the report of suppressed
    // libcoap log lines.
    ::poll(fds, 2, invocationsDeadline ? 50 : 1000);
    epoll_event events[8];
    int ready = ::epoll_wait(epollFd, events, 8, 0);
    for (int i = 0; i < ready; ++i) {
      // libcoap's timer has no socket (a null pointer): libcoap clears and re-arms it. The
      // only socket in the set is the endpoint's (a UDP server keeps no other).
      if (events[i].data.ptr == nullptr) {
        coap_io_do_epoll(ctx, &events[i], 1);
      } else {
        readDatagrams(events[i]);
      }
    }
    deliverCompletions();
    reportSuppressedLibcoapLines(Clock::now());
  }
}

CoapServer::CoapServer(exec::Invoker& invoker, MetricsRegistry& metrics, CoapOptions options)
    : impl_(std::make_unique<Impl>(invoker, metrics, std::move(options))) {}

CoapServer::~CoapServer() {
  stop(CoapDrain{});
  Impl& s = *impl_;
  s.completions->close();
  for (auto& [id, call] : s.calls) s.release(call);
  s.calls.clear();
  if (s.ctx) coap_free_context(s.ctx);  // may release bodies still being sent
  for (auto* holder : s.sending) delete holder;
}

Result<void> CoapServer::start() {
  Impl& s = *impl_;
  if (s.completions->fd() < 0) return Error(ErrorCode::kIo, "cannot create an eventfd for CoAP");
  coap_startup();
  coap_set_log_handler(&onLibcoapLog);
  coap_set_show_pdu_output(0);  // PDU dumps go through the handler too
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_DGRAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  std::string port = std::to_string(s.options.port);
  if (int rc = getaddrinfo(s.options.address.c_str(), port.c_str(), &hints, &found); rc != 0) {
    return Error(ErrorCode::kInvalidArgument,
                 fmt::format("cannot resolve CoAP address \"{}\": {}", s.options.address,
                             gai_strerror(rc)));
  }
  coap_address_t addr;
  coap_address_init(&addr);
  std::memcpy(&addr.addr, found->ai_addr, found->ai_addrlen);
  addr.size = found->ai_addrlen;
  freeaddrinfo(found);

  s.ctx = coap_new_context(nullptr);
  if (!s.ctx) return Error(ErrorCode::kInternal, "cannot create a CoAP context");
  coap_set_app_data(s.ctx, &s);
  coap_context_set_block_mode(s.ctx, COAP_BLOCK_USE_LIBCOAP | COAP_BLOCK_SINGLE_BODY);
  coap_endpoint_t* endpoint = coap_new_endpoint(s.ctx, &addr, COAP_PROTO_UDP);
  if (!endpoint) {
    return Error(ErrorCode::kIo, fmt::format("cannot listen for CoAP on {}:{} (UDP)",
                                             s.options.address, s.options.port));
  }
  // The screen passes nothing longer, so libcoap and the screen agree on the limit.
  coap_endpoint_set_default_mtu(endpoint, kMaxCoapDatagram);
  s.epollFd = coap_context_get_coap_fd(s.ctx);
  s.socketFd = s.epollFd >= 0 ? findEndpointSocket(s.epollFd) : -1;
  if (s.socketFd < 0) {
    return Error(ErrorCode::kInternal, "libcoap is built without epoll support: no CoAP socket");
  }
  sockaddr_storage bound{};
  socklen_t len = sizeof bound;
  if (getsockname(s.socketFd, reinterpret_cast<sockaddr*>(&bound), &len) != 0) {
    return Error(ErrorCode::kIo, "cannot read the CoAP socket's address");
  }
  s.boundPort = ntohs(bound.ss_family == AF_INET6
                          ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                          : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);

  // Every path is served by the handler (libcoap's "unknown resource"), which routes /fn.
  coap_resource_t* r = coap_resource_unknown_init2(&Impl::onRequest, 0);
  for (coap_request_t m : {COAP_REQUEST_GET, COAP_REQUEST_POST, COAP_REQUEST_DELETE,
                           COAP_REQUEST_FETCH, COAP_REQUEST_PATCH, COAP_REQUEST_IPATCH}) {
    coap_register_request_handler(r, m, &Impl::onRequest);
  }
  coap_resource_set_userdata(r, &s);
  coap_add_resource(s.ctx, r);

  s.thread = std::thread([&s] { s.run(); });
  return {};
}

void CoapServer::refuseNewRequests() { impl_->refusing = true; }

void CoapServer::stop(CoapDrain drain) {
  Impl& s = *impl_;
  if (!s.thread.joinable()) return;
  s.drain = drain;
  s.stopRequested = true;
  s.completions->wake();
  s.thread.join();
}

uint16_t CoapServer::port() const { return impl_->boundPort; }

}  // namespace tern::triggers
