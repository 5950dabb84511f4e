// Precompiled header for the engine's torch-side translation units (see core/CMakeLists.txt).
#pragma once
#include <torch/torch.h>
