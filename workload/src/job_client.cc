#include "firedrill/workload/job_client.h"

namespace firedrill::workload {

std::string AnotherJob(const std::string& job_id, const std::string& key) {
  return "job " + job_id + " now holds another job (key " + key +
         "): this one is gone (was the job database restored from an older backup?)";
}

}  // namespace firedrill::workload
