// The floor under a forwarded call (cluster_bench.sh): one request/reply through a
// nats-server with libnats and nothing else, shaped like a forwarded call in tern. One
// connection answers on its subscription's callback; another publishes each request with a
// reply subject, receives the answer on an asynchronous subscription and wakes the thread
// that sent it (as the reply wakes an HTTP connection). Options as tern's (SendAsap).
//
//   tern_bench_nats_rtt --url nats://127.0.0.1:4222 [--count 5000] [--bytes 200]

#include <nats/nats.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <string>
#include <vector>

namespace {

struct Waiter {
  std::mutex mu;
  std::condition_variable cv;
  bool answered = false;
};

natsConnection* connect(const std::string& url) {
  natsOptions* o = nullptr;
  natsConnection* c = nullptr;
  if (natsOptions_Create(&o) != NATS_OK || natsOptions_SetURL(o, url.c_str()) != NATS_OK ||
      natsOptions_SetSendAsap(o, true) != NATS_OK || natsConnection_Connect(&c, o) != NATS_OK) {
    c = nullptr;
  }
  natsOptions_Destroy(o);
  return c;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Round trip of a NATS request/reply on libnats, the floor of a forwarded call"};
  std::string url;
  int count = 5000;
  int bytes = 200;
  app.add_option("--url", url, "nats-server URL")->required();
  app.add_option("--count", count, "round trips")->check(CLI::Range(100, 10000000));
  app.add_option("--bytes", bytes, "request and reply size")->check(CLI::Range(1, 1 << 20));
  CLI11_PARSE(app, argc, argv);

  natsConnection* responder = connect(url);
  natsConnection* requester = connect(url);
  if (!responder || !requester) {
    std::fprintf(stderr, "cannot connect to %s\n", url.c_str());
    return 1;
  }
  natsSubscription* requests = nullptr;
  natsSubscription* replies = nullptr;
  natsConnection_Subscribe(
      &requests, responder, "bench.rtt.request",
      [](natsConnection* nc, natsSubscription*, natsMsg* m, void*) {
        natsConnection_Publish(nc, natsMsg_GetReply(m), natsMsg_GetData(m),
                               natsMsg_GetDataLength(m));
        natsMsg_Destroy(m);
      },
      nullptr);
  Waiter waiter;
  natsConnection_Subscribe(
      &replies, requester, "bench.rtt.reply.*",
      [](natsConnection*, natsSubscription*, natsMsg* m, void* w) {
        auto* waiter = static_cast<Waiter*>(w);
        {
          std::lock_guard lock(waiter->mu);
          waiter->answered = true;
        }
        waiter->cv.notify_one();
        natsMsg_Destroy(m);
      },
      &waiter);
  natsConnection_Flush(responder);
  natsConnection_Flush(requester);

  std::string body(static_cast<size_t>(bytes), 'x');
  std::vector<double> us;
  us.reserve(static_cast<size_t>(count));
  for (int i = 0; i < count; ++i) {
    auto start = std::chrono::steady_clock::now();
    {
      std::lock_guard lock(waiter.mu);
      waiter.answered = false;
    }
    natsConnection_PublishRequest(requester, "bench.rtt.request", "bench.rtt.reply.1",
                                  body.data(), bytes);
    std::unique_lock lock(waiter.mu);
    if (!waiter.cv.wait_for(lock, std::chrono::seconds(2), [&] { return waiter.answered; })) {
      std::fprintf(stderr, "no answer within 2 s\n");
      return 1;
    }
    us.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() -
                                                            start)
                     .count());
  }
  std::sort(us.begin(), us.end());
  std::printf("%.0f %.0f\n", us[us.size() / 2], us[us.size() * 99 / 100]);

  natsSubscription_Destroy(requests);
  natsSubscription_Destroy(replies);
  natsConnection_Destroy(responder);
  natsConnection_Destroy(requester);
  nats_Close();
  return 0;
}
