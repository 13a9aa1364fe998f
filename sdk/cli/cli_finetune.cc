// cli_finetune.cc — `hearth finetune`: trains a LoRA adapter on a JSONL
// file through hearth_trainer_* and writes it as a PEFT directory. A live
// progress line on a terminal (a line per step otherwise); Ctrl-C stops
// after the step in flight and writes a checkpoint that --resume goes on
// from (so does --save-every N). docs/finetune.md
#include <atomic>
#include <cinttypes>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <string>

#include "cli_commands.h"
#include "cli_common.h"
#include "progress.h"
#include "terminal_text.h"

namespace hearth::cli {
namespace {

using Dataset = std::unique_ptr<hearth_dataset, HandleDeleter<hearth_dataset_free>>;
using Trainer = std::unique_ptr<hearth_trainer, HandleDeleter<hearth_trainer_free>>;

constexpr int kExitInterrupted = 130;

volatile std::sig_atomic_t g_stop = 0;
void OnInterrupt(int) { g_stop = 1; }

struct Progress {
  hearth_trainer* trainer = nullptr;
  ProgressLine* line = nullptr;  // drawn on a terminal
  bool step_lines = false;       // else a line per step (stderr piped, not --quiet)
  uint64_t steps_per_epoch = 0;
  bool has_eval = false;
  double eval_loss = NAN;
  double first_loss = NAN, last_loss = NAN;
  uint64_t tokens = 0, steps = 0;
  uint64_t save_every = 0;  // checkpoint every N steps (0: only on Ctrl-C)
  uint64_t resumed_at = 0;  // steps done before this process started
  uint64_t max_steps = 0;   // stop after this many steps in this process (0: no limit)
  bool stopped = false;     // by max_steps
  const char* out = nullptr;
  hearth_error* error = nullptr;  // from an evaluation or a checkpoint inside the callback
};

std::string Clock(double seconds) {
  const int64_t s = static_cast<int64_t>(seconds + 0.5);
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%" PRId64 ":%02" PRId64 ":%02" PRId64, s / 3600, s / 60 % 60,
                s % 60);
  return buf;
}

int OnStep(const hearth_train_progress* p, void* user) {
  Progress* pr = static_cast<Progress*>(user);
  if (std::isnan(pr->first_loss)) pr->first_loss = p->loss;
  pr->last_loss = p->loss;
  pr->tokens += p->n_tokens;
  pr->steps = p->step;
  const bool epoch_end = p->step % pr->steps_per_epoch == 0 || p->step == p->total_steps;
  if (pr->has_eval && epoch_end) {
    if (hearth_error* e = hearth_trainer_evaluate(pr->trainer, &pr->eval_loss)) {
      pr->error = e;
      return 1;
    }
  }
  const double elapsed = pr->line->elapsed();
  const double tok_s = elapsed > 0 ? static_cast<double>(pr->tokens) / elapsed : 0.0;
  char eval[32] = "";
  if (pr->has_eval && !std::isnan(pr->eval_loss)) {
    std::snprintf(eval, sizeof(eval), "  eval %.4f", pr->eval_loss);
  }
  if (pr->line->shown()) {
    char detail[160];
    std::snprintf(detail, sizeof(detail), "epoch %" PRIu64 "  loss %.4f%s  lr %.2e  %.0f tok/s",
                  p->epoch + 1, p->loss, eval, p->lr, tok_s);
    pr->line->set_total(p->total_steps);
    pr->line->Update(p->step, detail);
  } else if (pr->step_lines) {
    std::fprintf(stderr,
                 "step %" PRIu64 "/%" PRIu64 "  epoch %" PRIu64
                 "  loss %.4f%s  lr %.2e  %.0f tok/s  ETA %s\n",
                 p->step, p->total_steps, p->epoch + 1, p->loss, eval, p->lr, tok_s,
                 Clock(pr->line->Remaining(p->step)).c_str());
    std::fflush(stderr);
  }
  if (pr->save_every > 0 && p->step % pr->save_every == 0 && p->step < p->total_steps) {
    if (hearth_error* e = hearth_trainer_save_checkpoint(pr->trainer, pr->out)) {
      pr->error = e;
      return 1;
    }
  }
  if (pr->max_steps > 0 && p->step - pr->resumed_at >= pr->max_steps && p->step < p->total_steps) {
    pr->stopped = true;
  }
  return g_stop || pr->stopped ? 1 : 0;
}

}  // namespace

int RunFinetune(int argc, char** argv) {
  ModelFlags mf;
  std::string data_path, out, targets = "q,k,v,o,gate,up,down", schedule = "linear";
  std::string init_adapter, gguf_out, gguf_type = "f32";
  int64_t rank = 16, epochs = 1, batch = 1, grad_accum = 1, ctx = 0, warmup = 0;
  uint64_t seed = 42;
  float alpha = 32, lr = 2e-4f, eval_split = 0, weight_decay = 0, clip = 1.0f, dropout = 0;
  uint64_t save_every = 0, max_steps = 0;
  bool quiet = false;
  bool rslora = false, truncate = false, resume = false, bf16 = false;
  ArgParser p("finetune", "finetune -m MODEL --data FILE.jsonl --out DIR [flags]",
              "Trains a LoRA adapter on FILE.jsonl (the records `hearth data` reads; the loss\n"
              "counts completion/assistant tokens) and writes it to DIR as a PEFT adapter\n"
              "(adapter_config.json + adapter_model.safetensors), loadable with --lora.\n"
              "Ctrl-C stops after the current step and writes a checkpoint to DIR;\n"
              "--resume goes on from it and ends with the same adapter an uninterrupted\n"
              "run gives.\n"
              "docs/finetune.md");
  AddModelFlags(p, &mf);
  p.AddString("--data", "FILE", &data_path, "training data, JSONL (docs/training-data.md)");
  p.AddString("-o,--out", "DIR", &out, "where the adapter is written (created if missing)");
  p.AddInt("-r,--rank", "N", &rank, 1, 65536, "LoRA rank (default 16)");
  p.AddFloat("--alpha", "X", &alpha, "LoRA alpha; the scale is alpha/rank (default 32)");
  p.AddSwitch("--rslora", &rslora, "scale alpha/sqrt(rank) instead (rsLoRA)");
  p.AddFloat("--lora-dropout", "P", &dropout,
             "dropout on each LoRA term's input while training, 0 <= P < 1 (default 0)");
  p.AddSwitch("--bf16", &bf16,
              "mixed precision: bfloat16 products with F32 accumulation where the device has "
              "them (AVX512-BF16/AMX); LoRA weights, gradients and AdamW stay F32");
  p.AddString("--targets", "LIST", &targets,
              "projections to adapt: q,k,v,o,gate,up,down or all (default all seven)");
  p.AddInt("--epochs", "N", &epochs, 1, 1000000, "passes over the data (default 1)");
  p.AddFloat("--lr", "X", &lr, "peak learning rate (default 2e-4)");
  p.AddString("--schedule", "NAME", &schedule, "linear, cosine or constant (default linear)");
  p.AddInt("--warmup", "N", &warmup, 0, int64_t{1} << 40, "warmup steps (default 0)");
  p.AddFloat("--weight-decay", "X", &weight_decay, "AdamW weight decay (default 0)");
  p.AddFloat("--clip", "X", &clip, "clip the gradient norm to X; 0 = off (default 1)");
  p.AddInt("--batch", "N", &batch, 1, 1 << 20, "examples per micro-batch (default 1)");
  p.AddInt("--grad-accum", "N", &grad_accum, 1, 1 << 20,
           "micro-batches per optimizer step (default 1)");
  p.AddInt("-c,--ctx", "N", &ctx, 1, int64_t{1} << 30,
           "longest example in tokens (default: the model's training context)");
  p.AddSwitch("--truncate", &truncate, "cut longer examples at --ctx instead of failing");
  p.AddFloat("--eval-split", "X", &eval_split, "fraction held out for eval loss, 0-0.5");
  p.AddUint64("--seed", "N", &seed, "init, split and shuffle seed (default 42)");
  p.AddString("--init-adapter", "DIR", &init_adapter,
              "continue training this adapter (same targets, rank and alpha) instead of a "
              "fresh one");
  p.AddString("--gguf", "FILE", &gguf_out,
              "also write the adapter as a GGUF LoRA file (llama.cpp's layout)");
  p.AddString("--gguf-type", "T", &gguf_type, "f32 or f16, for --gguf (default f32)");
  p.AddSwitch("--resume", &resume,
              "go on from the checkpoint in --out (same model, data and flags)");
  p.AddUint64("--save-every", "N", &save_every,
              "also write a checkpoint to --out every N steps (default: only on Ctrl-C)");
  p.AddUint64("--max-steps", "N", &max_steps,
              "stop after N steps of this run and write a checkpoint (--resume goes on)");
  p.AddSwitch("-q,--quiet", &quiet,
              "no progress on stderr: neither the live line (terminal) nor a line per step");
  if (int rc = p.Finish(p.Parse(argc, argv, 1)); rc >= 0) return rc;
  if (mf.model.empty()) return p.UsageError("-m MODEL is required");
  if (data_path.empty()) return p.UsageError("--data FILE is required");
  if (out.empty()) return p.UsageError("--out DIR is required");
  if (!p.positional().empty()) return p.UsageError("unexpected argument " + p.positional()[0]);
  if (gguf_type != "f32" && gguf_type != "f16") {
    return p.UsageError("--gguf-type: '" + gguf_type + "' is not f32 or f16");
  }
  hearth_trainer_params tp = HEARTH_TRAINER_PARAMS_INIT;
  if (schedule == "linear") {
    tp.schedule = HEARTH_SCHEDULE_LINEAR;
  } else if (schedule == "cosine") {
    tp.schedule = HEARTH_SCHEDULE_COSINE;
  } else if (schedule == "constant") {
    tp.schedule = HEARTH_SCHEDULE_CONSTANT;
  } else {
    return p.UsageError("--schedule: '" + schedule + "' is not linear, cosine or constant");
  }

  Runtime rt;
  if (int rc = OpenRuntime(mf, &rt)) return rc;
  Model model;
  if (int rc = OpenModel(rt.get(), mf, &model)) return rc;
  hearth_dataset_params dp = HEARTH_DATASET_PARAMS_INIT;
  dp.max_tokens = static_cast<uint32_t>(ctx);
  dp.truncate = truncate ? 1 : 0;
  hearth_dataset* raw_data = nullptr;
  if (hearth_error* err = hearth_dataset_load(model.get(), data_path.c_str(), &dp, &raw_data)) {
    return ReportError(err, data_path);
  }
  Dataset data(raw_data);
  tp.rank = static_cast<uint32_t>(rank);
  tp.alpha = alpha;
  tp.use_rslora = rslora ? 1 : 0;
  tp.targets = targets.c_str();
  tp.lr = lr;
  tp.weight_decay = weight_decay;
  tp.warmup_steps = static_cast<uint32_t>(warmup);
  tp.max_grad_norm = clip;
  tp.batch = static_cast<uint32_t>(batch);
  tp.grad_accum = static_cast<uint32_t>(grad_accum);
  tp.epochs = static_cast<uint32_t>(epochs);
  tp.eval_split = eval_split;
  tp.seed = seed;
  tp.n_threads = static_cast<uint32_t>(mf.threads);
  tp.init_adapter = init_adapter.empty() ? nullptr : init_adapter.c_str();
  tp.lora_dropout = dropout;
  tp.bf16_products = bf16 ? 1 : 0;
  hearth_trainer* raw_trainer = nullptr;
  if (hearth_error* err = hearth_trainer_create(model.get(), data.get(), &tp, &raw_trainer)) {
    return ReportError(err, data_path);
  }
  Trainer trainer(raw_trainer);
  if (resume) {
    if (hearth_error* err = hearth_trainer_resume(trainer.get(), out.c_str())) {
      return ReportError(err, out);
    }
  }
  hearth_trainer_info info = HEARTH_TRAINER_INFO_INIT;
  if (hearth_error* err = hearth_trainer_get_info(trainer.get(), &info)) return ReportError(err);
  if (info.step >= info.total_steps) {  // a checkpoint of a finished run
    if (hearth_error* err = hearth_trainer_save(trainer.get(), out.c_str())) {
      return ReportError(err, out);
    }
    if (!gguf_out.empty()) {
      if (hearth_error* err =
              hearth_trainer_save_gguf(trainer.get(), gguf_out.c_str(), gguf_type.c_str())) {
        return ReportError(err, gguf_out);
      }
    }
    std::remove((out + "/hearth-checkpoint.bin").c_str());
    std::printf("already trained (%" PRIu64 " steps); adapter written to %s (PEFT)\n", info.step,
                Printable(out).c_str());
    return kExitOk;
  }
  if (resume && !quiet) {
    std::fprintf(stderr, "resuming at step %" PRIu64 " of %" PRIu64 "\n", info.step,
                 info.total_steps);
  }
  hearth_train_progress first = HEARTH_TRAIN_PROGRESS_INIT;

  Progress pr;
  pr.trainer = trainer.get();
  pr.save_every = save_every;
  pr.resumed_at = info.step;
  pr.max_steps = max_steps;
  pr.out = out.c_str();
  ProgressLine line("finetune", "steps", info.total_steps, quiet);
  line.set_done_before(info.step);
  pr.line = &line;
  pr.step_lines = !quiet && !line.shown();
  line.Update(info.step);  // drawn while the eval loss before training is computed
  double eval_before = NAN;
  if (hearth_error* err = hearth_trainer_evaluate(trainer.get(), &eval_before)) {
    line.Clear();
    return ReportError(err);
  }
  pr.has_eval = !std::isnan(eval_before);
  // The first step tells the total; the rest run under the callback.
  if (hearth_error* err = hearth_trainer_step(trainer.get(), &first)) {
    line.Clear();
    return ReportError(err);
  }
  pr.steps_per_epoch = std::max<uint64_t>(1, first.total_steps / static_cast<uint64_t>(epochs));
  OnStep(&first, &pr);
  if (pr.error != nullptr) {
    line.Clear();
    return ReportError(pr.error, out);
  }

  struct sigaction sa, previous;
  std::memset(&sa, 0, sizeof(sa));
  sa.sa_handler = OnInterrupt;
  sigemptyset(&sa.sa_mask);
  const bool installed = sigaction(SIGINT, &sa, &previous) == 0;
  hearth_error* run_err =
      g_stop || pr.stopped ? nullptr : hearth_trainer_run(trainer.get(), OnStep, &pr);
  const bool checkpoint = g_stop || pr.stopped;
  if (installed) sigaction(SIGINT, &previous, nullptr);
  if (run_err != nullptr || pr.error != nullptr) line.Clear();
  line.Finish();
  if (run_err != nullptr) return ReportError(run_err);
  if (pr.error != nullptr) return ReportError(pr.error, out);
  // Interrupted: a checkpoint --resume goes on from. Done: the adapter alone
  // (a checkpoint left by --save-every or a resumed run is removed after).
  if (hearth_error* err = checkpoint ? hearth_trainer_save_checkpoint(trainer.get(), out.c_str())
                                     : hearth_trainer_save(trainer.get(), out.c_str())) {
    return ReportError(err, out);
  }
  if (!checkpoint && !gguf_out.empty()) {
    if (hearth_error* err =
            hearth_trainer_save_gguf(trainer.get(), gguf_out.c_str(), gguf_type.c_str())) {
      return ReportError(err, gguf_out);
    }
  }
  if (!checkpoint) std::remove((out + "/hearth-checkpoint.bin").c_str());
  const double seconds = line.elapsed();
  std::printf("%s %" PRIu64 " of %" PRIu64 " steps in %s: step loss %.4f -> %.4f",
              g_stop       ? "interrupted after"
              : pr.stopped ? "stopped after"
                           : "trained",
              pr.steps, first.total_steps, Clock(seconds).c_str(), pr.first_loss, pr.last_loss);
  if (pr.has_eval) std::printf(", eval loss %.4f -> %.4f", eval_before, pr.eval_loss);
  std::printf("\n%s written to %s (PEFT)%s\n", checkpoint ? "checkpoint" : "adapter",
              Printable(out).c_str(), checkpoint ? "; --resume goes on from it" : "");
  if (std::fflush(stdout) != 0) return kExitRuntimeError;
  return g_stop ? kExitInterrupted : kExitOk;
}

}  // namespace hearth::cli
