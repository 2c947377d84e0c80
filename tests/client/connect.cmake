# client_connect_*: NAT discovery and rdv_session_connect() (direct path, relay
# fallback and upgrade) against a real rendezvousd on loopback.
add_executable(test_connect ${CMAKE_CURRENT_SOURCE_DIR}/test_connect.c)
target_link_libraries(test_connect PRIVATE rendezvous rdv_test_support
  PkgConfig::CMOCKA PkgConfig::SODIUM Threads::Threads)
add_dependencies(test_connect rendezvousd)
foreach(t discovery dead_stun answer_waits direct relay_only direct_timeout upgrade both_symmetric close
        relay_limit reject session_limit low_order_answer spray_cap network_changed proxy stranger
        reconnect_survives)
  add_test(NAME client_connect_${t} COMMAND test_connect ${t})
  set_tests_properties(client_connect_${t} PROPERTIES TIMEOUT 120
    ENVIRONMENT "ASAN_OPTIONS=detect_leaks=1:abort_on_error=1;UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1")
endforeach()
