#include "controls_panel.h"

#include <QCheckBox>
#include <QComboBox>
#include <QDoubleSpinBox>
#include <QFileDialog>
#include <QFileInfo>
#include <QFormLayout>
#include <QGridLayout>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QPushButton>
#include <QSpinBox>
#include <QVBoxLayout>

#include "run_session.h"

namespace unipool::studio {

namespace {

QSpinBox* spin(QWidget* parent, int lo, int hi, int value, const QString& tip = {}) {
  auto* s = new QSpinBox(parent);
  s->setRange(lo, hi);
  s->setValue(value);
  s->setToolTip(tip);
  return s;
}

QDoubleSpinBox* dspin(QWidget* parent, double lo, double hi, double value, int decimals,
                      double step) {
  auto* s = new QDoubleSpinBox(parent);
  s->setDecimals(decimals);
  s->setRange(lo, hi);
  s->setSingleStep(step);
  s->setValue(value);
  return s;
}

}  // namespace

ControlsPanel::ControlsPanel(RunSession* session, QWidget* parent)
    : QWidget(parent), session_(session) {
  auto* layout = new QVBoxLayout(this);
  layout->addWidget(buildNewRunBox());
  layout->addWidget(buildRunBox());
  layout->addWidget(buildLiveBox());
  layout->addStretch(1);
  // Training updates (~20 a second) refresh only the status: the live boxes follow the engine
  // when its settings change, so a value typed but not yet applied is not overwritten.
  connect(session_, &RunSession::stateChanged, this, &ControlsPanel::syncFromState);
  connect(session_, &RunSession::updated, this, &ControlsPanel::updateStatus);
  connect(session_, &RunSession::runningChanged, this, &ControlsPanel::updateStatus);
  loadPreset(QStringLiteral("default"));
  syncFromState();
}

QWidget* ControlsPanel::buildNewRunBox() {
  auto* box = new QGroupBox(tr("New run"), this);
  auto* form = new QFormLayout(box);
  form->setFieldGrowthPolicy(QFormLayout::AllNonFixedFieldsGrow);
  preset_ = new QComboBox(box);
  for (const auto& name : preset_names()) preset_->addItem(QString::fromStdString(name));
  preset_->setToolTip(tr("Fill the form from a named preset"));
  architecture_ = new QComboBox(box);
  architecture_->addItems({tr("UniPool"), tr("vanilla"), tr("grouped"), tr("dense")});
  architecture_->setToolTip(
      tr("Who owns which experts: one shared pool (UniPool), 8 private "
         "experts per layer (vanilla), pools shared by consecutive "
         "layers (grouped), or one FFN per layer (dense)"));
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
  form->addRow(budget_);
  form->addRow(create);

  connect(preset_, &QComboBox::textActivated, this, &ControlsPanel::loadPreset);
  connect(architecture_, &QComboBox::textActivated, this, &ControlsPanel::setArchitecture);
  connect(create, &QPushButton::clicked, this, &ControlsPanel::createRunFromForm);
  for (QSpinBox* s : {d_model_, layers_, hidden_, group_, pool_, top_k_})
    connect(s, &QSpinBox::valueChanged, this, &ControlsPanel::updateBudget);
  return box;
}

QWidget* ControlsPanel::buildRunBox() {
  auto* box = new QGroupBox(tr("Run"), this);
  auto* grid = new QGridLayout(box);
  start_ = new QPushButton(tr("Start"), box);
  pause_ = new QPushButton(tr("Pause"), box);
  step_ = new QPushButton(tr("Step"), box);
  reset_ = new QPushButton(tr("Reset"), box);
  reset_->setObjectName(QStringLiteral("reset"));
  step_->setToolTip(tr("Train exactly one step"));
  reset_->setToolTip(tr("Start this run again from fresh weights"));
  status_ = new QLabel(box);
  device_ = new QLabel(tr("Device: CPU (LibTorch)"), box);
  grid->addWidget(start_, 0, 0);
  grid->addWidget(pause_, 0, 1);
  grid->addWidget(step_, 0, 2);
  grid->addWidget(reset_, 0, 3);
  grid->addWidget(status_, 1, 0, 1, 4);
  grid->addWidget(device_, 2, 0, 1, 4);
  connect(start_, &QPushButton::clicked, session_, &RunSession::start);
  connect(pause_, &QPushButton::clicked, session_, &RunSession::pause);
  connect(step_, &QPushButton::clicked, session_, &RunSession::stepOnce);
  connect(reset_, &QPushButton::clicked, this, [this] {
    const RunState& s = session_->state();
    if (!s.valid) return;
    // Fresh weights are not the opened file's: a label that is not a path keeps Save from
    // writing them over it.
    const QString label = s.source.endsWith(QLatin1String(".safetensors"))
                              ? tr("%1 (reset)").arg(QFileInfo(s.source).completeBaseName())
                              : s.source;
    session_->createRun(s.config, s.options, DataSpec{s.data_path}, label);
  });
  return box;
}

QWidget* ControlsPanel::buildLiveBox() {
  auto* box = new QGroupBox(tr("While training"), this);
  auto* form = new QFormLayout(box);
  live_lr_ = dspin(box, 1e-6, 10, 3e-3, 6, 5e-4);
  live_lr_->setObjectName(QStringLiteral("liveLearningRate"));
  live_aux_ = dspin(box, 0, 10, 0.01, 4, 0.005);
  live_top_k_ = spin(box, 1, 8, 1);
  live_pool_ = spin(box, 1, 1024, 24,
                    tr("Experts in each pool: grow by copying the busiest "
                       "experts, shrink by dropping the least used"));
  auto* lr_row = new QHBoxLayout;
  auto* apply_lr = new QPushButton(tr("Set"), box);
  lr_row->addWidget(live_lr_, 1);
  lr_row->addWidget(apply_lr);
  auto* aux_row = new QHBoxLayout;
  auto* apply_aux = new QPushButton(tr("Set"), box);
  aux_row->addWidget(live_aux_, 1);
  aux_row->addWidget(apply_aux);
  auto* k_row = new QHBoxLayout;
  auto* apply_k = new QPushButton(tr("Set"), box);
  apply_k->setObjectName(QStringLiteral("setTopK"));
  live_top_k_->setObjectName(QStringLiteral("liveTopK"));
  k_row->addWidget(live_top_k_, 1);
  k_row->addWidget(apply_k);
  auto* pool_row = new QHBoxLayout;
  auto* resize = new QPushButton(tr("Resize"), box);
  resize->setObjectName(QStringLiteral("resizePool"));
  live_pool_->setObjectName(QStringLiteral("livePoolSize"));
  pool_row->addWidget(live_pool_, 1);
  pool_row->addWidget(resize);
  form->addRow(tr("Peak lr"), lr_row);
  form->addRow(tr("Aux coef"), aux_row);
  form->addRow(tr("Top-k"), k_row);
  form->addRow(tr("Pool size"), pool_row);

  auto* random_box = new QWidget(box);
  switches_layout_ = new QGridLayout(random_box);
  switches_layout_->setContentsMargins(0, 0, 0, 0);
  form->addRow(tr("Random routing"), random_box);
  auto* from_row = new QHBoxLayout;
  random_from_ = spin(box, 0, 47, 3);
  auto* apply_from = new QPushButton(tr("Random from layer k down"), box);
  apply_from->setToolTip(
      tr("Route layers k..L-1 at random and keep the learned routers above: "
         "the paper's test of how much deep routing matters"));
  auto* all_learned = new QPushButton(tr("All learned"), box);
  from_row->addWidget(random_from_);
  from_row->addWidget(apply_from, 1);
  from_row->addWidget(all_learned);
  form->addRow(tr("k"), from_row);

  connect(apply_lr, &QPushButton::clicked, this,
          [this] { session_->setLearningRate(live_lr_->value()); });
  connect(apply_aux, &QPushButton::clicked, this,
          [this] { session_->setAuxCoef(live_aux_->value()); });
  connect(apply_k, &QPushButton::clicked, this,
          [this] { session_->setTopK(live_top_k_->value()); });
  connect(resize, &QPushButton::clicked, this,
          [this] { session_->resizePool(live_pool_->value()); });
  connect(apply_from, &QPushButton::clicked, this,
          [this] { randomFromLayer(random_from_->value()); });
  connect(all_learned, &QPushButton::clicked, this,
          [this] { randomFromLayer(session_->state().config.n_layers); });
  return box;
}

void ControlsPanel::loadPreset(const QString& name) {
  Preset p;
  try {
    p = preset(name.toStdString());
  } catch (const ConfigError&) {
    return;
  }
  if (preset_->currentText() != name) preset_->setCurrentText(name);
  fillForm(p.model, p.train);
}

void ControlsPanel::fillForm(const ModelConfig& c, const TrainOptions& t) {
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
  const bool dense = c.experts_per_group == 1 && c.layers_per_group == 1;
  architecture_->setCurrentText(dense                             ? tr("dense")
                                : c.layers_per_group == 1         ? tr("vanilla")
                                : c.layers_per_group < c.n_layers ? tr("grouped")
                                                                  : tr("UniPool"));
  updateBudget();
}

void ControlsPanel::setArchitecture(const QString& a) {
  const int L = layers_->value();
  architecture_->setCurrentText(a);
  if (a == tr("vanilla")) {
    group_->setValue(1);
    pool_->setValue(8);
    router_->setCurrentText(QStringLiteral("softmax"));
    balance_->setCurrentText(QStringLiteral("layer"));
  } else if (a == tr("grouped")) {
    group_->setValue(L % 2 == 0 ? 2 : 1);
    pool_->setValue(8);
    router_->setCurrentText(QStringLiteral("norm"));
    balance_->setCurrentText(QStringLiteral("pool"));
  } else if (a == tr("dense")) {
    group_->setValue(1);
    pool_->setValue(1);
    top_k_->setValue(1);
    router_->setCurrentText(QStringLiteral("softmax"));
    balance_->setCurrentText(QStringLiteral("none"));
    aux_->setValue(0);
  } else {  // UniPool: one pool for all layers, half the vanilla budget by default
    group_->setValue(L);
    pool_->setValue(4 * L);
    router_->setCurrentText(QStringLiteral("norm"));
    balance_->setCurrentText(QStringLiteral("pool"));
  }
  updateBudget();
}

ModelConfig ControlsPanel::formConfig() const {
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
  return c;
}

TrainOptions ControlsPanel::formOptions() const {
  TrainOptions o;
  o.lr = lr_->value();
  o.total_steps = steps_->value();
  o.warmup_steps = std::min(50, std::max(1, steps_->value() / 20));
  o.batch = batch_->value();
  o.seq = seq_->value();
  o.seed = uint64_t(seed_->value());
  return o;
}

void ControlsPanel::updateBudget() {
  ModelConfig c = formConfig();
  // router_c is computed by Monte Carlo when the run is created; any valid value checks the
  // rest of the form here without that cost on every keystroke.
  c.router_c = c.router == "norm" ? 1.0 : 0.0;
  try {
    validate(c);
    const ParamCounts p = count_parameters(c);
    budget_->setText(tr("%1 parameters, %2 in experts: %3% of the vanilla budget (8 per layer)")
                         .arg(QLocale().toString(qlonglong(p.total)))
                         .arg(QLocale().toString(qlonglong(p.expert)))
                         .arg(100.0 * p.budget_ratio, 0, 'f', 1));
  } catch (const std::exception& e) {
    budget_->setText(tr("Not a valid model: %1").arg(QString::fromUtf8(e.what())));
  }
}

void ControlsPanel::createRunFromForm() {
  // router_c stays 0: the worker computes it (see TrainingWorker::createRun).
  DataSpec data;
  data.path = data_->text().trimmed().toStdString();  // DataError reaches the user as a dialog
  session_->createRun(formConfig(), formOptions(), data, preset_->currentText());
}

void ControlsPanel::randomFromLayer(int from) {
  const int L = session_->state().config.n_layers;
  std::vector<bool> random(size_t(std::max(L, 0)), false);
  for (int l = std::max(from, 0); l < L; ++l) random[size_t(l)] = true;
  session_->setRandomLayers(random);
}

QCheckBox* ControlsPanel::randomSwitch(int layer) const {
  return layer >= 0 && layer < int(switches_.size()) ? switches_[size_t(layer)] : nullptr;
}

void ControlsPanel::applyRandomSwitches() {
  std::vector<bool> random;
  for (QCheckBox* s : switches_) random.push_back(s->isChecked());
  session_->setRandomLayers(random);
}

void ControlsPanel::updateStatus() {
  const RunState& s = session_->state();
  const bool running = session_->isRunning();
  start_->setEnabled(s.valid && s.can_train && !running);
  pause_->setEnabled(running);
  step_->setEnabled(s.valid && s.can_train && !running);
  reset_->setEnabled(s.valid);
  if (!s.valid) {
    status_->setText(tr("No run: pick a preset and press Create run."));
    return;
  }
  // A resumed run may train past its schedule; the learning rate then stays at its floor.
  const QString progress =
      s.step <= s.options.total_steps
          ? tr("Step %1 of %2").arg(s.step).arg(s.options.total_steps)
          : tr("Step %1 (past the %2-step schedule)").arg(s.step).arg(s.options.total_steps);
  status_->setText(tr("%1   %2 tokens/s   %3")
                       .arg(progress)
                       .arg(session_->tokensPerSecond(), 0, 'f', 0)
                       .arg(running ? tr("training") : tr("paused")));
}

void ControlsPanel::syncFromState() {
  updateStatus();
  const RunState& s = session_->state();
  if (!s.valid) return;
  if (s.source != form_source_) {  // a new run or an opened checkpoint
    form_source_ = s.source;
    fillForm(s.config, s.options);
    data_->setText(QString::fromStdString(s.data_path));
  }
  // Rebuild the per-layer switches when the layer count changes; then mirror the engine.
  if (int(switches_.size()) != s.config.n_layers) {
    for (QCheckBox* b : switches_) b->deleteLater();
    switches_.clear();
    for (int l = 0; l < s.config.n_layers; ++l) {
      auto* b = new QCheckBox(tr("L%1").arg(l), this);
      b->setToolTip(tr("Route layer %1 at random (gates from its router's scores)").arg(l));
      connect(b, &QCheckBox::clicked, this, &ControlsPanel::applyRandomSwitches);
      switches_layout_->addWidget(b, l / 6, l % 6);
      switches_.push_back(b);
    }
    random_from_->setMaximum(std::max(0, s.config.n_layers - 1));
  }
  for (size_t l = 0; l < switches_.size(); ++l) {
    const bool on = l < s.random_layers.size() && s.random_layers[l];
    if (switches_[l]->isChecked() != on) switches_[l]->setChecked(on);
  }
  if (!live_lr_->hasFocus()) live_lr_->setValue(s.options.lr);
  if (!live_aux_->hasFocus()) live_aux_->setValue(s.aux_coef);
  if (!live_top_k_->hasFocus()) live_top_k_->setValue(s.config.top_k);
  if (!live_pool_->hasFocus()) live_pool_->setValue(s.config.experts_per_group);
}

}  // namespace unipool::studio
