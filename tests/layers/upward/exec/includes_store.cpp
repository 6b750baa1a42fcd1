// A deliberate layer violation (exec including store), for the test that shows the layer
// check fails on one. Never compiled.
#include "store/registry.h"
