/* log.c - the library's log (see log.h): one process-wide handler, because
 * the libwebsockets log it carries is process-wide too. The handler is
 * called with g_log.lock held, so that once rdv_log_set_handler() returns
 * the previous handler is never called again. */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libwebsockets.h>

#include "client/log.h"

static struct {
    pthread_mutex_t lock;
    rdv_cb_log cb;           /* NULL: the RDV_DEBUG default */
    void *user_ptr;
    rdv_log_level max_level;
} g_log = {PTHREAD_MUTEX_INITIALIZER, NULL, NULL, RDV_LOG_DEBUG};

const char *rdv_log_level_name(rdv_log_level level)
{
    switch (level) {
    case RDV_LOG_ERROR: return "error";
    case RDV_LOG_WARN: return "warn";
    case RDV_LOG_INFO: return "info";
    case RDV_LOG_DEBUG: return "debug";
    default: return "unknown";
    }
}

void rdv_log_set_handler(rdv_log_level max_level, rdv_cb_log cb, void *user_ptr)
{
    pthread_mutex_lock(&g_log.lock);
    g_log.cb = cb;
    g_log.user_ptr = cb ? user_ptr : NULL;
    g_log.max_level = cb ? max_level : RDV_LOG_DEBUG;
    pthread_mutex_unlock(&g_log.lock);
}

/* RDV_DEBUG=1 (anything but "" and "0"): the default prints. */
static int debug_env(void)
{
    const char *e = getenv("RDV_DEBUG");
    return e && *e && strcmp(e, "0") != 0;
}

static void emit(rdv_log_level level, const char *line)
{
    pthread_mutex_lock(&g_log.lock);
    if (g_log.cb) {
        if (level <= g_log.max_level)
            g_log.cb(level, line, g_log.user_ptr);
    } else if (debug_env()) {
        fprintf(stderr, "librendezvous: %s: %s\n", rdv_log_level_name(level), line);
    }
    pthread_mutex_unlock(&g_log.lock);
}

void rdv__log(rdv_log_level level, const char *fmt, ...)
{
    char line[RDV__LOG_LINE_MAX];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    emit(level, line);
}

/* libwebsockets' lines end in a newline; its levels map to ours. */
static void lws_log_emit(int level, const char *text)
{
    char line[RDV__LOG_LINE_MAX];
    int n = snprintf(line, sizeof(line), "lws: %s", text);
    if (n < 0)
        return;
    size_t len = strlen(line);
    while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
        line[--len] = '\0';
    emit(level & LLL_ERR    ? RDV_LOG_ERROR
         : level & LLL_WARN ? RDV_LOG_WARN
                            : RDV_LOG_INFO,
         line);
}

static pthread_once_t lws_once = PTHREAD_ONCE_INIT;

static void set_lws_log(void)
{
    lws_set_log_level(LLL_ERR | LLL_WARN | LLL_NOTICE, lws_log_emit);
}

void rdv__log_hook_lws(void)
{
    (void)pthread_once(&lws_once, set_lws_log);
}
