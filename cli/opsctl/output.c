/* output.c - what commands print: aligned tables fitted to the terminal, JSON, --get, colours. */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <wchar.h>

#include "opsctl.h"

#define GAP     2 /* spaces between columns */
#define MIN_COL 6 /* a column is never squeezed below this (or its header) */

const char *color(opsctl *c, const char *code)
{
    static char buf[4][16];
    static int next;
    if (!c->color)
        return "";
    char *b = buf[next++ % 4]; /* a few may appear in one printf */
    snprintf(b, sizeof(buf[0]), "\033[%sm", code);
    return b;
}

const char *state_color(const char *state)
{
    static const struct {
        const char *state, *code;
    } map[] = {{"succeeded", C_GREEN}, {"ok", C_GREEN},         {"failed", C_RED},
               {"timed_out", C_RED},   {"cancelled", C_YELLOW}, {"interrupted", C_YELLOW},
               {"missed", C_YELLOW},   {"running", C_CYAN},     {"queued", C_DIM},
               {"skipped", C_DIM},     {"success", C_GREEN},    {"failure", C_RED},
               {"denied", C_RED},      {"throttled", C_YELLOW}};
    for (size_t i = 0; state && i < sizeof(map) / sizeof(map[0]); i++)
        if (strcmp(map[i].state, state) == 0)
            return map[i].code;
    return C_RESET;
}

void print_event_json(const char *event, const char *id, json_t *data)
{
    json_t *line = json_pack("{s:s, s:s?, s:O?}", "event", event, "id", id, "data", data);
    char *text = json_dumps(line, JSON_COMPACT);
    printf("%s\n", text ? text : "");
    free(text);
    json_decref(line);
}

/* ---- text width (UTF-8 aware when the locale is) ------------------------------------------- */

/* Columns `s` takes on a terminal, and how many bytes fit in `max` columns. */
static size_t text_width(const char *s, size_t max, size_t *fit_bytes)
{
    mbstate_t st;
    memset(&st, 0, sizeof(st));
    size_t cols = 0, off = 0, len = strlen(s);
    while (off < len) {
        wchar_t wc;
        size_t n = mbrtowc(&wc, s + off, len - off, &st);
        int w = 1;
        if (n == (size_t)-1 || n == (size_t)-2 || n == 0) {
            n = 1; /* not valid in this locale: one byte, one column */
            memset(&st, 0, sizeof(st));
        } else {
            w = wcwidth(wc);
            w = w < 0 ? 1 : w;
        }
        if (cols + (size_t)w > max)
            break;
        cols += (size_t)w;
        off += n;
    }
    if (fit_bytes)
        *fit_bytes = off;
    return cols;
}

static size_t width_of(const char *s)
{
    return text_width(s, (size_t)-1, NULL);
}

/* ---- cells ------------------------------------------------------------------------------------
 */

json_t *json_path(json_t *item, const char *path)
{
    char key[128];
    while (item && *path) {
        size_t n = strcspn(path, ".");
        snprintf(key, sizeof(key), "%.*s", (int)(n < sizeof(key) ? n : sizeof(key) - 1), path);
        item = json_is_array(item) ? json_array_get(item, (size_t)atoi(key))
                                   : json_object_get(item, key);
        path += n + (path[n] == '.');
    }
    return item;
}

/* Plain text of a JSON value: strings as they are, others as compact JSON. */
static char *value_text(json_t *v)
{
    if (!v || json_is_null(v))
        return strdup("");
    if (json_is_string(v))
        return strdup(json_string_value(v));
    return json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
}

static const char *str_or_empty(json_t *v)
{
    return json_is_string(v) ? json_string_value(v) : "";
}

static char *labels_text(json_t *obj)
{
    size_t len = 1;
    const char *k;
    json_t *v;
    json_object_foreach(obj, k, v) len += strlen(k) + strlen(str_or_empty(v)) + 2;
    char *out = calloc(1, len);
    json_object_foreach(obj, k, v)
    {
        if (!out)
            break;
        if (*out)
            strcat(out, ",");
        strcat(out, k);
        strcat(out, "=");
        strcat(out, str_or_empty(v));
    }
    return out;
}

/* Items joined by commas: strings as they are, or port numbers of open ports. */
static char *joined(json_t *arr, bool open_ports)
{
    size_t len = 1, i;
    json_t *v;
    json_array_foreach(arr, i, v) len += (open_ports ? 12 : strlen(str_or_empty(v))) + 1;
    char *out = calloc(1, len);
    json_array_foreach(arr, i, v)
    {
        const char *state = json_string_value(json_object_get(v, "state"));
        if (!out || (open_ports && (!state || strcmp(state, "open") != 0)))
            continue;
        if (*out)
            strcat(out, ",");
        if (open_ports)
            sprintf(out + strlen(out), "%lld",
                    (long long)json_integer_value(json_object_get(v, "port")));
        else
            strcat(out, str_or_empty(v));
    }
    return out;
}

char *open_ports_text(json_t *ports)
{
    return joined(ports, true);
}

/* 2026-12-07T00:04:56.499Z -> 2026-12-07 00:04:56 (UTC, as the API keeps it). */
static char *time_text(json_t *v)
{
    const char *s = json_string_value(v);
    if (!s || strlen(s) < 19)
        return strdup(s ? s : "");
    char buf[32];
    snprintf(buf, sizeof(buf), "%.10s %.8s", s, s + 11);
    return strdup(buf);
}

static char *cell_text(json_t *item, const column *col)
{
    json_t *v = json_path(item, col->path);
    char buf[32];
    switch (col->kind) {
    case COL_COUNT:
        snprintf(buf, sizeof(buf), "%zu",
                 json_is_array(v) ? json_array_size(v) : json_object_size(v));
        return strdup(buf);
    case COL_LABELS:
        return labels_text(v);
    case COL_BOOL:
        return strdup(json_is_true(v) ? "yes" : json_is_false(v) ? "no" : "");
    case COL_TIME:
        return time_text(v);
    case COL_LIST:
        return joined(v, false);
    case COL_PORTS:
        return joined(v, true);
    default:
        return value_text(v);
    }
}

/* ---- tables -----------------------------------------------------------------------------------
 */

/* Narrow the widest columns until the row fits the terminal. */
static void fit(size_t *w, const size_t *floor, size_t ncols, size_t width)
{
    for (;;) {
        size_t total = 0, widest = 0;
        for (size_t i = 0; i < ncols; i++) {
            total += w[i] + (i ? GAP : 0);
            if (w[i] > floor[i] && (w[widest] <= floor[widest] || w[i] > w[widest]))
                widest = i;
        }
        if (total <= width || w[widest] <= floor[widest])
            return;
        w[widest] -= total - width < w[widest] - floor[widest] ? total - width : 1;
    }
}

/* Padding is owed rather than printed, so that a row never ends in spaces. */
static void print_cell(opsctl *c, const char *text, size_t w, size_t *owed, const char *code)
{
    size_t fit_bytes, cols = text_width(text, w, &fit_bytes);
    bool cut = fit_bytes < strlen(text);
    if (cut) /* room for the mark */
        cols = text_width(text, w - 1, &fit_bytes) + 1;
    if (fit_bytes) {
        printf("%*s%s%.*s%s%s", (int)*owed, "", code ? color(c, code) : "", (int)fit_bytes, text,
               cut ? "~" : "", code ? color(c, C_RESET) : "");
        *owed = 0;
    }
    *owed += w - cols + GAP;
}

void print_table(opsctl *c, const column *cols, json_t *items)
{
    size_t ncols = 0, nrows = json_array_size(items);
    while (cols[ncols].header)
        ncols++;
    char **cells = calloc(nrows * ncols + 1, sizeof(char *));
    size_t *w = calloc(ncols, sizeof(size_t)), *floor = calloc(ncols, sizeof(size_t));
    if (!cells || !w || !floor)
        goto out;
    for (size_t j = 0; j < ncols; j++)
        w[j] = floor[j] = width_of(cols[j].header);
    for (size_t i = 0; i < nrows; i++)
        for (size_t j = 0; j < ncols; j++) {
            char *t = cell_text(json_array_get(items, i), &cols[j]);
            cells[i * ncols + j] = t ? t : strdup("");
            size_t tw = width_of(cells[i * ncols + j]);
            w[j] = tw > w[j] ? tw : w[j];
        }
    /* Only free text gives way: ids, names, states and times are copied
     * from tables and must stay whole (a row too wide then wraps). */
    for (size_t j = 0; j < ncols; j++) {
        bool flexible =
            cols[j].kind == COL_LABELS ||
            (cols[j].kind == COL_TEXT && strcmp(cols[j].path, "id") != 0 &&
             strcmp(cols[j].path, "name") != 0 && strcmp(cols[j].path, "username") != 0);
        floor[j] = !flexible            ? w[j]
                   : floor[j] < MIN_COL ? (w[j] < MIN_COL ? w[j] : MIN_COL)
                                        : floor[j];
    }
    if (c->width > 0)
        fit(w, floor, ncols, (size_t)c->width);
    size_t owed = 0;
    for (size_t j = 0; j < ncols; j++)
        print_cell(c, cols[j].header, w[j], &owed, C_BOLD);
    printf("\n");
    for (size_t i = 0; i < nrows; i++) {
        owed = 0;
        for (size_t j = 0; j < ncols; j++) {
            const char *t = cells[i * ncols + j];
            print_cell(c, t, w[j], &owed, cols[j].kind == COL_STATE ? state_color(t) : NULL);
        }
        printf("\n");
    }
out:
    for (size_t i = 0; cells && i < nrows * ncols; i++)
        free(cells[i]);
    free(cells);
    free(w);
    free(floor);
}

/* ---- JSON and --get ------------------------------------------------------------------------- */

void print_json(json_t *v)
{
    if (v)
        json_dumpf(v, stdout, JSON_INDENT(2) | JSON_ENCODE_ANY);
    printf("\n");
}

static int print_get(const char *path, json_t *v)
{
    json_t *items = json_is_array(v) ? v : NULL;
    size_t n = items ? json_array_size(items) : 1;
    for (size_t i = 0; i < n; i++) {
        json_t *at = json_path(items ? json_array_get(items, i) : v, path);
        if (!at) {
            fprintf(stderr, "opsctl: the answer has no field '%s'\n", path);
            return OPSCTL_ERROR;
        }
        char *t = value_text(at);
        printf("%s\n", t ? t : "");
        free(t);
    }
    return 0;
}

int print_result(opsctl *c, json_t *v, table_fn fn, const void *ud)
{
    if (c->get)
        return print_get(c->get, v);
    if (c->output == OUT_JSON || !fn)
        print_json(v);
    else
        fn(c, v, ud);
    return 0;
}

/* ---- times -------------------------------------------------------------------------------------
 */

static bool parse_time(const char *s, double *out)
{
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    const char *rest = s ? strptime(s, "%Y-%m-%dT%H:%M:%S", &tm) : NULL;
    if (!rest)
        return false;
    *out = (double)timegm(&tm);
    if (*rest == '.')
        *out += strtod(rest, NULL);
    return true;
}

void format_duration(const char *from, const char *to, char *buf, size_t n)
{
    double a, b;
    buf[0] = '\0';
    if (!parse_time(from, &a))
        return;
    if (!parse_time(to, &b))
        b = (double)time(NULL);
    double d = b - a < 0 ? 0 : b - a;
    if (d < 60)
        snprintf(buf, n, "%.1fs", d);
    else if (d < 3600)
        snprintf(buf, n, "%dm%02ds", (int)d / 60, (int)d % 60);
    else
        snprintf(buf, n, "%dh%02dm", (int)d / 3600, (int)d % 3600 / 60);
}
