/* dx_os.c - the OS-family guess: weighted evidence from banners, WS-Management and ports. */
#include "dx_os.h"

#include <string.h>

#define STRONG 3
#define WEAK   1

static void add(json_t *ev, int *score, const char *source, const char *detail, const char *family,
                int weight)
{
    score[strcmp(family, "windows") == 0] += weight;
    json_array_append_new(ev, json_pack("{s:s, s:s, s:s, s:s}", "source", source, "detail", detail,
                                        "suggests", family, "weight",
                                        weight == STRONG ? "strong" : "weak"));
}

static void from_banner(const char *b, json_t *ev, int *score)
{
    static const char *const linux_tags[] = {"Debian", "Ubuntu",  "Raspbian", "Alpine", "Fedora",
                                             "CentOS", "Red Hat", "SUSE",     "Arch",   "Gentoo"};
    if (strstr(b, "Windows")) {
        add(ev, score, "ssh_banner", b, "windows", STRONG);
        return;
    }
    for (size_t i = 0; i < sizeof(linux_tags) / sizeof(linux_tags[0]); i++)
        if (strstr(b, linux_tags[i])) {
            add(ev, score, "ssh_banner", b, "linux", STRONG);
            return;
        }
    if (strstr(b, "OpenSSH") || strstr(b, "dropbear"))
        add(ev, score, "ssh_banner", b, "linux", WEAK);
}

const char *dx_os_guess(const dx_os_input *in, json_t *ev)
{
    int score[2] = {0, 0}; /* linux, windows */
    if (in->ssh_banner)
        from_banner(in->ssh_banner, ev, score);
    if (in->winrm_vendor && strstr(in->winrm_vendor, "Microsoft"))
        add(ev, score, "wsman_identify", in->winrm_vendor, "windows",
            in->winrm_product && strstr(in->winrm_product, "OMI") ? WEAK : STRONG);
    if (in->port22 && !in->winrm_ports)
        add(ev, score, "open_ports", "22 open, no WinRM port", "linux", WEAK);
    if (in->winrm_ports && !in->port22)
        add(ev, score, "open_ports", "WinRM port open, 22 closed", "windows", WEAK);
    if (score[0] == score[1])
        return NULL;
    return score[0] > score[1] ? "linux" : "windows";
}
