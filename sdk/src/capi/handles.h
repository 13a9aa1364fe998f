// handles.h — the definitions behind the opaque model and session handles.
// A hearth_model handle holds one reference to the shared Model; sessions
// hold their own, so freeing the handle while sessions live is safe. Each
// notes the process that made it (capi::CheckOwner: fork()).
#ifndef HEARTH_SDK_SRC_CAPI_HANDLES_H_
#define HEARTH_SDK_SRC_CAPI_HANDLES_H_

#include <unistd.h>

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "sdk/src/lora/adapter.h"
#include "sdk/src/runtime/model.h"
#include "sdk/src/runtime/session.h"

struct hearth_model {
  std::shared_ptr<hearth::Model> model;
  // Decoded token texts for hearth_token_text, built on first use.
  mutable std::once_flag pieces_once;
  mutable std::vector<std::string> pieces;
  pid_t owner_pid = ::getpid();
};

// Holds one reference to the adapter; sessions using it hold their own.
struct hearth_adapter {
  std::shared_ptr<hearth::Adapter> adapter;
  std::string base_architecture;     // for hearth_adapter_info (bound model's for PEFT)
  pid_t owner_pid = ::getpid();
};

struct hearth_session {
  std::unique_ptr<hearth::Session> session;
  pid_t owner_pid = ::getpid();
};

#endif  // HEARTH_SDK_SRC_CAPI_HANDLES_H_
