/*
 * The offline responder (offline.c): the embedded default language
 * "model", deterministic and without any network.
 *
 *   training   an answer built from the best sentences of the retrieved
 *              passages for the question (the last user message), naming
 *              the documents' titles ("According to <title>, ..."); with
 *              no passage it says plainly that the dealership's material
 *              does not cover the question
 *   role-play  the scenario's customer: the opening line first, then the
 *              objections one at a time, in order, moving on when the
 *              trainee's turn answers the current one, and a decision at
 *              the end; never coaching, never out of character
 */
#ifndef AVC_LLM_OFFLINE_H
#define AVC_LLM_OFFLINE_H

#include "internal.h"

#include <avatarcore/llm.h>

/*
 * Append the whole answer to req (plain spoken sentences, UTF-8) to out.
 * AVC_OK; AVC_EINVAL (role-play without a scenario, no messages);
 * AVC_ENOMEM.  Thread-safe: it reads only req.
 */
int avc__llm_offline_answer(const avc_llm_request_t *req, avc__buf_t *out);

#endif /* AVC_LLM_OFFLINE_H */
