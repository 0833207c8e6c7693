#include "joins/feature_value.h"

#include <charconv>
#include <cmath>

namespace ctrjoin {

namespace {

bool ParseNumber(std::string_view s, double& out) {
  if (s.empty()) return false;
  const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && ptr == s.data() + s.size() && std::isfinite(out);
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool ParseNumberArray(std::string_view s, std::vector<double>& out) {
  if (s.size() < 2 || s.front() != '[' || s.back() != ']') return false;
  s = Trim(s.substr(1, s.size() - 2));
  out.clear();
  if (s.empty()) return true;
  while (true) {
    const size_t comma = s.find(',');
    double d = 0;
    if (!ParseNumber(Trim(s.substr(0, comma)), d)) return false;
    out.push_back(d);
    if (comma == std::string_view::npos) return true;
    s.remove_prefix(comma + 1);
  }
}

}  // namespace

FeatureValue DecodeCellValue(std::string_view text) {
  double d = 0;
  if (ParseNumber(text, d)) return d;
  std::vector<double> v;
  if (ParseNumberArray(text, v)) return v;
  return std::string(text);
}

}  // namespace ctrjoin
