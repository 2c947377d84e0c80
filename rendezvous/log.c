/* log.c - formatting of event lines (see log.h).
 *
 * A line is assembled in a stack buffer and written with one write(2) so
 * lines from concurrent writers never interleave. Text form:
 *   2026-11-27T10:00:00.123Z INFO listening on ws://127.0.0.1:8080/v1
 * JSON form:
 *   {"ts":"2026-11-27T10:00:00.123Z","level":"info","msg":"..."}
 */
#include "rendezvous/log.h"

#include <libwebsockets.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LINE_MAX_BYTES 2048

static const char *const level_names[] = {"debug", "info", "warn", "error", "notice"};
static const char *const level_upper[] = {"DEBUG", "INFO", "WARN", "ERROR", "NOTICE"};

bool srv_log_level_parse(const char *s, srv_log_level *out)
{
    for (int i = 0; i < 4; i++) {
        if (s && strcmp(s, level_names[i]) == 0) {
            *out = (srv_log_level)i;
            return true;
        }
    }
    return false;
}

const char *srv_log_level_name(srv_log_level level)
{
    return (unsigned)level <= SRV_LOG_NOTICE ? level_names[level] : "info";
}

/* Writes the current UTC time as 2026-11-27T10:00:00.123Z into buf[64]. */
static void format_ts(char buf[64])
{
    struct timespec ts;
    struct tm tm;
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0 || !gmtime_r(&ts.tv_sec, &tm)) {
        snprintf(buf, 64, "1970-01-01T00:00:00.000Z");
        return;
    }
    snprintf(buf, 64, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
             ts.tv_nsec / 1000000L);
}

/* Appends s to out[*pos..cap) as JSON string content (no quotes). */
static void json_escape(char *out, size_t cap, size_t *pos, const char *s)
{
    for (; *s && *pos + 7 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            out[(*pos)++] = '\\';
            out[(*pos)++] = (char)c;
        } else if (c == '\n') {
            out[(*pos)++] = '\\';
            out[(*pos)++] = 'n';
        } else if (c < 0x20) {
            *pos += (size_t)snprintf(out + *pos, cap - *pos, "\\u%04x", c);
        } else {
            out[(*pos)++] = (char)c;
        }
    }
}

/* Writes one finished line of `msg` at `level` in the chosen format. */
static void emit(bool json, srv_log_level level, const char *msg)
{
    char line[LINE_MAX_BYTES + 64];
    char ts[64];
    size_t pos = 0;
    format_ts(ts);
    if (json) {
        pos = (size_t)snprintf(line, sizeof line, "{\"ts\":\"%s\",\"level\":\"%s\",\"msg\":\"",
                               ts, level_names[level]);
        json_escape(line, sizeof line - 4, &pos, msg);
        memcpy(line + pos, "\"}\n", 3);
        pos += 3;
    } else {
        int n = snprintf(line, sizeof line, "%s %s %s\n", ts, level_upper[level], msg);
        if (n < 0)
            return;
        pos = (size_t)n < sizeof line ? (size_t)n : sizeof line - 1;
        line[pos - 1] = '\n';
    }
    ssize_t w = write(STDERR_FILENO, line, pos);
    (void)w;
}

void srv_log(const srv_logger *log, srv_log_level level, const char *fmt, ...)
{
    srv_log_level min = log ? log->level : SRV_LOG_INFO;
    if ((unsigned)level > SRV_LOG_NOTICE || level < min)
        return;
    char msg[LINE_MAX_BYTES];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    emit(log ? log->json : false, level, msg);
}

/* Copies an lws line without its trailing newline and maps its level. */
static void lws_emit(bool json, int level, const char *line)
{
    char msg[LINE_MAX_BYTES];
    size_t n = strnlen(line, sizeof msg - 8);
    memcpy(msg, "lws: ", 5);
    if (n > sizeof msg - 6)
        n = sizeof msg - 6;
    memcpy(msg + 5, line, n);
    n += 5;
    while (n > 5 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        n--;
    msg[n] = '\0';
    emit(json, (level & LLL_ERR) ? SRV_LOG_ERROR : (level & LLL_WARN) ? SRV_LOG_WARN : SRV_LOG_INFO,
         msg);
}

void srv_log_lws_emit_text(int level, const char *line) { lws_emit(false, level, line); }
void srv_log_lws_emit_json(int level, const char *line) { lws_emit(true, level, line); }
