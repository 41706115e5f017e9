// An explained OOM kill, for people (the wording of diagnosis.md) and scripts (memsight.oom/1).
#pragma once

#include <string>

#include "core/oom_explain.hpp"

namespace memsight::report {

// One JSON object on one line, no newline at the end.
std::string render_oom_json(const core::OomFacts& facts, const core::OomExplanation& why);
// A header line with the kill, the verdict with its confidence, the summary.
std::string render_oom_text(const core::OomFacts& facts, const core::OomExplanation& why);

}  // namespace memsight::report
