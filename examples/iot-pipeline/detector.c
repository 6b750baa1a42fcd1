/* Temperature anomaly detector: the function of the IoT pipeline example (README.md).
 *
 * Triggered by MQTT messages on sensors/DEVICE/temperature whose payload is a reading in
 * degrees Celsius ("21.5", or JSON with a "celsius" field). Keeps, per device, an
 * exponentially weighted mean and variance of the readings in the function's key-value
 * store, and publishes an alert on alerts/DEVICE when a reading lies more than
 * ALERT_SIGMAS standard deviations (at least ALERT_MIN_DELTA degrees) from the mean, after
 * WARMUP readings. Writes one line per reading to stdout (the reply, when deployed with
 * --reply-topic).
 *
 * Capabilities: --allow kv --allow 'publish:alerts/#'
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tern.h>

#define WARMUP 5
#define ALPHA 0.2           /* weight of a new reading in the running mean */
#define ALERT_SIGMAS 3.0
#define ALERT_MIN_DELTA 2.0 /* degrees: quieter deviations are never alerts */

typedef struct {
  long count;
  double mean;
  double var;
} stats_t;

static int fail(const char* what) {
  fprintf(stderr, "%s: %s\n", what, tern_last_error());
  return 1;
}

/* The reading in a payload: a bare number or a JSON object with "celsius". */
static int parse_reading(const char* text, double* out) {
  const char* p = strstr(text, "\"celsius\"");
  if (p) {
    p = strchr(p + 9, ':');
    if (!p) return 0;
    ++p;
  } else {
    p = text;
  }
  char* end = NULL;
  double v = strtod(p, &end);
  if (end == p || !isfinite(v) || v < -273.15 || v > 1000) return 0;
  *out = v;
  return 1;
}

/* DEVICE from sensors/DEVICE/temperature; "unknown" for other topics. */
static void device_of(const char* topic, char* out, size_t cap) {
  const char* start = strchr(topic ? topic : "", '/');
  const char* end = start ? strchr(start + 1, '/') : NULL;
  size_t n = (start && end) ? (size_t)(end - start - 1) : 0;
  if (n == 0 || n >= cap) {
    snprintf(out, cap, "unknown");
    return;
  }
  memcpy(out, start + 1, n);
  out[n] = 0;
}

int main(void) {
  char payload[256];
  size_t len = fread(payload, 1, sizeof payload - 1, stdin);
  payload[len] = 0;
  char device[64];
  device_of(getenv("MQTT_TOPIC"), device, sizeof device);

  double reading;
  if (!parse_reading(payload, &reading)) {
    /* A malformed reading fails the run: after its retries it becomes a dead letter on
     * tern/dead/detector with this message, and the device's statistics stay untouched. */
    fprintf(stderr, "device %s: payload is not a temperature reading\n", device);
    return 2;
  }

  char key[96];
  snprintf(key, sizeof key, "stats/%s", device);
  stats_t s = {0, 0, 0};
  char buf[128];
  size_t got = 0;
  tern_status_t st = tern_kv_get_into(key, strlen(key), buf, sizeof buf - 1, &got);
  if (st == TERN_OK) {
    buf[got] = 0;
    if (sscanf(buf, "%ld %lf %lf", &s.count, &s.mean, &s.var) != 3) s = (stats_t){0, 0, 0};
  } else if (st != TERN_NOT_FOUND) {
    return fail("kv_get");
  }

  double delta = reading - s.mean;
  double sigma = sqrt(s.var);
  int anomaly = s.count >= WARMUP && fabs(delta) > ALERT_SIGMAS * sigma &&
                fabs(delta) >= ALERT_MIN_DELTA;
  if (anomaly) {
    char alert[256];
    int n = snprintf(alert, sizeof alert,
                     "{\"device\":\"%s\",\"celsius\":%.2f,\"mean\":%.2f,\"sigma\":%.2f}", device,
                     reading, s.mean, sigma);
    char topic[96];
    snprintf(topic, sizeof topic, "alerts/%s", device);
    if (tern_publish(topic, alert, (size_t)n) != TERN_OK) return fail("publish");
    char line[160];
    snprintf(line, sizeof line, "anomaly on %s: %.2f C against a mean of %.2f C", device, reading,
             s.mean);
    tern_log(TERN_LOG_WARN, line);
  } else {
    /* Anomalies do not move the baseline, so a stuck-hot sensor keeps alerting. */
    if (s.count == 0) {
      s.mean = reading;
      s.var = 0;
    } else {
      s.mean += ALPHA * delta;
      s.var = (1 - ALPHA) * (s.var + ALPHA * delta * delta);
    }
    s.count++;
    int n = snprintf(buf, sizeof buf, "%ld %.6f %.6f", s.count, s.mean, s.var);
    if (tern_kv_set(key, strlen(key), buf, (size_t)n) != TERN_OK) return fail("kv_set");
  }
  printf("%s %.2f %s mean=%.2f\n", device, reading, anomaly ? "ANOMALY" : "ok", s.mean);
  return 0;
}
