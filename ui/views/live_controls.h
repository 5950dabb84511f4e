// The run's buttons (Start, Pause, Step, Reset, with the status line) and the live settings
// that reach the engine between two steps: learning rate, aux and z-loss coefficients, top-k,
// pool size and random routing per layer. Each posts a LiveSetting to the session.
#pragma once

#include <QWidget>
#include <functional>
#include <vector>

#include "unipool/live_settings.h"

class QCheckBox;
class QFormLayout;
class QGridLayout;
class QLabel;
class QPushButton;
class QSpinBox;

namespace unipool::studio {

class RunSession;
struct RunState;

class LiveControls : public QWidget {
  Q_OBJECT
 public:
  explicit LiveControls(RunSession* session, QWidget* parent = nullptr);

  // Routes layers `from`..L-1 at random and the rest learned ("random from layer k down").
  void randomFromLayer(int from);
  QCheckBox* randomSwitch(int layer) const;
  QPushButton* startButton() const { return start_; }
  QPushButton* pauseButton() const { return pause_; }
  QPushButton* stepButton() const { return step_; }
  QPushButton* resetButton() const { return reset_; }

 private:
  QWidget* buildRunBox();
  QWidget* buildLiveBox();
  // One live setting's row: a spin box (named `name`) showing `current(state)`, and a button
  // (named `button_name`) that posts the setting `make(value)` builds.
  template <class Spin, class Make, class Current>
  void addSettingRow(QFormLayout* form, const QString& label, Spin* spin, const QString& name,
                     const QString& button, const QString& button_name, Make make, Current current);
  void syncFromState();  // the live boxes and switches, from the engine's settings
  void updateStatus();   // buttons, step and speed only

  RunSession* session_;
  QPushButton *start_, *pause_, *step_, *reset_, *freeze_, *lock_;
  QWidget* live_box_ = nullptr;  // the live settings (off while watching a run)
  QSpinBox* random_from_;
  // Each setting row's spin box follows the engine's value, unless the user is typing in it.
  std::vector<std::function<void(const RunState&)>> followers_;
  QGridLayout* switches_layout_;
  std::vector<QCheckBox*> switches_;
  QLabel *status_, *device_;
};

}  // namespace unipool::studio
