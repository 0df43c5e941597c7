/* gate_lists.h - the hallucination phrase and pattern lists, editable in Lua (scripts/gates.lua),
 * for the cloud STT gates (kameko/cloud.h: kmk_gate_opts.lists).
 *
 * The file returns {lists = {lang = {exact, contains, patterns}}, export(), match()}; it runs in
 * its own sandboxed Lua state (engine/brain/gate_lists.c). Loading validates every entry and
 * pattern, so a broken edit is refused as a whole (err: "file:line: message" or what is wrong)
 * and the caller keeps the lists it has. Loop thread only.
 */
#ifndef KAMEKO_GATE_LISTS_H
#define KAMEKO_GATE_LISTS_H

#include <stddef.h>

#include "kameko/cloud.h"

typedef struct kmk_gate_lists kmk_gate_lists;

/* NULL with err when the file cannot be read or is invalid. */
kmk_gate_lists *kmk_gate_lists_load(const char *path, char *err, size_t errlen);
void kmk_gate_lists_free(kmk_gate_lists *g);
/* Points o->lists/n_lists at g's phrase lists (valid while g lives). */
void kmk_gate_lists_apply(const kmk_gate_lists *g, kmk_gate_opts *o);
/* Phrase count (exact + contains) and pattern count over every language. */
void kmk_gate_lists_counts(const kmk_gate_lists *g, int *phrases, int *patterns, int *langs);
/* The first pattern of lang ("en", "ru"; NULL = any) the transcript matches, or NULL. The string
 * is owned by g and valid until the next call. */
const char *kmk_gate_lists_pattern(kmk_gate_lists *g, const char *text, const char *lang);

#endif
