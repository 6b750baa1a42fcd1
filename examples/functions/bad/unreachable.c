/* unreachable: executes the WebAssembly `unreachable` instruction, which traps. */
int main(void) {
  __builtin_trap();
}
