/* relay.h - the relay leg of a session (PROTOCOL.md 9), node side
 * (relay.c; internal): the rdv_relay_* API, relayOpen / relayReady /
 * relayClose / relayData (text and binary), end-to-end encryption of the
 * data, timeouts, and the network-status snapshot. */
#ifndef RDV_CLIENT_RELAY_H
#define RDV_CLIENT_RELAY_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include <jansson.h>

#include "client/session.h"
#include "schema/errors.h"
#include "schema/message.h"

/* Relay statistics and errors for rdv_client_get_network_status (L). */
typedef struct rdv__relay_stats {
    uint64_t opened, tx_dgrams, rx_dgrams, tx_bytes, rx_bytes, dropped;
    int last_error;
    char last_error_text[128];
    rdv_path last_path;             /* the latest path any session got */
} rdv__relay_stats;


/* Scratch size for one decrypted datagram (largest binary frame). */
#define RDV__SCRATCH_BYTES RDV_MAX_MESSAGE_BYTES

/* A verified relayOpen / relayReady. (S) */
void rdv__relay_on_routed(rdv_client *c, const rdv_msg *m);
/* relayClose from the server. (S) */
void rdv__relay_on_close(rdv_client *c, const json_t *body);
/* relayData text form. (S) */
void rdv__relay_on_data_text(rdv_client *c, const json_t *body);
/* A complete binary frame. (S) */
void rdv__relay_on_binary(rdv_client *c, const uint8_t *buf, size_t len);
/* A server `error`: ends the relay session it is about, if any. Returns
 * true when the error only concerned the relay leg of a session a direct
 * path carries (not worth reporting). (S) */
bool rdv__relay_on_server_error(rdv_client *c, rdv_ec ec, const char *ref,
                                const char *type, const char *message);
/* The connection ended: every session ends with RDV_ERR_CONNECT. (S) */
void rdv__relay_on_conn_lost(rdv_client *c);
/* Timeouts of opening / requested sessions; closes dead proxy fds. (S) */
void rdv__relay_tick(rdv_client *c, int64_t now);
/* Frees every session without callbacks (destroy). */
void rdv__session_free_all(rdv_client *c);
/* Encrypts and queues one datagram on open session `r`. (L held) */
int rdv__relay_send_locked(rdv_client *c, rdv__session *r, const void *buf, size_t len);
/* Finds a session by ID. (L held) */
rdv__session *rdv__session_find_locked(rdv_client *c, const char *sid);
/* Forgets the proxy socket of r: removed from epfd, closed later on the
 * service thread. (L held) */
void rdv__proxy_detach_locked(rdv_client *c, rdv__session *r);
/* Removes fd from epfd and closes it later on the service thread (never
 * while it may be read). (L held) */
void rdv__defer_close_locked(rdv_client *c, int fd);
rdv__session *rdv__session_find_bytes_locked(rdv_client *c, const uint8_t sid[16]);
unsigned rdv__session_count_locked(rdv_client *c, int state /* -1: all */);
/* Unlinks r, detaches its sockets and wipes its keys; returns r. */
rdv__session *rdv__session_end_locked(rdv_client *c, rdv__session *r);
/* A new session we open to `peer`: checks the arguments (session_id_out
 * gets "" first) and that we are AUTHENTICATED, then makes it OPENING,
 * initiator, with a fresh UUID, ephemeral keypair and the open timeout;
 * not linked. Returns 0 and *out, or RDV_ERR_INVALID, RDV_ERR_NOT_CONNECTED,
 * RDV_ERR_NOMEM, RDV_ERR_CRYPTO. (no lock held) */
int rdv__session_new_outgoing(rdv_client *c, const char *peer, char session_id_out[],
                            rdv__session **out);
/* Ends and frees session sid without a callback (a set-up that failed
 * before the caller got it). (no lock held) */
void rdv__session_forget(rdv_client *c, const char *sid);
/* Wipes and frees a session already unlinked. (no lock needed) */
void rdv__session_free(rdv__session *r);
/* Calls cb_session_closed (no lock held) and frees r. */
void rdv__session_report_closed(rdv_client *c, rdv__session *r, int err, const char *reason);
/* Signs and queues relayOpen / relayReady with e2eKey pk. (no lock) */
int rdv__relay_send_signed(rdv_client *c, rdv_msg_type type, const char *to,
                           const char *sid, const uint8_t pk[32]);
/* Queues relayClose. (no lock) */
int rdv__relay_send_close(rdv_client *c, const char *sid, const char *reason);
/* Decrypts one received packet of session sid_bytes and delivers it (proxy
 * or cb_session_data). A packet from the direct path names its socket and
 * source (direct_from non-NULL): it is counted there and a failure is only
 * counted, never reported. Returns the plaintext length or an RDV_ERR_*.
 * (S) */
int64_t rdv__relay_on_packet(rdv_client *c, const uint8_t sid_bytes[16], const uint8_t *pkt,
                             size_t len, int direct_fd, const struct sockaddr_storage *direct_from);

/* Records err (text, or rdv_strerror) as the last relay error. (L held) */
void rdv__relay_set_error_locked(rdv_client *c, int err, const char *text);

#endif
