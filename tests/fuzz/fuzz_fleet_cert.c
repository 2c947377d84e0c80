/* fuzz_fleet_cert.c - fuzz target for schema/fleet_cert.c: arbitrary bytes
 * as a certificate file (rdv_fleet_cert_load_text), then parse and a full
 * verify against a fixed trusted key and node. Must never crash, leak or
 * trip a sanitizer; random input never verifies. Built as a libFuzzer
 * target with -DRDV_FUZZ=ON (clang), and always as the replay driver of
 * replay_main.c for ctest (codec_fuzz_fleet_cert). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "schema/fleet_cert.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *cert = rdv_fleet_cert_load_text((const char *)data, size, NULL, 0);
    if (!cert)
        return 0;
    rdv_fleet_cert c;
    char field[32];
    if (rdv_fleet_cert_parse(cert, &c, field, sizeof field) == RDV_FLEET_OK && !c.node_id[0])
        abort(); /* a parsed certificate always has its node ID */
    /* the vectors' trusted key F1 (schema/vectors/fleet.json) */
    static const uint8_t key[1][32] = {{0}};
    char why[256];
    rdv_fleet_rc rc = rdv_fleet_cert_verify(
        cert, key, 1, "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
        1767225600000LL, 30000, &c, why, sizeof why);
    if (rc == RDV_FLEET_OK)
        abort(); /* nothing verifies with the all-zero key */
    json_decref(cert);
    return 0;
}
