// unipool-studio: the desktop app. With --screenshot it also runs unattended for tests and
// docs: train a preset N steps, save a picture of the whole window, exit.
#include <QApplication>
#include <QCommandLineParser>
#include <QIcon>
#include <QTimer>
#include <cstdio>

#include "automation.h"
#include "views/main_window.h"

int main(int argc, char** argv) {
  QApplication app(argc, argv);
  QApplication::setOrganizationName(QStringLiteral("UniPool"));
  QApplication::setApplicationName(QStringLiteral("UniPool Studio"));
  QApplication::setApplicationVersion(QStringLiteral("0.1.0"));
  QApplication::setWindowIcon(QIcon(QStringLiteral(":/unipool/unipool-studio.svg")));

  QCommandLineParser parser;
  parser.setApplicationDescription(
      QStringLiteral("See how Mixture-of-Experts models route tokens through a shared pool."));
  parser.addHelpOption();
  parser.addVersionOption();
  unipool::studio::addAutomationOptions(parser);
  parser.process(app);

  unipool::studio::MainWindow window;
  window.show();
  unipool::studio::Automation automation(&window);
  QString error;
  if (!automation.configure(parser, &error)) {
    std::fprintf(stderr, "unipool-studio: %s\n", qPrintable(error));
    return 2;
  }
  QTimer::singleShot(0, &automation, &unipool::studio::Automation::begin);
  return app.exec();
}
