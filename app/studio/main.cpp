// unipool-studio: the desktop app. With --screenshot it also runs unattended for tests and
// docs: train a preset N steps, save a picture of the whole window, exit.
#include <QApplication>
#include <QCommandLineParser>
#include <QIcon>
#include <QTimer>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "automation.h"
#include "views/main_window.h"

namespace {

void describeApplication() {
  QCoreApplication::setOrganizationName(QStringLiteral("UniPool"));
  QCoreApplication::setApplicationName(QStringLiteral("UniPool Studio"));
  QCoreApplication::setApplicationVersion(QStringLiteral("0.1.0"));
}

void addOptions(QCommandLineParser& parser) {
  parser.setApplicationDescription(
      QStringLiteral("See how Mixture-of-Experts models route tokens through a shared pool."));
  parser.addHelpOption();
  parser.addVersionOption();
  unipool::studio::addAutomationOptions(parser);
}

bool hasArgument(int argc, char** argv, std::initializer_list<const char*> names) {
  for (int i = 1; i < argc; ++i)
    for (const char* name : names)
      if (std::strcmp(argv[i], name) == 0) return true;
  return false;
}

bool nonEmptyEnv(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr && v[0] != '\0';
}

// Whether Qt will find somewhere to draw: an explicit platform (-platform offscreen,
// QT_QPA_PLATFORM) or, on Linux, an X11 or Wayland display. Without one Qt aborts (exit 134)
// with a message few users can act on.
bool displayAvailable(int argc, char** argv) {
#ifdef Q_OS_LINUX
  return hasArgument(argc, argv, {"-platform", "--platform"}) || nonEmptyEnv("QT_QPA_PLATFORM") ||
         nonEmptyEnv("DISPLAY") || nonEmptyEnv("WAYLAND_DISPLAY");
#else
  (void)argc;
  (void)argv;
  return true;
#endif
}

}  // namespace

int main(int argc, char** argv) {
  // --help and --version answer without a window system (on a server, over ssh, in CI).
  if (hasArgument(argc, argv, {"-h", "--help", "--help-all", "-?", "-v", "--version"})) {
    QCoreApplication core(argc, argv);
    describeApplication();
    QCommandLineParser parser;
    addOptions(parser);
    parser.process(core);  // prints and exits
    return 0;
  }
  if (!displayAvailable(argc, argv)) {
    std::fprintf(stderr,
                 "unipool-studio: no display to open a window on (neither DISPLAY nor "
                 "WAYLAND_DISPLAY is set).\n"
                 "  Run it from a desktop session, or under a virtual display: xvfb-run -a "
                 "unipool-studio ...\n"
                 "  For automation without any display: unipool-studio -platform offscreen ...\n"
                 "  (the CLI, `unipool`, needs no display at all)\n");
    return 2;
  }
  QApplication app(argc, argv);
  describeApplication();
  QApplication::setWindowIcon(QIcon(QStringLiteral(":/unipool/unipool-studio.svg")));

  QCommandLineParser parser;
  addOptions(parser);
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
