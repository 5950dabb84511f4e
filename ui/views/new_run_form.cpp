#include "views/new_run_form.h"

#include <QComboBox>
#include <QDoubleSpinBox>
#include <QFileDialog>
#include <QFormLayout>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QLocale>
#include <QPushButton>
#include <QSpinBox>
#include <QStandardItemModel>
#include <QVBoxLayout>
#include <algorithm>

#include "session/run_session.h"
#include "views/form_widgets.h"

namespace unipool::studio {

NewRunForm::NewRunForm(RunSession* session, QWidget* parent) : QWidget(parent), session_(session) {
  auto* outer = new QVBoxLayout(this);
  outer->setContentsMargins(0, 0, 0, 0);
  auto* box = new QGroupBox(tr("New run"), this);
  outer->addWidget(box);
  auto* form = new QFormLayout(box);
  form->setFieldGrowthPolicy(QFormLayout::AllNonFixedFieldsGrow);
  preset_ = new QComboBox(box);
  for (const auto& name : preset_names()) preset_->addItem(QString::fromStdString(name));
  preset_->setToolTip(tr("Fill the form from a named preset"));
  preset_->setPlaceholderText(tr("custom"));  // a run that is no preset (a recipe, a checkpoint)
  architecture_ = new QComboBox(box);
  QStringList explained;
  for (Architecture a : all_architectures()) {
    architecture_->addItem(QString::fromStdString(architecture_name(a)), int(a));
    explained << QStringLiteral("%1 (%2)").arg(QString::fromStdString(architecture_explanation(a)),
                                               QString::fromStdString(architecture_name(a)));
  }
  architecture_->setToolTip(tr("Who owns which experts: %1").arg(explained.join(tr(", "))));
  d_model_ = spin(box, 8, 2048, 128);
  layers_ = spin(box, 1, 48, 6);
  heads_ = spin(box, 1, 32, 4);
  kv_heads_ = spin(box, 1, 32, 2);
  hidden_ = spin(box, 4, 8192, 256, tr("Hidden width of each SwiGLU expert"));
  group_ = spin(box, 1, 48, 6, tr("G: consecutive layers that share one pool"));
  pool_ = spin(box, 1, 1024, 24, tr("Mg: experts in each pool"));
  top_k_ = spin(box, 1, 8, 1);
  pool_->setObjectName(QStringLiteral("poolSize"));
  top_k_->setObjectName(QStringLiteral("topK"));
  router_ = new QComboBox(box);
  router_->addItems({QStringLiteral("norm"), QStringLiteral("softmax")});
  balance_ = new QComboBox(box);
  balance_->addItems({QStringLiteral("pool"), QStringLiteral("layer"), QStringLiteral("none")});
  aux_ = dspin(box, 0, 1, 0.01, 4, 0.005);
  lr_ = dspin(box, 1e-5, 1, 3e-3, 5, 5e-4);
  steps_ = spin(box, 1, 10000000, 1000, tr("Length of the learning-rate schedule"));
  batch_ = spin(box, 1, 1024, 16);
  seq_ = spin(box, 2, 1024, 128);
  seed_ = spin(box, 0, 1 << 30, 1234);
  data_ = new QLineEdit(box);
  data_->setObjectName(QStringLiteral("dataPath"));
  data_->setPlaceholderText(tr("built-in corpus (5 labelled domains)"));
  data_->setToolTip(
      tr("A text file, or a folder of .txt files, to train on; empty for the "
         "built-in corpus, whose domain labels the Domains view needs"));
  auto* browse = new QPushButton(tr("..."), box);
  browse->setToolTip(tr("Choose a text file"));
  connect(browse, &QPushButton::clicked, this, [this] {
    const QString path = QFileDialog::getOpenFileName(this, tr("Training text"), data_->text(),
                                                      tr("Text (*.txt);;All files (*)"));
    if (!path.isEmpty()) data_->setText(path);
  });
  device_ = new QComboBox(box);
  device_->setObjectName(QStringLiteral("device"));
  device_->addItem(tr("CPU"), QStringLiteral("cpu"));
  device_->addItem(tr("CUDA GPU"), QStringLiteral("cuda"));
  QString why;
  if (!RunSession::cudaAvailable(&why)) {
    // Shown but greyed: the user learns the option exists and why it is off here.
    if (auto* model = qobject_cast<QStandardItemModel*>(device_->model()))
      model->item(1)->setEnabled(false);
    device_->setItemData(1, tr("Not available: %1").arg(why), Qt::ToolTipRole);
    device_->setToolTip(tr("CUDA is not available: %1").arg(why));
  }
  budget_ = new QLabel(box);
  budget_->setWordWrap(true);
  auto* create = new QPushButton(tr("Create run"), box);
  create->setToolTip(tr("Build a fresh model from this form on the built-in corpus"));

  form->addRow(tr("Preset"), preset_);
  form->addRow(tr("Architecture"), architecture_);
  auto* dims = new QHBoxLayout;
  dims->addWidget(d_model_);
  dims->addWidget(new QLabel(tr("layers"), box));
  dims->addWidget(layers_);
  form->addRow(tr("d_model"), dims);
  auto* heads = new QHBoxLayout;
  heads->addWidget(heads_);
  heads->addWidget(new QLabel(tr("kv"), box));
  heads->addWidget(kv_heads_);
  form->addRow(tr("Heads"), heads);
  form->addRow(tr("Expert hidden"), hidden_);
  auto* pools = new QHBoxLayout;
  pools->addWidget(new QLabel(tr("G"), box));
  pools->addWidget(group_);
  pools->addWidget(new QLabel(tr("Mg"), box));
  pools->addWidget(pool_);
  form->addRow(tr("Pools"), pools);
  auto* routing = new QHBoxLayout;
  routing->addWidget(router_);
  routing->addWidget(new QLabel(tr("top-k"), box));
  routing->addWidget(top_k_);
  form->addRow(tr("Router"), routing);
  auto* bal = new QHBoxLayout;
  bal->addWidget(balance_);
  bal->addWidget(aux_);
  form->addRow(tr("Balance, coef"), bal);
  auto* train = new QHBoxLayout;
  train->addWidget(lr_);
  train->addWidget(new QLabel(tr("steps"), box));
  train->addWidget(steps_);
  form->addRow(tr("Peak lr"), train);
  auto* shape = new QHBoxLayout;
  shape->addWidget(batch_);
  shape->addWidget(new QLabel(tr("x"), box));
  shape->addWidget(seq_);
  shape->addWidget(new QLabel(tr("seed"), box));
  shape->addWidget(seed_);
  form->addRow(tr("Batch x seq"), shape);
  auto* data_row = new QHBoxLayout;
  data_row->addWidget(data_, 1);
  data_row->addWidget(browse);
  form->addRow(tr("Text"), data_row);
  form->addRow(tr("Device"), device_);
  form->addRow(budget_);
  form->addRow(create);

  connect(preset_, &QComboBox::textActivated, this, &NewRunForm::loadPreset);
  connect(architecture_, &QComboBox::activated, this, [this](int index) {
    setArchitecture(Architecture(architecture_->itemData(index).toInt()));
  });
  connect(create, &QPushButton::clicked, this, &NewRunForm::createRunFromForm);
  for (QSpinBox* s : {d_model_, layers_, hidden_, group_, pool_, top_k_})
    connect(s, &QSpinBox::valueChanged, this, &NewRunForm::updateBudget);
  connect(session_, &RunSession::stateChanged, this, &NewRunForm::syncFromState);
  loadPreset(QStringLiteral("default"));
  syncFromState();
}

void NewRunForm::loadPreset(const QString& name) {
  Preset p;
  try {
    p = preset(name.toStdString());
  } catch (const ConfigError&) {
    return;
  }
  if (preset_->currentText() != name) preset_->setCurrentText(name);
  fillForm(p.model, p.train);
}

void NewRunForm::fillForm(const ModelConfig& c, const TrainOptions& t) {
  d_model_->setValue(c.d_model);
  layers_->setValue(c.n_layers);
  heads_->setValue(c.n_heads);
  kv_heads_->setValue(c.n_kv_heads);
  hidden_->setValue(c.expert_hidden);
  group_->setValue(c.layers_per_group);
  pool_->setValue(c.experts_per_group);
  top_k_->setValue(c.top_k);
  router_->setCurrentText(QString::fromStdString(c.router));
  balance_->setCurrentText(QString::fromStdString(c.balance));
  aux_->setValue(c.aux_coef);
  lr_->setValue(t.lr);
  steps_->setValue(t.total_steps);
  batch_->setValue(t.batch);
  seq_->setValue(t.seq);
  seed_->setValue(int(t.seed));
  architecture_->setCurrentIndex(architecture_->findData(int(architecture_of(c))));
  updateBudget();
}

void NewRunForm::setArchitecture(Architecture a) {
  ModelConfig c = formConfig();
  apply_architecture(c, a);
  architecture_->setCurrentIndex(architecture_->findData(int(a)));
  group_->setValue(c.layers_per_group);
  pool_->setValue(c.experts_per_group);
  top_k_->setValue(c.top_k);
  router_->setCurrentText(QString::fromStdString(c.router));
  balance_->setCurrentText(QString::fromStdString(c.balance));
  aux_->setValue(c.aux_coef);
  updateBudget();
}

ModelConfig NewRunForm::formConfig() const {
  ModelConfig c;
  c.d_model = d_model_->value();
  c.n_layers = layers_->value();
  c.n_heads = heads_->value();
  c.n_kv_heads = kv_heads_->value();
  c.expert_hidden = hidden_->value();
  c.layers_per_group = group_->value();
  c.experts_per_group = pool_->value();
  c.top_k = top_k_->value();
  c.router = router_->currentText().toStdString();
  c.balance = balance_->currentText().toStdString();
  c.aux_coef = aux_->value();
  c.max_seq_len = std::max(1024, seq_->value());
  // UniPool-lock: the schedule follows the run's length (freeze at 15%, lock at 30%).
  if (Architecture(architecture_->currentData().toInt()) == Architecture::UniPoolLock)
    c.lock = lock_schedule(steps_->value());
  return c;
}

TrainOptions NewRunForm::formOptions() const {
  TrainOptions o;
  o.lr = lr_->value();
  o.total_steps = steps_->value();
  o.warmup_steps = std::min(50, std::max(1, steps_->value() / 20));
  o.batch = batch_->value();
  o.seq = seq_->value();
  o.seed = uint64_t(seed_->value());
  return o;
}

void NewRunForm::updateBudget() {
  ModelConfig c = formConfig();
  // router_c is computed by Monte Carlo when the run is created; any valid value checks the
  // rest of the form here without that cost on every keystroke.
  c.router_c = c.router == "norm" ? 1.0 : 0.0;
  try {
    validate(c);
    const ParamCounts p = count_parameters(c);
    budget_->setText(tr("%1 parameters, %2 in experts: %3% of the vanilla budget (%4 per layer)")
                         .arg(QLocale().toString(qlonglong(p.total)))
                         .arg(QLocale().toString(qlonglong(p.expert)))
                         .arg(100.0 * p.budget_ratio, 0, 'f', 1)
                         .arg(kVanillaExpertsPerLayer));
  } catch (const std::exception& e) {
    budget_->setText(tr("Not a valid model: %1").arg(QString::fromUtf8(e.what())));
  }
}

void NewRunForm::createRunFromForm() {
  // router_c stays 0: the worker computes it (see TrainingWorker::createRun).
  DataSpec data;
  data.path = data_->text().trimmed().toStdString();  // DataError reaches the user as a dialog
  ComputeOptions compute;
  compute.device = device_->currentData().toString().toStdString();
  session_->post(cmd::CreateRun{formConfig(), formOptions(), data, preset_->currentText(), compute});
}

QString NewRunForm::shownPreset() const {
  return preset_->currentIndex() < 0 ? QString() : preset_->currentText();
}

void NewRunForm::syncFromState() {
  const RunState& s = session_->state();
  if (!s.valid || s.run_serial == form_run_) return;
  // A new run or an opened checkpoint (from the form, a lesson, a recipe, File > Open): the
  // form shows its settings, so Reset and it agree, and names its preset: the one the run was
  // made from, else the preset whose model it is, else "custom".
  form_run_ = s.run_serial;
  fillForm(s.config, s.options);
  data_->setText(QString::fromStdString(s.data_path));
  QString shown = preset_->findText(s.source) >= 0 ? s.source : QString();
  for (const auto& name : preset_names()) {
    if (!shown.isEmpty()) break;
    if (to_json(preset(name).model) == to_json(s.config)) shown = QString::fromStdString(name);
  }
  preset_->setCurrentIndex(preset_->findText(shown));  // -1 shows the placeholder

}

}  // namespace unipool::studio
