/* fuzz_elf.c - libFuzzer target: an uploaded step library's ELF file read before it is loaded
 * (install_elf.c). Checked: nothing reads outside the input, hangs or crashes; an accepted file
 * has a valid plugin name and version and an ABI this host loads. */
#include <stdint.h>
#include <string.h>

#include <opsc/plugin.h>

#include "install_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    install_elf out;
    char err[512];
    if (install_elf_check(data, size, &out, err, sizeof(err)) == 0) {
        if (!out.name[0] || !out.version[0] || out.abi_major != OPSC_ABI_MAJOR ||
            out.abi_minor > OPSC_ABI_MINOR)
            __builtin_trap();
    }
    return 0;
}
