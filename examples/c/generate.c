/* generate.c — the smallest complete hearth program, in C11 against hearth.h
 * only: load a model, tokenize a prompt, stream a greedy completion, then read
 * the logits the session ended with.
 *
 *   hearth_example_generate MODEL.gguf "The capital of France is" [N_TOKENS]
 *
 * Every hearth call that can fail returns a hearth_error* (NULL = success);
 * this program prints its code and message and exits with status 1.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hearth/hearth.h"

/* Prints what failed, with the error's code and message, and frees it. */
static int report(const char* what, hearth_error* err) {
  fprintf(stderr, "%s failed: error code %d: %s\n", what, (int)hearth_error_code(err),
          hearth_error_message(err));
  hearth_error_free(err);
  return 1;
}

/* Streaming callback: `piece` lives only during the call, so print it now.
 * Returning non-zero would stop generation. */
static int on_text(const char* piece, size_t len, void* user_data) {
  size_t* n_pieces = (size_t*)user_data;
  if (fwrite(piece, 1, len, stdout) != len) return 1;
  fflush(stdout);
  ++*n_pieces;
  return 0;
}

int main(int argc, char** argv) {
  hearth_runtime* rt = NULL;
  hearth_model* model = NULL;
  hearth_session* session = NULL;
  hearth_error* err = NULL;
  int32_t* tokens = NULL;
  size_t n_tokens = 0, i = 0;
  long n_generate = 32;
  int status = 1;

  if (argc < 3 || argc > 4) {
    fprintf(stderr, "usage: %s MODEL.gguf PROMPT [N_TOKENS]\n", argv[0]);
    return 2;
  }
  if (argc == 4) {
    char* end = NULL;
    errno = 0;
    n_generate = strtol(argv[3], &end, 10);
    if (errno != 0 || end == argv[3] || *end != '\0' || n_generate < 0 || n_generate > 1000000) {
      fprintf(stderr, "N_TOKENS: '%s' is not a count in [0, 1000000]\n", argv[3]);
      return 2;
    }
  }

  /* NULL params: defaults (plugins from HEARTH_PLUGIN_PATH and the install). */
  if ((err = hearth_runtime_create(NULL, &rt)) != NULL) {
    status = report("hearth_runtime_create", err);
    goto done;
  }
  if ((err = hearth_model_load(rt, argv[1], NULL, &model)) != NULL) {
    status = report("hearth_model_load", err);
    goto done;
  }

  /* Tokenize twice: first to learn the count, then into a buffer that fits. */
  {
    const char* prompt = argv[2];
    const size_t len = strlen(prompt);
    if ((err = hearth_tokenize(model, prompt, len, HEARTH_TOKENIZE_ADD_SPECIAL, NULL, 0,
                               &n_tokens)) != NULL) {
      status = report("hearth_tokenize", err);
      goto done;
    }
    tokens = (int32_t*)malloc((n_tokens ? n_tokens : 1) * sizeof(int32_t));
    if (tokens == NULL) {
      fprintf(stderr, "out of memory\n");
      goto done;
    }
    if ((err = hearth_tokenize(model, prompt, len, HEARTH_TOKENIZE_ADD_SPECIAL, tokens, n_tokens,
                               &n_tokens)) != NULL) {
      status = report("hearth_tokenize", err);
      goto done;
    }
    printf("prompt tokens (%zu):", n_tokens);
    for (i = 0; i < n_tokens; ++i) printf(" %d", (int)tokens[i]);
    printf("\n");
  }

  if ((err = hearth_session_create(model, NULL, &session)) != NULL) {
    status = report("hearth_session_create", err);
    goto done;
  }

  /* Greedy decoding: temperature 0 picks the most likely token every step,
   * so the same model and prompt always give the same text. */
  {
    hearth_generate_params params = HEARTH_GENERATE_PARAMS_INIT;
    hearth_generate_result result = HEARTH_GENERATE_RESULT_INIT;
    size_t n_pieces = 0;
    params.max_tokens = (int32_t)n_generate;
    params.sampling.temperature = 0.0f;
    printf("completion: ");
    fflush(stdout);
    if ((err = hearth_session_generate(session, argv[2], strlen(argv[2]), &params, on_text,
                                       &n_pieces, &result)) != NULL) {
      printf("\n");
      status = report("hearth_session_generate", err);
      goto done;
    }
    printf("\ngenerated %u tokens (%zu text pieces) after %u prompt tokens; stop reason %d\n",
           result.n_generated_tokens, n_pieces, result.n_prompt_tokens, (int)result.stop_reason);
  }

  /* The logits of the last token fed, borrowed until the next session call. */
  {
    const float* logits = NULL;
    size_t n_vocab = 0, best = 0;
    const char* text = NULL;
    size_t text_len = 0;
    if ((err = hearth_session_logits(session, &logits, &n_vocab)) != NULL) {
      status = report("hearth_session_logits", err);
      goto done;
    }
    for (i = 1; i < n_vocab; ++i) {
      if (logits[i] > logits[best]) best = i;
    }
    text = hearth_token_text(model, (int32_t)best, &text_len);
    printf("argmax of the last logits: %zu (%.*s)\n", best, text ? (int)text_len : 0,
           text ? text : "");
  }
  status = 0;

done:
  /* Every *_free accepts NULL, so one cleanup path serves every exit. */
  free(tokens);
  hearth_session_free(session);
  hearth_model_free(model);
  hearth_runtime_free(rt);
  return status;
}
