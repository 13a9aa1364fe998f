/* finetune.c — train a LoRA adapter and generate with it, in one process, in
 * C11 against hearth.h only: load a model and a JSONL dataset, train a few
 * steps with a progress callback, take the trained adapter, attach it to a
 * session and generate greedily.
 *
 *   hearth_example_finetune MODEL.gguf DATA.jsonl PROMPT [STEPS]
 *
 * STEPS (default 8) caps the optimizer steps: the callback stops the run
 * there. The base model is never modified; the adapter lives beside it.
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

/* Progress callback, called after every optimizer step of hearth_trainer_run.
 * Returning non-zero stops the run (the steps done so far are kept). */
static int on_step(const hearth_train_progress* p, void* user_data) {
  const unsigned long max_steps = *(const unsigned long*)user_data;
  printf("step %lu/%lu loss %.4f grad_norm %.4f lr %.2e (%lu tokens, %lu trained)\n",
         (unsigned long)p->step, (unsigned long)p->total_steps, p->loss, p->grad_norm, p->lr,
         (unsigned long)p->n_tokens, (unsigned long)p->n_trained);
  fflush(stdout);
  return p->step >= max_steps;
}

/* Streaming callback for generation: print each piece as it comes. */
static int on_text(const char* piece, size_t len, void* user_data) {
  (void)user_data;
  if (fwrite(piece, 1, len, stdout) != len) return 1;
  fflush(stdout);
  return 0;
}

int main(int argc, char** argv) {
  hearth_runtime* rt = NULL;
  hearth_model* model = NULL;
  hearth_dataset* dataset = NULL;
  hearth_trainer* trainer = NULL;
  hearth_adapter* adapter = NULL;
  hearth_session* session = NULL;
  hearth_error* err = NULL;
  unsigned long max_steps = 8;
  double loss_before = 0.0, loss_after = 0.0;
  int status = 1;

  if (argc < 4 || argc > 5) {
    fprintf(stderr, "usage: %s MODEL.gguf DATA.jsonl PROMPT [STEPS]\n", argv[0]);
    return 2;
  }
  if (argc == 5) {
    char* end = NULL;
    errno = 0;
    max_steps = strtoul(argv[4], &end, 10);
    if (errno != 0 || end == argv[4] || *end != '\0' || max_steps < 1 || max_steps > 1000000) {
      fprintf(stderr, "STEPS: '%s' is not a count in [1, 1000000]\n", argv[4]);
      return 2;
    }
  }

  if ((err = hearth_runtime_create(NULL, &rt)) != NULL) {
    status = report("hearth_runtime_create", err);
    goto done;
  }
  if ((err = hearth_model_load(rt, argv[1], NULL, &model)) != NULL) {
    status = report("hearth_model_load", err);
    goto done;
  }

  /* The dataset: text, prompt/completion or chat records (docs/training-data.md),
   * tokenized for this model; loss counts completion/assistant tokens only. */
  {
    hearth_dataset_params dp = HEARTH_DATASET_PARAMS_INIT;
    hearth_dataset_info info = HEARTH_DATASET_INFO_INIT;
    dp.max_tokens = 512;
    dp.truncate = 1; /* cut longer examples instead of failing */
    if ((err = hearth_dataset_load(model, argv[2], &dp, &dataset)) != NULL) {
      status = report("hearth_dataset_load", err);
      goto done;
    }
    if ((err = hearth_dataset_get_info(dataset, &info)) != NULL) {
      status = report("hearth_dataset_get_info", err);
      goto done;
    }
    printf("data: %lu examples, %lu tokens, %lu trained\n", (unsigned long)info.n_examples,
           (unsigned long)info.n_tokens, (unsigned long)info.n_trained_tokens);
  }

  /* A small adapter: rank 4 on the attention projections, one epoch, a
   * quarter of the examples held out to measure the loss before and after. */
  {
    hearth_trainer_params tp = HEARTH_TRAINER_PARAMS_INIT;
    hearth_trainer_info info = HEARTH_TRAINER_INFO_INIT;
    tp.rank = 4;
    tp.alpha = 8.0f;
    tp.targets = "q,k,v,o";
    tp.lr = 1e-3f;
    tp.epochs = 1;
    tp.eval_split = 0.25f;
    tp.seed = 7;
    if ((err = hearth_trainer_create(model, dataset, &tp, &trainer)) != NULL) {
      status = report("hearth_trainer_create", err);
      goto done;
    }
    /* The trainer copied the examples: the dataset can go now. */
    hearth_dataset_free(dataset);
    dataset = NULL;
    if ((err = hearth_trainer_get_info(trainer, &info)) != NULL) {
      status = report("hearth_trainer_get_info", err);
      goto done;
    }
    if (info.total_steps < max_steps) max_steps = (unsigned long)info.total_steps;
    printf("training on %lu examples (%lu held out): %lu steps planned, stopping after %lu\n",
           (unsigned long)info.n_train, (unsigned long)info.n_eval, (unsigned long)info.total_steps,
           max_steps);
  }

  if ((err = hearth_trainer_evaluate(trainer, &loss_before)) != NULL) {
    status = report("hearth_trainer_evaluate", err);
    goto done;
  }
  printf("held-out loss before: %.4f\n", loss_before);
  if ((err = hearth_trainer_run(trainer, on_step, &max_steps)) != NULL) {
    status = report("hearth_trainer_run", err);
    goto done;
  }
  if ((err = hearth_trainer_evaluate(trainer, &loss_after)) != NULL) {
    status = report("hearth_trainer_evaluate", err);
    goto done;
  }
  printf("held-out loss after:  %.4f\n", loss_after);

  /* The trained adapter, bound to this model: attach it to a session at
   * scale 1 and generate at once, without saving or reloading anything. */
  if ((err = hearth_trainer_get_adapter(trainer, &adapter)) != NULL) {
    status = report("hearth_trainer_get_adapter", err);
    goto done;
  }
  if ((err = hearth_session_create(model, NULL, &session)) != NULL) {
    status = report("hearth_session_create", err);
    goto done;
  }
  {
    const hearth_adapter* adapters[1];
    float scales[1];
    adapters[0] = adapter;
    scales[0] = 1.0f;
    if ((err = hearth_session_set_adapters(session, adapters, scales, 1)) != NULL) {
      status = report("hearth_session_set_adapters", err);
      goto done;
    }
  }
  {
    hearth_generate_params gp = HEARTH_GENERATE_PARAMS_INIT;
    hearth_generate_result result = HEARTH_GENERATE_RESULT_INIT;
    gp.max_tokens = 16;
    gp.sampling.temperature = 0.0f; /* greedy: deterministic */
    printf("with the adapter: ");
    fflush(stdout);
    if ((err = hearth_session_generate(session, argv[3], strlen(argv[3]), &gp, on_text, NULL,
                                       &result)) != NULL) {
      printf("\n");
      status = report("hearth_session_generate", err);
      goto done;
    }
    printf("\ngenerated %u tokens\n", result.n_generated_tokens);
  }
  status = 0;

done:
  /* Every *_free accepts NULL, so one cleanup path serves every exit. The
   * adapter outlives the trainer; free the session that uses it first. */
  hearth_session_free(session);
  hearth_adapter_free(adapter);
  hearth_trainer_free(trainer);
  hearth_dataset_free(dataset);
  hearth_model_free(model);
  hearth_runtime_free(rt);
  return status;
}
