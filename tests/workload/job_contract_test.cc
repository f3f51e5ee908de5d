// What the load generator sends is what the pipeline accepts: every job a
// mix draws, narrow ones included, passes the pipeline's own request parser
// with the shape it was drawn with.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <random>

#include "firedrill/pipeline/job.h"
#include "firedrill/workload/http_job_client.h"
#include "firedrill/workload/job_mix.h"

namespace firedrill::workload {
namespace {

TEST(JobContractTest, EveryDrawnJobIsOneThePipelineAccepts) {
  const char* fixed = std::getenv("FIREDRILL_SEED");
  const std::uint64_t seed = fixed != nullptr ? std::stoull(fixed) : std::random_device{}();
  std::printf("seed %llu (FIREDRILL_SEED to repeat)\n", static_cast<unsigned long long>(seed));
  // Features drawn around 30 often fall below informative + the default 20
  // decoys; the pipeline refused those jobs before decoys were fitted.
  auto mix = JobMix::FromJson({{{"samples", "2000"}, {"features", "30"}, {"informative", "12"}, {"sizeDistribution", "lognormal"}},
                               {{"samples", "500"}, {"features", "8"}, {"decoys", "5"}, {"mode", "fast"}}},
                              seed);
  ASSERT_TRUE(mix.ok()) << mix.status();
  int narrowed = 0;  // drawn narrower than 12 + 20, so fewer decoys
  int full = 0;      // wide enough for all 20
  for (int i = 0; i < 2000; ++i) {
    JobSubmission job;
    job.idempotency_key = "k-" + std::to_string(i);
    job.shape = mix->Next();
    job.dataset_seed = static_cast<std::uint64_t>(i);
    const std::string body = JobRequestBody(job);
    const Result<pipeline::JobRequest> parsed = pipeline::ParseJobRequest(body);
    ASSERT_TRUE(parsed.ok()) << body << ": " << parsed.status();
    EXPECT_EQ(parsed->dataset.features, static_cast<std::uint64_t>(job.shape.features));
    EXPECT_EQ(parsed->dataset.informative, static_cast<std::uint64_t>(job.shape.informative));
    EXPECT_EQ(parsed->dataset.decoys, static_cast<std::uint64_t>(job.shape.decoys));
    if (job.shape.kind == 0) {
      EXPECT_EQ(job.shape.decoys, std::min<std::int64_t>(20, job.shape.features - job.shape.informative));
      narrowed += job.shape.features < 32 ? 1 : 0;
      full += job.shape.decoys == 20 ? 1 : 0;
    }
  }
  EXPECT_GT(narrowed, 100) << "the mix should have drawn many narrow datasets";
  EXPECT_GT(full, 100) << "and many wide enough for every decoy asked";
}

}  // namespace
}  // namespace firedrill::workload
