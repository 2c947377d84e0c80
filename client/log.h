/* log.h - the library's log (log.c; internal): messages go to the
 * handler of rdv_log_set_handler(), else to stderr when the environment
 * has RDV_DEBUG=1. libwebsockets' process-wide log is routed here too. */
#ifndef RDV_CLIENT_LOG_H
#define RDV_CLIENT_LOG_H

#include "rendezvous/rendezvous.h"

/* Logs one message (printf format; cut at RDV__LOG_LINE_MAX bytes). Safe
 * from any thread; call it with no client lock held (the handler is
 * application code). */
#define RDV__LOG_LINE_MAX 512
void rdv__log(rdv_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Points libwebsockets' log at rdv__log (once per process). */
void rdv__log_hook_lws(void);

#endif
