/*
 * avatarcore/prompt.h - role-play scenarios and prompt building.
 *
 * The prompts are template files (libavatarcore/templates/prompts/), built
 * into the library; an operator may point prompts.dir at a directory of
 * files with the same names to replace them.  Scenarios come from JSON
 * Lines files (one scenario per line, the format of the scenario files in
 * libavatarcore/data/scenarios/), built in as well; chat.scenarios names
 * a directory of further *.jsonl files.
 *
 * Building a prompt fits it to the model's window: the system prompt and
 * the question always go in; retrieved passages are kept best first while
 * they fit; history is trimmed oldest first; completion tokens are kept
 * free.  Token counts are approximate (avc_llm_count_tokens).
 */
#ifndef AVATARCORE_PROMPT_H
#define AVATARCORE_PROMPT_H

#include <avatarcore/core.h>
#include <avatarcore/llm.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct avc_scenarios_s avc_scenarios_t;
typedef struct avc_prompt_s avc_prompt_t;

/*
 * The built-in scenarios plus those of every *.jsonl file in dir (NULL:
 * built-in only).  A bad line fails the load with *err = AVC_EPARSE and a
 * logged file:line; a duplicate id replaces the built-in one.
 */
AVC_API avc_scenarios_t *avc_scenarios_load(const char *dir, int *err);
AVC_API void avc_scenarios_free(avc_scenarios_t *s);
AVC_API size_t avc_scenarios_count(const avc_scenarios_t *s);
AVC_API const avc_scenario_t *avc_scenarios_get(const avc_scenarios_t *s,
                                                size_t i);
/* by id; NULL when none */
AVC_API const avc_scenario_t *avc_scenarios_find(const avc_scenarios_t *s,
                                                 const char *id);
/* one at random (uniform) */
AVC_API const avc_scenario_t *avc_scenarios_random(const avc_scenarios_t *s);

typedef struct {
    avc_llm_mode_t            mode;
    const char               *dealership_name;  /* may be NULL */
    const char               *trainee_name;     /* first name; may be NULL */
    const avc_llm_passage_t  *passages;         /* best first */
    size_t                    n_passages;
    const avc_scenario_t     *scenario;         /* role-play */
    const avc_llm_msg_t      *history;          /* oldest first; user and
                                                   assistant turns only */
    size_t                    n_history;
    const char               *question;         /* the new user turn */
    unsigned                  context_window;   /* tokens */
    unsigned                  max_tokens;       /* kept for the answer */
    const char               *templates_dir;    /* prompts.dir or NULL */
    int                       spoken;           /* the answer is spoken:
                                                   spoken.txt is added */
} avc_prompt_input_t;

/*
 * Read the templates of dir (prompts.dir: training.txt, roleplay.txt,
 * passage.txt, no_passages.txt, spoken.txt; a file it lacks stays built in) now, at
 * configuration or start time, for the builds that name the same dir; a
 * later call reads it again.  A build naming a dir never loaded reads it
 * at that moment.  AVC_OK; AVC_EINVAL (not a directory, or a file that
 * is not UTF-8 text of at most 64 KiB: logged), AVC_ENOMEM.  Thread-safe.
 */
AVC_API int avc_prompt_templates_load(const char *dir);

/*
 * Render the prompt.  AVC_ETOOBIG when even the system prompt and the
 * question do not fit; AVC_EINVAL on a bad input (a system turn in the
 * history, role-play without a scenario).
 */
AVC_API avc_prompt_t *avc_prompt_build(const avc_prompt_input_t *in,
                                       int *err);
AVC_API void avc_prompt_free(avc_prompt_t *p);
/* The messages, system first, the question last (borrowed from p). */
AVC_API const avc_llm_msg_t *avc_prompt_messages(const avc_prompt_t *p,
                                                 size_t *n);
/* How many of the passages made it in (the first k). */
AVC_API size_t avc_prompt_passages_used(const avc_prompt_t *p);
/* How many history turns made it in (the last k). */
AVC_API size_t avc_prompt_history_used(const avc_prompt_t *p);
/* The estimated prompt size in tokens. */
AVC_API unsigned avc_prompt_tokens(const avc_prompt_t *p);

#ifdef __cplusplus
}
#endif

#endif /* AVATARCORE_PROMPT_H */
