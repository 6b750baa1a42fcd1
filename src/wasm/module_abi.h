/* The C interface between tern and a compiled module's shared object.
 *
 * Every module tern compiles is wasm2c's output plus a generated glue file. The glue
 * exports one symbol, `tern_module_v1`, describing the module: how large an instance is,
 * how to instantiate it, and one entry per export with a uniform calling convention
 * (arguments and results as 64-bit slots) so tern can call any export without knowing
 * its C prototype. This header is embedded into tern and written next to the generated
 * code at compile time; it is the single definition of the interface. Bump
 * TERN_MODULE_ABI_VERSION on any change: it is part of the compile-cache key.
 */
#ifndef TERN_MODULE_ABI_H_
#define TERN_MODULE_ABI_H_

#include <stdint.h>

#define TERN_MODULE_ABI_VERSION 3

#ifdef __cplusplus
extern "C" {
#endif

/* Calls an exported function: arguments and results are 64-bit slots holding the value's
 * bits (i32/f32 in the low 32 bits; externref as a pointer; funcref as the function pointer,
 * 0 for null). */
typedef void (*tern_trampoline_t)(void* instance, const uint64_t* args, uint64_t* results);
/* Address of an exported memory (wasm_rt_memory_t*), table or global (its storage). */
typedef void* (*tern_export_address_t)(void* instance);

enum { TERN_EXTERN_FUNC = 0, TERN_EXTERN_TABLE = 1, TERN_EXTERN_MEMORY = 2, TERN_EXTERN_GLOBAL = 3 };

typedef struct tern_export {
  const char* name; /* not NUL-safe: use name_len */
  uint32_t name_len;
  uint32_t kind;
  const char* signature; /* functions "ii:i"; globals the value letter; else "" */
  tern_trampoline_t call;
  tern_export_address_t address;
} tern_export_t;

/* The instance handed to imports from modules other than tern's host modules (used by the
 * conformance harness to link spec-test modules): calls and addresses are resolved by
 * the embedder, by import index. */
typedef struct tern_import_env {
  /* Points to this structure. wasm2c passes an import function either this structure's
   * address (direct calls) or the address of a pointer to it (calls through a table entry,
   * whose module_instance wasm2c 1.0.32 sets to &instance->import_instance_field); the
   * first word at either address is the structure's address. Host import instances (WASI)
   * follow the same rule. */
  struct tern_import_env* self;
  void* user;
  void (*call)(void* user, uint32_t import_index, const uint64_t* args, uint64_t* results);
  void* (*address)(void* user, uint32_t import_index);
} tern_import_env_t;

typedef struct tern_module {
  uint32_t abi_version;
  uint32_t instance_size;
  void (*init_module)(void);
  /* import_instances[i] belongs to import_modules[i] */
  void (*instantiate)(void* instance, void* const* import_instances);
  uint32_t import_module_count;
  const char* const* import_modules;
  uint32_t export_count;
  const tern_export_t* exports;
  /* The SHA-256 (64 lowercase hex digits) of the wasm module this object was compiled from:
   * an object is only ever run for the module it names (objects travel to devices). */
  const char* module_sha256;
} tern_module_t;

#ifdef __cplusplus
}
#endif

#endif /* TERN_MODULE_ABI_H_ */
