// generate.cc — the C++ counterpart of examples/c/generate.c, over the
// header-only RAII wrapper hearth/hearth.hpp: load a model, stream a greedy
// completion of a prompt, print the figures. Errors arrive as hearth::Error
// (code + message naming the input); the program exits 1 on one, 2 on bad
// arguments.
//
//   generate MODEL.gguf "prompt" [N_TOKENS]
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>

#include "hearth/hearth.hpp"

int main(int argc, char** argv) {
  if (argc < 3 || argc > 4) {
    std::cerr << "usage: " << argv[0] << " MODEL.gguf PROMPT [N_TOKENS]\n";
    return 2;
  }
  int n_tokens = 32;
  if (argc == 4) {
    char* end = nullptr;
    const long n = std::strtol(argv[3], &end, 10);
    if (end == argv[3] || *end != '\0' || n < 0 || n > 1 << 20) {
      std::cerr << "N_TOKENS must be an integer in [0, 1048576], not '" << argv[3] << "'\n";
      return 2;
    }
    n_tokens = static_cast<int>(n);
  }
  try {
    hearth::Runtime runtime;
    hearth::Model model(runtime, argv[1]);
    hearth::Session session(model);
    hearth_generate_params params = HEARTH_GENERATE_PARAMS_INIT;
    params.max_tokens = n_tokens;
    params.sampling.temperature = 0.0f;  // greedy: the same text every run
    std::cout << "completion: ";
    const hearth_generate_result r =
        session.Generate(argv[2], &params, [](std::string_view piece) {
          std::cout << piece << std::flush;
          return true;
        });
    std::cout << "\ngenerated " << r.n_generated_tokens << " tokens after " << r.n_prompt_tokens
              << " prompt tokens; stop reason " << r.stop_reason << "\n";
  } catch (const hearth::Error& e) {
    std::cerr << "hearth error " << e.code() << ": " << e.what() << "\n";
    return 1;
  }
  return 0;
}
