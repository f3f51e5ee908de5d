// Arrival processes: when the load generator intends to send each job of a
// phase, as offsets from the phase start. Schedules are pure and seeded —
// no clock, no I/O after construction, no allocation per arrival — so the
// generator measures latency from these intended times (no coordinated
// omission) and a seed replays a drill's load exactly.
//
// constant, ramp, steps and spike pace sends exactly: send k (k = 0, 1, ...)
// goes out when the integrated rate reaches k + 1/2, so a constant rate r
// sends at 1/2r, 3/2r, ... and a phase gets round(integral of the rate)
// sends, with no burst at a phase boundary; a rate below 1/s works the same
// way (0.2/s: one send every 5 s). poisson alone is random. trace replays a
// CSV. closed (users with think time) depends on when jobs finish, so it is
// a separate class, ClosedLoop.
//
// The phase's maxInFlight cap is the generator's business, not the
// schedule's: a send held back by the cap keeps its intended time here.
//
// A schedule has its own state; not thread-safe. ClosedLoop is immutable.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "firedrill/core/clock.h"
#include "firedrill/core/status.h"
#include "firedrill/core/units.h"
#include "firedrill/workload/job_mix.h"

namespace firedrill::workload {

class ArrivalSchedule {
 public:
  virtual ~ArrivalSchedule() = default;

  // The next intended send time, non-decreasing, always before the phase
  // length; nullopt once the phase has no more sends (and ever after).
  virtual std::optional<Duration> Next() = 0;

  // The job the trace gives for the send Next last returned; null when the
  // job mix decides (every kind but trace).
  virtual const JobShape* shape() const { return nullptr; }

  // The integral of the rate over the phase: the mean number of sends, for
  // checking the achieved rate (a trace: its rows inside the phase).
  virtual double expected_sends() const = 0;
};

// One step of kind: steps.
struct RateStep {
  Rate rate;
  Duration duration{0};
};

// kind: spike. Bursts start at every, 2*every, ... — the first `every` runs
// at the base rate, so a drill sees its baseline before the first burst.
struct SpikeShape {
  Rate base;
  Rate peak;
  Duration every{0};
  Duration length{0};
};

std::unique_ptr<ArrivalSchedule> ConstantArrivals(Rate rate, Duration phase_length);
std::unique_ptr<ArrivalSchedule> PoissonArrivals(Rate rate, Duration phase_length,
                                                 std::uint64_t seed);
std::unique_ptr<ArrivalSchedule> RampArrivals(Rate from, Rate to, Duration phase_length);
// Steps run in order; steps past the phase end are cut off, and when they end
// early the last step's rate holds until the phase ends.
Result<std::unique_ptr<ArrivalSchedule>> StepArrivals(std::vector<RateStep> steps,
                                                      Duration phase_length);
// Fails unless 0 < every and 0 <= length <= every.
Result<std::unique_ptr<ArrivalSchedule>> SpikeArrivals(const SpikeShape& spike,
                                                       Duration phase_length);

// A trace row: send this job at this offset.
struct TraceRow {
  Duration offset{0};
  JobShape shape;
};

// Parses a trace CSV: a header naming the columns offset, samples, features,
// informative and mode (in any order, each once), then one row per job with
// offsets (1.5s, 250ms, or plain seconds like 1.5) in non-decreasing order.
// Blank lines are skipped. Errors are InvalidArgument "file:line:column:
// message" with `file_name` as given; the first error found is reported.
Result<std::vector<TraceRow>> ParseTrace(std::string_view text, std::string_view file_name);

// Reads and parses `path`; offsets are divided by `speed` (2 replays twice as
// fast). Rows at or after the phase length are not sent.
Result<std::unique_ptr<ArrivalSchedule>> TraceArrivals(const std::filesystem::path& path,
                                                       double speed, Duration phase_length);

// The schedule for an arrival as the engine holds it (engine::Spec: `kind`
// and its validated fields, scalars as text; JSON numbers are also accepted,
// as events per second and seconds). A trace's relative `file` is found in
// `base_dir` (the scenario's folder). `seed` drives poisson only. Fails with
// InvalidArgument for kind closed (see ClosedLoop) and for fields that do
// not parse.
Result<std::unique_ptr<ArrivalSchedule>> MakeArrivalSchedule(std::string_view kind,
                                                             const nlohmann::json& fields,
                                                             Duration phase_length,
                                                             std::uint64_t seed,
                                                             const std::filesystem::path& base_dir);

// One of `shares` interleaved parts of `schedule`: sends index, index +
// shares, index + 2 * shares, ... — how a schedule is split over generator
// threads, exactly and for every kind, without changing its sum.
std::unique_ptr<ArrivalSchedule> ShareOfSchedule(std::unique_ptr<ArrivalSchedule> schedule, int index,
                                                 int shares);

// kind: closed. Each of `users` users sends, waits for its job to finish,
// thinks for `think_time`, and sends again. First sends are spread evenly
// over one think time so the users do not move in lockstep.
class ClosedLoop {
 public:
  ClosedLoop(std::int64_t users, Duration think_time, Duration phase_length);

  std::int64_t users() const { return users_; }
  Duration think_time() const { return think_time_; }

  // User `user` (0 <= user < users()) sends first at this offset; nullopt
  // when that is not before the phase end.
  std::optional<Duration> FirstSend(std::int64_t user) const;
  // The user's job finished (completed or failed) at `finished_at`: its next
  // send, or nullopt when the phase ends first.
  std::optional<Duration> NextSend(std::int64_t user, Duration finished_at) const;

 private:
  std::int64_t users_;
  Duration think_time_;
  Duration phase_length_;
};

// From kind: closed fields (users, optional thinkTime).
Result<ClosedLoop> MakeClosedLoop(const nlohmann::json& fields, Duration phase_length);

}  // namespace firedrill::workload
