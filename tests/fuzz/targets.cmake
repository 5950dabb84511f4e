# The fuzz targets and the engine sources each one parses with (shared by the libFuzzer build,
# tests/fuzz/CMakeLists.txt, and the replay tests of the normal build, tests/CMakeLists.txt).
# Paths are relative to the repository root.
set(UNIPOOL_FUZZ_CORE_TARGETS
  fuzz_safetensors fuzz_checkpoint_index fuzz_model_layout fuzz_run_log fuzz_tokenizer)
set(UNIPOOL_FUZZ_STUDIO_TARGETS fuzz_lesson fuzz_recipe)  # need Qt Core and ui/session
