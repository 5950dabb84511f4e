// Small builders for the spin boxes of the new-run form and the live controls.
#pragma once

#include <QDoubleSpinBox>
#include <QSpinBox>
#include <QString>

namespace unipool::studio {

inline QSpinBox* spin(QWidget* parent, int lo, int hi, int value, const QString& tip = {}) {
  auto* s = new QSpinBox(parent);
  s->setRange(lo, hi);
  s->setValue(value);
  s->setToolTip(tip);
  return s;
}

inline QDoubleSpinBox* dspin(QWidget* parent, double lo, double hi, double value, int decimals,
                             double step) {
  auto* s = new QDoubleSpinBox(parent);
  s->setDecimals(decimals);
  s->setRange(lo, hi);
  s->setSingleStep(step);
  s->setValue(value);
  return s;
}

}  // namespace unipool::studio
