// The studio's window: the controls on the left, the views in tabs, the File menu (runs,
// checkpoints, exports, recent files) and the messages a user must see (a file that cannot be
// read, a training run paused by a non-finite loss). Settings persist through QSettings.
#pragma once

#include <QMainWindow>
#include <QStringList>

#include "views/classroom_host.h"

class QMenu;
class QTabWidget;
class QCustomPlot;

namespace unipool::studio {

class CheckpointInspectorView;
class RedundancyView;
class DownloadedModelView;
class Classroom;
class CompareView;
class ControlsPanel;
class DomainView;
class ExperimentsView;
class LossCurvesView;
class PoolBalanceView;
class RoutingHeatmapView;
class RunSession;
class TokenInspectorView;

class MainWindow : public QMainWindow, public ClassroomHost {
  Q_OBJECT
 public:
  explicit MainWindow(QWidget* parent = nullptr);
  ~MainWindow() override;

  RunSession* session() const override { return session_; }
  ControlsPanel* controls() const { return controls_; }
  RoutingHeatmapView* heatmap() const override { return heatmap_; }
  PoolBalanceView* balance() const { return balance_; }
  LossCurvesView* loss() const { return loss_; }
  TokenInspectorView* tokens() const { return tokens_; }
  DomainView* domains() const { return domains_; }
  CompareView* compare() const { return compare_; }
  CheckpointInspectorView* inspector() const { return inspector_; }
  RedundancyView* redundancy() const { return redundancy_; }
  DownloadedModelView* downloaded() const { return downloaded_; }
  // A downloaded model of a family we run, in its own tab (the current run is kept).
  void openDownloadedModel(const QString& path) override;
  // Any MoE checkpoint, ours or downloaded (a file or a sharded folder), in the Redundancy tab.
  void openMoeCheckpoint(const QString& path);
  ExperimentsView* experiments() const { return experiments_; }
  QTabWidget* tabs() const override { return tabs_; }
  // The tab page called `name` (routing, tokens, domains, compare, checkpoint, redundancy,
  // downloaded, experiments); nullptr for another name.
  QWidget* tabPage(const QString& name) const override;
  Classroom* classroom() const { return classroom_; }  // lessons, presenter mode, shortcuts

  // File actions without dialogs (the menu's dialogs call these). They report problems with
  // showError and return false.
  bool openCheckpoint(const QString& path);
  void saveCheckpoint(const QString& path);
  bool exportMetricsCsv(const QString& path);
  bool exportMetricsJson(const QString& path);
  bool exportPlot(const QString& which, const QString& path);  // "heatmap", "balance", ...
  QStringList plotNames() const;
  QStringList recentFiles() const { return recent_; }
  // Where File > Save writes without asking: the file the current run came from or was saved to.
  QString currentPath() const { return current_path_; }

  // A non-blocking message box (it never stops training or a test); the last text is kept.
  void showError(const QString& title, const QString& text) override;
  QString lastError() const { return last_error_; }

  // ClassroomHost (views/classroom_host.h): what the classroom may reach.
  QMainWindow* hostWindow() override { return this; }
  QWidget* lessonWidget(const QString& name) const override;
  LiveControls* liveControls() const override;
  QMenu* addTopMenu(const QString& title) override;
  void addFileActions(const QList<QAction*>& actions) override;
  void showStatus(const QString& text) override;

 protected:
  void closeEvent(QCloseEvent* event) override;

 private:
  void buildMenus();
  // False when a failure to open `path` has already been reported.
  bool reportOpenFailureOnce(const QString& path);
  void rememberRecent(const QString& path);
  void rebuildRecentMenu();
  void updateTitle();
  QCustomPlot* plotByName(const QString& which) const;

  RunSession* session_;
  ControlsPanel* controls_;
  RoutingHeatmapView* heatmap_;
  PoolBalanceView* balance_;
  LossCurvesView* loss_;
  TokenInspectorView* tokens_;
  DomainView* domains_;
  CompareView* compare_;
  CheckpointInspectorView* inspector_;
  RedundancyView* redundancy_;
  DownloadedModelView* downloaded_;
  ExperimentsView* experiments_;
  QTabWidget* tabs_;
  Classroom* classroom_ = nullptr;
  QMenu* recent_menu_ = nullptr;
  QMenu* file_menu_ = nullptr;
  QAction* file_end_ = nullptr;  // the separator before Quit: the classroom's entries go above
  QStringList recent_;
  QString opening_path_, failed_open_path_;
  QString last_dir_, last_error_, current_path_;
};

}  // namespace unipool::studio
