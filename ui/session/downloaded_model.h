// A downloaded MoE model (Mixtral, OLMoE, Qwen-MoE, DeepSeek; unipool/hf_model.h) opened in
// the studio as a run that cannot train: its routing of a text the user gives (counts per
// MoE layer and expert, each token's experts, co-activation of expert pairs) and of a folder
// of .txt files, one domain each. Every pass runs off the window's thread with progress and
// Cancel; a new request cancels the one running. The current training run is never touched.
#pragma once

#include <QFutureWatcher>
#include <QObject>
#include <QString>
#include <atomic>
#include <functional>
#include <memory>
#include <vector>

#include "unipool/hf_model.h"
#include "unipool/tokenizer.h"

namespace unipool::studio {

// One text through the model.
struct TextRouting {
  HfModelInfo info;
  std::vector<int32_t> ids;         // (n) the tokens routed (BOS first where the template adds it)
  std::vector<std::string> pieces;  // (n) each token's text
  HfRoutes routes;                  // (n, moe_layers, top_k)
  std::vector<int64_t> counts;      // (moe_layers, E): tokens whose top-k holds the expert
  std::vector<int64_t> pairs;       // (moe_layers, E, E): tokens whose top-k holds both
  bool truncated = false;           // the text had more than kMaxTokens tokens
  double seconds = 0;
  static constexpr int64_t kMaxTokens = 4096;
};

constexpr int kMaxDomains = 64;

// A folder of .txt files, one domain each (OLMoE's domain specialisation view).
struct DomainRouting {
  HfModelInfo info;
  std::vector<QString> domains;  // file names without .txt, sorted
  std::vector<int64_t> tokens;   // (D)
  std::vector<int64_t> counts;   // (D, moe_layers, E): tokens whose top-k holds the expert
  int64_t max_tokens_per_domain = 0;
};

class DownloadedModel : public QObject {
  Q_OBJECT
 public:
  explicit DownloadedModel(QObject* parent = nullptr);
  ~DownloadedModel() override;  // cancels and waits for the running pass

  // Which paths open here: classify_model_file (unipool/model_file.h), ModelFileKind::Downloaded.

  // Each returns at once; the result arrives as a signal (or failed()).
  void open(const QString& path);
  void routeText(const QString& text, int seq = 512);
  void routeDomains(const QString& folder, int64_t max_tokens_per_domain = 2048);
  void cancel();

  bool busy() const { return watcher_.isRunning(); }
  bool isOpen() const { return model_ != nullptr; }
  const HfModelInfo& info() const { return info_; }
  bool hasTokenizer() const { return tokenizer_ != nullptr; }
  std::shared_ptr<const HfModel> model() const { return model_; }
  std::shared_ptr<const Tokenizer> tokenizer() const { return tokenizer_; }

 Q_SIGNALS:
  void opened(const QString& path);
  void progress(double fraction, const QString& what, double seconds_left);
  void textRouted(std::shared_ptr<const unipool::studio::TextRouting> result);
  void domainsRouted(std::shared_ptr<const unipool::studio::DomainRouting> result);
  // `message` is kDownloadedCancelled after cancel().
  void failed(const QString& what, const QString& message);

 private:
  using Done = std::function<void()>;  // runs on the window's thread
  // Runs `work` on a pool thread; `work` returns what to do on the window's thread after.
  void launch(const QString& what, std::function<Done(const ProgressFn&)> work);

  QFutureWatcher<Done> watcher_;
  std::shared_ptr<std::atomic<bool>> cancel_;
  QList<QFuture<Done>> superseded_;
  std::shared_ptr<const HfModel> model_;
  std::shared_ptr<const Tokenizer> tokenizer_;
  HfModelInfo info_;
  QString path_;
};

inline const QString kDownloadedCancelled = QStringLiteral("cancelled");

}  // namespace unipool::studio

Q_DECLARE_METATYPE(std::shared_ptr<const unipool::studio::TextRouting>)
Q_DECLARE_METATYPE(std::shared_ptr<const unipool::studio::DomainRouting>)
