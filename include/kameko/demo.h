/* demo.h - the embedded default job: a two-person conversation synthesized on this machine
 * (flite voices), replayed through the agent. Writes the speakers' WAVs, events.jsonl and
 * conversation.wav into out_dir and prints where they went.
 */
#ifndef KAMEKO_DEMO_H
#define KAMEKO_DEMO_H

#include <stddef.h>

#include "kameko/config.h"

/* Returns 0, 1 when the replay logged errors, -1 with err when it could not run. */
int kmk_demo_run(const char *out_dir, const char *persona_path, const char *scripts_dir, int fast,
                 const kmk_config *cfg, char *err, size_t errlen);

#endif
