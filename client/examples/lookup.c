/* lookup.c - the README example: connect, look up one node, print it. */
#include <poll.h>
#include <stdio.h>
#include <rendezvous/rendezvous.h>

static int done; /* 1: answered, 2: failed */

static void on_state(rdv_client *c, rdv_state st, void *user) {
    if (st == RDV_STATE_AUTHENTICATED && rdv_client_lookup(c, user, 1, NULL) != 0) done = 2;
    if (st == RDV_STATE_FAILED) done = 2;
}
static void on_presence(rdv_client *c, const char *req, const rdv_peer *p, size_t n, void *user) {
    (void)c; (void)req; (void)user;
    for (size_t i = 0; i < n; i++)
        printf("%s %s\n", p[i].node_id, p[i].online ? "online" : "offline");
    done = 1;
}
int main(int argc, char **argv) {
    if (argc != 4) { fprintf(stderr, "usage: %s URL KEYFILE NODEID\n", argv[0]); return 2; }
    rdv_identity id;
    int rc = rdv_identity_load(&id, argv[2]);
    if (rc) { fprintf(stderr, "%s: %s\n", argv[2], rdv_strerror(rc)); return 1; }
    const char *ids[] = {argv[3]};
    rdv_client_config cfg = {.server_url = argv[1], .identity = &id, .user_ptr = ids,
                             .cb_state_changed = on_state, .cb_presence = on_presence,
                             .reconnect = {.max_attempts = 3}};
    rdv_client *c;
    rc = rdv_client_create(&cfg, &c);
    rdv_identity_wipe(&id);
    if (rc) { fprintf(stderr, "%s\n", rdv_strerror(rc)); return 1; }
    while (!done) { /* embedded mode: the application's own poll() loop */
        struct pollfd pfd = {.fd = rdv_client_fd(c), .events = POLLIN};
        poll(&pfd, 1, rdv_client_timeout_ms(c));
        rdv_client_process(c);
    }
    rdv_client_destroy(c);
    return done == 1 ? 0 : 1;
}
