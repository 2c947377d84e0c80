# The NAT lab (tests/nat/lab/): network namespaces + nftables NAT boxes
# (full cone, restricted cone, port-restricted cone, symmetric) around a
# rendezvousd in a "public" namespace. Needs root; without it (or without
# namespaces / nft) the tests print "SKIP: ..." and exit 77.
#
#   nat_lab_boxes   every emulated box classified by stun-client (RFC 3489)
#                   and turnutils_natdiscovery (RFC 5780) against
#                   rendezvousd's STUN service; no librendezvous needed.
#   nat_lab_matrix  every pair of NAT types (5 x 5 with no NAT) through
#                   nat_node (the real librendezvous): Direct / Relayed as
#                   the decision matrix says, data intact, reported NAT types,
#                   symmetric<->cone upgrades. Prints the matrix.
#   nat_lab_first   the matrix with a fresh initiator (matrix.py --fresh)
#                   behind restrictedCone / portRestricted / symmetric boxes,
#                   against every responder type: it connects once
#                   AUTHENTICATED; its offer must not wait for the filtering
#                   tests (issue 19 goal 1), its final type and natMethod
#                   must be right. Prints the times to the first path.
#   nat_lab_same_nat two nodes behind one portRestricted / symmetric box (a
#                   LAN bridge in the box) and two nodes on one host (one
#                   namespace, behind a box and without NAT): Direct over
#                   the host candidates, never the box's public address;
#                   the datagrams crossed the LAN (issue 19 goal 3).
#   nat_lab_fallback two portRestricted sites on a Direct path; the path is
#                   blocked in A's box (nft), both sides fall back to the
#                   relay, the block goes, both come back to Direct; echoes
#                   intact throughout (losses only while switching). Prints
#                   the timeline.
#   nat_lab_portmap port mapping: boxes run Debian's miniupnpd (NAT-PMP or
#                   UPnP-IGD); a mapping on one side gets two symmetric
#                   NATs direct, the lease is renewed, the mapping deleted
#                   when the node exits, --no-portmap asks nothing.
#
# All build and tear down their own namespaces (rl<pid>-*), so they run
# one at a time (RESOURCE_LOCK) to keep the timings meaningful.
set(RDV_NAT_LAB_DIR ${CMAKE_CURRENT_SOURCE_DIR}/lab)
set(RDV_NAT_LAB_ENV
  "ASAN_OPTIONS=detect_leaks=1:abort_on_error=1;UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1")

# rdv_nat_lab_node_test(NAME SCRIPT TIMEOUT [ARGS ...]): a lab script run
# with the test build's rendezvousd and nat_node (plus ARGS), skipped (77)
# without root, one lab at a time.
function(rdv_nat_lab_node_test name script timeout)
  add_test(NAME ${name}
    COMMAND ${RDV_PYTHON} ${RDV_NAT_LAB_DIR}/${script}
            --rendezvousd $<TARGET_FILE:rendezvousd>
            --nat-node $<TARGET_FILE:nat_node> ${ARGN})
  set_tests_properties(${name} PROPERTIES TIMEOUT ${timeout}
    SKIP_RETURN_CODE 77 RESOURCE_LOCK rdv_nat_lab
    ENVIRONMENT "${RDV_NAT_LAB_ENV}")
endfunction()

if(TARGET rendezvousd)
  add_test(NAME nat_lab_boxes
    COMMAND ${RDV_PYTHON} ${RDV_NAT_LAB_DIR}/check_boxes.py
            --rendezvousd $<TARGET_FILE:rendezvousd>)
  set_tests_properties(nat_lab_boxes PROPERTIES TIMEOUT 240
    SKIP_RETURN_CODE 77 RESOURCE_LOCK rdv_nat_lab
    ENVIRONMENT "${RDV_NAT_LAB_ENV}")
endif()

# nat_node: the node program the matrix runs in each node namespace.
add_executable(nat_node nat_node.c)
target_link_libraries(nat_node PRIVATE rendezvous Threads::Threads)

if(TARGET rendezvousd)
  rdv_nat_lab_node_test(nat_lab_matrix matrix.py 600)
endif()

if(TARGET rendezvousd)
  rdv_nat_lab_node_test(nat_lab_first matrix.py 600 --fresh
    --types restrictedCone,portRestricted,symmetric,fullCone,none
    --cells restrictedCone:fullCone,restrictedCone:restrictedCone,restrictedCone:portRestricted,restrictedCone:symmetric,restrictedCone:none,portRestricted:fullCone,portRestricted:restrictedCone,portRestricted:portRestricted,portRestricted:symmetric,portRestricted:none,symmetric:fullCone,symmetric:restrictedCone,symmetric:portRestricted,symmetric:symmetric,symmetric:none)
endif()

if(TARGET rendezvousd)
  rdv_nat_lab_node_test(nat_lab_same_nat same_nat.py 300)
endif()

if(TARGET rendezvousd)
  rdv_nat_lab_node_test(nat_lab_fallback fallback.py 300)
endif()

if(TARGET rendezvousd)
  rdv_nat_lab_node_test(nat_lab_portmap portmap.py 300)
endif()

# wanem: the lab's WAN emulator (delay, jitter, loss per direction on a
# site's link; natlab.py --rtt-ms / --loss). See wanem.c.
add_executable(wanem wanem.c)

# nat_lab_wan_check: the emulator itself - UDP echoes across one and two
# emulated links (40 ms site-to-site RTT, 3 % loss): never sooner than the
# configured delay, loss within 6 binomial standard deviations.
# nat_lab_wan: matrix cells at that setting through real librendezvous:
# connected, Direct / Relayed -> Direct as the decision matrix says, data
# intact (behaviour, not timing; the timeline is printed).
if(TARGET rendezvousd)
  add_test(NAME nat_lab_wan_check
    COMMAND ${RDV_PYTHON} ${RDV_NAT_LAB_DIR}/wan_check.py --assert
            --wanem $<TARGET_FILE:wanem> --rtt-ms 40 --loss 3 --count 500)
  set_tests_properties(nat_lab_wan_check PROPERTIES TIMEOUT 120
    SKIP_RETURN_CODE 77 RESOURCE_LOCK rdv_nat_lab)
  rdv_nat_lab_node_test(nat_lab_wan matrix.py 300
    --wanem $<TARGET_FILE:wanem> --rtt-ms 40 --loss 3
    --cells portRestricted:portRestricted,fullCone:restrictedCone,none:portRestricted,symmetric:fullCone,portRestricted:symmetric,symmetric:symmetric)
endif()

# nat_lab_ipv6: the IPv6 variant (natlab.Lab(ipv6=True)): every node also
# has a global IPv6 address behind its box's stateful nftables firewall (no
# NAT66). Symmetric <-> symmetric must go Direct first over IPv6 (the node
# reports the family of the direct path); symmetric <-> port-restricted, a
# cone pair and no-NAT <-> symmetric Direct first too (over either family:
# many-port probing may win over IPv4).
if(TARGET rendezvousd)
  rdv_nat_lab_node_test(nat_lab_ipv6 matrix.py 300 --ipv6
    --cells symmetric:symmetric,symmetric:portRestricted,portRestricted:symmetric,fullCone:restrictedCone,none:symmetric)
endif()
