// Window-level helpers shared by the studio's offscreen tests.
#pragma once

#include <QApplication>
#include <QMessageBox>
#include <QSet>
#include <memory>

#include "studio_util.h"
#include "views/main_window.h"

namespace studio_test {

// Distinct colours in a rendered widget: a blank or single-colour picture has 1 or 2.
inline int colour_count(QWidget* w) {
  const QImage img = w->grab().toImage();
  QSet<QRgb> colours;
  for (int y = 0; y < img.height(); y += 3)
    for (int x = 0; x < img.width(); x += 3) colours.insert(img.pixel(x, y));
  return int(colours.size());
}

inline QMessageBox* error_dialog() {
  for (QWidget* w : QApplication::topLevelWidgets()) {
    auto* box = qobject_cast<QMessageBox*>(w);
    if (box && box->objectName() == QLatin1String("errorDialog") && box->isVisible()) return box;
  }
  return nullptr;
}

inline void close_dialogs() {
  while (QMessageBox* box = error_dialog()) box->done(0);
  QCoreApplication::processEvents();
}

inline std::unique_ptr<unipool::studio::MainWindow> tiny_window() {
  auto w = std::make_unique<unipool::studio::MainWindow>();
  w->resize(1300, 850);
  w->show();
  create_tiny(*w->session());
  wait_until([&] { return w->session()->state().valid; });
  return w;
}

}  // namespace studio_test
