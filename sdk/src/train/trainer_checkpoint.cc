// trainer_checkpoint.cc — Trainer::SaveCheckpoint / Resume: the state a
// stopped run needs to go on as if it had never stopped.
//
// DIR/hearth-checkpoint.bin, host byte order (little-endian machines):
//   "HEARTHCK"  u32 version (1)  u32 0
//   u64 n, the run signature (RunSignature: options, targets and their
//          shapes, split sizes, a hash of the examples), n bytes
//   u64 step, epoch, cursor   u64 n, then n u64: the epoch's example order
//   u64 n, then n bytes: the whole parameter buffer (A and B^T of every
//          target, then their gradients, AdamW m and v)
//   u64 FNV-1a 64 of every byte before it
// The data order needs no generator state of its own: each epoch's shuffle
// is seeded by (seed, epoch), so restoring the step, epoch and cursor
// restores it; the order is stored anyway and checked.
#include <cstring>
#include <fstream>
#include <iterator>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "sdk/src/common/status.h"
#include "sdk/src/train/trainer.h"
#include "sdk/src/lora/peft_writer.h"

namespace hearth::train {
namespace {

constexpr char kMagic[8] = {'H', 'E', 'A', 'R', 'T', 'H', 'C', 'K'};
constexpr uint32_t kVersion = 1;
constexpr const char* kFile = "/hearth-checkpoint.bin";

uint64_t Fnv1a(const uint8_t* p, size_t n, uint64_t h = 0xcbf29ce484222325ull) {
  for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 0x100000001b3ull;
  return h;
}

void PutU64(std::vector<uint8_t>* out, uint64_t v) {
  const size_t at = out->size();
  out->resize(at + 8);
  std::memcpy(out->data() + at, &v, 8);
}

// Reads the checkpoint's fields in order; any read past the end fails.
struct Reader {
  const std::vector<uint8_t>& bytes;
  size_t at = 0;
  bool U64(uint64_t* v) {
    if (bytes.size() - at < 8) return false;
    std::memcpy(v, bytes.data() + at, 8);
    at += 8;
    return true;
  }
  bool Bytes(uint64_t n, const uint8_t** p) {
    if (bytes.size() - at < n) return false;
    *p = bytes.data() + at;
    at += n;
    return true;
  }
};

}  // namespace

std::string Trainer::RunSignature() const {
  const TrainerOptions& o = options_;
  std::string s = absl::StrCat(
      "rank=", rank_, ";alpha=", o.alpha, ";use_rslora=", o.use_rslora, ";lr=", o.lr,
      ";beta1=", o.beta1, ";beta2=", o.beta2, ";eps=", o.eps, ";weight_decay=", o.weight_decay,
      ";schedule=", static_cast<int>(o.schedule), ";warmup_steps=", o.warmup_steps,
      ";max_grad_norm=", o.max_grad_norm, ";batch=", o.batch, ";grad_accum=", o.grad_accum,
      ";epochs=", o.epochs, ";eval_split=", o.eval_split, ";lora_dropout=", o.lora_dropout,
      ";seed=", o.seed,
      ";n_train=", train_.size(), ";n_eval=", eval_.size(), ";total_steps=", total_steps_, ";");
  uint64_t h = 0xcbf29ce484222325ull;
  for (const std::vector<Example>* set : {&train_, &eval_}) {
    for (const Example& e : *set) {
      h = Fnv1a(reinterpret_cast<const uint8_t*>(e.tokens.data()), e.tokens.size() * 4, h);
      h = Fnv1a(e.trained.data(), e.trained.size(), h);
    }
  }
  absl::StrAppend(&s, "examples_fnv1a=", h, ";targets=");
  for (const TrainTarget& t : targets_)
    absl::StrAppend(&s, t.weight, ":", t.n_in, "x", t.n_out, ",");
  absl::StrAppend(&s, ";");
  return s;
}

absl::Status Trainer::SaveCheckpoint(const std::string& dir) {
  HEARTH_RETURN_IF_ERROR(SavePeft(dir));  // creates `dir`
  std::vector<uint8_t> out(kMagic, kMagic + 8);
  PutU64(&out, kVersion);  // u32 version + u32 0, little-endian
  const std::string sig = RunSignature();
  PutU64(&out, sig.size());
  out.insert(out.end(), sig.begin(), sig.end());
  PutU64(&out, static_cast<uint64_t>(step_));
  PutU64(&out, static_cast<uint64_t>(epoch_));
  PutU64(&out, cursor_);
  PutU64(&out, order_.size());
  for (size_t i : order_) PutU64(&out, i);
  const uint64_t n = 4 * grads_offset_;  // values | grads | m | v
  PutU64(&out, n);
  const size_t at = out.size();
  out.resize(at + n);
  HEARTH_RETURN_IF_ERROR(backend_->Download(params_buf_, 0, out.data() + at, n));
  PutU64(&out, Fnv1a(out.data(), out.size()));
  return WriteFileAtomic(dir + kFile, out.data(), out.size());
}

absl::Status Trainer::Resume(const std::string& dir) {
  const std::string path = dir + kFile;
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(
        absl::StrCat(path,
                     ": no checkpoint to resume from (one is written on Ctrl-C and by "
                     "--save-every)"));
  }
  const std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)),
                                   std::istreambuf_iterator<char>());
  auto damaged = [&](const std::string& why) {
    return absl::DataLossError(absl::StrCat(path, ": ", why));
  };
  if (bytes.size() < 24 || std::memcmp(bytes.data(), kMagic, 8) != 0) {
    return damaged("not a hearth checkpoint");
  }
  uint64_t stored = 0;
  std::memcpy(&stored, bytes.data() + bytes.size() - 8, 8);
  if (Fnv1a(bytes.data(), bytes.size() - 8) != stored) {
    return damaged("checksum mismatch: the file is damaged");
  }
  Reader r{bytes, 8};
  uint64_t version = 0, n = 0;
  const uint8_t* p = nullptr;
  if (!r.U64(&version) || version != kVersion) {
    return damaged(absl::StrCat("version ", version, ", this hearth reads ", kVersion));
  }
  if (!r.U64(&n) || !r.Bytes(n, &p)) return damaged("truncated signature");
  const std::string theirs(reinterpret_cast<const char*>(p), n), ours = RunSignature();
  if (theirs != ours) {
    // Name the first setting that differs.
    const std::vector<std::string> a = absl::StrSplit(theirs, ';'), b = absl::StrSplit(ours, ';');
    for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
      if (a[i] != b[i]) {
        return absl::FailedPreconditionError(absl::StrCat(
            path, " was written by a run with ", a[i].substr(0, 200), "; this one has ",
            b[i].substr(0, 200), ": resume with the same model, data and options"));
      }
    }
    return absl::FailedPreconditionError(
        absl::StrCat(path,
                     " was written by a different run: resume with the same model, data "
                     "and options"));
  }
  uint64_t step = 0, epoch = 0, cursor = 0, n_order = 0;
  if (!r.U64(&step) || !r.U64(&epoch) || !r.U64(&cursor) || !r.U64(&n_order)) {
    return damaged("truncated state");
  }
  if (step > static_cast<uint64_t>(total_steps_) || n_order != train_.size() || cursor > n_order) {
    return damaged(absl::StrCat("step ", step, " of ", total_steps_, ", order of ", n_order,
                                " for ", train_.size(), " examples, cursor ", cursor));
  }
  std::vector<size_t> order(n_order);
  for (size_t& i : order) {
    uint64_t v = 0;
    if (!r.U64(&v) || v >= n_order) return damaged("bad example order");
    i = v;
  }
  if (!r.U64(&n) || n != 4 * grads_offset_ || !r.Bytes(n, &p)) {
    return damaged("parameter block of the wrong size");
  }
  HEARTH_RETURN_IF_ERROR(backend_->Upload(params_buf_, 0, p, n));
  step_ = static_cast<int64_t>(step);
  epoch_ = static_cast<int64_t>(epoch);
  order_ = std::move(order);
  cursor_ = cursor;
  return absl::OkStatus();
}

}  // namespace hearth::train
