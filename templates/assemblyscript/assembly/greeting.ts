// The logic of {{name}}, free of I/O and of the host API, so that tests/greeting.test.ts
// checks it (`npm test`) and tern runs the same code in the function.

// Names longer than this are cut.
const MAX_NAME: i32 = 64;

// The answer to one call. `input` is the request body or the MQTT payload (possibly empty),
// `trigger` how the call came ("http", "mqtt", "cron"), `origin` the MQTT topic or the
// scheduled time ("" for none) and `count` the call's number.
export function greeting(input: string, trigger: string, origin: string, count: i64): string {
  let who = input.trim();
  if (who.length == 0) who = "world";
  if (who.length > MAX_NAME) who = who.substring(0, MAX_NAME);
  let answer = "Hello, " + who + "! This is call " + count.toString() + " of {{name}}, by " + trigger;
  if (origin.length > 0) answer += (trigger == "mqtt" ? " on " : " at ") + origin;
  return answer + ".";
}
