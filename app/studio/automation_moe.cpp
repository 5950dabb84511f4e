// The automation's MoE-checkpoint mode (--moe PATH [--moe-compare PATH]): opens a checkpoint
// in the Redundancy tab, prints the time to the first picture, then takes the screenshot.
#include <QElapsedTimer>
#include <cstdio>
#include <memory>

#include "automation.h"
#include "views/main_window.h"
#include "views/redundancy_view.h"

namespace unipool::studio {

void Automation::beginMoe() {
  // Time to the first picture: from here (the window is up) to the report drawn.
  const auto clock = std::make_shared<QElapsedTimer>();
  clock->start();
  connect(window_->redundancy(), &RedundancyView::failed, this,
          [this](const QString&, const QString& why) { finish(1, why); });
  connect(window_->redundancy(), &RedundancyView::reportReady, this, [this, clock] {
    std::printf("moe: first picture after %.2f s\n", double(clock->nsecsElapsed()) / 1e9);
    trained_ = true;
    if (moe_compare_.isEmpty()) return afterTraining();
    connect(window_->redundancy(), &RedundancyView::referenceReady, this,
            [this] { afterTraining(); });
    window_->redundancy()->openReference(moe_compare_);
  });
  window_->openMoeCheckpoint(moe_);
}

}  // namespace unipool::studio
