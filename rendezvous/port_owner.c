/* port_owner.c - the process holding a local port (see port_owner.h). */
#include "rendezvous/port_owner.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TCP_LISTEN 0x0A /* st column of /proc/net/tcp */

/* The inode of a socket bound to `port` in /proc/net/<file>; 0 if none. */
static unsigned long find_inode(const char *file, bool udp, uint16_t port)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/net/%s", file);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    char line[512];
    unsigned long found = 0;
    if (!fgets(line, sizeof line, f)) { /* header */
        fclose(f);
        return 0;
    }
    while (!found && fgets(line, sizeof line, f)) {
        char local[80];
        unsigned st = 0;
        unsigned long inode = 0;
        /* sl local rem st tx:rx tr:when retrnsmt uid timeout inode */
        if (sscanf(line, "%*s %79s %*s %x %*s %*s %*s %*s %*s %lu", local, &st, &inode) != 3)
            continue;
        const char *colon = strrchr(local, ':');
        if (!colon || strtoul(colon + 1, NULL, 16) != port)
            continue;
        if (!udp && st != TCP_LISTEN)
            continue;
        found = inode;
    }
    fclose(f);
    return found;
}

/* True when process pid has socket `inode` open. */
static bool pid_has_socket(const char *pid, unsigned long inode)
{
    char dir[64], want[48];
    snprintf(dir, sizeof dir, "/proc/%.20s/fd", pid);
    snprintf(want, sizeof want, "socket:[%lu]", inode);
    DIR *d = opendir(dir);
    if (!d)
        return false;
    bool has = false;
    struct dirent *e;
    while (!has && (e = readdir(d))) {
        char link[320], target[64];
        snprintf(link, sizeof link, "%s/%s", dir, e->d_name);
        ssize_t n = readlink(link, target, sizeof target - 1);
        if (n <= 0)
            continue;
        target[n] = '\0';
        has = !strcmp(target, want);
    }
    closedir(d);
    return has;
}

bool srv_port_owner(bool udp, uint16_t port, char *out, size_t outlen)
{
    if (outlen)
        out[0] = '\0';
    unsigned long inode = find_inode(udp ? "udp" : "tcp", udp, port);
    if (!inode)
        inode = find_inode(udp ? "udp6" : "tcp6", udp, port);
    if (!inode)
        return false;
    DIR *proc = opendir("/proc");
    if (!proc)
        return false;
    bool found = false;
    struct dirent *e;
    while (!found && (e = readdir(proc))) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        if (!pid_has_socket(e->d_name, inode))
            continue;
        char path[64], comm[64] = "?";
        snprintf(path, sizeof path, "/proc/%.20s/comm", e->d_name);
        FILE *f = fopen(path, "r");
        if (f) {
            if (fgets(comm, sizeof comm, f))
                comm[strcspn(comm, "\n")] = '\0';
            fclose(f);
        }
        snprintf(out, outlen, "%.63s (pid %.20s)", comm, e->d_name);
        found = true;
    }
    closedir(proc);
    return found;
}
