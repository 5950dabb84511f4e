#include "views/controls_panel.h"

#include <QVBoxLayout>

#include "views/live_controls.h"
#include "views/new_run_form.h"

namespace unipool::studio {

ControlsPanel::ControlsPanel(RunSession* session, QWidget* parent)
    : QWidget(parent),
      form_(new NewRunForm(session, this)),
      live_(new LiveControls(session, this)) {
  auto* layout = new QVBoxLayout(this);
  layout->addWidget(form_);
  layout->addWidget(live_);
  layout->addStretch(1);
}

}  // namespace unipool::studio
