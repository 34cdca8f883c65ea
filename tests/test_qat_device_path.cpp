// QatController's device TRS path, forced on the CPU (set_force_device_path): it must equal the
// host path bit for bit (weights, codes, TRS state), replay every step's counts in order at a
// sync, reach the trainer's metrics window with every step exactly once, and refuse to hand a
// state with a bad weight scale to a checkpoint. The same on a GPU: test_cuda_trs_device.cpp.
#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "apps/metrics.h"
#include "core/autograd.h"
#include "optim/trs.h"
#include "quant/qat_controller.h"
#include "trs_device_util.h"

using namespace tranq;
using namespace tranq::test;

TEST(QatControllerDevicePath, ForcedOnCpuEqualsTheHostPath) {
  for (const std::string opt_name : {"sgd", "adam"})
    for (TalrRule rule : {TalrRule::multiplicative, TalrRule::additive}) {
      const std::string what = opt_name + " " + optim::talr_rule_name(rule);
      Rig a(opt_name, Device::cpu()), b(opt_name, Device::cpu());
      auto qa = a.controller(rule), qb = b.controller(rule);
      qb->set_force_device_path(true);
      EXPECT_FALSE(qa->deferred());
      EXPECT_TRUE(qb->deferred());
      qa->initialise();
      qb->initialise();
      std::vector<std::vector<std::vector<int64_t>>> host_counts;
      std::vector<double> host_totals;
      for (int64_t step = 0; step < 6; ++step) {
        a.backward();
        b.backward();
        qa->before_step(*a.opt);
        qb->before_step(*b.opt);
        EXPECT_TRUE(b.opt->param_groups()[b.groups[0]].lr_table.defined());
        EXPECT_FALSE(a.opt->param_groups()[a.groups[0]].lr_table.defined());
        a.opt->step();
        b.opt->step();
        qa->after_step(step);
        qb->after_step(step);
        host_counts.push_back(counts_of(*qa));
        host_totals.push_back(qa->total().tr);
        for (size_t i = 0; i < a.layers.size(); ++i) {
          ASSERT_TRUE(bits_equal(a.layers[i].second->weight(), b.layers[i].second->weight()))
              << what << " step " << step << " layer " << i;
          ASSERT_TRUE(bits_equal(a.layers[i].second->codes(), b.layers[i].second->codes()));
          ASSERT_TRUE(
              bits_equal(a.layers[i].second->prev_codes(), b.layers[i].second->prev_codes()));
        }
        // Checkpoints need no sync: the device state is read directly.
        expect_same_state(qb->state_tensors(), qa->state_tensors(), what + " state_tensors");
        if (step == 2) {  // a logged step in the middle
          size_t replayed = 0;
          qb->sync_for_logging([&](const quant::QatController& q) {
            EXPECT_EQ(counts_of(q), host_counts[replayed]) << what << " replayed " << replayed;
            EXPECT_EQ(q.total().tr, host_totals[replayed]);
            ++replayed;
          });
          EXPECT_EQ(replayed, 3u);
          expect_same_state(qb->trs()->state_tensors(), qa->trs()->state_tensors(), what);
        }
      }
      size_t replayed = 0;
      qb->sync_for_logging([&](const quant::QatController& q) {
        EXPECT_EQ(counts_of(q), host_counts[3 + replayed]) << what;
        ++replayed;
      });
      EXPECT_EQ(replayed, 3u);
      EXPECT_EQ(counts_of(*qb), counts_of(*qa));
      int64_t changed = 0;
      for (const auto& l : qa->last()) changed += l.counts.changed;
      EXPECT_GT(changed, 0) << what << ": nothing changed, the test would be weak";
      expect_same_state(qb->trs()->state_tensors(), qa->trs()->state_tensors(), what);
      for (size_t i = 0; i < a.layers.size(); ++i)
        EXPECT_EQ(qb->trs()->talr(i), qa->trs()->talr(i));
      // A sync without pending steps calls nothing.
      qb->sync_for_logging(
          [&](const quant::QatController&) { ADD_FAILURE() << "no step pending"; });
      // load_state reaches the device state.
      TrsController other(qa->trs()->options(), qa->trs()->layer_names());
      qb->load_state(other.state_tensors());
      expect_same_state(qb->state_tensors(), other.state_tensors(), what + " after load_state");
    }
}

// More steps between syncs than the first history allocation holds (64): the history grows
// on the device and every step is replayed in order.
TEST(QatControllerDevicePath, HistoryGrowsAndReplaysEveryStep) {
  Rig a("sgd", Device::cpu()), b("sgd", Device::cpu());
  auto qa = a.controller(TalrRule::multiplicative), qb = b.controller(TalrRule::multiplicative);
  qb->set_force_device_path(true);
  qa->initialise();
  qb->initialise();
  std::vector<std::vector<std::vector<int64_t>>> host_counts;
  const int64_t steps = 150;
  for (int64_t step = 0; step < steps; ++step) {
    // Flip the sign of one layer's weights per step: many codes change, differently per step.
    for (Rig* r : {&a, &b}) {
      const Tensor w = r->layers[static_cast<size_t>(step) % r->layers.size()].second->weight();
      std::vector<float> v = w.to_vector<float>();
      for (float& x : v) x = -x;
      NoGradGuard ng;
      w.copy_(Tensor::from_vector<float>(v, w.shape()));
    }
    qa->after_step(step);
    qb->after_step(step);
    host_counts.push_back(counts_of(*qa));
  }
  size_t replayed = 0;
  qb->sync_for_logging([&](const quant::QatController& q) {
    ASSERT_LT(replayed, host_counts.size());
    EXPECT_EQ(counts_of(q), host_counts[replayed]) << "step " << replayed;
    ++replayed;
  });
  EXPECT_EQ(replayed, static_cast<size_t>(steps));
  EXPECT_GT(host_counts[1][1][1], 0);
  expect_same_state(qb->trs()->state_tensors(), qa->trs()->state_tensors(), "after 150 steps");
}

TEST(QatControllerDevicePath, HostPathIsUntouchedWithoutForcing) {
  Rig a("sgd", Device::cpu());
  auto qa = a.controller(TalrRule::multiplicative);
  qa->initialise();
  a.backward();
  qa->before_step(*a.opt);
  for (size_t i = 0; i < a.layers.size(); ++i) {
    const auto& g = a.opt->param_groups()[a.groups[i]];
    EXPECT_FALSE(g.lr_table.defined());
    EXPECT_EQ(g.lr, 0.5);
  }
  a.opt->step();
  qa->after_step(0);
  EXPECT_EQ(qa->trs()->updates(), 1);  // updated at once, no sync needed
  qa->sync_for_logging([](const quant::QatController&) { ADD_FAILURE() << "host path"; });
}

// ---------------------------------------------------------------------------------------------
// The trainer's use (apps/trainer.cpp): syncs on log steps, before checkpoints, at the end of an
// epoch and of the run, each replaying the pending steps into the metrics window.

namespace {

// One run of the trainer's QAT bookkeeping over a Rig.
struct TrainerFlow {
  Rig rig;
  std::unique_ptr<quant::QatController> q;
  app::TransitionWindow window;
  int64_t added = 0;  // steps added to a window, over the run
  std::vector<nlohmann::json> lines;
  std::vector<NamedTensors> checkpoints;

  TrainerFlow(bool device, TalrRule rule) : rig("sgd", Device::cpu()), q(rig.controller(rule)) {
    q->set_force_device_path(device);
    q->initialise();
  }
  // The trainer's sync_qat.
  void sync() {
    q->sync_for_logging([&](const quant::QatController& c) {
      window.add(c);
      ++added;
    });
  }
  void step(int64_t s) {
    rig.backward();
    q->before_step(*rig.opt);
    rig.opt->step();
    q->after_step(s);
    if (!q->deferred()) {
      window.add(*q);
      ++added;
    }
  }
  void log(int64_t pos) {
    sync();
    nlohmann::json line = {{"step", pos}};
    window.flush_into(line, *q, pos);
    lines.push_back(line);
  }
  void checkpoint() {
    sync();
    checkpoints.push_back(q->state_tensors());
  }
  // 13 steps, logged every 3, checkpointed every 4 and at the end of the first "epoch" (7
  // steps), where the trainer syncs and starts a new window.
  void run() {
    for (int64_t s = 0; s < 13; ++s) {
      if (s == 7) {
        sync();
        window = app::TransitionWindow();
      }
      step(s);
      const int64_t pos = s + 1;
      if (pos % 3 == 0) log(pos);
      if (pos % 4 == 0 || pos == 7) checkpoint();
    }
    sync();  // the end of the run
    log(13);
  }
};

}  // namespace

TEST(QatControllerDevicePath, TrainerFlowGivesTheHostPathsMetricsAndCheckpoints) {
  for (TalrRule rule : {TalrRule::multiplicative, TalrRule::additive}) {
    const std::string what = optim::talr_rule_name(rule);
    TrainerFlow host(false, rule), dev(true, rule);
    ASSERT_FALSE(host.q->deferred());
    ASSERT_TRUE(dev.q->deferred());
    host.run();
    dev.run();
    EXPECT_EQ(host.added, 13) << what;
    EXPECT_EQ(dev.added, 13) << what << ": every step replayed exactly once";
    ASSERT_EQ(dev.lines.size(), host.lines.size());
    for (size_t i = 0; i < host.lines.size(); ++i)
      EXPECT_EQ(dev.lines[i], host.lines[i]) << what << " log line " << i;
    ASSERT_EQ(dev.checkpoints.size(), host.checkpoints.size());
    for (size_t i = 0; i < host.checkpoints.size(); ++i)
      expect_same_state(dev.checkpoints[i], host.checkpoints[i],
                        what + " checkpoint " + std::to_string(i));
    // The lines carry per-step statistics that differ from step to step, so a step added twice
    // or missed would change them.
    ASSERT_GE(host.lines.size(), 3u);
    EXPECT_GT(host.lines[0]["tr"].get<double>(), 0.0) << what;
    EXPECT_NE(host.lines[0]["tr"], host.lines[1]["tr"]) << what;
    EXPECT_TRUE(host.lines[0].contains("talr")) << what;
  }
}

// On the CPU the transition pass checks the scale itself, so the device path (forced) throws in
// after_step as the host path does; only on CUDA is a bad scale reported in the counts row (see
// test_cuda_trs_device.cpp). The next test writes such a row by hand.
TEST(QatControllerDevicePath, ZeroScaleThrowsAtOnceOnTheCpu) {
  Rig b("sgd", Device::cpu());
  auto qb = b.controller(TalrRule::multiplicative);
  qb->set_force_device_path(true);
  qb->initialise();
  {
    NoGradGuard ng;
    b.layers[2].second->weight_scale().fill_(0.0);
  }
  EXPECT_THROW(qb->after_step(0), ValueError);
}

TEST(QatControllerDevicePath, APendingBadRowIsRefusedAtCheckpointAndSync) {
  TrainerFlow f(true, TalrRule::multiplicative);
  EXPECT_FALSE(f.q->pending_counts().defined());
  f.step(0);
  f.step(1);
  f.log(2);
  EXPECT_FALSE(f.q->pending_counts().defined());  // all synced
  f.step(2);
  f.step(3);
  const int64_t layers = static_cast<int64_t>(f.rig.layers.size());
  const Tensor pending = f.q->pending_counts();
  ASSERT_EQ(pending.shape(), (Shape{2, layers, 4}));
  // Layer 5 at step 2 (the first pending one): the CUDA pass's report of 4 bad scale values.
  pending.data<int64_t>()[(0 * layers + 5) * 4 + 1] = -4;
  const std::string bad = f.rig.layers[5].first;
  auto expect_names_it = [&](const std::function<void()>& fn, const std::string& what) {
    try {
      fn();
      ADD_FAILURE() << what << ": expected a ValueError";
    } catch (const ValueError& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find("'" + bad + "'"), std::string::npos) << what << ": " << msg;
      EXPECT_NE(msg.find("4 weight scale values"), std::string::npos) << what << ": " << msg;
      EXPECT_NE(msg.find("at step 2"), std::string::npos) << what << ": " << msg;
    }
  };
  expect_names_it([&] { f.q->state_tensors(); }, "state_tensors");
  const int64_t added = f.added;
  expect_names_it([&] { f.checkpoint(); }, "the trainer's checkpoint");
  EXPECT_EQ(f.added, added) << "nothing replayed before the error";
  EXPECT_TRUE(f.checkpoints.empty());
  EXPECT_EQ(f.q->trs()->updates(), 2);  // the host controller was left at the last good sync
  expect_names_it([&] { f.sync(); }, "a second sync");  // still pending: raised again
  // A restored state replaces the pending steps; checkpoints work again.
  TrsController fresh(f.q->trs()->options(), f.q->trs()->layer_names());
  f.q->load_state(fresh.state_tensors());
  EXPECT_FALSE(f.q->pending_counts().defined());
  expect_same_state(f.q->state_tensors(), fresh.state_tensors(), "after load_state");
}

// Plain QAT (no TRS) takes the device path too: the counts of every step wait in the device
// table and are replayed in order at a sync, equal to the host path's.
TEST(QatControllerDevicePath, StatisticsOnlyRunsAreDeferredAndReplayed) {
  Rig a("sgd", Device::cpu()), b("sgd", Device::cpu());
  quant::QatController qa(a.layers, a.groups, nullptr), qb(b.layers, b.groups, nullptr);
  qb.set_force_device_path(true);
  EXPECT_FALSE(qa.deferred());
  EXPECT_TRUE(qb.deferred());
  qa.initialise();
  qb.initialise();
  std::vector<std::vector<std::vector<int64_t>>> host_counts;
  for (int64_t step = 0; step < 4; ++step) {
    a.backward();
    b.backward();
    qa.before_step(*a.opt);
    qb.before_step(*b.opt);
    EXPECT_FALSE(b.opt->param_groups()[b.groups[0]].lr_table.defined());  // no TRS: plain lr
    a.opt->step();
    b.opt->step();
    qa.after_step(step);
    qb.after_step(step);
    host_counts.push_back(counts_of(qa));
    for (size_t i = 0; i < a.layers.size(); ++i)
      ASSERT_TRUE(bits_equal(a.layers[i].second->weight(), b.layers[i].second->weight()));
  }
  ASSERT_TRUE(qb.pending_counts().defined());
  EXPECT_EQ(qb.pending_counts().size(0), 4);
  EXPECT_TRUE(qb.state_tensors().empty());
  size_t replayed = 0;
  qb.sync_for_logging([&](const quant::QatController& q) {
    ASSERT_LT(replayed, host_counts.size());
    EXPECT_EQ(counts_of(q), host_counts[replayed]) << "step " << replayed;
    ++replayed;
  });
  EXPECT_EQ(replayed, 4u);
  EXPECT_FALSE(qb.pending_counts().defined());
  int64_t changed = 0;
  for (const auto& l : qa.last()) changed += l.counts.changed;
  EXPECT_GT(changed, 0) << "nothing changed, the test would be weak";
}
