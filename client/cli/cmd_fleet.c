/* cmd_fleet.c - `rdv fleet keygen` and `rdv fleet sign`: the operator's
 * offline tools for fleet admission (PROTOCOL.md 6.1, README "Admitting
 * your fleet").
 *
 *   rdv fleet keygen [--out PREFIX] [--force]
 *       PREFIX.key: the fleet secret key (Ed25519 seed, hex), mode 0600;
 *       PREFIX.pub: its public key (hex), for rendezvousd --fleet-key.
 *   rdv fleet sign NODE_ID [--fleet-key PATH] [--expires 90d] [--group G]...
 *                  [--serial HEX] [--out FILE] [--force]
 *       a certificate for NODE_ID, valid from 5 minutes ago (clocks behind
 *       the signer's) until --expires from now, on stdout or in FILE.
 *
 * Certificates are made by the codec (schema/fleet_cert.c), linked in
 * directly: librendezvous does not export it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>

#include "client/cli/cli.h"
#include "schema/fleet_cert.h"

#define DEFAULT_PREFIX "fleet"
#define DEFAULT_EXPIRES_MS (90LL * 86400 * 1000)
#define NOT_BEFORE_SLACK_MS (5LL * 60 * 1000)

static const char *const usage_fleet =
    "usage: rdv fleet keygen [--out PREFIX] [--force]\n"
    "       rdv fleet sign NODE_ID [--fleet-key PATH] [--expires DURATION] [--group G]...\n"
    "                      [--serial HEX] [--out FILE] [--force]\n"
    "\n"
    "keygen  make a fleet key: PREFIX.key (secret, mode 0600: keep it offline) and\n"
    "        PREFIX.pub (give it to rendezvousd --fleet-key); PREFIX defaults to\n"
    "        ./" DEFAULT_PREFIX "; --force overwrites\n"
    "sign    sign a fleet certificate for NODE_ID (rdv id prints a node's ID) with\n"
    "        --fleet-key (default ./" DEFAULT_PREFIX ".key); valid from 5 minutes ago\n"
    "        until --expires from now (default 90d; units s, m, h, d); --group G\n"
    "        (repeatable, at most 16, 1..32 of A-Z a-z 0-9 _ . -) for the server's\n"
    "        policy; --serial: 32 hex digits (default random); written to --out\n"
    "        FILE (mode 0600) or stdout. The node connects with --cert FILE.\n";

/* Writes len bytes to path, created with `mode` (refusing an existing file
 * unless force). Returns 0 or -1 with errno. */
static int write_file(const char *path, const char *data, size_t len, mode_t mode, int force)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | (force ? O_TRUNC : O_EXCL), mode);
    if (fd < 0)
        return -1;
    if (fchmod(fd, mode) != 0) { /* --force over a file with looser bits */
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    size_t off = 0;
    while (off < len) {
        ssize_t n = write(fd, data + off, len - off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            int e = errno;
            close(fd);
            errno = e;
            return -1;
        }
        off += (size_t)n;
    }
    return close(fd);
}

static int keygen(int argc, char **argv)
{
    const char *prefix = DEFAULT_PREFIX;
    int force = 0;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--out") && i + 1 < argc)
            prefix = argv[++i];
        else if (!strcmp(argv[i], "--force"))
            force = 1;
        else {
            fprintf(stderr, "rdv fleet keygen: unknown option '%s'\n%s", argv[i], usage_fleet);
            return 2;
        }
    }
    char key_path[4096], pub_path[4096];
    if (snprintf(key_path, sizeof key_path, "%s.key", prefix) >= (int)sizeof key_path ||
        snprintf(pub_path, sizeof pub_path, "%s.pub", prefix) >= (int)sizeof pub_path) {
        fprintf(stderr, "rdv fleet keygen: --out is too long\n");
        return 2;
    }
    uint8_t seed[32], pk[32], sk[64];
    randombytes_buf(seed, sizeof seed);
    crypto_sign_seed_keypair(pk, sk, seed);
    char seed_hex[65], pk_hex[65], text[256];
    sodium_bin2hex(seed_hex, sizeof seed_hex, seed, sizeof seed);
    sodium_bin2hex(pk_hex, sizeof pk_hex, pk, sizeof pk);
    int n = snprintf(text, sizeof text,
                     "# rendezvous fleet secret key (Ed25519 seed). Keep it offline.\n%s\n",
                     seed_hex);
    int rc = write_file(key_path, text, (size_t)n, 0600, force);
    sodium_memzero(seed, sizeof seed);
    sodium_memzero(sk, sizeof sk);
    sodium_memzero(seed_hex, sizeof seed_hex);
    sodium_memzero(text, sizeof text);
    if (rc != 0) {
        fprintf(stderr, "rdv fleet keygen: %s: %s%s\n", key_path, strerror(errno),
                errno == EEXIST ? " (use --force to replace it)" : "");
        return 1;
    }
    n = snprintf(text, sizeof text, "%s\n", pk_hex);
    if (write_file(pub_path, text, (size_t)n, 0644, force) != 0) {
        fprintf(stderr, "rdv fleet keygen: %s: %s\n", pub_path, strerror(errno));
        return 1;
    }
    fprintf(stderr, "rdv fleet keygen: wrote %s (secret, 0600) and %s\n", key_path, pub_path);
    printf("%s\n", pk_hex);
    return 0;
}

/* Reads the secret key file (refused when others may read it). */
static int load_fleet_key(const char *path, uint8_t sk[64])
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        fprintf(stderr, "rdv fleet sign: %s: %s%s\n", path, strerror(errno),
                errno == ENOENT ? " (make one with: rdv fleet keygen)" : "");
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || (st.st_mode & 077)) {
        close(fd);
        fprintf(stderr, "rdv fleet sign: %s may be read by others (mode %03o): chmod 600 it\n",
                path, (unsigned)(st.st_mode & 0777));
        return -1;
    }
    char buf[512];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n < 0)
        n = 0;
    buf[n] = '\0';
    int ok = -1;
    for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n")) {
        if (line[0] == '#' || line[0] == '\0')
            continue;
        uint8_t seed[32], pk[32];
        size_t len = 0;
        const char *end = NULL;
        if (strlen(line) == 64 &&
            sodium_hex2bin(seed, sizeof seed, line, 64, NULL, &len, &end) == 0 && len == 32 &&
            *end == '\0') {
            crypto_sign_seed_keypair(pk, sk, seed);
            ok = 0;
        }
        sodium_memzero(seed, sizeof seed);
        break;
    }
    sodium_memzero(buf, sizeof buf);
    if (ok != 0)
        fprintf(stderr, "rdv fleet sign: %s is not a fleet key file (rdv fleet keygen)\n", path);
    return ok;
}

/* "90d", "12h", "30m", "45s" (or plain seconds) into ms. */
static int parse_duration(const char *s, long long *ms)
{
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || v <= 0)
        return -1;
    long long unit = 1000;
    if (*end == 'd')
        unit = 86400000LL;
    else if (*end == 'h')
        unit = 3600000LL;
    else if (*end == 'm')
        unit = 60000LL;
    else if (*end == 's' || *end == '\0')
        unit = 1000;
    else
        return -1;
    if (*end && end[1])
        return -1;
    if (v > 100LL * 365 * 86400000LL / unit)
        return -1; /* over 100 years */
    *ms = v * unit;
    return 0;
}

static int sign(int argc, char **argv)
{
    const char *node = NULL, *key_path = DEFAULT_PREFIX ".key", *out = NULL, *serial = NULL;
    const char *groups[RDV_FLEET_MAX_GROUPS];
    size_t ng = 0;
    long long expires_ms = DEFAULT_EXPIRES_MS;
    int force = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--fleet-key") && v)
            key_path = argv[++i];
        else if (!strcmp(a, "--out") && v)
            out = argv[++i];
        else if (!strcmp(a, "--serial") && v)
            serial = argv[++i];
        else if (!strcmp(a, "--force"))
            force = 1;
        else if (!strcmp(a, "--expires") && v) {
            if (parse_duration(v, &expires_ms) != 0) {
                fprintf(stderr, "rdv fleet sign: --expires '%s': use e.g. 90d, 12h, 30m\n", v);
                return 2;
            }
            i++;
        } else if (!strcmp(a, "--group") && v) {
            if (ng >= RDV_FLEET_MAX_GROUPS || !rdv_fleet_group_valid(v)) {
                fprintf(stderr, "rdv fleet sign: --group '%s': at most %d groups of 1..%d "
                                "characters A-Z a-z 0-9 _ . -\n",
                        v, RDV_FLEET_MAX_GROUPS, RDV_FLEET_GROUP_MAX);
                return 2;
            }
            for (size_t k = 0; k < ng; k++)
                if (!strcmp(groups[k], v)) {
                    fprintf(stderr, "rdv fleet sign: --group '%s' given twice\n", v);
                    return 2;
                }
            groups[ng++] = argv[++i];
        } else if (a[0] != '-' && !node)
            node = a;
        else {
            fprintf(stderr, "rdv fleet sign: unexpected '%s'\n%s", a, usage_fleet);
            return 2;
        }
    }
    if (!node || strlen(node) != 64 || strspn(node, "0123456789abcdef") != 64) {
        fprintf(stderr, "rdv fleet sign: give the node ID (64 lowercase hex digits; `rdv id` "
                        "prints it)\n%s",
                usage_fleet);
        return 2;
    }
    if (serial && (strlen(serial) != 32 || strspn(serial, "0123456789abcdef") != 32)) {
        fprintf(stderr, "rdv fleet sign: --serial must be 32 lowercase hex digits\n");
        return 2;
    }
    uint8_t sk[64];
    if (load_fleet_key(key_path, sk) != 0)
        return 1;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    long long now = (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    json_t *cert = rdv_fleet_cert_make(sk, node, serial, now - NOT_BEFORE_SLACK_MS,
                                       now + expires_ms, groups, ng);
    sodium_memzero(sk, sizeof sk);
    char *text = cert ? json_dumps(cert, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
    json_decref(cert);
    if (!text) {
        fprintf(stderr, "rdv fleet sign: cannot make the certificate\n");
        return 1;
    }
    size_t len = strlen(text);
    int rc = 0;
    if (out) {
        char *t = realloc(text, len + 2);
        if (t) {
            text = t;
            text[len++] = '\n';
            text[len] = '\0';
        }
        if (write_file(out, text, len, 0600, force) != 0) {
            fprintf(stderr, "rdv fleet sign: %s: %s%s\n", out, strerror(errno),
                    errno == EEXIST ? " (use --force to replace it)" : "");
            rc = 1;
        } else
            fprintf(stderr, "rdv fleet sign: wrote %s for node %.16s...\n", out, node);
    } else
        printf("%s\n", text);
    free(text);
    return rc;
}

int rdv_cli_fleet(int argc, char **argv)
{
    if (argc < 1 || !strcmp(argv[0], "--help") || !strcmp(argv[0], "-h")) {
        fputs(usage_fleet, argc < 1 ? stderr : stdout);
        return argc < 1 ? 2 : 0;
    }
    if (sodium_init() < 0) {
        fprintf(stderr, "rdv fleet: libsodium failed to initialise\n");
        return 1;
    }
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(usage_fleet, stdout);
            return 0;
        }
    if (!strcmp(argv[0], "keygen"))
        return keygen(argc - 1, argv + 1);
    if (!strcmp(argv[0], "sign"))
        return sign(argc - 1, argv + 1);
    fprintf(stderr, "rdv fleet: unknown subcommand '%s'\n%s", argv[0], usage_fleet);
    return 2;
}
