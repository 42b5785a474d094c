/* dx_os.h - an OS-family guess from what a scan saw, with the evidence for it.
 *
 * Strong evidence: an SSH banner naming a distribution or Windows
 * (OpenSSH_for_Windows), a WS-Management vendor. Weak evidence: which ports
 * are open (22 without WinRM, 5985/5986 without SSH), a plain OpenSSH banner.
 * The family with the most weight wins ("linux" or "windows"); a tie or no
 * evidence is no guess (NULL). Thread: pure; any thread.
 */
#ifndef DX_OS_H
#define DX_OS_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

typedef struct dx_os_input {
    const char *ssh_banner;   /* "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3" or NULL */
    const char *winrm_vendor; /* "Microsoft Corporation" or NULL */
    const char *winrm_product;
    bool port22, winrm_ports; /* open */
} dx_os_input;

/* Appends {source, detail, suggests} items to `evidence` (an array). */
const char *dx_os_guess(const dx_os_input *in, json_t *evidence);

#endif
