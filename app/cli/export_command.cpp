// `unipool export`: one of our models in a downloaded-model layout (unipool/hf_export.h).
#include <cstdio>
#include <iostream>

#include "commands.h"
#include "unipool/hf_export.h"

namespace unipool::cli {

namespace {

struct ExportArgs {
  std::string checkpoint, format = "hf-qwen2-moe", out;
  bool approximate = false, dry_run = false;
};

int run_export(const ExportArgs& a) {
  const HfExportFormat format =
      a.format == "hf-mixtral" ? HfExportFormat::Mixtral : HfExportFormat::Qwen2Moe;
  const HfExportReport r = a.dry_run ? plan_hf_export(a.checkpoint, format)
                                     : export_hf(a.checkpoint, a.out, format, a.approximate);
  std::printf("%s%s as %s: %s\n", a.dry_run ? "would export " : "exported ",
              a.checkpoint.c_str(), a.format.c_str(),
              r.exact ? "exact (every weight copied; the same function)" : "APPROXIMATE");
  for (const std::string& n : r.notes) std::printf("  - %s\n", n.c_str());
  for (const std::string& f : r.files) std::printf("  %s/%s\n", a.out.c_str(), f.c_str());
  return 0;
}

}  // namespace

Runner register_export(CLI::App& app) {
  auto a = std::make_shared<ExportArgs>();
  CLI::App* cmd = app.add_subcommand(
      "export", "Write one of our models as a Hugging Face folder (Mixtral or Qwen2-MoE layout)");
  cmd->add_option("--checkpoint", a->checkpoint, "Our model .safetensors")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("--format", a->format,
                  "hf-qwen2-moe (exact for softmax routers) or hf-mixtral (exact when gates are "
                  "renormalised)")
      ->check(CLI::IsMember({"hf-mixtral", "hf-qwen2-moe"}));
  auto* out = cmd->add_option("--out", a->out, "Folder to write (config.json, model.safetensors, "
                                               "tokenizer.json)");
  cmd->add_flag("--approximate", a->approximate,
                "Export even where the layout cannot express the model exactly (UniPool's "
                "NormRouter); config.json records what differs");
  cmd->add_flag("--dry-run", a->dry_run, "Say what the export would be, write nothing");
  return [a, out] {
    if (!a->dry_run && out->count() == 0) throw CLI::ValidationError("--out is required");
    return run_export(*a);
  };
}

}  // namespace unipool::cli
