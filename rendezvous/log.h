/* log.h - the server's event log: one line per event on stderr, with an
 * ISO-8601 UTC timestamp and a level, or one JSON object per line.
 *
 * The logger is a small value owned by the server context and passed by
 * pointer; there is no global logger. libwebsockets' own warnings and errors
 * are routed through rdv_log_lws_emit_{text,json}, which write the same
 * formats (lws gives its emit hook no user pointer, so the format is chosen
 * by picking one of the two functions).
 */
#ifndef RDV_SERVER_LOG_H
#define RDV_SERVER_LOG_H

#include <stdbool.h>

typedef enum rdv_log_level {
    RDV_LOG_DEBUG = 0,
    RDV_LOG_INFO,
    RDV_LOG_WARN,
    RDV_LOG_ERROR,
    RDV_LOG_NOTICE   /* always written, whatever the level (ready line) */
} rdv_log_level;

typedef struct rdv_logger {
    rdv_log_level level; /* lines below this level are dropped */
    bool json;           /* one JSON object per line instead of text */
} rdv_logger;

/* Parses "debug", "info", "warn" or "error" into *out; false otherwise. */
bool rdv_log_level_parse(const char *s, rdv_log_level *out);

/* Name of a level ("debug" ...). */
const char *rdv_log_level_name(rdv_log_level level);

/* Writes one event line when level >= log->level. NULL log: info, text. */
void rdv_log(const rdv_logger *log, rdv_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Emit hooks for lws_set_log_level(); they strip lws' trailing newline. */
void rdv_log_lws_emit_text(int level, const char *line);
void rdv_log_lws_emit_json(int level, const char *line);

#define rdv_debug(l, ...) rdv_log((l), RDV_LOG_DEBUG, __VA_ARGS__)
#define rdv_info(l, ...) rdv_log((l), RDV_LOG_INFO, __VA_ARGS__)
#define rdv_warn(l, ...) rdv_log((l), RDV_LOG_WARN, __VA_ARGS__)
#define rdv_error(l, ...) rdv_log((l), RDV_LOG_ERROR, __VA_ARGS__)
#define rdv_notice(l, ...) rdv_log((l), RDV_LOG_NOTICE, __VA_ARGS__)

#endif
