// unipool: train, evaluate, inspect, sample and benchmark UniPool models without a GUI.
// Exit codes: 0 success, 1 a file or run failed (the message says why), 2 bad arguments,
// 130 training stopped by Ctrl-C (after saving --out).
#include <iostream>
#include <map>

#include "commands.h"
#include "unipool/config.h"
#include "unipool/corpus.h"
#include "unipool/engine.h"
#include "unipool/safetensors.h"

int main(int argc, char** argv) {
  CLI::App app{"unipool: train and inspect UniPool Mixture-of-Experts models (byte-level LMs)"};
  app.require_subcommand(1, 1);
  app.set_help_all_flag("--help-all", "Print help for every subcommand");
  std::map<std::string, unipool::cli::Runner> runners;
  for (auto& [name, reg] : std::map<std::string, unipool::cli::Runner (*)(CLI::App&)>{
           {"train", unipool::cli::register_train},
           {"eval", unipool::cli::register_eval},
           {"inspect", unipool::cli::register_inspect},
           {"generate", unipool::cli::register_generate},
           {"bench", unipool::cli::register_bench},
           {"probe", unipool::cli::register_probe},
           {"sweep", unipool::cli::register_sweep},
           {"routes", unipool::cli::register_routes},
           {"tokenize", unipool::cli::register_tokenize},
           {"export", unipool::cli::register_export}}) {
    runners[name] = reg(app);
  }
  unipool::cli::set_program_arguments(argc, argv);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "error: " << e.what() << "\n\n";
    const auto subs = app.get_subcommands();
    std::cerr << (subs.empty() ? app.help() : subs.front()->help());
    return 2;
  }
  try {
    return runners.at(app.get_subcommands().front()->get_name())();
  } catch (const CLI::ValidationError& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
}
