# client_direct_unit: unit tests of the ICE candidates (client/nat/candidates.c), the
# direct-path packet codec (client/nat/path_wire.c) and the datagrams held between
# two paths (client/session_hold.c), no server. Links the schema
# codec (message accessors; the STUN codec for the demultiplexing test).
add_executable(client_direct_unit test_direct_unit.c ${PROJECT_SOURCE_DIR}/client/nat/candidates.c
  ${PROJECT_SOURCE_DIR}/client/nat/path_wire.c ${PROJECT_SOURCE_DIR}/client/e2e.c
  ${PROJECT_SOURCE_DIR}/client/session_hold.c)
target_include_directories(client_direct_unit PRIVATE ${PROJECT_SOURCE_DIR}
  ${PROJECT_SOURCE_DIR}/client/include ${PROJECT_BINARY_DIR}/client/include)
target_link_libraries(client_direct_unit PRIVATE rdv_schema PkgConfig::CMOCKA
  PkgConfig::SODIUM PkgConfig::JANSSON)
add_test(NAME client_direct_unit COMMAND client_direct_unit)
set_tests_properties(client_direct_unit PROPERTIES TIMEOUT 60
  ENVIRONMENT "ASAN_OPTIONS=detect_leaks=1:abort_on_error=1;UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1")
