// A lesson's pointer: a rounded outline drawn over the window around the widget a step points
// at. It follows the widget as the layout changes (moves, resizes, splitters, tab switches)
// and hides while the widget is not visible. It never takes a mouse click.
#pragma once

#include <QPointer>
#include <QWidget>

namespace unipool::studio {

class LessonHighlight : public QWidget {
  Q_OBJECT
 public:
  explicit LessonHighlight(QWidget* window);
  void pointAt(QWidget* target);  // nullptr hides it
  QWidget* target() const { return target_; }
  QRect targetRect() const;  // in the window's coordinates; empty when hidden

 protected:
  bool eventFilter(QObject* watched, QEvent* event) override;
  void paintEvent(QPaintEvent* event) override;

 private:
  void follow();

  QPointer<QWidget> target_;
};

}  // namespace unipool::studio
