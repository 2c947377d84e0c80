/* notify.c - sd_notify for Type=notify (see notify.h). */
#include "rendezvous/notify.h"

#include <stdio.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <time.h>

/* Sends "STATE\nSTATUS=status" (state may be ""); logs a failure. */
static int send_state(const srv_logger *log, const char *state, const char *status)
{
    int rc = sd_notifyf(0, "%s%sSTATUS=%.400s", state, *state ? "\n" : "", status);
    if (rc < 0)
        srv_warn(log, "sd_notify (NOTIFY_SOCKET): %s", strerror(-rc));
    return rc;
}

int srv_notify_ready(const srv_logger *log, const char *status)
{
    return send_state(log, "READY=1", status);
}

int srv_notify_reloading(const srv_logger *log, const char *status)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    unsigned long long usec =
        (unsigned long long)ts.tv_sec * 1000000ULL + (unsigned long long)ts.tv_nsec / 1000ULL;
    char state[64];
    snprintf(state, sizeof state, "RELOADING=1\nMONOTONIC_USEC=%llu", usec);
    return send_state(log, state, status);
}

int srv_notify_stopping(const srv_logger *log, const char *status)
{
    return send_state(log, "STOPPING=1", status);
}

int srv_notify_status(const srv_logger *log, const char *status)
{
    return send_state(log, "", status);
}
