# Building WebAssembly guest functions (WASI preview 1 command modules) as part of the
# normal build. Outputs land in ${TERN_EXAMPLES_DIR}.

find_program(TERN_WASM_CLANG NAMES clang-14 clang)
find_program(TERN_RUSTC NAMES rustc PATHS /usr/bin NO_DEFAULT_PATH)
if(NOT TERN_RUSTC)
  find_program(TERN_RUSTC rustc)
endif()
set(TERN_GUEST_INCLUDE ${PROJECT_SOURCE_DIR}/sdk/guest/c)

# tern_add_wasm_c(NAME SOURCES src... [CFLAGS flags...] [OUTPUT_DIR dir] [DEPENDS files...])
# Compiles C sources to OUTPUT_DIR/NAME.wasm (default ${TERN_EXAMPLES_DIR}) with
# clang --target=wasm32-wasi; the guest SDK (sdk/guest/c) is on the include path.
function(tern_add_wasm_c name)
  cmake_parse_arguments(ARG "" "OUTPUT_DIR" "SOURCES;CFLAGS;DEPENDS" ${ARGN})
  if(NOT ARG_OUTPUT_DIR)
    set(ARG_OUTPUT_DIR ${TERN_EXAMPLES_DIR})
  endif()
  set(out ${ARG_OUTPUT_DIR}/${name}.wasm)
  set(srcs)
  foreach(s ${ARG_SOURCES})
    list(APPEND srcs ${CMAKE_CURRENT_SOURCE_DIR}/${s})
  endforeach()
  add_custom_command(
    OUTPUT ${out}
    COMMAND ${CMAKE_COMMAND} -E make_directory ${ARG_OUTPUT_DIR}
    COMMAND ${TERN_WASM_CLANG} --target=wasm32-wasi -O2 -Wall -I${TERN_GUEST_INCLUDE}
            -Wl,--strip-debug ${ARG_CFLAGS} ${srcs} -o ${out}
    DEPENDS ${srcs} ${ARG_DEPENDS}
    COMMENT "wasm32-wasi ${name}.wasm"
    VERBATIM)
  add_custom_target(wasm_${name} ALL DEPENDS ${out})
endfunction()

# tern_add_wasm_rust(NAME SOURCE src.rs [OUTPUT_DIR dir] [DEPENDS files...])
# Compiles one Rust file (plus the modules it includes, listed in DEPENDS) to
# OUTPUT_DIR/NAME.wasm (default ${TERN_EXAMPLES_DIR}) with Debian's rustc.
function(tern_add_wasm_rust name)
  cmake_parse_arguments(ARG "" "SOURCE;OUTPUT_DIR" "DEPENDS" ${ARGN})
  if(NOT ARG_OUTPUT_DIR)
    set(ARG_OUTPUT_DIR ${TERN_EXAMPLES_DIR})
  endif()
  set(out ${ARG_OUTPUT_DIR}/${name}.wasm)
  set(src ${CMAKE_CURRENT_SOURCE_DIR}/${ARG_SOURCE})
  add_custom_command(
    OUTPUT ${out}
    COMMAND ${CMAKE_COMMAND} -E make_directory ${ARG_OUTPUT_DIR}
    COMMAND ${TERN_RUSTC} --edition 2021 --target wasm32-wasi -C opt-level=2
            -C strip=debuginfo --crate-type bin -o ${out} ${src}
    DEPENDS ${src} ${ARG_DEPENDS}
    COMMENT "wasm32-wasi (rust) ${name}.wasm"
    VERBATIM)
  add_custom_target(wasm_${name} ALL DEPENDS ${out})
endfunction()
