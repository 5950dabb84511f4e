// The automation's MoE-checkpoint modes: --moe PATH [--moe-compare PATH] opens a checkpoint
// in the Redundancy tab, prints the time to the first picture, then takes the screenshot;
// --downloaded FOLDER [--text-file F] runs a downloaded model on a text in its tab.
#include <QElapsedTimer>
#include <QFile>
#include <QPlainTextEdit>
#include <cstdio>
#include <memory>

#include "automation.h"
#include "views/downloaded_model_view.h"
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

void Automation::beginDownloaded() {
  DownloadedModelView* v = window_->downloaded();
  if (!text_file_.isEmpty()) {
    QFile f(text_file_);
    if (!f.open(QIODevice::ReadOnly)) return finish(1, text_file_ + ": " + f.errorString());
    v->textEdit()->setPlainText(QString::fromUtf8(f.readAll()));
  }
  const auto clock = std::make_shared<QElapsedTimer>();
  clock->start();
  connect(v, &DownloadedModelView::failed, this,
          [this](const QString& what, const QString& why) { finish(1, what + ": " + why); });
  connect(v, &DownloadedModelView::openFailed, this,
          [this](const QString& path, const QString& why) { finish(1, path + ": " + why); });
  // Opening routes the text by itself; the picture follows its heatmap.
  connect(v, &DownloadedModelView::textRouted, this, [this, clock, v] {
    std::printf("downloaded: %zu tokens routed, first picture after %.2f s\n",
                v->routing()->ids.size(), double(clock->nsecsElapsed()) / 1e9);
    trained_ = true;
    afterTraining();
  });
  window_->openDownloadedModel(downloaded_);
}

}  // namespace unipool::studio
