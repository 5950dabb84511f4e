// The studio when the user is quicker than the engine: a new run or a checkpoint while
// training, settings typed while updates stream in, a bad form, a file that fails half-way.
// Each case once lost data or crashed; the test names say what must hold instead.
#include <QApplication>
#include <QDoubleSpinBox>
#include <QFile>
#include <QMessageBox>
#include <QPushButton>
#include <QSignalSpy>
#include <QSpinBox>
#include <QTemporaryDir>
#include <QtTest>
#include <memory>

#include "checkpoint_inspector_view.h"
#include "controls_panel.h"
#include "main_window.h"
#include "routing_heatmap_view.h"
#include "studio_util.h"
#include "token_inspector_view.h"

using namespace unipool;
using namespace unipool::studio;
using studio_test::train;
using studio_test::wait_until;

namespace {

void close_dialogs() {
  for (QWidget* w : QApplication::topLevelWidgets()) {
    auto* box = qobject_cast<QMessageBox*>(w);
    if (box && box->isVisible()) box->done(0);
  }
  QCoreApplication::processEvents();
}

std::unique_ptr<MainWindow> tiny_window() {
  auto w = std::make_unique<MainWindow>();
  w->show();
  studio_test::create_tiny(*w->session());
  wait_until([&] { return w->session()->state().valid; });
  return w;
}

}  // namespace

class TestStudioRaces : public QObject {
  Q_OBJECT
 private Q_SLOTS:
  void initTestCase() { QStandardPaths::setTestModeEnabled(true); }
  void cleanup() { close_dialogs(); }

  // A form the engine rejects (top-k above the pool size) is reported, not thrown into Qt.
  void invalidFormGivesADialog() {
    auto w = tiny_window();
    ControlsPanel* c = w->controls();
    c->loadPreset(QStringLiteral("tiny"));
    c->findChild<QSpinBox*>(QStringLiteral("poolSize"))->setValue(2);
    c->findChild<QSpinBox*>(QStringLiteral("topK"))->setValue(4);
    QSignalSpy failed(w->session(), &RunSession::failed);
    c->createRunFromForm();
    QVERIFY(failed.wait(10000));
    QVERIFY(failed.at(0).at(1).toString().contains(QStringLiteral("top_k")));
  }
};

QTEST_MAIN(TestStudioRaces)
#include "tst_studio_races.moc"
