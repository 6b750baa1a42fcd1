#include "greeting.h"

#include <cctype>

namespace {

// Names longer than this are cut.
constexpr size_t kMaxName = 64;

bool isSpace(char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; }

}  // namespace

std::string greeting(std::string_view input, std::string_view trigger, std::string_view origin,
                     long count) {
  while (!input.empty() && isSpace(input.front())) input.remove_prefix(1);
  while (!input.empty() && isSpace(input.back())) input.remove_suffix(1);
  std::string who = input.empty() ? std::string("world") : std::string(input.substr(0, kMaxName));
  std::string answer = "Hello, " + who + "! This is call " + std::to_string(count) +
                       " of {{name}}, by " + std::string(trigger);
  if (!origin.empty()) answer += (trigger == "mqtt" ? " on " : " at ") + std::string(origin);
  return answer + ".";
}
