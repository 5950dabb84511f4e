#include "views/lessons/lesson_highlight.h"

#include <QEvent>
#include <QPainter>
#include <QTimer>

namespace unipool::studio {

namespace {
constexpr int kMargin = 4;  // the outline sits just outside the widget
}

LessonHighlight::LessonHighlight(QWidget* window) : QWidget(window) {
  setObjectName(QStringLiteral("lessonHighlight"));
  setAttribute(Qt::WA_TransparentForMouseEvents);
  setAttribute(Qt::WA_NoSystemBackground);
  window->installEventFilter(this);
  hide();
}

void LessonHighlight::pointAt(QWidget* target) {
  if (target_) target_->removeEventFilter(this);
  target_ = target;
  if (target_) target_->installEventFilter(this);
  follow();
}

QRect LessonHighlight::targetRect() const { return isVisible() ? geometry() : QRect(); }

bool LessonHighlight::eventFilter(QObject* watched, QEvent* event) {
  switch (event->type()) {
    case QEvent::Move:
    case QEvent::Resize:
    case QEvent::Show:
    case QEvent::Hide:
    case QEvent::LayoutRequest:
      // After the layout has settled: a splitter moves the widget after its own event.
      QTimer::singleShot(0, this, &LessonHighlight::follow);
      break;
    default:
      break;
  }
  return QWidget::eventFilter(watched, event);
}

void LessonHighlight::follow() {
  QWidget* window = parentWidget();
  if (!target_ || !window || !target_->isVisible()) {
    hide();
    return;
  }
  const QPoint origin = target_->mapTo(window, QPoint(0, 0));
  setGeometry(QRect(origin, target_->size()).adjusted(-kMargin, -kMargin, kMargin, kMargin) &
              window->rect());
  show();
  raise();
  update();
}

void LessonHighlight::paintEvent(QPaintEvent*) {
  QPainter p(this);
  p.setRenderHint(QPainter::Antialiasing);
  QPen pen(QColor(255, 140, 0), 4);
  p.setPen(pen);
  p.setBrush(Qt::NoBrush);
  p.drawRoundedRect(rect().adjusted(2, 2, -2, -2), 8, 8);
}

}  // namespace unipool::studio
