/*
 * The offline responder (src/llm/offline.c): training answers from the
 * passages, cited; role-play from the scenario, in order, in character.
 */
#include "tap.h"

#include "internal.h"
#include "../../libavatarcore/src/llm/offline.h"

#include <avatarcore/prompt.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const avc_llm_passage_t gap_passages[] = {
    { "GAP Protection Guide", "gap_guide.txt", "products",
      "GAP Protection Guide\n"
      "\n"
      "What GAP does\n"
      "GAP pays the difference between what the customer still owes on the "
      "loan and what the insurance company pays after a total loss. It "
      "also covers the insurance deductible up to $1,000. Customers with "
      "less than 20 percent down or a term over 60 months are the most "
      "exposed.\n"
      "- GAP must be added when the contract is signed.\n"
      "- It is always optional and never a condition of the loan.\n",
      0.91 },
    { "Menu Selling Basics", "menu.md", "process",
      "## Presenting the menu\n"
      "Show every product to every customer, the same way each time. "
      "Start with the payment **without** any products, then walk through "
      "each column. A total loss is rare but expensive, so mention GAP "
      "when the down payment is small.\n",
      0.62 },
    { "Dress Code", "dress.txt", "hr",
      "Wear a collared shirt on the showroom floor. Jeans are allowed on "
      "Saturdays only.\n",
      0.30 }
};

static char *
answer(avc_llm_mode_t mode, const avc_llm_msg_t *m, size_t n,
    const avc_llm_passage_t *p, size_t np, const avc_scenario_t *sc,
    unsigned max_tokens, int *rc)
{
    avc_llm_request_t req;
    avc__buf_t b;

    memset(&req, 0, sizeof(req));
    req.mode = mode;
    req.messages = m;
    req.n_messages = n;
    req.passages = p;
    req.n_passages = np;
    req.scenario = sc;
    req.max_tokens = max_tokens;
    avc__buf_init(&b);
    *rc = avc__llm_offline_answer(&req, &b);
    if (*rc != AVC_OK) {
        avc__buf_free(&b);
        return NULL;
    }
    return avc__buf_steal(&b, NULL);
}

static char *
ask(const char *question, const avc_llm_passage_t *p, size_t np,
    unsigned max_tokens)
{
    avc_llm_msg_t m[2] = {
        { AVC_LLM_SYSTEM, "You are Adam." },
        { AVC_LLM_USER, question }
    };
    int rc;

    return answer(AVC_LLM_TRAINING, m, 2, p, np, NULL, max_tokens, &rc);
}

static void
test_training(void)
{
    char *a, *b;

    a = ask("What does GAP cover after a total loss?", gap_passages, 3, 0);
    TAP_OK(a != NULL, "training: an answer");
    if (a == NULL) {
        return;
    }
    tap_diag("%s", a);
    TAP_OK(strncmp(a, "According to GAP Protection Guide, ", 35) == 0,
           "training: cites the best passage's title first");
    TAP_OK(strstr(a, "GAP pays the difference between what the customer "
                  "still owes") != NULL,
           "training: uses the passage's own sentence");
    TAP_OK(strstr(a, "deductible") != NULL,
           "training: more than one relevant sentence");
    TAP_OK(strstr(a, "Dress Code") == NULL && strstr(a, "Jeans") == NULL,
           "training: an unrelated passage is not used");
    TAP_OK(strchr(a, '*') == NULL && strchr(a, '#') == NULL,
           "training: no markdown marks (the text may be spoken)");
    TAP_OK(strstr(a, "What GAP does") == NULL,
           "training: headings are not read out");
    b = ask("What does GAP cover after a total loss?", gap_passages, 3, 0);
    TAP_STR(b, a, "training: deterministic");
    free(b);
    free(a);

    a = ask("How do I present the menu with the payment?", gap_passages, 3,
            0);
    tap_diag("%s", a ? a : "(null)");
    TAP_OK(a && strstr(a, "Menu Selling Basics") != NULL
           && strstr(a, "payment without any products") != NULL,
           "training: the passage that answers is cited, markdown gone");
    free(a);

    /* a second passage adds to the first */
    a = ask("How does GAP handle a total loss?", gap_passages, 3, 0);
    tap_diag("%s", a ? a : "(null)");
    TAP_OK(a && strstr(a, "According to GAP Protection Guide") != NULL
           && strstr(a, "Menu Selling Basics also says that") != NULL,
           "training: a second document is named where it is used");
    free(a);

    /* a chunk cut mid-sentence at both ends */
    {
        avc_llm_passage_t p = {
            "", "docs/tire_and_wheel.txt", "products",
            "ance company will not pay for it. Tire and wheel protection "
            "covers damage from potholes, nails and road debris. Cosmetic "
            "wheel repair is included for scuffs up to three inches. The "
            "claim must be filed within thirty", 0.8
        };

        a = ask("Does tire and wheel protection cover potholes?", &p, 1, 0);
        tap_diag("%s", a ? a : "(null)");
        TAP_OK(a && strstr(a, "According to Tire and Wheel, Tire and wheel "
                           "protection covers damage from potholes") != NULL,
               "training: the file name stands in for a missing title");
        TAP_OK(a && strstr(a, "ance company") == NULL
               && strstr(a, "within thirty") == NULL,
               "training: chunk-boundary fragments are dropped");
        free(a);
    }

    a = ask("What is the store's policy on floor plan audits?", NULL, 0, 0);
    TAP_OK(a && strstr(a, "does not cover") != NULL
           && strstr(a, "F&I manager") != NULL,
           "training: no passage: says plainly the material does not cover "
           "it");
    free(a);

    a = ask("Tell me about floor plan audits", gap_passages + 2, 1, 0);
    tap_diag("%s", a ? a : "(null)");
    TAP_OK(a && strstr(a, "doesn't answer that directly") != NULL,
           "training: one word of the question in common is no answer");
    free(a);

    a = ask("How do I handle a chargeback on a cancelled contract?",
            gap_passages + 2, 1, 0);
    tap_diag("%s", a ? a : "(null)");
    TAP_OK(a && strstr(a, "doesn't answer that directly") != NULL
           && strstr(a, "Dress Code") != NULL,
           "training: an unrelated passage is offered as the closest, "
           "said so");
    free(a);

    /* the title has the question's words, no sentence does */
    {
        avc_llm_passage_t p[2] = {
            { "Chargeback Rules for Cancelled Contracts", "cb.txt", "",
              "Refunds are prorated by the administrator. The store keeps "
              "a reserve for refunds each month.", 0.8 },
            { "Funding", "f.txt", "", "A deal funds when the lender has "
              "every signed document and the stips.", 0.6 }
        };

        a = ask("What are the chargeback rules on cancelled contracts?",
                p, 2, 0);
        tap_diag("%s", a ? a : "(null)");
        TAP_OK(a && strstr(a, "doesn't answer that directly")
               && strstr(a, "Chargeback Rules for Cancelled Contracts: "
                         "Refunds are prorated"),
               "training: only the title matches: the closest passage, "
               "said so");
        free(a);
    }

    a = ask("hi there", gap_passages, 3, 0);
    TAP_OK(a && strstr(a, "I'm Adam") != NULL, "training: a greeting");
    free(a);

    a = ask("What does GAP cover after a total loss?", gap_passages, 3, 20);
    TAP_OK(a && strlen(a) < 300 && strstr(a, "GAP pays") != NULL,
           "training: a small max_tokens gives a short answer");
    free(a);
}

/* role-play */

static const char *const objections[] = {
    "My insurance already pays if the car is totaled.",
    "My credit union sells GAP for half the price.",
    "I can't add anything to the payment."
};

static const char *const moves[] = {
    "Shows the gap between the payoff and the actual cash value using her "
    "own numbers.",
    "Compares the credit union product feature by feature.",
    "Explains that GAP is optional and shows the exact payment difference."
};

static const avc_scenario_t scenario = {
    "test-gap", "Dana, 29, first-time buyer with $500 down.",
    "GAP waiver", "Why would I need GAP? I have full coverage.",
    objections, 3, moves, 3
};

/* the customer's answer to the trainee's turns so far */
static char *
customer(const char *const *turns, size_t n, const avc_scenario_t *sc)
{
    avc_llm_msg_t m[32];
    size_t i, k = 0;
    int rc;

    m[k].role = AVC_LLM_SYSTEM;
    m[k++].content = "You play a customer.";
    for (i = 0; i < n && k + 2 < 32; i++) {
        if (i > 0) {
            m[k].role = AVC_LLM_ASSISTANT;
            m[k++].content = "(the customer's earlier line)";
        }
        m[k].role = AVC_LLM_USER;
        m[k++].content = turns[i];
    }
    return answer(AVC_LLM_ROLEPLAY, m, k, NULL, 0, sc, 0, &rc);
}

static int
coaches(const char *a, const avc_scenario_t *sc)
{
    static const char *const words[] = {
        "you should", "try to", " tip ", "trainee", "role-play",
        "roleplay", "scenario", "feedback", "good job", "well done"
    };
    size_t i;

    for (i = 0; i < sc->n_moves; i++) {
        if (strstr(a, sc->good_trainee_moves[i])) {
            return 1;
        }
    }
    for (i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
        if (strcasestr(a, words[i])) {
            return 1;
        }
    }
    return strstr(a, " AI ") != NULL || strstr(a, " AI.") != NULL;
}

static void
test_roleplay(void)
{
    const char *turns[12];
    char *a;
    size_t n = 0;
    int rc, clean = 1;

    turns[n++] = "Hi, I'm Sam, I'll be going over your paperwork today.";
    a = customer(turns, n, &scenario);
    TAP_STR(a, scenario.opening_line, "role-play: the opening line first");
    free(a);

    /* a real question answers the concern: the first objection comes */
    turns[n++] = "What kind of coverage do you have on your policy now?";
    a = customer(turns, n, &scenario);
    tap_diag("%s", a ? a : "(null)");
    TAP_OK(a && strstr(a, objections[0]) && !strstr(a, objections[1]),
           "role-play: a question moves on to the first objection");
    clean &= a && !coaches(a, &scenario);
    free(a);

    /* an empty reply does not: the customer presses the point */
    turns[n++] = "Okay.";
    a = customer(turns, n, &scenario);
    tap_diag("%s", a ? a : "(null)");
    TAP_OK(a && strstr(a, objections[0]) && !strstr(a, objections[1])
           && strstr(a, "doesn't really answer"),
           "role-play: an empty reply: the same objection again");
    clean &= a && !coaches(a, &scenario);
    free(a);

    /* addressing its words does */
    turns[n++] = "Your insurance pays the actual cash value when the car is "
                 "totaled, and that can be less than your loan.";
    a = customer(turns, n, &scenario);
    tap_diag("%s", a ? a : "(null)");
    TAP_OK(a && strstr(a, objections[1]) && !strstr(a, objections[0]),
           "role-play: an answer to it: the second objection, in order");
    clean &= a && !coaches(a, &scenario);
    free(a);

    /* three empty replies: pressed twice, then let go (unresolved) */
    turns[n++] = "Sure.";
    turns[n++] = "Right.";
    a = customer(turns, n, &scenario);
    TAP_OK(a && strstr(a, objections[1])
           && strstr(a, "still not hearing"),
           "role-play: pressed a second time");
    clean &= a && !coaches(a, &scenario);
    free(a);
    turns[n++] = "Yep.";
    a = customer(turns, n, &scenario);
    tap_diag("%s", a ? a : "(null)");
    TAP_OK(a && strstr(a, "move on") && strstr(a, objections[2]),
           "role-play: after two presses the customer moves on");
    clean &= a && !coaches(a, &scenario);
    free(a);

    turns[n++] = "How much room is there in your budget each month?";
    a = customer(turns, n, &scenario);
    tap_diag("%s", a ? a : "(null)");
    TAP_OK(a && strstr(a, "pass on it"),
           "role-play: after the last objection, a decision (no: one "
           "concern went unanswered)");
    clean &= a && !coaches(a, &scenario);
    free(a);

    turns[n++] = "Can I show you one more thing?";
    a = customer(turns, n, &scenario);
    TAP_OK(a && strstr(a, "sign"), "role-play: after the decision, still "
           "the customer");
    clean &= a && !coaches(a, &scenario);
    free(a);
    TAP_OK(clean, "role-play: never coaching, never out of character");

    a = customer(NULL, 0, &scenario);
    TAP_STR(a, scenario.opening_line, "role-play: no turn yet: the opening "
            "line");
    free(a);

    {
        avc_llm_msg_t m[2] = {
            { AVC_LLM_SYSTEM, "x" }, { AVC_LLM_USER, "hello" }
        };

        a = answer(AVC_LLM_ROLEPLAY, m, 2, NULL, 0, NULL, 0, &rc);
        TAP_OK(a == NULL && rc == AVC_EINVAL,
               "role-play without a scenario: AVC_EINVAL");
    }
}

/* every built-in scenario, played through by a trainee who listens */
static void
test_builtin(void)
{
    const avc_scenario_t *sc;
    avc_scenarios_t *set;
    const char *turns[32];
    size_t i, k, n;
    char *a;
    int err, ordered = 1, decided = 1, clean = 1;

    set = avc_scenarios_load(NULL, &err);
    TAP_OK(set != NULL, "built-in scenarios load");
    for (i = 0; i < avc_scenarios_count(set); i++) {
        sc = avc_scenarios_get(set, i);
        n = 0;
        turns[n++] = "Good morning, thanks for waiting.";
        a = customer(turns, n, sc);
        ordered &= a && strcmp(a, sc->opening_line) == 0;
        free(a);
        for (k = 0; k <= sc->n_objections && n < 30; k++) {
            turns[n++] = "Can you tell me more about what worries you?";
            a = customer(turns, n, sc);
            if (a == NULL) {
                ordered = 0;
                break;
            }
            if (k < sc->n_objections) {
                ordered &= strstr(a, sc->objections[k]) != NULL;
            } else {
                decided &= strstr(a, "go ahead with it") != NULL;
            }
            clean &= !coaches(a, sc);
            free(a);
        }
    }
    TAP_OK(ordered, "built-in scenarios: opening line, then every "
           "objection in order");
    TAP_OK(decided, "built-in scenarios: a trainee who answers every "
           "concern gets a yes");
    TAP_OK(clean, "built-in scenarios: the customer never coaches");
    avc_scenarios_free(set);
}

int
main(void)
{
    test_training();
    test_roleplay();
    test_builtin();
    return tap_done();
}
