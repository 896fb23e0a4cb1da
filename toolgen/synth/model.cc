// Names of the model's enums, civil-date arithmetic and money conversion (see model.h).
#include "toolgen/synth/model.h"

#include <cmath>
#include <cstdio>

namespace k2::toolgen::synth {

const char* FieldKindName(FieldKind k) {
  switch (k) {
    case FieldKind::kId: return "id";
    case FieldKind::kRef: return "ref";
    case FieldKind::kString: return "string";
    case FieldKind::kEmail: return "email";
    case FieldKind::kPhone: return "phone";
    case FieldKind::kEnum: return "enum";
    case FieldKind::kMoney: return "money";
    case FieldKind::kDate: return "date";
    case FieldKind::kInt: return "int";
    case FieldKind::kBool: return "bool";
    case FieldKind::kGeo: return "geo";
    case FieldKind::kRecord: return "record";
  }
  return "?";
}

const char* PolicyKindName(PolicyKind k) {
  switch (k) {
    case PolicyKind::kRefundWindow: return "refund_window";
    case PolicyKind::kCancelNotice: return "cancel_notice";
    case PolicyKind::kNoDoubleBooking: return "no_double_booking";
    case PolicyKind::kMaxAmount: return "max_amount";
    case PolicyKind::kMaxActive: return "max_active";
    case PolicyKind::kTransferLimit: return "transfer_limit";
    case PolicyKind::kPremiumTier: return "premium_tier";
  }
  return "?";
}

const char* OpKindName(OpKind k) {
  switch (k) {
    case OpKind::kGet: return "get";
    case OpKind::kSearch: return "search";
    case OpKind::kList: return "list";
    case OpKind::kCreate: return "create";
    case OpKind::kUpdate: return "update";
    case OpKind::kAdvance: return "advance";
    case OpKind::kCancel: return "cancel";
    case OpKind::kRefund: return "refund";
    case OpKind::kTransfer: return "transfer";
    case OpKind::kAggregate: return "aggregate";
    case OpKind::kUpdateActor: return "update_actor";
  }
  return "?";
}

// Howard Hinnant's days_from_civil / civil_from_days.
int64_t DaysFromCivil(int y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

std::string DateString(int64_t z) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  int64_t y = static_cast<int64_t>(yoe) + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  const unsigned d = doy - (153 * mp + 2) / 5 + 1;
  const unsigned m = mp < 10 ? mp + 3 : mp - 9;
  y += m <= 2;
  char buf[32];
  std::snprintf(buf, sizeof buf, "%04lld-%02u-%02u", static_cast<long long>(y), m, d);
  return buf;
}

bool ParseDate(const std::string& s, int64_t* days) {
  if (s.size() != 10 || s[4] != '-' || s[7] != '-') return false;
  for (int i : {0, 1, 2, 3, 5, 6, 8, 9})
    if (s[i] < '0' || s[i] > '9') return false;
  int y = std::stoi(s.substr(0, 4));
  unsigned m = static_cast<unsigned>(std::stoi(s.substr(5, 2)));
  unsigned d = static_cast<unsigned>(std::stoi(s.substr(8, 2)));
  if (m < 1 || m > 12 || d < 1) return false;
  static const unsigned kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  unsigned maxd = kDays[m - 1] + (m == 2 && leap ? 1 : 0);
  if (d > maxd) return false;
  *days = DaysFromCivil(y, m, d);
  return true;
}

int64_t MoneyCents(const json& v) {
  if (!v.is_number()) return 0;
  return static_cast<int64_t>(std::llround(v.get<double>() * 100.0));
}

}  // namespace k2::toolgen::synth
