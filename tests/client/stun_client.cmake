# client_stunc_*: the STUN client engine (client/nat/stun_client.c) against a real
# rendezvousd and scripted fake servers on loopback; stun_client.c is compiled
# here directly, so the engine is tested without the rest of the library.
add_executable(client_stunc test_stun_client.c ${PROJECT_SOURCE_DIR}/client/nat/stun_client.c)
target_include_directories(client_stunc PRIVATE ${PROJECT_SOURCE_DIR}
  ${PROJECT_SOURCE_DIR}/client/include ${PROJECT_BINARY_DIR}/client/include)
target_link_libraries(client_stunc PRIVATE rdv_test_support rdv_schema
  PkgConfig::CMOCKA PkgConfig::SODIUM)
add_dependencies(client_stunc rendezvousd)
foreach(t init rendezvousd rendezvousd_alt_port dead_first_rendezvousd dead_first
        retransmit all_dead garbage full_cone restricted port_restricted symmetric
        open cannot_change ignore_change second_server refresh address_mapping
        parallel_full_cone parallel_restricted parallel_port_restricted parallel_symmetric)
  add_test(NAME client_stunc_${t} COMMAND client_stunc ${t})
  set_tests_properties(client_stunc_${t} PROPERTIES TIMEOUT 60
    ENVIRONMENT "ASAN_OPTIONS=detect_leaks=1:abort_on_error=1;UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1")
endforeach()
