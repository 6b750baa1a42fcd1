# The `yaml-cpp` target for the aarch64 cross build (cmake/aarch64-linux-gnu.cmake): the
# arm64 library of libyaml-cpp0.7:arm64 and the headers in /usr/include/yaml-cpp, which the
# amd64 libyaml-cpp-dev installs (the two -dev packages cannot be installed together).
set(_tern_yaml_lib /usr/lib/aarch64-linux-gnu/libyaml-cpp.so.0.7)
if(NOT EXISTS ${_tern_yaml_lib} OR NOT EXISTS /usr/include/yaml-cpp/yaml.h)
  set(yaml-cpp_FOUND FALSE)
  set(yaml-cpp_NOT_FOUND_MESSAGE
      "needs ${_tern_yaml_lib} (libyaml-cpp0.7:arm64) and /usr/include/yaml-cpp "
      "(libyaml-cpp-dev); run scripts/install-deps.sh")
  return()
endif()
set(yaml-cpp_VERSION 0.7.0)
if(NOT TARGET yaml-cpp)
  add_library(yaml-cpp SHARED IMPORTED)
  set_target_properties(yaml-cpp PROPERTIES
    IMPORTED_LOCATION ${_tern_yaml_lib}
    IMPORTED_SONAME libyaml-cpp.so.0.7)
endif()
set(yaml-cpp_FOUND TRUE)
