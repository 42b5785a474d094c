/* install_elf.c - what an uploaded .so says about itself, read from its ELF file without loading
 * it.
 *
 * dlopen() runs a library's constructors before the host can look at its
 * descriptor, so an upload is checked from its bytes first: a 64-bit
 * little-endian shared object for this machine, section headers within the
 * file, the plugin's note (opsc/plugin.h: name, version, ABI, written by
 * OPSC_PLUGIN_DEFINE) well formed and compatible, and the entry symbol
 * exported. Every offset read comes from the upload: each is checked
 * against the file's size before use (fuzzed by tests/fuzz/fuzz_elf.c).
 */
#include <elf.h>
#include <stdio.h>
#include <string.h>

#include <opsc/errors.h>
#include <opsc/plugin.h>

#include "install_internal.h"

#if defined(__x86_64__)
#define HOST_MACHINE EM_X86_64
#elif defined(__aarch64__)
#define HOST_MACHINE EM_AARCH64
#else
#define HOST_MACHINE EM_NONE
#endif

typedef struct elf_file {
    const uint8_t *d;
    size_t len;
    Elf64_Ehdr eh;
} elf_file;

static int refuse(char *err, size_t errlen, const char *what)
{
    snprintf(err, errlen, "%s", what);
    return OPSC_EINVAL;
}

static bool span_ok(const elf_file *f, uint64_t off, uint64_t size)
{
    return off <= f->len && size <= f->len - off;
}

static bool section(const elf_file *f, size_t i, Elf64_Shdr *out)
{
    uint64_t off = f->eh.e_shoff + (uint64_t)i * sizeof(Elf64_Shdr);
    if (i >= f->eh.e_shnum || !span_ok(f, off, sizeof(Elf64_Shdr)))
        return false;
    memcpy(out, f->d + off, sizeof(*out));
    return out->sh_type == SHT_NOBITS || span_ok(f, out->sh_offset, out->sh_size);
}

/* The NUL-terminated name at `off` of string table `strtab`, or NULL. */
static const char *string_at(const elf_file *f, const Elf64_Shdr *strtab, uint64_t off)
{
    if (strtab->sh_type != SHT_STRTAB || off >= strtab->sh_size)
        return NULL;
    const char *s = (const char *)f->d + strtab->sh_offset + off;
    return memchr(s, '\0', strtab->sh_size - off) ? s : NULL;
}

static int header(elf_file *f, char *err, size_t errlen)
{
    if (f->len < sizeof(Elf64_Ehdr) || memcmp(f->d, ELFMAG, SELFMAG) != 0)
        return refuse(err, errlen, "not an ELF file");
    memcpy(&f->eh, f->d, sizeof(f->eh));
    if (f->eh.e_ident[EI_CLASS] != ELFCLASS64 || f->eh.e_ident[EI_DATA] != ELFDATA2LSB)
        return refuse(err, errlen, "not a 64-bit little-endian ELF file");
    if (f->eh.e_type != ET_DYN)
        return refuse(err, errlen, "not a shared object (ELF type ET_DYN)");
    if (f->eh.e_machine != HOST_MACHINE)
        return refuse(err, errlen, "built for another machine architecture");
    if (f->eh.e_shentsize != sizeof(Elf64_Shdr) || f->eh.e_shnum == 0 ||
        f->eh.e_shstrndx >= f->eh.e_shnum ||
        !span_ok(f, f->eh.e_shoff, (uint64_t)f->eh.e_shnum * sizeof(Elf64_Shdr)))
        return refuse(err, errlen, "its section headers are missing or lie outside the file");
    return 0;
}

static bool name_ok(const char *s)
{
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '-'))
            return false;
    return true;
}

static bool version_ok(const char *s)
{
    for (; *s; s++)
        if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
              *s == '.' || *s == '-' || *s == '+'))
            return false;
    return true;
}

static int read_note(const elf_file *f, const Elf64_Shdr *sh, install_elf *out, char *err,
                     size_t errlen)
{
    opsc_plugin_note n;
    if (sh->sh_type == SHT_NOBITS || sh->sh_size != sizeof(n))
        return refuse(err, errlen, "its " OPSC_PLUGIN_NOTE_SECTION " section has the wrong size");
    memcpy(&n, f->d + sh->sh_offset, sizeof(n));
    if (memcmp(n.magic, OPSC_PLUGIN_NOTE_MAGIC, sizeof(n.magic)) != 0 ||
        !memchr(n.name, '\0', sizeof(n.name)) || !memchr(n.version, '\0', sizeof(n.version)) ||
        !n.name[0] || !n.version[0] || !name_ok(n.name) || !version_ok(n.version))
        return refuse(err, errlen, "its plugin note is malformed (name [a-z0-9-]+, a version)");
    snprintf(out->name, sizeof(out->name), "%s", n.name);
    snprintf(out->version, sizeof(out->version), "%s", n.version);
    out->abi_major = n.abi_major;
    out->abi_minor = n.abi_minor;
    out->has_note = true;
    return 0;
}

/* The dynamic symbol table exports the entry point (defined, global, a function). */
static bool exports_entry(const elf_file *f, const Elf64_Shdr *dynsym)
{
    Elf64_Shdr strtab;
    if (dynsym->sh_entsize != sizeof(Elf64_Sym) || !section(f, dynsym->sh_link, &strtab))
        return false;
    for (uint64_t off = 0; off + sizeof(Elf64_Sym) <= dynsym->sh_size; off += sizeof(Elf64_Sym)) {
        Elf64_Sym sym;
        memcpy(&sym, f->d + dynsym->sh_offset + off, sizeof(sym));
        const char *name = string_at(f, &strtab, sym.st_name);
        if (name && strcmp(name, OPSC_PLUGIN_ENTRY_SYMBOL) == 0 && sym.st_shndx != SHN_UNDEF &&
            ELF64_ST_BIND(sym.st_info) == STB_GLOBAL && ELF64_ST_TYPE(sym.st_info) == STT_FUNC)
            return true;
    }
    return false;
}

int install_elf_check(const void *data, size_t len, install_elf *out, char *err, size_t errlen)
{
    elf_file f = {data, len, {{0}}};
    memset(out, 0, sizeof(*out));
    int rc = header(&f, err, errlen);
    Elf64_Shdr names;
    if (rc == 0 && !section(&f, f.eh.e_shstrndx, &names))
        rc = refuse(err, errlen, "its section name table lies outside the file");
    bool exported = false;
    for (size_t i = 0; rc == 0 && i < f.eh.e_shnum; i++) {
        Elf64_Shdr sh;
        if (!section(&f, i, &sh)) {
            rc = refuse(err, errlen, "a section lies outside the file");
            break;
        }
        const char *name = string_at(&f, &names, sh.sh_name);
        if (name && strcmp(name, OPSC_PLUGIN_NOTE_SECTION) == 0)
            rc = read_note(&f, &sh, out, err, errlen);
        else if (sh.sh_type == SHT_DYNSYM)
            exported = exported || exports_entry(&f, &sh);
    }
    if (rc < 0)
        return rc;
    if (!out->has_note)
        return refuse(err, errlen,
                      "it has no plugin note (" OPSC_PLUGIN_NOTE_SECTION "): rebuild "
                      "it with OPSC_PLUGIN_DEFINE of an SDK of ABI 1.2 or newer");
    if (!exported)
        return refuse(err, errlen, "it does not export " OPSC_PLUGIN_ENTRY_SYMBOL);
    if (out->abi_major != OPSC_ABI_MAJOR || out->abi_minor > OPSC_ABI_MINOR) {
        snprintf(err, errlen, "it was built for ABI %u.%u; this host speaks %d.%d", out->abi_major,
                 out->abi_minor, OPSC_ABI_MAJOR, OPSC_ABI_MINOR);
        return OPSC_EABI;
    }
    return 0;
}
