/* relay_channel.h - the node's relay channel (PROTOCOL.md 9.5): a second
 * WebSocket to the same server URL, subprotocol rendezvous.relay.v1, that
 * carries only relay data, read by the server in large pieces.
 *
 * Opened when the last welcome announced `relayChannel` and a relay
 * session is OPEN; authenticated like the main connection (challenge,
 * signed hello, welcome, same identity, same TLS settings). Once its
 * welcome arrived, relay data frames are queued on it, and written once a
 * `ping` sent on the main connection behind the frames already there is
 * answered (the server handles one connection in order, so nothing sent
 * later on the channel overtakes them); the server switches our delivery
 * to the channel when it answers that ping, so what the channel brings
 * before the pong is held and handled after it (order kept both ways);
 * before that, and after it
 * failed or closed, they go on the main connection (relay.c asks
 * rdv__chan_append_locked first). Relay data is read from both. Closed
 * after RDV__CHAN_IDLE_MS without an OPEN relay session, when the main
 * connection ends, and at destroy. A failed attempt is not repeated for
 * RDV__CHAN_RETRY_MS.
 *
 * Threads: fields marked (L) are under the client's lock, the rest belong
 * to the service thread (loop.c calls every function here but
 * rdv__chan_append_locked, which any thread may call with the lock held).
 */
#ifndef RDV_CLIENT_RELAY_CHANNEL_H
#define RDV_CLIENT_RELAY_CHANNEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct lws;
struct rdv_client;
struct rdv__outmsg;

#define RDV__CHAN_SUBPROTOCOL "rendezvous.relay.v1"
#define RDV__CHAN_IDLE_MS 30000  /* no OPEN relay session this long: close */
#define RDV__CHAN_RETRY_MS 30000 /* after a failed or lost channel */

typedef enum rdv__chan_phase {
    RDV__CHAN_NONE = 0,
    RDV__CHAN_CONNECTING, /* TCP / TLS / upgrade */
    RDV__CHAN_AUTH,       /* upgraded: challenge, hello, welcome */
    RDV__CHAN_READY       /* welcome received: relay data goes here */
} rdv__chan_phase;

typedef struct rdv__chan {
    /* (L) */
    bool offered;                /* the main connection's welcome said relayChannel */
    bool ready;                  /* phase READY: relay data is queued here */
    struct rdv__outmsg *q_head, *q_tail; /* relay data frames to write */
    size_t q_count, q_bytes;
    uint64_t opened;             /* channels that reached READY */
    /* (S) */
    struct lws *wsi;
    rdv__chan_phase phase;
    int64_t deadline;            /* CONNECTING / AUTH: give up then */
    int64_t next_try;            /* no new attempt before (mono ms) */
    int64_t idle_since;          /* no OPEN relay session since (0: one is) */
    bool got_challenge;
    bool barrier;                /* READY, but frames wait for the pong of
                                  * barrier_id on main: everything sent on
                                  * main before is then handled (order) */
    char barrier_id[24];
    struct rdv__outmsg *held_head, *held_tail; /* messages the channel
                                  * received before the barrier's pong: the
                                  * server's switch (handled in order then) */
    size_t held_count, held_bytes;
    char *hello;                 /* hello text to write, or NULL */
    size_t hello_len;
    char *rx;
    size_t rx_len, rx_cap;
    bool rx_skip, rx_binary;
    int reg_fd;                  /* socket fd registered in the epoll fd, -1 */
    uint32_t reg_events;
} rdv__chan;

/* Resets the channel state (before the first connection). */
void rdv__chan_init(struct rdv_client *c);

/* Frees what the channel holds (after the lws context is gone). */
void rdv__chan_free(struct rdv_client *c);

/* Queues relay data frame m on the channel when it is ready. Returns 1
 * when it is not (m is still the caller's: send it on the main
 * connection), 0 when queued (m is the queue's), or RDV_ERR_BACKLOG when
 * its queue is full (m still the caller's). (L held) */
int rdv__chan_append_locked(struct rdv_client *c, struct rdv__outmsg *m);

/* Opens the channel when it is wanted and allowed, closes it when idle,
 * enforces its set-up deadline, asks lws for writeable when it has output.
 * Call from the service step. */
void rdv__chan_service(struct rdv_client *c, int64_t now);

/* Registers the channel's socket in the client's epoll fd (EPOLLIN, and
 * EPOLLOUT while output waits), or removes it. */
void rdv__chan_sync_fd(struct rdv_client *c);

/* The longest the service thread may sleep (ms), given t: short ticks
 * while the channel is being set up (lws' interest is not visible). */
int64_t rdv__chan_timeout(struct rdv_client *c, int64_t t);

/* The main connection ended: closes the channel; it is not offered until
 * the next welcome. */
void rdv__chan_main_lost(struct rdv_client *c);

/* A pong arrived on the main connection (id may be NULL): releases the
 * channel's queue when it answers the switch barrier. */
void rdv__chan_on_pong(struct rdv_client *c, const char *id);

/* The lws callback of the rendezvous.relay.v1 protocol (loop.c's table). */
int rdv__chan_lws_cb(struct lws *wsi, int reason, void *user, void *in, size_t len);

#endif
