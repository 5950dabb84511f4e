// The run log's codec (unipool/run_log.h): every record written by the CLI's writers reads
// back field for field (the routing window cell for cell, against a real training step's
// counts); a torn line, a foreign line, mistyped fields and impossible or hostile routing
// shapes are refused with run_log::Error, never a crash or a huge allocation.
#include <QtTest>
#include <cmath>

#include "unipool/config.h"
#include "unipool/engine.h"
#include "unipool/run_log.h"

using namespace unipool;
using run_log::Record;

namespace {

std::string error_of(const std::string& line) {
  try {
    run_log::parse_line(line);
  } catch (const run_log::Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

class TestRunLog : public QObject {
  Q_OBJECT
 private Q_SLOTS:
  void headerRoundTrip() {
    run_log::Header h;
    const Preset p = preset("tiny");
    h.config = p.model;
    h.train = p.train;
    h.train.seed = 77;
    h.data = "/data/text folder/a.txt";
    h.from_step = 1234;
    h.world_size = 4;
    h.compute = "cpu, 2 threads, fused";
    const Record r = run_log::parse_line(run_log::header_line(h));
    QVERIFY(r.kind == Record::Kind::Header);
    QCOMPARE(to_json(r.header.config), to_json(h.config));
    QVERIFY(r.header.train == h.train);
    QCOMPARE(r.header.data, h.data);
    QCOMPARE(r.header.from_step, int64_t(1234));
    QCOMPARE(r.header.world_size, 4);
    QCOMPARE(r.header.compute, h.compute);
  }

  // A real step's metrics (routing counts from the engine) written and read back.
  void stepRoundTrip() {
    const Preset p = preset("tiny");
    TrainOptions o = p.train;
    o.batch = 2;
    o.seq = 32;
    Engine e(p.model, o, DataSpec{"", 20000}, 1);
    e.set_collect_stats(true);
    StepMetrics m = e.train_step();
    QVERIFY(!m.routing.empty());
    m.validated = true;
    m.valid_loss = 3.25;
    m.event = "freeze";
    m.message = "frozen at step 1";
    for (bool with_routing : {false, true}) {
      const Record r = run_log::parse_line(run_log::step_line(m, nullptr, with_routing));
      QVERIFY(r.kind == Record::Kind::Step);
      const run_log::Step& s = r.step;
      QCOMPARE(s.step, m.step);
      QCOMPARE(s.loss, m.loss);
      QCOMPARE(s.ce, m.ce);
      QCOMPARE(s.aux, m.aux);
      QCOMPARE(s.lr, m.lr);
      QCOMPARE(s.grad_norm, m.grad_norm);
      QCOMPARE(s.tokens_per_s, m.tokens_per_s);
      QVERIFY(s.has_valid_loss);
      QCOMPARE(s.valid_loss, 3.25);
      QCOMPARE(s.event, std::string("freeze"));
      QCOMPARE(s.message, m.message);
      if (!with_routing) {
        QVERIFY(s.routing.counts.empty());
        continue;
      }
      QCOMPARE(s.routing.tokens, m.routing.tokens);
      QCOMPARE(s.routing.counts, m.routing.counts);
      QCOMPARE(s.routing.gate_sum, m.routing.gate_sum);
      QCOMPARE(s.routing.entropy_sum, m.routing.entropy_sum);
      QCOMPARE(s.routing.zero_gate, m.routing.zero_gate);
      QCOMPARE(s.routing.domain_counts, m.routing.domain_counts);
      QCOMPARE(s.routing.n_domains, m.routing.n_domains);
    }
  }

  void savedRoundTrip() {
    const Record r = run_log::parse_line(run_log::saved_line({"/runs/a b/m.safetensors", 90}));
    QVERIFY(r.kind == Record::Kind::Saved);
    QCOMPARE(r.saved.path, std::string("/runs/a b/m.safetensors"));
    QCOMPARE(r.saved.at_step, int64_t(90));
  }

  void refusesWhatIsNotARecord() {
    const std::string step = "{\"step\":3,\"loss\":2.5,\"ce\":2.4}";
    QVERIFY(error_of(step).empty());
    QVERIFY(!error_of(step.substr(0, 14)).empty());  // torn mid-line
    QVERIFY(!error_of("").empty());
    QVERIFY(!error_of("[1,2]").empty());
    QVERIFY(!error_of("{\"hello\":1}").empty());
    QVERIFY(QString::fromStdString(error_of("{\"step\":\"three\",\"loss\":1,\"ce\":1}")).contains("step"));
    QVERIFY(!error_of("{\"run\":{\"config\":{\"d_model\":-5},\"train\":{}}}").empty());
    QVERIFY(!error_of("{\"run\":{\"train\":{}}}").empty());
    const std::string routing_head =
        "{\"step\":1,\"loss\":1,\"ce\":1,\"routing\":{\"n_layers\":2,\"layers_per_group\":1,"
        "\"experts_per_group\":3,\"top_k\":1,\"tokens\":4,";
    QVERIFY(error_of(routing_head + "\"counts\":[1,1,1,1,0,0]}}").empty());
    QVERIFY(QString::fromStdString(error_of(routing_head + "\"counts\":[1,1,1]}}"))
                .contains("counts"));
    QVERIFY(!error_of(routing_head + "\"counts\":[1,1,1,1,0,0],\"gate_sum\":[0.5]}}").empty());
    QVERIFY(!error_of(routing_head + "\"tokens\":4}}").empty());  // no counts
    // Hostile shapes are refused before anything is allocated.
    QVERIFY(!error_of("{\"step\":1,\"loss\":1,\"ce\":1,\"routing\":{\"n_layers\":4000,\"layers_per_group\":1,"
                      "\"experts_per_group\":1000000,\"top_k\":1,\"tokens\":0,\"counts\":[]}}")
                 .empty());
    QVERIFY(!error_of("{\"step\":1,\"loss\":1,\"ce\":1,\"routing\":{\"n_layers\":2,\"layers_per_group\":1,"
                      "\"experts_per_group\":3,\"top_k\":9,\"tokens\":0,\"counts\":[0,0,0,0,0,0]}}")
                 .empty());
  }
};

QTEST_APPLESS_MAIN(TestRunLog)
#include "tst_run_log.moc"
