// The dock on the left: the new-run form above the run's buttons and live settings.
#pragma once

#include <QWidget>

namespace unipool::studio {

class LiveControls;
class NewRunForm;
class RunSession;

class ControlsPanel : public QWidget {
  Q_OBJECT
 public:
  explicit ControlsPanel(RunSession* session, QWidget* parent = nullptr);
  NewRunForm* form() const { return form_; }
  LiveControls* live() const { return live_; }

 private:
  NewRunForm* form_;
  LiveControls* live_;
};

}  // namespace unipool::studio
