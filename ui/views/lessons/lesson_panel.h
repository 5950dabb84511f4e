// The lesson's dock: the step's text (Markdown) with its question, what the step does, a
// progress bar while it trains, each expectation with the value measured once the step ends,
// and Back / Replay step / Skip / Next / Restart. It only shows a LessonPlayer and forwards
// the buttons; the window owns the player and the highlight.
#pragma once

#include <QWidget>

class QLabel;
class QProgressBar;
class QPushButton;
class QTextBrowser;

namespace unipool::studio {

class LessonPlayer;

class LessonPanel : public QWidget {
  Q_OBJECT
 public:
  explicit LessonPanel(LessonPlayer* player, QWidget* parent = nullptr);

  // For tests and the screenshot: what the panel shows now.
  QString heading() const;
  QString expectationsText() const;
  QPushButton* nextButton() const { return next_; }
  QPushButton* skipButton() const { return skip_; }

 private:
  void showStep();
  void showResults();

  LessonPlayer* player_;
  QLabel* title_;
  QLabel* heading_;
  QTextBrowser* text_;
  QLabel* actions_;
  QProgressBar* progress_;
  QLabel* expectations_;
  QPushButton *back_, *replay_, *skip_, *next_, *restart_;
};

}  // namespace unipool::studio
