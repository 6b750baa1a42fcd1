/* loop: spins forever without calling the host. tern must stop it by its time
 * limit (fuel, epoch or timeout), since it never yields. */
#include <stdint.h>

static volatile uint64_t counter;

int main(void) {
  for (;;) counter++;
}
