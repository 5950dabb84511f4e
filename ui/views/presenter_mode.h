// Presenter mode: larger fonts and thicker plot lines for a projector; one switch (View >
// Presenter mode, F5), remembered across sessions.
#pragma once

#include <QObject>

class QAction;
class QWidget;

namespace unipool::studio {

class PresenterMode : public QObject {
  Q_OBJECT
 public:
  // `root`: the window whose plots follow the mode.
  explicit PresenterMode(QWidget* root);
  bool on() const { return on_; }
  void set(bool on);
  // The checkable View menu entry (F5), kept in step with set().
  QAction* action() const { return action_; }

 private:
  QWidget* root_;
  QAction* action_;
  bool on_ = false;
};

}  // namespace unipool::studio
