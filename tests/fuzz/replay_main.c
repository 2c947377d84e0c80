/* replay_main.c - runs a fuzz target (LLVMFuzzerTestOneInput) without a
 * fuzzing engine, for ctest: every file of a corpus directory as is, then a
 * bounded number of deterministic mutations of each (bit flips, byte
 * changes to JSON punctuation, truncations, duplications, insertions).
 * A crash or a sanitizer report fails the test.
 *
 *   usage: replay CORPUS_DIR [MUTATIONS_PER_FILE]
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REPLAY_MAX_INPUT (1 << 20)

static uint64_t next_rand(uint64_t *s)
{
    /* xorshift64*: deterministic, so a failure reproduces. */
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ULL;
}

static const char PUNCT[] = "{}[]\":,\\ 0123456789.eE+-tfnu\x00\x80\xff\xc3\xed";

/* Applies one random mutation to buf[0..*len) (capacity REPLAY_MAX_INPUT). */
static void mutate(uint8_t *buf, size_t *len, uint64_t *rs)
{
    size_t n = *len;
    uint64_t r = next_rand(rs);
    size_t pos = n ? (size_t)(next_rand(rs) % n) : 0;
    switch (r % 6) {
    case 0: /* flip a bit */
        if (n)
            buf[pos] ^= (uint8_t)(1u << (next_rand(rs) % 8));
        break;
    case 1: /* replace with punctuation */
        if (n)
            buf[pos] = (uint8_t)PUNCT[next_rand(rs) % (sizeof(PUNCT) - 1)];
        break;
    case 2: /* truncate */
        *len = pos;
        break;
    case 3: /* insert punctuation */
        if (n + 1 < REPLAY_MAX_INPUT) {
            memmove(buf + pos + 1, buf + pos, n - pos);
            buf[pos] = (uint8_t)PUNCT[next_rand(rs) % (sizeof(PUNCT) - 1)];
            *len = n + 1;
        }
        break;
    case 4: { /* duplicate a slice */
        size_t sl = n - pos < 64 ? n - pos : 64;
        if (n + sl < REPLAY_MAX_INPUT) {
            memmove(buf + pos + sl, buf + pos, n - pos);
            *len = n + sl;
        }
        break;
    }
    default: /* delete a byte */
        if (n) {
            memmove(buf + pos, buf + pos + 1, n - pos - 1);
            *len = n - 1;
        }
        break;
    }
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s CORPUS_DIR [MUTATIONS_PER_FILE]\n", argv[0]);
        return 2;
    }
    long mutations = argc > 2 ? strtol(argv[2], NULL, 10) : 2000;
    DIR *d = opendir(argv[1]);
    if (!d) {
        perror(argv[1]);
        return 2;
    }
    uint8_t *orig = malloc(REPLAY_MAX_INPUT), *buf = malloc(REPLAY_MAX_INPUT);
    if (!orig || !buf) {
        free(orig);
        free(buf);
        closedir(d);
        return 2;
    }
    uint64_t rs = 0x9e3779b97f4a7c15ULL;
    long files = 0, runs = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s", argv[1], e->d_name);
        FILE *f = fopen(path, "rb");
        if (!f)
            continue;
        size_t n = fread(orig, 1, REPLAY_MAX_INPUT, f);
        fclose(f);
        files++;
        LLVMFuzzerTestOneInput(orig, n);
        runs++;
        for (long i = 0; i < mutations; i++) {
            size_t len = n;
            memcpy(buf, orig, n);
            int rounds = 1 + (int)(next_rand(&rs) % 4);
            for (int k = 0; k < rounds; k++)
                mutate(buf, &len, &rs);
            LLVMFuzzerTestOneInput(buf, len);
            runs++;
        }
    }
    closedir(d);
    free(orig);
    free(buf);
    printf("fuzz replay: %ld files, %ld inputs, no crash\n", files, runs);
    return files > 0 ? 0 : 1;
}
