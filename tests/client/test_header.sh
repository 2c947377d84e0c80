#!/bin/sh
# test_header.sh SRC_INCLUDE BUILD_INCLUDE - the public header
# <rendezvous/rendezvous.h> compiles on its own (nothing but its own
# includes, version.h from the build) as C99, C11 and C++11/17, with
# -Wall -Wextra -pedantic -Werror; the callbacks take the enums (cb_path
# an rdv_path), and every fixed string field is sized by a named constant
# + 1, with the sizes of 0.1 (client/MIGRATION.md: same ABI).
set -eu
inc="-I$1 -I$2"
work=$(mktemp -d /tmp/rdv-header-XXXXXX)
trap 'rm -rf "$work"' EXIT
fail=0
cat > "$work/plain.c" <<'C'
#include <rendezvous/rendezvous.h>
int main(void) { return rdv_node_id_is_valid("") ? 1 : 0; }
C
cat > "$work/sizes.c" <<'C'
#include <rendezvous/rendezvous.h>
#define FIELD(t, f) sizeof(((t *)0)->f)
_Static_assert(sizeof(rdv_err) == sizeof(int), "rdv_err is int-sized");
_Static_assert(RDV_OK == 0 && RDV_ERR_FORBIDDEN == -35, "error values of 0.1");
_Static_assert(FIELD(rdv_candidate, type) == 16 && FIELD(rdv_candidate, type) == RDV_CANDIDATE_TYPE_LEN + 1, "type");
_Static_assert(FIELD(rdv_candidate, foundation) == 33, "foundation");
_Static_assert(FIELD(rdv_queued, type) == 16 && FIELD(rdv_queued, type) == RDV_MSG_TYPE_LEN + 1, "queued type");
_Static_assert(FIELD(rdv_client_info, server_name) == 254, "server_name");
_Static_assert(FIELD(rdv_client_info, last_error_text) == 400, "last_error_text");
_Static_assert(FIELD(rdv_network_status, relay_server) == 256, "relay_server");
_Static_assert(FIELD(rdv_network_status, nat_method) == 160, "nat_method");
_Static_assert(FIELD(rdv_network_status, stun_server) == RDV_IP_LEN + 9, "stun_server");
_Static_assert(FIELD(rdv_network_status, last_relay_error_text) == 128, "relay error text");
_Static_assert(FIELD(rdv_session_info, remote) == RDV_ENDPOINT_LEN + 1, "remote");
_Static_assert(FIELD(rdv_session_info, last_direct_error_text) == RDV_SESSION_ERROR_TEXT_LEN + 1, "text");
_Static_assert(sizeof(rdv_limits) == 16 * sizeof(int64_t), "rdv_limits: 16 int64_t");
_Static_assert(FIELD(rdv_network_status, portmap_protocol) == RDV_PORTMAP_PROTOCOL_LEN + 1, "pm");
static void on_path(rdv_client *c, const char *sid, const char *peer, rdv_path path,
                    int64_t ms, void *user) { (void)c; (void)sid; (void)peer; (void)path; (void)ms; (void)user; }
int main(void) {
    rdv_client_config cfg = {0};
    cfg.cb_path = on_path; /* -Werror: an incompatible pointer type fails */
    return cfg.cb_path == on_path && RDV_VERSION_NUMBER >= 0 ? 0 : 1;
}
C
cat > "$work/cxx.cc" <<'C'
#include <rendezvous/rendezvous.h>
#include <type_traits>
static_assert(std::is_same<rdv_cb_path, void (*)(rdv_client *, const char *, const char *,
                                                 rdv_path, int64_t, void *)>::value,
              "cb_path takes rdv_path");
static_assert(std::is_same<rdv_cb_log, void (*)(rdv_log_level, const char *, void *)>::value,
              "cb_log takes rdv_log_level");
static_assert(sizeof(rdv_err) == sizeof(int), "rdv_err is int-sized");
int main() {
    rdv_client_config cfg = rdv_client_config();
    rdv_err e = RDV_ERR_NO_SESSION;
    return cfg.server_url == nullptr && e < 0 ? 0 : 1;
}
C
# every fixed string field has a named size (RDV_..._LEN + 1), no bare number
if grep -nE '^[[:space:]]*char [a-z_0-9]+\[[0-9]' "$1/rendezvous/rendezvous.h"; then
  echo "FAIL: a char array above is sized by a number, not a named constant"; fail=1
fi
run() { # LABEL COMMAND...
  label=$1; shift
  if ! "$@" >"$work/out" 2>&1; then echo "FAIL: $label:"; cat "$work/out"; fail=1; else echo "ok: $label"; fi
}
W="-Wall -Wextra -pedantic -Werror"
# -c: only the header is under test (nothing is linked)
run "C99" cc -std=c99 $W $inc -c "$work/plain.c" -o "$work/plain.o"
run "C11 (sizes, cb_path)" cc -std=c11 $W $inc -c "$work/sizes.c" -o "$work/sizes.o"
run "C++11" c++ -std=c++11 $W $inc -c "$work/cxx.cc" -o "$work/cxx11.o"
run "C++17" c++ -std=c++17 $W $inc -c "$work/cxx.cc" -o "$work/cxx17.o"
exit $fail
