// {{name}}: a tern function. It reads its input as its trigger delivers it (the request
// body or the MQTT payload on stdin; TERN_TRIGGER, MQTT_TOPIC and TERN_SCHEDULED_AT in the
// environment), counts its calls in the node's key-value store, logs a line and answers on
// stdout.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "greeting.h"
#include "tern.h"

namespace {

// Reads stdin up to `cap` bytes; the rest is ignored.
std::string readInput(size_t cap) {
  std::string input;
  char buf[4096];
  ssize_t n;
  while (input.size() < cap && (n = read(0, buf, sizeof buf)) > 0) input.append(buf, static_cast<size_t>(n));
  if (input.size() > cap) input.resize(cap);
  return input;
}

const char* envOr(const char* name, const char* fallback) {
  const char* value = std::getenv(name);
  return value ? value : fallback;
}

// Adds one to the counter under "calls" and returns its new value, 0 on failure.
long countCall() {
  char value[24];
  size_t len = 0;
  long count = 0;
  tern_status_t s = tern_kv_get_into("calls", 5, value, sizeof value - 1, &len);
  if (s == TERN_OK) {
    count = std::strtol(std::string(value, len).c_str(), nullptr, 10);
  } else if (s != TERN_NOT_FOUND) {
    tern_log(TERN_LOG_ERROR, tern_last_error());
    return 0;
  }
  std::string next = std::to_string(count + 1);
  if (tern_kv_set("calls", 5, next.data(), next.size()) != TERN_OK) {
    tern_log(TERN_LOG_ERROR, tern_last_error());
    return 0;
  }
  return count + 1;
}

}  // namespace

int main() {
  std::string input = readInput(4096);
  std::string trigger = envOr("TERN_TRIGGER", "http");
  const char* origin = envOr("MQTT_TOPIC", envOr("TERN_SCHEDULED_AT", ""));

  long count = countCall();
  if (count == 0) return 1;
  std::string answer = greeting(input, trigger, origin, count);
  tern_log(TERN_LOG_INFO, answer.c_str());
  if (trigger == "http") std::printf("Content-Type: text/plain\r\n\r\n");
  std::printf("%s\n", answer.c_str());
  return 0;
}
