// A file that closes a kvWatcher: tests/layers/check_calls.cmake must refuse it.
#include <nats/nats.h>

void closeWatch(kvWatcher* w) { kvWatcher_Destroy(w); }
