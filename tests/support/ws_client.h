/* ws_client.h - a synchronous libwebsockets client for tests, and a tiny
 * blocking HTTP GET over a plain TCP socket.
 *
 * Each handle owns its own lws context, serviced in the calling thread only
 * while a call waits (connect, send, recv, close): simple and
 * deterministic. Every wait is bounded by a timeout. Received messages are
 * reassembled from fragments and queued; text and binary are kept apart by
 * a flag. When the peer closes, its close code is recorded (1006 when the
 * TCP connection ended without a close frame).
 *
 * Handles are registered globally; rdv_ws_close_all() (called by
 * rdv_ts_cleanup_all()) frees the ones a failed test left behind.
 */
#ifndef RDV_TESTS_SUPPORT_WS_CLIENT_H
#define RDV_TESTS_SUPPORT_WS_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <jansson.h>

typedef struct rdv_ws rdv_ws;

#define RDV_WS_TIMEOUT_MS 5000     /* generous default for every wait */
#define RDV_WS_CLOSE_ABNORMAL 1006 /* no close frame received */

/* Connects to ws://127.0.0.1:port<path> requesting `subprotocol` (NULL:
 * none). Returns a handle once the upgrade completed, or NULL on failure
 * or timeout (the reason is printed). */
rdv_ws *rdv_ws_connect_ex(int port, const char *path, const char *subprotocol,
                          int timeout_ms);

/* wss://127.0.0.1:port/v1, any (self-signed) certificate accepted. */
rdv_ws *rdv_ws_connect_tls(int port, int timeout_ms);

/* rdv_ws_connect_ex(port, "/v1", "rendezvous.v1", RDV_WS_TIMEOUT_MS). */
rdv_ws *rdv_ws_connect(int port);

/* Queues a text / binary frame of arbitrary bytes (invalid JSON, invalid
 * UTF-8, oversize...) and services the connection until it was handed to
 * the socket (bounded). Returns 0, or -1 if closed or timed out. */
int rdv_ws_send_text(rdv_ws *c, const void *buf, size_t len);
int rdv_ws_send_str(rdv_ws *c, const char *s);
int rdv_ws_send_binary(rdv_ws *c, const void *buf, size_t len);

/* Sends one text message split into `nfrag` WebSocket frames (a text
 * frame without FIN, then continuation frames). Returns as send_text. */
int rdv_ws_send_fragments(rdv_ws *c, const void *buf, size_t len, size_t nfrag);

/* Queues without waiting; rdv_ws_flush() sends what is queued. Used to
 * send bursts back to back. */
int rdv_ws_queue_text(rdv_ws *c, const void *buf, size_t len);
int rdv_ws_flush(rdv_ws *c, int timeout_ms);

/* Next text message as a malloc'd NUL-terminated copy (length in *len if
 * len is not NULL), or NULL on timeout or when the connection is closed
 * and nothing is left. Binary messages met on the way are skipped. */
char *rdv_ws_recv(rdv_ws *c, int timeout_ms, size_t *len);

/* Next message of either kind; *is_binary tells which. malloc'd. */
char *rdv_ws_recv_any(rdv_ws *c, int timeout_ms, size_t *len, bool *is_binary);

/* Next text message parsed as JSON. Returns a BORROWED envelope, valid
 * until the next recv on this handle or its close; NULL on timeout/close
 * (or unparsable text, which is printed). *type (may be NULL) receives the
 * envelope's single member name, borrowed likewise. */
json_t *rdv_ws_recv_json(rdv_ws *c, int timeout_ms, const char **type);

/* The text of the last message returned by rdv_ws_recv_json (borrowed). */
const char *rdv_ws_last_text(rdv_ws *c, size_t *len);

/* Number of complete messages received and not yet taken. */
size_t rdv_ws_pending(rdv_ws *c);

/* Services the connection for up to timeout_ms or until it is closed.
 * Returns true when closed. */
bool rdv_ws_wait_closed(rdv_ws *c, int timeout_ms);

/* Services once, for at most timeout_ms (lets lws do pending work). */
void rdv_ws_service(rdv_ws *c, int timeout_ms);

bool rdv_ws_is_closed(const rdv_ws *c);

/* The peer's close code (from its close frame), RDV_WS_CLOSE_ABNORMAL when
 * the connection ended without one, 0 while open. */
int rdv_ws_close_code(const rdv_ws *c);

/* The peer's close reason text (borrowed, maybe empty). */
const char *rdv_ws_close_reason(const rdv_ws *c);

/* Local port of the TCP connection (what the server observes). */
int rdv_ws_local_port(const rdv_ws *c);

/* Caps the kernel receive buffer of the connection (SO_RCVBUF), so that a
 * handle that is not serviced soon stops accepting data: a slow reader. */
int rdv_ws_set_rcvbuf(rdv_ws *c, int bytes);

/* Without servicing the connection (nothing is read, no ping answered),
 * waits up to timeout_ms for the peer to end the TCP connection (FIN or
 * RST). Returns true when it did. */
bool rdv_ws_wait_peer_hangup(rdv_ws *c, int timeout_ms);

/* Sends a normal close (1000), waits (bounded) for the TCP connection to
 * end, frees everything. NULL is fine. */
void rdv_ws_close(rdv_ws *c);

/* Drops the connection without a close frame and frees the handle. */
void rdv_ws_abort(rdv_ws *c);

/* Frees every live handle (rdv_ws_abort). */
void rdv_ws_close_all(void);

/* Blocking HTTP/1.1 GET http://127.0.0.1:port<path> with Connection:
 * close. Returns the status code (and a malloc'd NUL-terminated body in
 * *body, chunked encoding decoded, when body is not NULL), or -1 on
 * error/timeout. */
int rdv_http_get(int port, const char *path, char **body, int timeout_ms);

#endif
