/* identity.c - a node's Ed25519 identity: generate, save to and load from a
 * private key file, derive the node ID.
 *
 * Key file format (one line): "rendezvous-ed25519-v1 " + 64 hex digits of
 * the 32-byte seed + "\n". Written 0600 with O_EXCL/O_NOFOLLOW; a file that
 * group or others may access is refused at load, as ssh does.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "schema/ids.h"
#include "rendezvous/rendezvous.h"

#define KEYFILE_MAGIC "rendezvous-ed25519-v1 "
#define KEYFILE_MAGIC_LEN (sizeof(KEYFILE_MAGIC) - 1)
#define SEED_HEXLEN (2 * crypto_sign_SEEDBYTES)
#define KEYFILE_LEN (KEYFILE_MAGIC_LEN + SEED_HEXLEN + 1)

int rdv_identity_generate(rdv_identity *id)
{
    if (!id)
        return RDV_ERR_INVALID;
    if (sodium_init() < 0)
        return RDV_ERR_CRYPTO;
    crypto_sign_keypair(id->public_key, id->secret_key);
    return 0;
}

void rdv_identity_node_id(const rdv_identity *id, char out[RDV_NODE_ID_LEN + 1])
{
    rdv_node_id_from_pk(id->public_key, out);
}

void rdv_identity_wipe(rdv_identity *id)
{
    if (id)
        sodium_memzero(id, sizeof(*id));
}

/* Writes all of buf to fd; returns 0 or -1 with errno set. */
static int write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

int rdv_identity_save(const rdv_identity *id, const char *path, int overwrite)
{
    if (!id || !path || !*path)
        return RDV_ERR_INVALID;

    char line[KEYFILE_LEN + 1];
    memcpy(line, KEYFILE_MAGIC, KEYFILE_MAGIC_LEN);
    /* libsodium's secret key starts with the 32-byte seed. */
    sodium_bin2hex(line + KEYFILE_MAGIC_LEN, SEED_HEXLEN + 1, id->secret_key,
                   crypto_sign_SEEDBYTES);
    line[KEYFILE_LEN - 1] = '\n';
    line[KEYFILE_LEN] = '\0';

    int flags = O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC |
                (overwrite ? O_TRUNC : O_EXCL);
    int fd = open(path, flags, 0600);
    int rc = 0;
    if (fd < 0) {
        rc = errno == EEXIST                       ? RDV_ERR_EXISTS
             : errno == ENOENT || errno == ENOTDIR ? RDV_ERR_NOT_FOUND
                                                   : RDV_ERR_IO;
    } else {
        /* An existing file keeps its mode on O_TRUNC: narrow it first. */
        if (fchmod(fd, 0600) != 0 || write_all(fd, line, KEYFILE_LEN) != 0 ||
            fsync(fd) != 0)
            rc = RDV_ERR_IO;
        if (close(fd) != 0 && rc == 0)
            rc = RDV_ERR_IO;
    }
    sodium_memzero(line, sizeof(line));
    return rc;
}

int rdv_identity_load(rdv_identity *id, const char *path)
{
    if (!id || !path || !*path)
        return RDV_ERR_INVALID;
    if (sodium_init() < 0)
        return RDV_ERR_CRYPTO;

    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT || errno == ENOTDIR ? RDV_ERR_NOT_FOUND : RDV_ERR_IO;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return RDV_ERR_IO;
    }
    if (!S_ISREG(st.st_mode) || (st.st_mode & (S_IRWXG | S_IRWXO))) {
        close(fd);
        return RDV_ERR_PERM;
    }

    char buf[KEYFILE_LEN + 2];
    size_t got = 0;
    int rc = 0;
    while (got < sizeof(buf)) {
        ssize_t n = read(fd, buf + got, sizeof(buf) - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = RDV_ERR_IO;
            break;
        }
        if (n == 0)
            break;
        got += (size_t)n;
    }
    close(fd);

    uint8_t seed[crypto_sign_SEEDBYTES];
    size_t bin_len = 0;
    const char *end = NULL;
    /* Exactly the magic, the seed hex, and an optional final newline. */
    if (rc == 0 &&
        !((got == KEYFILE_LEN && buf[KEYFILE_LEN - 1] == '\n') ||
          got == KEYFILE_LEN - 1))
        rc = RDV_ERR_FORMAT;
    if (rc == 0 && memcmp(buf, KEYFILE_MAGIC, KEYFILE_MAGIC_LEN) != 0)
        rc = RDV_ERR_FORMAT;
    if (rc == 0 &&
        (!rdv_hex_valid(buf + KEYFILE_MAGIC_LEN, SEED_HEXLEN, SEED_HEXLEN) ||
         sodium_hex2bin(seed, sizeof(seed), buf + KEYFILE_MAGIC_LEN,
                        SEED_HEXLEN, NULL, &bin_len, &end) != 0 ||
         bin_len != sizeof(seed)))
        rc = RDV_ERR_FORMAT;
    if (rc == 0 && crypto_sign_seed_keypair(id->public_key, id->secret_key,
                                            seed) != 0)
        rc = RDV_ERR_CRYPTO;
    sodium_memzero(seed, sizeof(seed));
    sodium_memzero(buf, sizeof(buf));
    return rc;
}
