// BFCL's MathAPI class: stateless arithmetic and statistics with BFCL's result and error shapes
// ({"result": x} / {"error": "..."}).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>

#include "eval/fc/method.h"

namespace k2::eval::fc {
namespace {

double Num(const json& v) { return v.get<double>(); }

// Python keeps int arithmetic on ints: a sum of integers stays an integer.
json Sum(const json& a, const json& b, int sign) {
  if (a.is_number_integer() && b.is_number_integer()) return a.get<int64_t>() + sign * b.get<int64_t>();
  return Num(a) + sign * Num(b);
}

Result NumbersOr(const json& a, const char* what) {
  const json& n = a["numbers"];
  if (n.empty()) return Err(std::string("Cannot calculate ") + what + " of an empty list");
  for (auto& x : n)
    if (!x.is_number()) return Err("All elements in the list must be numbers");
  return json();
}

Result Unary(const json& a, const char* what, const std::function<json(const json&)>& f) {
  Result r = NumbersOr(a, what);
  if (std::holds_alternative<Err>(r)) return r;
  return json{{"result", f(a["numbers"])}};
}

// A float rounded to `digits` significant digits, as mpmath / Decimal results print at that precision.
json Significant(double x, int64_t digits) {
  if (digits < 1) digits = 1;
  if (digits > 17) digits = 17;
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*g", static_cast<int>(digits), x);
  return std::strtod(buf, nullptr);
}

// mpmath at `dps` decimal digits works with dps_to_prec(dps) = round((dps + 1) * log2(10)) bits (at least
// 1); x rounded to that many bits, ties to even, as mpmath rounds each operation.
int MpPrec(int64_t dps) { return static_cast<int>(std::max<double>(1, std::nearbyint(static_cast<double>(dps + 1) * 3.32192809488736234787))); }

double RoundBits(double x, int bits) {
  if (bits >= 53 || x == 0 || !std::isfinite(x)) return x;
  int e = 0;
  double m = std::frexp(x, &e);
  return std::ldexp(std::nearbyint(std::ldexp(m, bits)), e - bits);
}

}  // namespace

std::vector<Method> MathApiMethods() {
  auto two = [](const char* a, const char* b) {
    return std::vector<Param>{{a, "float", "First number.", true}, {b, "float", "Second number.", true}};
  };
  std::vector<Param> list = {{"numbers", "array", "List of numbers.", true}};
  return {
      {"MathAPI", "logarithm", "Logarithm of a number with a base, at a precision (significant digits).",
       {{"value", "float", "The number.", true}, {"base", "float", "The base.", true}, {"precision", "integer", "Digits of precision.", true}},
       [](json&, std::vector<std::string>&, const json& a) -> Result {
         double v = Num(a["value"]), b = Num(a["base"]);
         if (v <= 0 || b <= 0 || b == 1) return Err("math domain error");
         // BFCL computes mpmath.log(value) / mpmath.log(base) at mp.dps = precision: each step rounded to
         // that binary precision (its result is an mpf; the value here is that number as a double).
         int prec = MpPrec(static_cast<int64_t>(a["precision"].get<double>()));
         return json{{"result", RoundBits(RoundBits(std::log(v), prec) / RoundBits(std::log(b), prec), prec)}};
       }},
      {"MathAPI", "mean", "Mean of a list of numbers.", list,
       [](json&, std::vector<std::string>&, const json& a) {
         return Unary(a, "mean", [](const json& n) {
           double s = 0;
           for (auto& x : n) s += Num(x);
           return json(s / static_cast<double>(n.size()));
         });
       }},
      {"MathAPI", "standard_deviation", "Population standard deviation of a list of numbers.", list,
       [](json&, std::vector<std::string>&, const json& a) {
         return Unary(a, "standard deviation", [](const json& n) {
           double s = 0, v = 0;
           for (auto& x : n) s += Num(x);
           double m = s / static_cast<double>(n.size());
           for (auto& x : n) v += (Num(x) - m) * (Num(x) - m);
           return json(std::sqrt(v / static_cast<double>(n.size())));
         });
       }},
      {"MathAPI", "si_unit_conversion", "Convert a length between SI units (km, m, cm, mm, um, nm).",
       {{"value", "float", "The value.", true}, {"unit_in", "string", "Unit to convert from.", true}, {"unit_out", "string", "Unit to convert to.", true}},
       [](json&, std::vector<std::string>&, const json& a) -> Result {
         static const std::map<std::string, double> kMeters = {{"km", 1000}, {"m", 1}, {"cm", 0.01}, {"mm", 0.001}, {"um", 1e-6}, {"nm", 1e-9}};
         std::string in = a["unit_in"], out = a["unit_out"];
         if (!kMeters.count(in) || !kMeters.count(out)) return Err("Conversion from '" + in + "' to '" + out + "' is not supported");
         return json{{"result", Num(a["value"]) * kMeters.at(in) * (1 / kMeters.at(out))}};
       }},
      {"MathAPI", "imperial_si_conversion", "Convert between imperial and SI units.",
       {{"value", "float", "The value.", true}, {"unit_in", "string", "Unit to convert from.", true}, {"unit_out", "string", "Unit to convert to.", true}},
       [](json&, std::vector<std::string>&, const json& a) -> Result {
         static const std::map<std::string, double> kFactor = {
             {"cm_to_in", 0.393701}, {"in_to_cm", 2.54}, {"m_to_ft", 3.28084}, {"ft_to_m", 0.3048}, {"m_to_yd", 1.09361},
             {"yd_to_m", 0.9144}, {"km_to_miles", 0.621371}, {"miles_to_km", 1.60934}, {"kg_to_lb", 2.20462},
             {"lb_to_kg", 0.453592}, {"celsius_to_fahrenheit", 1.8}, {"fahrenheit_to_celsius", 5.0 / 9}};
         std::string in = a["unit_in"], out = a["unit_out"];
         if (in == out) return json{{"result", a["value"]}};
         auto it = kFactor.find(in + "_to_" + out);
         if (it == kFactor.end()) return Err("Conversion from '" + in + "' to '" + out + "' is not supported");
         double v = Num(a["value"]);
         if (in == "celsius") return json{{"result", v * it->second + 32}};
         if (in == "fahrenheit") return json{{"result", (v - 32) * it->second}};
         return json{{"result", v * it->second}};
       }},
      {"MathAPI", "add", "Add two numbers.", two("a", "b"),
       [](json&, std::vector<std::string>&, const json& a) -> Result { return json{{"result", Sum(a["a"], a["b"], 1)}}; }},
      {"MathAPI", "subtract", "Subtract one number from another.", two("a", "b"),
       [](json&, std::vector<std::string>&, const json& a) -> Result { return json{{"result", Sum(a["a"], a["b"], -1)}}; }},
      {"MathAPI", "multiply", "Multiply two numbers.", two("a", "b"),
       [](json&, std::vector<std::string>&, const json& a) -> Result {
         if (a["a"].is_number_integer() && a["b"].is_number_integer()) return json{{"result", a["a"].get<int64_t>() * a["b"].get<int64_t>()}};
         return json{{"result", Num(a["a"]) * Num(a["b"])}};
       }},
      {"MathAPI", "divide", "Divide one number by another.", two("a", "b"),
       [](json&, std::vector<std::string>&, const json& a) -> Result {
         if (Num(a["b"]) == 0) return Err("Cannot divide by zero");
         return json{{"result", Num(a["a"]) / Num(a["b"])}};
       }},
      {"MathAPI", "power", "Raise a number to a power.", two("base", "exponent"),
       [](json&, std::vector<std::string>&, const json& a) -> Result {
         if (a["base"].is_number_integer() && a["exponent"].is_number_integer() && a["exponent"].get<int64_t>() >= 0 && a["exponent"].get<int64_t>() < 63)
           return json{{"result", static_cast<int64_t>(std::llround(std::pow(Num(a["base"]), Num(a["exponent"]))))}};
         return json{{"result", std::pow(Num(a["base"]), Num(a["exponent"]))}};
       }},
      {"MathAPI", "square_root", "Square root of a number at a precision (significant digits).",
       {{"number", "float", "The number.", true}, {"precision", "integer", "Digits of precision.", true}},
       [](json&, std::vector<std::string>&, const json& a) -> Result {
         if (Num(a["number"]) < 0) return Err("Cannot calculate square root of a negative number");
         return json{{"result", Significant(std::sqrt(Num(a["number"])), a["precision"].get<int64_t>())}};
       }},
      {"MathAPI", "absolute_value", "Absolute value of a number.", {{"number", "float", "The number.", true}},
       [](json&, std::vector<std::string>&, const json& a) -> Result {
         if (a["number"].is_number_integer()) return json{{"result", std::llabs(a["number"].get<int64_t>())}};
         return json{{"result", std::fabs(Num(a["number"]))}};
       }},
      {"MathAPI", "round_number", "Round a number to a number of decimal places.",
       {{"number", "float", "The number.", true}, {"decimal_places", "integer", "Decimal places (default 0).", false}},
       [](json&, std::vector<std::string>&, const json& a) -> Result {
         int64_t d = a.value("decimal_places", int64_t{0});
         double scale = std::pow(10.0, static_cast<double>(d));
         double x = Num(a["number"]) * scale;
         double r = std::nearbyint(x);  // round half to even, as Python's round
         if (a["number"].is_number_integer() && d >= 0) return json{{"result", a["number"]}};
         return json{{"result", r / scale}};
       }},
      {"MathAPI", "percentage", "What percentage a part is of a whole.", two("part", "whole"),
       [](json&, std::vector<std::string>&, const json& a) -> Result {
         if (Num(a["whole"]) == 0) return Err("Whole value cannot be zero");
         return json{{"result", Num(a["part"]) / Num(a["whole"]) * 100}};
       }},
      {"MathAPI", "min_value", "Smallest number of a list.", list,
       [](json&, std::vector<std::string>&, const json& a) -> Result {
         if (a["numbers"].empty()) return Err("Cannot find minimum of an empty list");
         return Unary(a, "minimum", [](const json& n) {
           json best = n[0];
           for (auto& x : n)
             if (Num(x) < Num(best)) best = x;
           return best;
         });
       }},
      {"MathAPI", "max_value", "Largest number of a list.", list,
       [](json&, std::vector<std::string>&, const json& a) -> Result {
         if (a["numbers"].empty()) return Err("Cannot find maximum of an empty list");
         return Unary(a, "maximum", [](const json& n) {
           json best = n[0];
           for (auto& x : n)
             if (Num(x) > Num(best)) best = x;
           return best;
         });
       }},
      {"MathAPI", "sum_values", "Sum of a list of numbers.", list,
       [](json&, std::vector<std::string>&, const json& a) -> Result {
         return Unary(a, "sum", [](const json& n) {
           json s = 0;
           for (auto& x : n) s = Sum(s, x, 1);
           return s;
         });
       }},
  };
}

}  // namespace k2::eval::fc
