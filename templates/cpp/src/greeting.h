// The logic of {{name}}, free of I/O and of the host API, so that tests/greeting_test.cpp
// checks it natively and tern runs the same code in the function.
#pragma once

#include <string>
#include <string_view>

// The answer to one call. `input` is the request body or the MQTT payload (possibly empty),
// `trigger` how the call came ("http", "mqtt", "cron"), `origin` the MQTT topic or the
// scheduled time (empty for none) and `count` the call's number.
std::string greeting(std::string_view input, std::string_view trigger, std::string_view origin,
                     long count);
