// The "New run" form: a preset or an architecture with its sizes, top-k, router, balance and
// training settings, on the built-in corpus or the user's text, with the parameter count and
// the expert budget against vanilla shown before the run is created. What each architecture
// implies comes from core (unipool/architecture.h).
#pragma once

#include <QWidget>

#include "unipool/architecture.h"
#include "unipool/config.h"

class QComboBox;
class QDoubleSpinBox;
class QLabel;
class QLineEdit;
class QSpinBox;

namespace unipool::studio {

class RunSession;

class NewRunForm : public QWidget {
  Q_OBJECT
 public:
  explicit NewRunForm(RunSession* session, QWidget* parent = nullptr);

  // The form's current model and training settings (validated by the engine on creation).
  ModelConfig formConfig() const;
  TrainOptions formOptions() const;
  void loadPreset(const QString& name);
  // Fills the form (e.g. from a checkpoint just opened, so Reset and the form agree).
  void fillForm(const ModelConfig& config, const TrainOptions& options);
  void setArchitecture(Architecture architecture);
  // Creates a run from the form (what the "Create run" button does).
  void createRunFromForm();
  // The preset the form names: the current run's, or "" when it is none ("custom" is shown).
  QString shownPreset() const;

 private:
  void syncFromState();  // the form follows a new run or an opened checkpoint
  void updateBudget();

  RunSession* session_;
  QComboBox *preset_, *architecture_, *router_, *balance_;
  QSpinBox *d_model_, *layers_, *heads_, *kv_heads_, *hidden_, *group_, *pool_, *top_k_;
  QSpinBox *steps_, *batch_, *seq_, *seed_;
  QDoubleSpinBox *lr_, *aux_;
  QLineEdit* data_;
  QComboBox* device_;  // CPU, or CUDA (disabled, with the reason, where it cannot run)
  QLabel* budget_;
  uint64_t form_run_ = 0;  // the run whose settings the form shows (RunState::run_serial)
};

}  // namespace unipool::studio
