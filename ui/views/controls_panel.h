// View 4: the run's controls. A new run from an architecture and its sizes; start, pause,
// single step and reset; and the live settings that reach the engine between two steps:
// learning rate, aux coefficient, top-k, pool size and random routing per layer.
#pragma once

#include <QWidget>
#include <vector>

#include "unipool/config.h"

class QCheckBox;
class QComboBox;
class QDoubleSpinBox;
class QGridLayout;
class QLabel;
class QLineEdit;
class QPushButton;
class QSpinBox;

namespace unipool::studio {

class RunSession;

class ControlsPanel : public QWidget {
  Q_OBJECT
 public:
  explicit ControlsPanel(RunSession* session, QWidget* parent = nullptr);

  // The form's current model and training settings (validated by the engine on creation).
  ModelConfig formConfig() const;
  TrainOptions formOptions() const;
  void loadPreset(const QString& name);
  // Fills the "New run" form (e.g. from a checkpoint just opened, so Reset and the form agree).
  void fillForm(const ModelConfig& config, const TrainOptions& options);
  void setArchitecture(const QString& architecture);  // "UniPool", "vanilla", "grouped", "dense"
  // Creates a run from the form (what the "Create run" button does).
  void createRunFromForm();
  // Routes layers `from`..L-1 at random and the rest learned ("random from layer k down").
  void randomFromLayer(int from);
  QCheckBox* randomSwitch(int layer) const;
  QPushButton* startButton() const { return start_; }
  QPushButton* pauseButton() const { return pause_; }
  QPushButton* stepButton() const { return step_; }

 private:
  QWidget* buildNewRunBox();
  QWidget* buildRunBox();
  QWidget* buildLiveBox();
  void syncFromState();  // everything, from the engine's settings
  void updateStatus();   // buttons, step and speed only
  void updateBudget();
  void applyRandomSwitches();

  RunSession* session_;
  QComboBox *preset_, *architecture_, *router_, *balance_;
  QSpinBox *d_model_, *layers_, *heads_, *kv_heads_, *hidden_, *group_, *pool_, *top_k_;
  QSpinBox *steps_, *batch_, *seq_, *seed_;
  QDoubleSpinBox *lr_, *aux_;
  QLineEdit* data_;
  QLabel* budget_;
  QPushButton *start_, *pause_, *step_, *reset_;
  QDoubleSpinBox *live_lr_, *live_aux_;
  QSpinBox *live_top_k_, *live_pool_, *random_from_;
  QGridLayout* switches_layout_;
  std::vector<QCheckBox*> switches_;
  QLabel *status_, *device_;
  QString form_source_;  // the run whose settings the form shows
};

}  // namespace unipool::studio
