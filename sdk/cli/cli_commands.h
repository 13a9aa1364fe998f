// cli_commands.h — the entry point of each `hearth` subcommand. Each takes
// the arguments after "hearth" (argv[0] is the command name) and returns the
// process exit code (see args.h).
#ifndef HEARTH_SDK_CLI_CLI_COMMANDS_H_
#define HEARTH_SDK_CLI_CLI_COMMANDS_H_

namespace hearth::cli {

int RunGenerate(int argc, char** argv);    // cli_generate.cc
int RunTokenize(int argc, char** argv);    // cli_tokenize.cc
int RunDetokenize(int argc, char** argv);  // cli_tokenize.cc
int RunInfo(int argc, char** argv);        // cli_info.cc
int RunBench(int argc, char** argv);       // cli_bench.cc
int RunBenchTrain(int argc, char** argv);  // cli_bench_train.cc: bench --train
int RunChat(int argc, char** argv);        // cli_chat.cc
int RunPerplexity(int argc, char** argv);  // cli_perplexity.cc
int RunExport(int argc, char** argv);      // cli_export.cc
int RunConvert(int argc, char** argv);     // cli_convert.cc
int RunQuantize(int argc, char** argv);    // cli_convert.cc
int RunData(int argc, char** argv);        // cli_data.cc
int RunFinetune(int argc, char** argv);    // cli_finetune.cc
int RunConformance(int argc, char** argv);  // cli_conformance.cc: execs hearth-conformance
int RunServe(int argc, char** argv);        // cli_serve.cc

}  // namespace hearth::cli

#endif  // HEARTH_SDK_CLI_CLI_COMMANDS_H_
