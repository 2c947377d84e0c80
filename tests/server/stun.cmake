# rendezvousd's STUN responder (rendezvous/stun_responder.c), every test of
# it in one place (ctest names server_stun*):
#   server_stun            the responder wired into the daemon (test_stun.c,
#                          with the other integration tests)
#   server_stun_responder  the responder alone: the pure request handler,
#                          then its sockets on loopback
#   server_stun_interop_*  Debian's STUN clients (coturn's
#                          turnutils_stunclient, stun-client) against the
#                          responder alone (stun_responder) and, _rendezvousd_,
#                          against the daemon's STUN service
# Its fuzz target is tests/fuzz (server_fuzz_stun); the STUN codec's test is
# tests/schema (codec_stun), the client's STUN engine tests/client.

# The responder built on its own, so it is tested without the rest of the
# daemon (also linked by tests/fuzz). Sources include
# "rendezvous/stun_responder.h" from the project root.
add_library(srv_stun_responder STATIC ${PROJECT_SOURCE_DIR}/rendezvous/stun_responder.c)
target_compile_definitions(srv_stun_responder PRIVATE SRV_VERSION="${PROJECT_VERSION}")
target_include_directories(srv_stun_responder PUBLIC ${PROJECT_SOURCE_DIR})
target_link_libraries(srv_stun_responder PUBLIC rdv_schema)

rdv_add_cmocka_test(NAME server_stun_responder SOURCES test_stun_responder.c
  LIBS srv_stun_responder)

# The standalone responder for the interop tests (not installed).
add_executable(stun_responder stun_responder_main.c)
target_link_libraries(stun_responder PRIVATE srv_stun_responder)

# Interop: each client against the responder on loopback, ephemeral ports;
# then the same clients against rendezvousd itself (--stun-port 0, an
# alternate port, and 127.0.0.2 as the alternate address where asked): the
# STUN service as operators run it, in the daemon's event loop. A missing
# client binary is a visible skip (exit 77).
set(RDV_STUN_INTEROP ${CMAKE_CURRENT_SOURCE_DIR}/interop_stun.py)
foreach(case turnutils:4 turnutils:6 turnutils-rfc5780:4 stunclient:4 stunclient-nattype:4)
  string(REPLACE ":" ";" parts ${case})
  list(GET parts 0 client)
  list(GET parts 1 fam)
  foreach(target stun_responder rendezvousd)
    if(target STREQUAL "rendezvousd")
      set(mode --rendezvousd)
      set(infix rendezvousd_)
    else()
      set(mode "")
      set(infix "")
    endif()
    string(REPLACE "-" "_" tname "server_stun_interop_${infix}${client}_ipv${fam}")
    add_test(NAME ${tname}
      COMMAND ${RDV_PYTHON} ${RDV_STUN_INTEROP} ${mode} --server $<TARGET_FILE:${target}>
              --client ${client} --family ${fam})
    set_tests_properties(${tname} PROPERTIES TIMEOUT 60
      SKIP_RETURN_CODE 77
      ENVIRONMENT "ASAN_OPTIONS=detect_leaks=1:abort_on_error=1;UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1")
  endforeach()
endforeach()
