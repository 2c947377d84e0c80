/* log.h - the server's event log: one line per event on stderr, with an
 * ISO-8601 UTC timestamp and a level, or one JSON object per line.
 *
 * The logger is a small value owned by the server context and passed by
 * pointer; there is no global logger. libwebsockets' own warnings and errors
 * are routed through srv_log_lws_emit_{text,json}, which write the same
 * formats (lws gives its emit hook no user pointer, so the format is chosen
 * by picking one of the two functions).
 */
#ifndef SRV_LOG_H
#define SRV_LOG_H

#include <stdbool.h>

typedef enum srv_log_level {
    SRV_LOG_DEBUG = 0,
    SRV_LOG_INFO,
    SRV_LOG_WARN,
    SRV_LOG_ERROR,
    SRV_LOG_NOTICE   /* always written, whatever the level (ready line) */
} srv_log_level;

typedef struct srv_logger {
    srv_log_level level; /* lines below this level are dropped */
    bool json;           /* one JSON object per line instead of text */
} srv_logger;

/* Parses "debug", "info", "warn" or "error" into *out; false otherwise. */
bool srv_log_level_parse(const char *s, srv_log_level *out);

/* Name of a level ("debug" ...). */
const char *srv_log_level_name(srv_log_level level);

/* Writes one event line when level >= log->level. NULL log: info, text. */
void srv_log(const srv_logger *log, srv_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Emit hooks for lws_set_log_level(); they strip lws' trailing newline. */
void srv_log_lws_emit_text(int level, const char *line);
void srv_log_lws_emit_json(int level, const char *line);

#define srv_debug(l, ...) srv_log((l), SRV_LOG_DEBUG, __VA_ARGS__)
#define srv_info(l, ...) srv_log((l), SRV_LOG_INFO, __VA_ARGS__)
#define srv_warn(l, ...) srv_log((l), SRV_LOG_WARN, __VA_ARGS__)
#define srv_error(l, ...) srv_log((l), SRV_LOG_ERROR, __VA_ARGS__)
#define srv_notice(l, ...) srv_log((l), SRV_LOG_NOTICE, __VA_ARGS__)

#endif
