// Small text helpers shared by every component's messages.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace firedrill {

// Levenshtein distance, for "did you mean" suggestions.
std::size_t EditDistance(std::string_view a, std::string_view b);

// The candidate closest to `word` when it is close enough to be a likely
// typo (distance at most a third of the word, and at most 3), else "".
std::string ClosestMatch(std::string_view word, const std::vector<std::string>& candidates);

// "a, b, c" — for "expected one of ..." messages.
std::string JoinNames(const std::vector<std::string>& names, std::string_view separator = ", ");

}  // namespace firedrill
