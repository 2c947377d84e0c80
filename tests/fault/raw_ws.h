/* raw_ws.h - a hand-made RFC 6455 client for the fault_ws_abuse test: it
 * sends frames the real client never would (reserved bits, unknown
 * opcodes, unmasked frames, floods of control and continuation frames)
 * and reads what the server answers, down to its close frame. Test
 * tooling only: the server's framing is libwebsockets'.
 */
#ifndef RDV_TESTS_FAULT_RAW_WS_H
#define RDV_TESTS_FAULT_RAW_WS_H

#include <errno.h>
#include <stdio.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fault.h"
#include "server.h"

#define RAW_WS_OP_CONT 0x0
#define RAW_WS_OP_TEXT 0x1
#define RAW_WS_OP_CLOSE 0x8
#define RAW_WS_OP_PING 0x9
#define RAW_WS_OP_PONG 0xa

/* Opens a TCP connection to 127.0.0.1:port and upgrades it to
 * rendezvous.v1 at /v1, adding `extra_headers` (NULL or "Name: v\r\n"...)
 * to the request. The 101 response's headers are copied to resp (NUL
 * terminated). Returns the fd (blocking, 5 s receive timeout) or -1. */
static inline int raw_ws_open(int port, const char *extra_headers, char *resp, size_t resplen)
{
    int fd = fault_tcp_connect(port, NULL);
    if (fd < 0)
        return -1;
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char req[1024];
    int n = snprintf(req, sizeof req,
                     "GET /v1 HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: rendezvous.v1\r\n"
                     "%s\r\n",
                     port, extra_headers ? extra_headers : "");
    if (send(fd, req, (size_t)n, MSG_NOSIGNAL) != n)
        goto fail;
    /* the response ends with an empty line; read byte by byte so that
     * nothing after it (the challenge) is consumed */
    size_t got = 0;
    while (got + 1 < resplen) {
        ssize_t r = recv(fd, resp + got, 1, 0);
        if (r <= 0)
            goto fail;
        got++;
        resp[got] = '\0';
        if (got >= 4 && !memcmp(resp + got - 4, "\r\n\r\n", 4))
            break;
    }
    if (strncmp(resp, "HTTP/1.1 101", 12) != 0)
        goto fail;
    return fd;
fail:
    close(fd);
    return -1;
}

/* Builds one client frame into out (room for len + 14): first byte
 * `b0` (FIN, RSV bits and opcode as given), masked with a fixed key
 * unless `unmasked`. Returns its length. */
static inline size_t raw_ws_frame(uint8_t *out, uint8_t b0, const void *payload, size_t len,
                                  bool unmasked)
{
    static const uint8_t key[4] = {0x12, 0x34, 0x56, 0x78};
    size_t n = 0;
    out[n++] = b0;
    uint8_t m = unmasked ? 0 : 0x80;
    if (len < 126) {
        out[n++] = m | (uint8_t)len;
    } else if (len < 65536) {
        out[n++] = m | 126;
        out[n++] = (uint8_t)(len >> 8);
        out[n++] = (uint8_t)len;
    } else {
        out[n++] = m | 127;
        for (int i = 7; i >= 0; i--)
            out[n++] = (uint8_t)((uint64_t)len >> (8 * i));
    }
    if (!unmasked) {
        memcpy(out + n, key, 4);
        n += 4;
    }
    const uint8_t *p = payload;
    for (size_t i = 0; i < len; i++)
        out[n + i] = unmasked ? p[i] : (uint8_t)(p[i] ^ key[i % 4]);
    return n + len;
}

/* Sends all of buf; false when the peer is gone. */
static inline bool raw_ws_send(int fd, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    while (len) {
        ssize_t w = send(fd, p, len, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        p += w;
        len -= (size_t)w;
    }
    return true;
}

/* Reads exactly len bytes (the socket's 5 s receive timeout applies).
 * Returns 1, 0 at the end of the connection, -1 on timeout. */
static inline int raw_ws_read_all(int fd, uint8_t *buf, size_t len)
{
    while (len) {
        ssize_t r = recv(fd, buf, len, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return -1;
        if (r <= 0)
            return 0;
        buf += r;
        len -= (size_t)r;
    }
    return 1;
}

/* Reads the next server frame: its opcode in *op and up to cap bytes of
 * payload (NUL terminated, the rest skipped) in payload, its length in
 * *len. Returns 1, 0 at the end of the connection, -1 on timeout or a
 * frame longer than 64 KiB. */
static inline int raw_ws_read_frame(int fd, uint8_t *op, char *payload, size_t cap, size_t *len)
{
    uint8_t h[8];
    int r = raw_ws_read_all(fd, h, 2);
    if (r <= 0)
        return r;
    *op = h[0] & 0x0f;
    size_t n = h[1] & 0x7f;
    if (n == 126) {
        if (raw_ws_read_all(fd, h, 2) <= 0)
            return 0;
        n = (size_t)h[0] << 8 | h[1];
    } else if (n == 127) {
        return -1;
    }
    static uint8_t body[65536];
    if (n && raw_ws_read_all(fd, body, n) <= 0)
        return 0;
    size_t keep = n < cap - 1 ? n : cap - 1;
    memcpy(payload, body, keep);
    payload[keep] = '\0';
    *len = n;
    return 1;
}

/* Reads server frames until a close frame (returns its code; 1005 when it
 * has none) or the end of the connection (1006) within about timeout_ms
 * (-1 after). The last text frame before it goes to text (NUL
 * terminated; may be NULL). Other frames are skipped. */
static inline int raw_ws_close_code(int fd, int timeout_ms, char *text, size_t textlen)
{
    long long until = rdv_ts_mono_ms() + timeout_ms;
    char buf[512];
    if (text && textlen)
        text[0] = '\0';
    while (rdv_ts_mono_ms() < until) {
        uint8_t op = 0;
        size_t len = 0;
        int r = raw_ws_read_frame(fd, &op, buf, sizeof buf, &len);
        if (r == 0)
            return 1006;
        if (r < 0)
            continue;
        if (op == RAW_WS_OP_TEXT && text && textlen)
            snprintf(text, textlen, "%s", buf);
        if (op != RAW_WS_OP_CLOSE)
            continue;
        if (len < 2)
            return 1005;
        return (uint8_t)buf[0] << 8 | (uint8_t)buf[1];
    }
    return -1;
}

/* The next text frame within timeout_ms (control frames skipped) into
 * buf; false when none came or the connection ended. */
static inline bool raw_ws_next_text(int fd, int timeout_ms, char *buf, size_t cap)
{
    long long until = rdv_ts_mono_ms() + timeout_ms;
    while (rdv_ts_mono_ms() < until) {
        uint8_t op = 0;
        size_t len = 0;
        int r = raw_ws_read_frame(fd, &op, buf, cap, &len);
        if (r == 0)
            return false;
        if (r > 0 && op == RAW_WS_OP_TEXT)
            return true;
    }
    return false;
}

#endif
