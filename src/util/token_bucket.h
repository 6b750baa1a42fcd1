#pragma once
// A token bucket on an injected clock: `rate` tokens per second, at most `burst` saved up,
// starting full. Pure; tested from tables. Used by the stream hub (per-subscriber app
// limits) and by the per-token request limits (triggers/token_auth.h).

#include <algorithm>
#include <cmath>
#include <cstdint>

namespace tern {

class TokenBucket {
 public:
  TokenBucket() = default;  // no limit
  TokenBucket(double rate, double burst) : rate_(rate), burst_(std::max(1.0, burst)), tokens_(burst_) {}

  bool limited() const { return rate_ > 0; }

  // Takes a token at `nowNs` if there is one.
  bool take(int64_t nowNs) {
    if (!limited()) return true;
    refill(nowNs);
    if (tokens_ < 1.0) return false;
    tokens_ -= 1.0;
    return true;
  }

  // Nanoseconds from `nowNs` until a token is there (0: now).
  int64_t waitNs(int64_t nowNs) {
    if (!limited()) return 0;
    refill(nowNs);
    if (tokens_ >= 1.0) return 0;
    // At most an hour: a tiny rate must not overflow the conversion.
    return static_cast<int64_t>(std::min(std::ceil((1.0 - tokens_) / rate_ * 1e9), 3.6e12));
  }

 private:
  void refill(int64_t nowNs) {
    if (lastNs_ != 0 && nowNs > lastNs_) {
      tokens_ = std::min(burst_, tokens_ + static_cast<double>(nowNs - lastNs_) * rate_ / 1e9);
    }
    if (nowNs > lastNs_) lastNs_ = nowNs;
  }

  double rate_ = 0;
  double burst_ = 1;
  double tokens_ = 1;
  int64_t lastNs_ = 0;
};

}  // namespace tern
