/* capi_alloc.c — hearth-capi-alloc, the library's side of the allocation-
 * failure sweep (docs/reliability.md, "Out of memory"): an application that
 * links libhearth, installs no new-handler and uses only hearth.h, so a
 * failed allocation inside the library unwinds as std::bad_alloc to the C
 * ABI, which must hand it back as HEARTH_RESOURCE_EXHAUSTED with every
 * table, model and session it was building released cleanly.
 *
 *   hearth-capi-alloc MODEL.gguf [--lora ADAPTER] [--data DATA.jsonl] [--train]
 *                     [--engine]
 *
 * Creates the runtime (the plugins load here), then arms the fault shim
 * (hearth_alloc_fault_arm, when LD_PRELOADed with HEARTH_ALLOC_ARM=call) and
 * does one pass: load the model, tokenize, create a session and generate
 * three tokens greedily; with --lora load the adapter and generate again
 * with it; with --data load the dataset; with --train also train one step
 * and save it (a checkpoint: the PEFT directory and the optimizer state,
 * and an F16 GGUF file, in a fresh temporary folder removed afterwards); with --engine run two requests through an
 * engine (paged KV cache) to the end.
 * Then, disarmed (hearth_alloc_fault_disarm), a second pass, the same,
 * must succeed and, when the first pass succeeded, give the same tokens: a
 * failure the library absorbed must not change an answer.
 *
 * Exit status: 0 the first pass succeeded; 1 it failed with
 * RESOURCE_EXHAUSTED, reported on stderr as "hearth: CALL: MESSAGE", and the
 * second pass succeeded; 4 the second pass failed; 5 the first pass failed
 * with another code; 6 the answers differ; 2 usage.
 */
#define _XOPEN_SOURCE 700 /* mkdtemp, nftw */
#include <dlfcn.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hearth/hearth.h"

typedef struct options {
  const char* model;
  const char* lora;
  const char* data;
  int train;
  int engine;
} options;

/* What one pass produced, and what failed in it. */
typedef struct outcome {
  int32_t tokens[16];
  size_t n_tokens;
  hearth_error* err;
  const char* call;
  /* A request the engine ended with an error (its DONE event). */
  hearth_status_code event_status;
  char event_message[512];
} outcome;

/* The streamed pieces are not needed: the token ids are compared. */
static int ignore_text(const char* piece, size_t len, void* user_data) {
  (void)piece;
  (void)len;
  (void)user_data;
  return 0;
}

/* Generates up to `n` tokens greedily and appends their ids to `out`. */
static hearth_error* generate(hearth_session* session, int n, outcome* out) {
  hearth_generate_params gp = HEARTH_GENERATE_PARAMS_INIT;
  hearth_generate_result result = HEARTH_GENERATE_RESULT_INIT;
  hearth_error* err = NULL;
  int32_t last = 0;
  gp.max_tokens = n;
  gp.sampling.temperature = 0.0f;
  hearth_session_reset(session);
  err = hearth_session_generate(session, "Hello", 5, &gp, ignore_text, NULL, &result);
  if (err != NULL) return err;
  /* The greedy choice after the generation, as a fingerprint of its logits. */
  {
    const float* logits = NULL;
    size_t n_vocab = 0, i;
    err = hearth_session_logits(session, &logits, &n_vocab);
    if (err != NULL) return err;
    for (i = 1; i < n_vocab; ++i) {
      if (logits[i] > logits[last]) last = (int32_t)i;
    }
  }
  if (out->n_tokens + 2 <= sizeof out->tokens / sizeof out->tokens[0]) {
    out->tokens[out->n_tokens++] = (int32_t)result.n_generated_tokens;
    out->tokens[out->n_tokens++] = last;
  }
  return NULL;
}

static int remove_entry(const char* path, const struct stat* st, int flag, struct FTW* ftw) {
  (void)st;
  (void)flag;
  (void)ftw;
  return remove(path);
}

/* Engine requests: TOKEN events append the token, a DONE event with an
 * error keeps its status and message. */
static int on_event(const hearth_request_event* e, void* user_data) {
  outcome* out = (outcome*)user_data;
  if (e->kind == HEARTH_EVENT_TOKEN) {
    if (out->n_tokens < sizeof out->tokens / sizeof out->tokens[0]) {
      out->tokens[out->n_tokens++] = e->token;
    }
  } else if (e->status != HEARTH_OK && out->event_status == HEARTH_OK) {
    out->event_status = e->status;
    snprintf(out->event_message, sizeof out->event_message, "%s", e->message);
  }
  return 0;
}

/* Two greedy requests through an engine with a paged cache, stepped on
 * this thread until both ended. */
static hearth_error* run_engine(hearth_model* model, outcome* out) {
  hearth_engine_params ep = HEARTH_ENGINE_PARAMS_INIT;
  hearth_engine* engine = NULL;
  hearth_error* err = NULL;
  int i;
  ep.n_seq = 2;
  ep.n_ctx = 64;
  ep.n_threads = 1;
  ep.kv_block_size = 16;
  if ((err = hearth_engine_create(model, &ep, &engine)) != NULL) return err;
  for (i = 0; i < 2 && err == NULL; ++i) {
    hearth_request_params rp = HEARTH_REQUEST_PARAMS_INIT;
    uint64_t id = 0;
    rp.text = i == 0 ? "Hello" : "The weather today";
    rp.text_len = strlen(rp.text);
    rp.max_tokens = 3;
    rp.sampling.temperature = 0.0f;
    rp.on_event = on_event;
    rp.user_data = out;
    err = hearth_engine_submit(engine, &rp, &id);
  }
  for (i = 0; i < 64 && err == NULL; ++i) {
    size_t active = 0;
    err = hearth_engine_step(engine, &active);
    if (active == 0) break;
  }
  hearth_engine_free(engine);
  return err;
}

#define STEP(name, expr)             \
  do {                               \
    out->call = name;                \
    out->err = (expr);               \
    if (out->err != NULL) goto done; \
  } while (0)

static void run_pass(hearth_runtime* rt, const options* o, outcome* out) {
  hearth_model* model = NULL;
  hearth_session* session = NULL;
  hearth_adapter* adapter = NULL;
  hearth_dataset* dataset = NULL;
  hearth_trainer* trainer = NULL;
  hearth_session_params sp = HEARTH_SESSION_PARAMS_INIT;
  int32_t ids[64];
  size_t n_ids = 0;

  memset(out, 0, sizeof *out);
  sp.n_ctx = 64;
  sp.n_threads = 1;
  STEP("hearth_model_load", hearth_model_load(rt, o->model, NULL, &model));
  STEP("hearth_tokenize", hearth_tokenize(model, "Hello, world", 12, HEARTH_TOKENIZE_ADD_SPECIAL,
                                          ids, sizeof ids / sizeof ids[0], &n_ids));
  if (n_ids > 0 && out->n_tokens < sizeof out->tokens / sizeof out->tokens[0]) {
    out->tokens[out->n_tokens++] = ids[n_ids - 1];
  }
  STEP("hearth_session_create", hearth_session_create(model, &sp, &session));
  STEP("hearth_session_generate", generate(session, 3, out));
  if (o->lora != NULL) {
    const hearth_adapter* list[1];
    float scales[1] = {0.5f};
    STEP("hearth_adapter_load", hearth_adapter_load(model, o->lora, NULL, &adapter));
    list[0] = adapter;
    STEP("hearth_session_set_adapters", hearth_session_set_adapters(session, list, scales, 1));
    STEP("hearth_session_generate (adapter)", generate(session, 2, out));
  }
  if (o->data != NULL) {
    hearth_dataset_params dp = HEARTH_DATASET_PARAMS_INIT;
    hearth_dataset_info info = HEARTH_DATASET_INFO_INIT;
    dp.max_tokens = 256;
    dp.truncate = 1;
    STEP("hearth_dataset_load", hearth_dataset_load(model, o->data, &dp, &dataset));
    STEP("hearth_dataset_get_info", hearth_dataset_get_info(dataset, &info));
    if (out->n_tokens < sizeof out->tokens / sizeof out->tokens[0]) {
      out->tokens[out->n_tokens++] = (int32_t)info.n_tokens;
    }
    if (o->train) {
      hearth_trainer_params tp = HEARTH_TRAINER_PARAMS_INIT;
      hearth_train_progress progress = HEARTH_TRAIN_PROGRESS_INIT;
      tp.rank = 2;
      tp.alpha = 4.0f;
      tp.targets = "q,v";
      tp.epochs = 1;
      tp.seed = 3;
      tp.n_threads = 1;
      STEP("hearth_trainer_create", hearth_trainer_create(model, dataset, &tp, &trainer));
      STEP("hearth_trainer_step", hearth_trainer_step(trainer, &progress));
      {
        char dir[] = "/tmp/hearth-capi-alloc-XXXXXX";
        char gguf[64];
        if (mkdtemp(dir) == NULL) {
          perror("mkdtemp");
          exit(4);
        }
        snprintf(gguf, sizeof gguf, "%s/adapter.gguf", dir);
        out->call = "hearth_trainer_save_checkpoint";
        out->err = hearth_trainer_save_checkpoint(trainer, dir);
        if (out->err == NULL) {
          out->call = "hearth_trainer_save_gguf";
          out->err = hearth_trainer_save_gguf(trainer, gguf, "f16");
        }
        nftw(dir, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
        if (out->err != NULL) goto done;
      }
    }
  }
  if (o->engine) {
    STEP("hearth_engine_*", run_engine(model, out));
    if (out->event_status != HEARTH_OK) goto done;
  }
done:
  hearth_trainer_free(trainer);
  hearth_dataset_free(dataset);
  hearth_session_free(session);
  hearth_adapter_free(adapter);
  hearth_model_free(model);
}

int main(int argc, char** argv) {
  options o;
  hearth_runtime* rt = NULL;
  hearth_error* err = NULL;
  outcome first, second;
  void (*arm)(void) = NULL;
  void (*disarm)(void) = NULL;
  int i, status = 0;

  memset(&o, 0, sizeof o);
  for (i = 1; i < argc; ++i) {
    if (strcmp(argv[i], "--lora") == 0 && i + 1 < argc) {
      o.lora = argv[++i];
    } else if (strcmp(argv[i], "--data") == 0 && i + 1 < argc) {
      o.data = argv[++i];
    } else if (strcmp(argv[i], "--train") == 0) {
      o.train = 1;
    } else if (strcmp(argv[i], "--engine") == 0) {
      o.engine = 1;
    } else if (o.model == NULL && argv[i][0] != '-') {
      o.model = argv[i];
    } else {
      o.model = NULL;
      break;
    }
  }
  if (o.model == NULL || (o.train && o.data == NULL)) {
    fprintf(stderr,
            "usage: %s MODEL.gguf [--lora ADAPTER] [--data DATA.jsonl] [--train] [--engine]\n",
            argv[0]);
    return 2;
  }
  if ((err = hearth_runtime_create(NULL, &rt)) != NULL) {
    fprintf(stderr, "hearth: hearth_runtime_create: %s\n", hearth_error_message(err));
    hearth_error_free(err);
    return 4;
  }
  *(void**)(&arm) = dlsym(RTLD_DEFAULT, "hearth_alloc_fault_arm");
  *(void**)(&disarm) = dlsym(RTLD_DEFAULT, "hearth_alloc_fault_disarm");
  if (arm != NULL) arm();

  run_pass(rt, &o, &first);
  if (first.err != NULL) {
    fprintf(stderr, "hearth: %s: %s\n", first.call, hearth_error_message(first.err));
    status = hearth_error_code(first.err) == HEARTH_RESOURCE_EXHAUSTED ? 1 : 5;
    hearth_error_free(first.err);
  } else if (first.event_status != HEARTH_OK) {
    fprintf(stderr, "hearth: an engine request: %s\n", first.event_message);
    status = first.event_status == HEARTH_RESOURCE_EXHAUSTED ? 1 : 5;
  }
  if (disarm != NULL) disarm();
  run_pass(rt, &o, &second);
  if (second.err != NULL) {
    fprintf(stderr, "second pass: %s: %s\n", second.call, hearth_error_message(second.err));
    hearth_error_free(second.err);
    status = 4;
  } else if (second.event_status != HEARTH_OK) {
    fprintf(stderr, "second pass: an engine request: %s\n", second.event_message);
    status = 4;
  } else if (status == 0 &&
             (first.n_tokens != second.n_tokens ||
              memcmp(first.tokens, second.tokens, first.n_tokens * sizeof first.tokens[0]) != 0)) {
    fprintf(stderr, "the pass with an absorbed allocation failure answered differently\n");
    status = 6;
  }
  hearth_runtime_free(rt);
  return status;
}
