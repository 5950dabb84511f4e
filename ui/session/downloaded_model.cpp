#include "session/downloaded_model.h"

#include <QDir>
#include <QElapsedTimer>
#include <QFile>
#include <QFileInfo>
#include <QJsonDocument>
#include <QJsonObject>
#include <QMetaObject>
#include <QPointer>
#include <QThread>
#include <QtConcurrent/QtConcurrentRun>
#include <algorithm>


namespace unipool::studio {

namespace {

// Counts and pairs of one routed text (or file) into (moe_layers, E) and (moe_layers, E, E).
void count_routes(const HfRoutes& r, int experts, std::vector<int64_t>* counts,
                  std::vector<int64_t>* pairs) {
  const int64_t M = r.moe_layers, k = r.top_k, E = experts;
  for (int64_t t = 0; t < r.n_tokens; ++t)
    for (int64_t m = 0; m < M; ++m) {
      const int32_t* chosen = r.experts.data() + (t * M + m) * k;
      for (int64_t a = 0; a < k; ++a) {
        ++(*counts)[size_t(m * E + chosen[a])];
        if (!pairs) continue;
        for (int64_t b = 0; b < k; ++b)
          ++(*pairs)[size_t((m * E + chosen[a]) * E + chosen[b])];
      }
    }
}

QString tokenizer_path(const QString& model_path) {
  const QFileInfo f(model_path);
  const QDir folder = f.isDir() ? QDir(model_path) : f.dir();
  return folder.filePath(QStringLiteral("tokenizer.json"));
}

}  // namespace

DownloadedModel::DownloadedModel(QObject* parent) : QObject(parent) {
  static const bool registered = [] {
    qRegisterMetaType<std::shared_ptr<const TextRouting>>();
    qRegisterMetaType<std::shared_ptr<const DomainRouting>>();
    return true;
  }();
  (void)registered;
  connect(&watcher_, &QFutureWatcher<Done>::finished, this, [this] {
    const Done done = watcher_.result();
    if (done) done();
  });
}

DownloadedModel::~DownloadedModel() {
  cancel();
  watcher_.waitForFinished();
  for (auto& f : superseded_) f.waitForFinished();
}

void DownloadedModel::cancel() {
  if (cancel_) cancel_->store(true);
}

void DownloadedModel::launch(const QString& what, std::function<Done(const ProgressFn&)> work) {
  cancel();  // the window never waits: a running pass stops at its next layer
  superseded_.removeIf([](const auto& f) { return f.isFinished(); });
  if (watcher_.isRunning()) superseded_.append(watcher_.future());
  auto cancel = std::make_shared<std::atomic<bool>>(false);
  cancel_ = cancel;
  QPointer<DownloadedModel> owner(this);
  watcher_.setFuture(QtConcurrent::run([owner, cancel, what, work]() -> Done {
    QElapsedTimer clock;
    clock.start();
    int shown = -1;
    // Progress crosses to the window's thread queued, at most once per percent.
    const ProgressFn progress = [&](double done, const std::string& step) {
      const int percent = int(done * 100);
      if (percent != shown && owner) {
        shown = percent;
        const double elapsed = double(clock.elapsed()) / 1000.0;
        const double left = done > 0.02 ? elapsed / done * (1 - done) : -1;
        const QString text = what + QStringLiteral(": ") + QString::fromStdString(step);
        QMetaObject::invokeMethod(
            owner,
            [owner, cancel, done, text, left] {
              if (owner && !cancel->load()) Q_EMIT owner->progress(done, text, left);
            },
            Qt::QueuedConnection);
      }
      return !cancel->load();
    };
    try {
      return work(progress);
    } catch (const Cancelled&) {
      return [owner, what] {
        if (owner) Q_EMIT owner->failed(what, kDownloadedCancelled);
      };
    } catch (const std::exception& e) {
      const QString message = QString::fromUtf8(e.what());
      return [owner, what, message] {
        if (owner) Q_EMIT owner->failed(what, message);
      };
    }
  }));
}

void DownloadedModel::open(const QString& path) {
  launch(tr("Opening %1").arg(QFileInfo(path).fileName()),
         [this, path](const ProgressFn& progress) -> Done {
    std::unique_ptr<HfModel> fresh = HfModel::open(path.toStdString(), progress);
    // Converting a layer's weights is most of a short text's pass: every core helps.
    fresh->set_weight_threads(std::max(1, QThread::idealThreadCount()));
    std::shared_ptr<const HfModel> model = std::move(fresh);
    std::shared_ptr<const Tokenizer> tokenizer;
    const QString tok = tokenizer_path(path);
    if (QFileInfo::exists(tok))
      tokenizer = Tokenizer::from_model_folder(QFileInfo(tok).absolutePath().toStdString());
    // Only a model that opened replaces the one shown (a failed open keeps it).
    return [this, path, model, tokenizer] {
      model_ = model;
      tokenizer_ = tokenizer;
      info_ = model->info();
      path_ = path;
      Q_EMIT opened(path);
    };
  });
}

void DownloadedModel::routeText(const QString& text, int seq) {
  const auto model = model_;
  const auto tokenizer = tokenizer_;
  if (!model || !tokenizer) {
    Q_EMIT failed(tr("Routing a text"),
                  model ? tr("This model has no tokenizer.json beside it: it cannot read text.")
                        : tr("No downloaded model is open."));
    return;
  }
  // The work touches only its copies; the returned step runs on the window's thread.
  launch(tr("Routing the text"), [this, model, tokenizer, text, seq](const ProgressFn& progress) -> Done {
    QElapsedTimer clock;
    clock.start();
    auto r = std::make_shared<TextRouting>();
    r->info = model->info();
    r->ids = tokenizer->encode(text.toStdString(), true);  // the template's BOS, as eval reads text
    if (int64_t(r->ids.size()) > TextRouting::kMaxTokens) {
      r->ids.resize(size_t(TextRouting::kMaxTokens));
      r->truncated = true;
    }
    if (r->ids.empty()) throw std::runtime_error("the text has no tokens");
    for (int32_t id : r->ids) r->pieces.push_back(tokenizer->piece(id));
    r->routes = model->routes(r->ids, seq, progress);
    const size_t M = r->info.moe_layers.size(), E = size_t(r->info.n_experts);
    r->counts.assign(M * E, 0);
    r->pairs.assign(M * E * E, 0);
    count_routes(r->routes, r->info.n_experts, &r->counts, &r->pairs);
    r->seconds = double(clock.elapsed()) / 1000.0;
    return [this, r] { Q_EMIT textRouted(r); };
  });
}

void DownloadedModel::routeDomains(const QString& folder, int64_t max_tokens) {
  const auto model = model_;
  const auto tokenizer = tokenizer_;
  if (!model || !tokenizer) {
    Q_EMIT failed(tr("Domains"), model ? tr("This model has no tokenizer.json: it cannot read text.")
                                       : tr("No downloaded model is open."));
    return;
  }
  QStringList files = QDir(folder).entryList({QStringLiteral("*.txt")}, QDir::Files, QDir::Name);
  if (files.isEmpty()) {
    Q_EMIT failed(tr("Domains"), tr("%1 has no .txt files (one file = one domain).").arg(folder));
    return;
  }
  if (files.size() > kMaxDomains) {
    Q_EMIT failed(tr("Domains"), tr("%1 has %2 .txt files; at most %3 domains are compared.")
                                     .arg(folder).arg(files.size()).arg(kMaxDomains));
    return;
  }
  launch(tr("Domains"), [this, model, tokenizer, folder, files, max_tokens](const ProgressFn& progress) -> Done {
    auto r = std::make_shared<DomainRouting>();
    r->info = model->info();
    r->max_tokens_per_domain = max_tokens;
    const size_t M = r->info.moe_layers.size(), E = size_t(r->info.n_experts);
    const size_t D = size_t(files.size());
    r->counts.assign(D * M * E, 0);
    for (size_t d = 0; d < D; ++d) {
      QFile file(QDir(folder).filePath(files[int(d)]));
      if (!file.open(QIODevice::ReadOnly))
        throw std::runtime_error(file.fileName().toStdString() + ": cannot open it");
      // Enough bytes for max_tokens tokens (a token is rarely over 16 bytes): a large file is
      // never read whole.
      const QByteArray bytes = file.read(max_tokens * 16);
      std::vector<int32_t> ids = tokenizer->encode(bytes.toStdString(), false);
      if (int64_t(ids.size()) > max_tokens) ids.resize(size_t(max_tokens));
      QString name = files[int(d)];
      name.chop(4);
      r->domains.push_back(name);
      r->tokens.push_back(int64_t(ids.size()));
      if (ids.empty()) continue;
      const HfRoutes routes = model->routes(ids, 512, [&](double done, const std::string& step) {
        return progress((double(d) + done) / double(D), name.toStdString() + ", " + step);
      });
      std::vector<int64_t> counts(M * E, 0);
      count_routes(routes, r->info.n_experts, &counts, nullptr);
      std::copy(counts.begin(), counts.end(), r->counts.begin() + long(d * M * E));
    }
    return [this, r] { Q_EMIT domainsRouted(r); };
  });
}

}  // namespace unipool::studio
