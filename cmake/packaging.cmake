# Installation and the Debian package (CPack's DEB generator; docs/packages.md).
#
#   cmake --build --preset release && cpack --config build/release/CPackConfig.cmake
#
# gives tern_<version>_amd64.deb; the same in the aarch64 cross build gives the arm64 one.
# The package holds ternd and tern, the systemd unit, the default configuration (a conffile),
# the example functions and the docs; its maintainer scripts make the `tern` system user
# and /var/lib/tern.

include(GNUInstallDirs)

install(TARGETS ternd tern RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT tern)
install(FILES ${PROJECT_SOURCE_DIR}/packaging/ternd.service
        DESTINATION lib/systemd/system COMPONENT tern)
install(FILES ${PROJECT_SOURCE_DIR}/packaging/ternd.toml DESTINATION /etc/tern COMPONENT tern)
install(FILES ${PROJECT_SOURCE_DIR}/README.md ${PROJECT_SOURCE_DIR}/docs/packages.md
              ${PROJECT_SOURCE_DIR}/docs/cli.md ${PROJECT_SOURCE_DIR}/docs/http-api.md
              ${PROJECT_SOURCE_DIR}/docs/quickstart.md ${PROJECT_SOURCE_DIR}/docs/getting-started.md
              ${PROJECT_SOURCE_DIR}/docs/templates.md
        DESTINATION ${CMAKE_INSTALL_DOCDIR} COMPONENT tern)
if(TERN_BUILD_EXAMPLES)
  # The examples' modules, to deploy at once: tern deploy hello /usr/share/tern/examples/hello.wasm
  install(FILES ${TERN_EXAMPLES_DIR}/hello.wasm ${TERN_EXAMPLES_DIR}/echo.wasm
          DESTINATION ${CMAKE_INSTALL_DATADIR}/tern/examples COMPONENT tern OPTIONAL)
endif()

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME tern)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "tern developers <tern-dev@lists.tern.invalid>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "serverless platform for the edge and IoT: WebAssembly functions in microsecond sandboxes")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
if(CMAKE_SYSTEM_PROCESSOR MATCHES "^(aarch64|arm64)$")
  set(CPACK_DEBIAN_PACKAGE_ARCHITECTURE arm64)
else()
  set(CPACK_DEBIAN_PACKAGE_ARCHITECTURE amd64)
endif()
# The shared libraries ternd and tern link (Debian 12's package names, the same on amd64
# and arm64), and what a node runs at deploy time: wasm2c (wabt), the C compiler and C
# library headers of the optimized tier, TinyCC for the baseline tier.
set(CPACK_DEBIAN_PACKAGE_DEPENDS
    "libc6, libstdc++6, libgcc-s1, libssl3, libsqlite3-0, libfmt9, libspdlog1.10, \
libmosquitto1, libyaml-cpp0.7, libnats3.4, libcoap3, libprotobuf-c1, libhttp-parser2.9, \
wabt, gcc, libc6-dev, tcc, passwd")
# ternd's allocator, when the build links it (TERN_MALLOC, src/bin/CMakeLists.txt).
if(TERN_MIMALLOC)
  string(APPEND CPACK_DEBIAN_PACKAGE_DEPENDS ", libmimalloc2.0")
endif()
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${PROJECT_SOURCE_DIR}/packaging/deb/postinst ${PROJECT_SOURCE_DIR}/packaging/deb/prerm
    ${PROJECT_SOURCE_DIR}/packaging/deb/postrm ${PROJECT_SOURCE_DIR}/packaging/deb/conffiles)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_STRIP_FILES ON)
include(CPack)
