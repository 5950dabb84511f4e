#include "views/lessons/lesson_panel.h"

#include <QHBoxLayout>
#include <QLabel>
#include <QProgressBar>
#include <QPushButton>
#include <QTextBrowser>
#include <QVBoxLayout>

#include "session/lessons/lesson_player.h"

namespace unipool::studio {

LessonPanel::LessonPanel(LessonPlayer* player, QWidget* parent) : QWidget(parent), player_(player) {
  setObjectName(QStringLiteral("lessonPanel"));
  title_ = new QLabel(this);
  title_->setWordWrap(true);
  QFont big = title_->font();
  big.setPointSizeF(big.pointSizeF() * 1.3);
  big.setBold(true);
  title_->setFont(big);
  heading_ = new QLabel(this);
  heading_->setWordWrap(true);
  QFont bold = heading_->font();
  bold.setBold(true);
  heading_->setFont(bold);
  text_ = new QTextBrowser(this);
  text_->setOpenExternalLinks(false);
  actions_ = new QLabel(this);
  actions_->setWordWrap(true);
  actions_->setStyleSheet(QStringLiteral("color: palette(mid);"));
  progress_ = new QProgressBar(this);
  progress_->setTextVisible(true);
  progress_->hide();
  expectations_ = new QLabel(this);
  expectations_->setWordWrap(true);
  expectations_->setTextFormat(Qt::RichText);

  back_ = new QPushButton(tr("Back"), this);
  replay_ = new QPushButton(tr("Replay step"), this);
  replay_->setToolTip(
      tr("Reopen the run as it was when this step began and play it again "
         "(after a student took over the controls)"));
  skip_ = new QPushButton(tr("Skip"), this);
  skip_->setToolTip(tr("Stop this step's training; its expectations are not checked"));
  next_ = new QPushButton(tr("Next"), this);
  next_->setDefault(true);
  restart_ = new QPushButton(tr("Restart"), this);
  auto* buttons = new QHBoxLayout;
  for (QPushButton* b : {back_, replay_, skip_, next_}) buttons->addWidget(b);
  auto* layout = new QVBoxLayout(this);
  layout->addWidget(title_);
  layout->addWidget(heading_);
  layout->addWidget(text_, 1);
  layout->addWidget(actions_);
  layout->addWidget(progress_);
  layout->addWidget(expectations_);
  layout->addLayout(buttons);
  layout->addWidget(restart_, 0, Qt::AlignLeft);

  connect(back_, &QPushButton::clicked, player_, &LessonPlayer::back);
  connect(replay_, &QPushButton::clicked, player_, &LessonPlayer::replayStep);
  connect(skip_, &QPushButton::clicked, player_, &LessonPlayer::skip);
  connect(next_, &QPushButton::clicked, player_, &LessonPlayer::next);
  connect(restart_, &QPushButton::clicked, player_, &LessonPlayer::restart);
  connect(player_, &LessonPlayer::stepStarted, this, &LessonPanel::showStep);
  connect(player_, &LessonPlayer::stepFinished, this, &LessonPanel::showResults);
  connect(player_, &LessonPlayer::progress, this, [this](int done, int total, const QString& what) {
    progress_->setVisible(total > 0);
    progress_->setRange(0, std::max(total, 1));
    progress_->setValue(done);
    progress_->setFormat(what);
  });
  connect(player_, &LessonPlayer::lessonFinished, this, [this] {
    heading_->setText(tr("The end of the lesson."));
    text_->setMarkdown(
        tr("You can keep training, change settings or open another lesson from "
           "the **Lessons** menu."));
    actions_->clear();
    expectations_->clear();
    next_->setEnabled(false);
    skip_->setEnabled(false);
  });
  showStep();
}

QString LessonPanel::heading() const { return heading_->text(); }
QString LessonPanel::expectationsText() const { return expectations_->text(); }

void LessonPanel::showStep() {
  const LessonStep* step = player_->currentStep();
  title_->setText(player_->hasLesson() ? player_->lesson().title : tr("No lesson"));
  if (!step) {
    heading_->clear();
    text_->setMarkdown(tr("Choose a lesson from the **Lessons** menu."));
    actions_->clear();
    expectations_->clear();
    for (QPushButton* b : {back_, replay_, skip_, next_, restart_}) b->setEnabled(false);
    return;
  }
  heading_->setText(tr("Step %1 of %2: %3")
                        .arg(player_->stepIndex() + 1)
                        .arg(player_->stepCount())
                        .arg(step->title));
  text_->setMarkdown(step->text);
  QStringList done;
  for (const LessonAction& a : step->actions)
    if (a.kind != LessonAction::Tab) done << a.describe();
  actions_->setText(done.isEmpty() ? QString()
                                   : tr("This step: %1.").arg(done.join(QStringLiteral(", "))));
  QStringList lines;
  for (const LessonExpectation& e : step->expectations)
    lines << QStringLiteral("&#9711; %1").arg(e.statement.toHtmlEscaped());
  expectations_->setText(lines.join(QStringLiteral("<br>")));
  progress_->setVisible(step->trains());
  back_->setEnabled(player_->stepIndex() > 0);
  for (QPushButton* b : {replay_, next_, restart_}) b->setEnabled(true);
  skip_->setEnabled(step->trains());
}

void LessonPanel::showResults() {
  QStringList lines;
  for (const ExpectationResult& r : player_->results()) {
    const QString statement = r.expectation.statement.toHtmlEscaped();
    if (r.checked) {
      const QString mark = r.passed ? QStringLiteral("<span style='color:#1a7f37'>&#10004;</span>")
                                    : QStringLiteral("<span style='color:#c0392b'>&#10008;</span>");
      lines << QStringLiteral("%1 %2 <small>(%3 = %4)</small>")
                   .arg(mark, statement, r.expectation.measure)
                   .arg(*r.measured, 0, 'g', 3);
    } else {
      lines << QStringLiteral("&#8211; %1 <small>(not checked: %2)</small>")
                   .arg(statement, r.why.toHtmlEscaped());
    }
  }
  if (!player_->failure().isEmpty())
    lines << QStringLiteral("<b>%1</b>")
                 .arg(tr("Stopped: %1").arg(player_->failure().toHtmlEscaped()));
  expectations_->setText(lines.join(QStringLiteral("<br>")));
  progress_->hide();
  skip_->setEnabled(false);
}

}  // namespace unipool::studio
