// View 5: one text, routed. Columns are the text's bytes (tokens), rows the layers; each cell
// is coloured by the expert the layer chose for that token (same colour = same pool expert,
// so an expert reused across layers shows as one colour going down a column). Hover for
// gates; click a column for the model's next-byte prediction there. It also generates.
#pragma once

#include <QWidget>

#include "unipool/engine.h"

class QComboBox;
class QDoubleSpinBox;
class QLabel;
class QPlainTextEdit;
class QPushButton;
class QSpinBox;
class QTableWidget;

namespace unipool::studio {

class RunSession;

class TokenInspectorView : public QWidget {
  Q_OBJECT
 public:
  static constexpr int kMaxBytes = 256;  // a grid wider than this is unreadable anyway
  explicit TokenInspectorView(RunSession* session, QWidget* parent = nullptr);

  void setText(const QString& text);
  void loadDomainSample(int domain);
  void route();     // asks the engine for the routes of the text
  void generate();  // asks the engine for a continuation
  const TokenRoutes& routes() const { return routes_; }
  QTableWidget* grid() const { return grid_; }
  QString predictionText(int64_t token) const;  // top next bytes after `token`
  QString continuation() const;

 private:
  void showRoutes(const TokenRoutes& routes);
  void showPrediction(int column);

  RunSession* session_;
  QPlainTextEdit* input_;
  QComboBox* samples_;
  QPushButton *route_, *generate_;
  QSpinBox* gen_tokens_;
  QDoubleSpinBox* temperature_;
  QTableWidget* grid_;
  QLabel* prediction_;
  QPlainTextEdit* output_;
  TokenRoutes routes_;
};

}  // namespace unipool::studio
