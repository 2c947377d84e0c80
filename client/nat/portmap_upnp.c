/* portmap_upnp.c - UPnP-IGD through libminiupnpc: SSDP discovery of an
 * Internet Gateway Device, AddPortMapping / DeletePortMapping of one UDP
 * port and GetExternalIPAddress (see portmap_proto.h). Called from the port
 * mapper's worker thread only. libminiupnpc bounds its own HTTP calls
 * (connect and receive timeouts of a few seconds).
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <miniupnpc/miniupnpc.h>
#include <miniupnpc/upnpcommands.h>
#include <miniupnpc/upnperrors.h>
#include <sodium.h>

#include "client/nat/portmap_proto.h"

#define UPNP_TTL 2                   /* SSDP multicast TTL (miniupnpc's default) */
#define UPNP_DESC "librendezvous"    /* NewPortMappingDescription */
#define UPNP_ERR_CONFLICT 718        /* ConflictInMappingEntry */
#define UPNP_ERR_PERMANENT_ONLY 725  /* OnlyPermanentLeasesSupported */
#define UPNP_PORT_TRIES 4            /* iport, then random ports */
#define UPNP_PORT_MIN 1024

struct rdv__pm_upnp {
    struct UPNPUrls urls;
    struct IGDdatas data;
    char lanaddr[64];                /* our address towards the IGD */
};

rdv__pm_upnp *rdv__pm_upnp_find(int delay_ms, char *why, size_t cap)
{
    /* IGD v1 first (v2 devices answer it too), then its WAN service. */
    static const char *const types[] = {"urn:schemas-upnp-org:device:InternetGatewayDevice:1",
                                        "urn:schemas-upnp-org:service:WANIPConnection:1", NULL};
    int err = 0;
    struct UPNPDev *devs = upnpDiscoverDevices(types, delay_ms, NULL, NULL, UPNP_LOCAL_PORT_ANY,
                                               0, UPNP_TTL, &err, 0);
    if (!devs) {
        snprintf(why, cap, "UPnP: no gateway answered SSDP (error %d)", err);
        return NULL;
    }
    rdv__pm_upnp *u = calloc(1, sizeof(*u));
    if (!u) {
        freeUPNPDevlist(devs);
        snprintf(why, cap, "UPnP: out of memory");
        return NULL;
    }
    int r = UPNP_GetValidIGD(devs, &u->urls, &u->data, u->lanaddr, (int)sizeof(u->lanaddr));
    freeUPNPDevlist(devs);
    if (r != 1 && r != 2) {
        if (r != 0)
            FreeUPNPUrls(&u->urls);
        free(u);
        snprintf(why, cap, "UPnP: no Internet Gateway Device (%d)", r);
        return NULL;
    }
    struct in_addr lan;
    if (!u->urls.controlURL || inet_pton(AF_INET, u->lanaddr, &lan) != 1) {
        rdv__pm_upnp_free(u);
        snprintf(why, cap, "UPnP: the gateway's description is unusable");
        return NULL;
    }
    return u;
}

void rdv__pm_upnp_free(rdv__pm_upnp *u)
{
    if (!u)
        return;
    FreeUPNPUrls(&u->urls);
    free(u);
}

static int add(rdv__pm_upnp *u, uint16_t iport, uint16_t eport, uint32_t lease_s)
{
    char ep[8], ip[8], lease[12];
    snprintf(ep, sizeof(ep), "%u", (unsigned)eport);
    snprintf(ip, sizeof(ip), "%u", (unsigned)iport);
    snprintf(lease, sizeof(lease), "%u", (unsigned)lease_s);
    return UPNP_AddPortMapping(u->urls.controlURL, u->data.first.servicetype, ep, ip, u->lanaddr,
                               UPNP_DESC, "UDP", NULL, lease);
}

int rdv__pm_upnp_map(rdv__pm_upnp *u, uint16_t iport, uint16_t eport, uint32_t lease_s,
                     rdv__pm_lease *out, char *why, size_t cap)
{
    memset(out, 0, sizeof(*out));
    if (!u || iport == 0) {
        snprintf(why, cap, "UPnP: bad request");
        return -1;
    }
    uint16_t port = eport ? eport : iport;
    int r = -1;
    for (int i = 0; i < UPNP_PORT_TRIES; i++) {
        r = add(u, iport, port, lease_s);
        if (r == UPNP_ERR_PERMANENT_ONLY && lease_s != 0) {
            lease_s = 0;
            r = add(u, iport, port, lease_s);
        }
        if (r != UPNP_ERR_CONFLICT || eport != 0)
            break;
        port = (uint16_t)(UPNP_PORT_MIN + randombytes_uniform(65536 - UPNP_PORT_MIN));
    }
    if (r != UPNPCOMMAND_SUCCESS) {
        snprintf(why, cap, "UPnP: AddPortMapping %u: %d %.48s", (unsigned)port, r,
                 strupnperror(r) ? strupnperror(r) : "");
        return -1;
    }
    char ext[40] = "";
    struct in_addr pub;
    r = UPNP_GetExternalIPAddress(u->urls.controlURL, u->data.first.servicetype, ext);
    if (r != UPNPCOMMAND_SUCCESS || inet_pton(AF_INET, ext, &pub) != 1 || pub.s_addr == 0) {
        snprintf(why, cap, "UPnP: GetExternalIPAddress: %d, \"%.16s\"", r, ext);
        (void)rdv__pm_upnp_unmap(u, port);
        return -1;
    }
    out->pub.sin_family = AF_INET;
    out->pub.sin_addr = pub;
    out->pub.sin_port = htons(port);
    out->lifetime_s = lease_s;
    return 0;
}

int rdv__pm_upnp_unmap(rdv__pm_upnp *u, uint16_t eport)
{
    if (!u || eport == 0)
        return -1;
    char ep[8];
    snprintf(ep, sizeof(ep), "%u", (unsigned)eport);
    return UPNP_DeletePortMapping(u->urls.controlURL, u->data.first.servicetype, ep, "UDP",
                                  NULL) == UPNPCOMMAND_SUCCESS
               ? 0
               : -1;
}
