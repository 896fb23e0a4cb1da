// The telecom domain's user side (dual control): the phone the user operates (τ²'s mock device and the
// user's surroundings in user_db), its tools with τ²'s texts and network simulation, and the user-side
// fault-injection and assertion functions telecom tasks name.
#include <cmath>
#include <cstdio>
#include <optional>

#include "agents/tau2/telecom.h"

namespace k2::agents::tau2::detail {

namespace {

const std::vector<std::string> kPermissions = {"sms", "storage", "phone", "network"};  // τ²'s field order
const std::vector<std::string> kModes = {"4g_5g_preferred", "4g_only", "3g_only", "2g_only"};

json DefaultApn() {
  return {{"apn_name", "internet"},   {"reset_at_reboot", false}, {"mms_apn", "mms"},
          {"mmsc_url", "http://mms.carrier.com/mms/wapenc"}, {"mms_proxy", nullptr}, {"mms_port", nullptr}};
}
json Perms(bool sms, bool storage, bool phone, bool network) {
  return {{"sms", sms}, {"storage", storage}, {"phone", phone}, {"network", network}};
}
json DefaultVpn() { return {{"server_address", "192.168.1.1"}, {"protocol", "OpenVPN"}, {"server_performance", "excellent"}}; }

json& Dev(State& s) { return s.user_db["device"]; }
json& Sur(State& s) { return s.user_db["surroundings"]; }
bool B(const json& j, const char* k) { return j[k].get<bool>(); }
std::string S(const json& j, const char* k) { return j[k].is_string() ? j[k].get<std::string>() : std::string(); }
bool BoolArg(const json& a, const char* k) {
  const json& v = Arg(a, k);
  if (!v.is_boolean()) Fail(std::string("argument ") + k + " must be a boolean");
  return v.get<bool>();
}
const char* OnOff(bool b) { return b ? "ON" : "OFF"; }

std::string SimStatus(State& s) { return B(Dev(s), "sim_card_missing") ? "missing" : S(Dev(s), "sim_card_status"); }

void NoService(json& d) {
  d["network_connection_status"] = "no_service";
  d["network_technology_connected"] = "none";
  d["network_signal_strength"] = "none";
}

// τ²'s simulate_network_search: the connection the SIM, the mode preference, the local signal per
// technology, airplane mode, the APN and the line status allow.
void NetworkSearch(State& s) {
  json& d = Dev(s);
  const json& sig = Sur(s)["signal_strength"];
  auto at = [&](const char* tech) { return sig.contains(tech) ? sig[tech].get<std::string>() : std::string("none"); };
  if (SimStatus(s) == "active") {
    d["network_connection_status"] = "connected";
    std::string pref = S(d, "network_mode_preference");
    std::string tech = "4G";
    if (pref == "4g_5g_preferred") tech = at("5G") == "none" ? "4G" : "5G";
    else if (pref == "3g_only") tech = "3G";
    else if (pref == "2g_only") tech = "2G";
    d["network_technology_connected"] = tech;
    d["network_signal_strength"] = at(tech.c_str());
  } else {
    NoService(d);
  }
  if (B(d, "airplane_mode")) NoService(d);
  if (d["active_apn_settings"]["apn_name"] == "broken") NoService(d);
  if (!B(Sur(s), "line_active")) NoService(d);
}

std::string StatusBar(State& s) {
  json& d = Dev(s);
  std::vector<std::string> ind;
  if (B(d, "airplane_mode")) {
    ind.push_back("✈️ Airplane Mode");
  } else {
    std::string sig = S(d, "network_signal_strength");
    ind.push_back(sig == "poor" ? "📶¹ Poor" : sig == "fair" ? "📶² Fair" : sig == "good" ? "📶³ Good" : sig == "excellent" ? "📶⁴ Excellent" : "📵 No Signal");
    std::string tech = S(d, "network_technology_connected");
    if (tech != "none") ind.push_back(tech);
    if (B(d, "data_enabled") && tech != "none") {
      ind.push_back("📱 Data Enabled");
      if (B(d, "data_saver_mode")) ind.push_back("🔽 Data Saver");
    } else {
      ind.push_back("📵 Data Disabled");
    }
  }
  if (B(d, "wifi_enabled") && B(d, "wifi_connected"))
    ind.push_back(d["wifi_ssid"].is_string() && !S(d, "wifi_ssid").empty() ? "📡 Connected to " + S(d, "wifi_ssid") : "📡 Enabled");
  if (B(d, "vpn_connected")) ind.push_back("🔒 VPN Connected");
  ind.push_back("🔋 " + std::to_string(d["battery_level"].get<int64_t>()) + "%");
  std::string out;
  for (size_t i = 0; i < ind.size(); ++i) out += (i ? " | " : "") + ind[i];
  return out;
}
std::string WithBar(State& s, const std::string& head) { return head + "\nStatus Bar: " + StatusBar(s); }

bool MobileDataWorking(State& s) {
  json& d = Dev(s);
  if (B(d, "airplane_mode") || d["network_signal_strength"] == "none") return false;
  if (d["network_connection_status"] == "no_service") return false;
  if (B(Sur(s), "is_abroad") && (!B(d, "roaming_enabled") || !B(Sur(s), "roaming_allowed"))) return false;
  if (!B(d, "data_enabled")) return false;
  if (B(Sur(s), "mobile_data_usage_exceeded")) return false;
  return true;
}

struct Speed {
  std::optional<double> mbps;
  std::string desc;
};
Speed SpeedTest(State& s) {
  if (!MobileDataWorking(s)) return {std::nullopt, "No Connection"};
  json& d = Dev(s);
  double base = 1.0;
  if (B(d, "vpn_connected") && d["vpn_details"].is_object() && d["vpn_details"]["server_performance"] == "poor") base = 0.1;
  if (B(d, "data_saver_mode")) base *= 0.2;
  std::string tech = S(d, "network_technology_connected"), sig = S(d, "network_signal_strength");
  double lo = 0, hi = 0;
  if (tech == "2G") lo = 0.1, hi = 0.4;
  else if (tech == "3G") lo = 1.0, hi = 5.0;
  else if (tech == "4G") lo = 10.0, hi = 100.0;
  else if (tech == "5G") lo = 50.0, hi = 500.0;
  double f = sig == "poor" ? 0.2 : sig == "fair" ? 0.5 : sig == "good" ? 0.8 : sig == "excellent" ? 1.0 : 0.0;
  double v = Round2((lo + hi) / 2.0 * f * base);
  std::string desc = v < 1 ? "Very Poor" : v < 5 ? "Poor" : v < 25 ? "Fair" : v < 100 ? "Good" : "Excellent";
  return {v, desc};
}

bool CanSendMms(State& s) {
  if (!MobileDataWorking(s)) return false;
  json& d = Dev(s);
  if (d["network_technology_connected"] == "2G") return false;
  if (B(d, "wifi_calling_enabled") && B(d, "wifi_calling_mms_over_wifi")) return false;
  if (d["active_apn_settings"]["mmsc_url"].is_null()) return false;
  auto it = d["app_statuses"].find("messaging");
  if (it == d["app_statuses"].end()) return false;
  const json& p = (*it)["permissions"];
  return p["storage"].get<bool>() && p["sms"].get<bool>();
}

bool DisconnectVpn(State& s) {
  json& d = Dev(s);
  if (!B(d, "vpn_connected")) return false;
  d["vpn_connected"] = false;
  d["vpn_details"] = nullptr;
  return true;
}

bool ToggleAirplane(State& s) {
  json& d = Dev(s);
  bool was_on = B(d, "airplane_mode");
  d["airplane_mode"] = !was_on;
  auto drop_wifi = [&] {
    d["wifi_connected"] = false;
    d["wifi_ssid"] = nullptr;
    d["wifi_signal_strength"] = "none";
  };
  if (was_on) {
    d["network_connection_status"] = "searching";
    if (B(d, "wifi_enabled")) drop_wifi();
  } else {
    drop_wifi();
    DisconnectVpn(s);
  }
  NetworkSearch(s);
  return B(d, "airplane_mode");
}

bool Toggle(State& s, const char* key, bool search) {
  json& d = Dev(s);
  d[key] = !B(d, key);
  if (search) NetworkSearch(s);
  return B(d, key);
}

// The setting forced to `on` by toggling (τ²'s turn_*_on/off).
void Force(State& s, const char* key, bool on, bool search) {
  if (Toggle(s, key, search) != on) Toggle(s, key, search);
}

std::string PyStr(const json& v) { return v.is_null() ? "None" : "'" + v.get<std::string>() + "'"; }

std::string PerfEnum(const std::string& v) {
  std::string up;
  for (char c : v) up += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return "<PerformanceLevel." + up + ": '" + v + "'>";
}

std::string SpeedText(State& s) {
  Speed r = SpeedTest(s);
  if (!r.mbps) return "Speed test failed: " + r.desc + ".";
  std::string advice;
  if (r.desc == "Very Poor") advice = "Connection is very slow. Basic web browsing might be difficult.";
  else if (r.desc == "Poor") advice = "Connection is slow. Web browsing may be sluggish, streaming difficult.";
  else if (r.desc == "Fair") advice = "Connection is okay for web browsing and some standard definition streaming.";
  else if (r.desc == "Good") advice = "Connection is good for most activities, including HD streaming.";
  else if (r.desc == "Excellent") advice = "Connection is very fast.";
  char b[64];
  std::snprintf(b, sizeof b, "%.2f", *r.mbps);
  return std::string("Speed Test Result: ") + b + " Mbps (" + r.desc + "). " + advice;
}

std::string AllowedPerms(const json& perms, const std::string& sep) {
  std::string out;
  for (auto& p : kPermissions)
    if (perms.contains(p) && perms[p].get<bool>()) out += (out.empty() ? "" : sep) + p;
  return out;
}

json SetApn(State& s, const json& a) {
  const json& in = Arg(a, "apn_settings");
  if (!in.is_object()) Fail("apn_settings must be an object");
  json apn = DefaultApn();
  for (auto& [k, v] : in.items()) {
    if (!apn.contains(k)) Fail("APNSettings: extra field " + k + " not permitted");
    if (k == "apn_name" && (!v.is_string() || (v != "internet" && v != "broken"))) Fail("APNSettings.apn_name: expected 'internet' or 'broken'");
    if (k == "reset_at_reboot" && !v.is_boolean()) Fail("APNSettings.reset_at_reboot: expected a boolean");
    if (k == "mms_port" && !v.is_null() && !v.is_number_integer()) Fail("APNSettings.mms_port: expected an integer");
    if ((k == "mms_apn" || k == "mmsc_url" || k == "mms_proxy") && !v.is_null() && !v.is_string())
      Fail("APNSettings." + k + ": expected a string");
    apn[k] = v;
  }
  Dev(s)["active_apn_settings"] = apn;
  NetworkSearch(s);
  return WithBar(s, "APN settings set to: " + apn["apn_name"].get<std::string>());
}

json GrantPermission(State& s, const json& a) {
  std::string app = StrArg(a, "app_name"), perm = StrArg(a, "permission");
  for (auto& c : perm) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  json& apps = Dev(s)["app_statuses"];
  std::string msg;
  bool ok = false;
  if (!apps.contains(app)) {
    msg = "App '" + app + "' not found. Cannot grant permission.";
  } else if (std::find(kPermissions.begin(), kPermissions.end(), perm) == kPermissions.end()) {
    msg = "Permission '" + perm + "' not tracked for app '" + app + "', available permissions: ['sms', 'storage', 'phone', 'network']";
  } else {
    apps[app]["permissions"][perm] = true;
    ok = true;
    msg = "Permission '" + perm + "' granted to app '" + app + "'.";
  }
  return WithBar(s, (ok ? "Success. " : "Error. ") + msg);
}

json Reboot(State& s) {
  json& d = Dev(s);
  std::string out;
  if (d["active_apn_settings"]["reset_at_reboot"].get<bool>()) {
    out = "Resetting APN settings...\n";
    d["active_apn_settings"] = DefaultApn();
  }
  out += "Restarting network services...";
  d["network_connection_status"] = "searching";
  NetworkSearch(s);
  return WithBar(s, out);
}

ToolDef ReadTool(const char* name, const char* description, std::function<json(State&)> fn) {
  return {name, description, Params({}, {}), false, [fn](State& s, const json&) { return fn(s); }};
}
ToolDef WriteTool(const char* name, const char* description, std::function<json(State&)> fn) {
  return {name, description, Params({}, {}), true, [fn](State& s, const json&) { return fn(s); }};
}
json AppParams() { return Params({{"app_name", StrProp("The app's name.")}}, {"app_name"}); }

void AddPhoneTools(Domain& d) {
  d.user_tools = {
      ReadTool("check_status_bar", "Show the icons in your phone's status bar: signal, network type, mobile data, Wi-Fi, VPN, battery.",
               [](State& s) -> json { return "Status Bar: " + StatusBar(s); }),
      ReadTool("check_network_status", "Show your phone's cellular and Wi-Fi connection status, airplane mode, mobile data and data roaming.",
               [](State& s) -> json {
                 json& d = Dev(s);
                 std::string out = std::string("Airplane Mode: ") + OnOff(B(d, "airplane_mode")) + "\nSIM Card Status: " + SimStatus(s) +
                                   "\nCellular Connection: " + S(d, "network_connection_status") + "\nCellular Signal: " +
                                   S(d, "network_signal_strength") + "\nCellular Network Type: " + S(d, "network_technology_connected") +
                                   "\nMobile Data Enabled: " + (B(d, "data_enabled") ? "Yes" : "No") + "\nData Roaming Enabled: " +
                                   (B(d, "roaming_enabled") ? "Yes" : "No") + "\nWi-Fi Radio: " + OnOff(B(d, "wifi_enabled")) +
                                   "\nWi-Fi Connected: " + (B(d, "wifi_connected") ? "Yes" : "No");
                 if (B(d, "wifi_connected")) out += "\nConnected Wi-Fi Network: " + (d["wifi_ssid"].is_string() ? S(d, "wifi_ssid") : "None");
                 return out;
               }),
      ReadTool("check_network_mode_preference", "Show which cellular network type your phone prefers.",
               [](State& s) -> json { return "Network Mode Preference: " + S(Dev(s), "network_mode_preference"); }),
      {"set_network_mode_preference", "Choose the cellular network type your phone prefers (faster networks use more battery).",
       Params({{"mode", StrProp("One of 4g_5g_preferred, 4g_only, 3g_only, 2g_only.")}}, {"mode"}), true,
       [](State& s, const json& a) -> json {
         std::string mode = StrArg(a, "mode");
         if (std::find(kModes.begin(), kModes.end(), mode) == kModes.end())
           return WithBar(s, "Failed to set network mode: '" + mode + "' is not a valid option. Please use one of: 4g_5g_preferred, 4g_only, 3g_only, 2g_only");
         Dev(s)["network_mode_preference"] = mode;
         NetworkSearch(s);
         return WithBar(s, "Preferred Network Mode set to: " + mode);
       }},
      ReadTool("run_speed_test", "Measure your current mobile internet download speed and what it is good for.",
               [](State& s) -> json { return SpeedText(s); }),
      WriteTool("toggle_airplane_mode", "Turn Airplane Mode on or off (on: cellular, Wi-Fi and Bluetooth are cut).", [](State& s) -> json {
        bool on = ToggleAirplane(s);
        return WithBar(s, std::string("Airplane Mode is now ") + OnOff(on) + ".");
      }),
      ReadTool("check_sim_status", "Show whether your SIM card works, is missing, or is locked by a PIN or PUK.", [](State& s) -> json {
        std::string st = SimStatus(s);
        if (st == "active") return "Your SIM card is active and working.";
        if (st == "missing") return "No SIM card detected in the phone.";
        if (st == "locked_pin") return "The SIM card is locked with a PIN code.";
        if (st == "locked_puk") return "The SIM card is locked with a PUK code.";
        return "Unknown SIM status: " + st;
      }),
      WriteTool("reseat_sim_card", "Take the SIM card out and put it back in.", [](State& s) -> json {
        Dev(s)["sim_card_missing"] = false;
        NetworkSearch(s);
        return WithBar(s, "SIM card re-seated successfully.");
      }),
      WriteTool("toggle_data", "Turn mobile data on or off.", [](State& s) -> json {
        return WithBar(s, std::string("Mobile Data is now ") + OnOff(Toggle(s, "data_enabled", true)) + ".");
      }),
      WriteTool("toggle_roaming", "Turn data roaming on or off (on: data works on networks outside your carrier's coverage).",
                [](State& s) -> json { return WithBar(s, std::string("Data Roaming is now ") + OnOff(Toggle(s, "roaming_enabled", true)) + "."); }),
      ReadTool("check_data_restriction_status", "Show whether Data Saver mode limits your data.", [](State& s) -> json {
        return B(Dev(s), "data_saver_mode") ? "Data Saver mode is ON (limits data usage)." : "Data Saver mode is OFF.";
      }),
      WriteTool("toggle_data_saver_mode", "Turn Data Saver mode on or off (on: less data used, slower data).", [](State& s) -> json {
        return WithBar(s, std::string("Data Saver Mode is now ") + OnOff(Toggle(s, "data_saver_mode", false)) + ".");
      }),
      ReadTool("check_apn_settings", "Show the APN name and MMSC URL your phone uses for mobile data and picture messages.",
               [](State& s) -> json {
                 const json& apn = Dev(s)["active_apn_settings"];
                 std::string name = S(apn, "apn_name"), url = apn["mmsc_url"].is_string() ? S(apn, "mmsc_url") : "";
                 return "Current APN Name: " + (name.empty() ? "Not Set" : name) + "\nMMSC URL (for picture messages): " +
                        (url.empty() ? "Not Set" : url) + "\n(These are technical settings, usually best left unchanged.)";
               }),
      {"set_apn_settings", "Set your phone's APN settings.",
       Params({{"apn_settings", json{{"type", "object"},
                                     {"description", "APN fields: apn_name (internet|broken), reset_at_reboot, mms_apn, mmsc_url, mms_proxy, mms_port."}}}},
              {"apn_settings"}),
       true, SetApn},
      WriteTool("reset_apn_settings", "Reset your APN settings to the defaults (applied at the next reboot).", [](State& s) -> json {
        Dev(s)["active_apn_settings"]["reset_at_reboot"] = true;
        NetworkSearch(s);
        return WithBar(s, "APN settings will reset at reboot.");
      }),
      ReadTool("check_wifi_status", "Show whether Wi-Fi is on, which network it is connected to and the signal.", [](State& s) -> json {
        json& d = Dev(s);
        if (!B(d, "wifi_enabled")) return "Wi-Fi is turned OFF.";
        if (B(d, "wifi_connected"))
          return "Wi-Fi is ON and connected to '" + (d["wifi_ssid"].is_string() ? S(d, "wifi_ssid") : "None") + "'. Signal strength: " +
                 S(d, "wifi_signal_strength") + ".";
        return "Wi-Fi is ON but not connected to any network.";
      }),
      WriteTool("toggle_wifi", "Turn the Wi-Fi radio on or off.", [](State& s) -> json {
        json& d = Dev(s);
        if (B(d, "airplane_mode")) return WithBar(s, "Cannot change Wi-Fi settings while Airplane Mode is ON.");
        bool on = !B(d, "wifi_enabled");
        d["wifi_enabled"] = on;
        if (!on) {
          d["wifi_connected"] = false;
          d["wifi_ssid"] = nullptr;
          d["wifi_signal_strength"] = "none";
        }
        return WithBar(s, std::string("Wi-Fi is now ") + OnOff(on) + ".");
      }),
      ReadTool("check_wifi_calling_status", "Show whether Wi-Fi Calling is on.", [](State& s) -> json {
        return std::string("Wi-Fi Calling is currently turned ") + OnOff(B(Dev(s), "wifi_calling_enabled")) + ".";
      }),
      WriteTool("toggle_wifi_calling", "Turn Wi-Fi Calling on or off (calls over Wi-Fi instead of the cellular network).", [](State& s) -> json {
        return WithBar(s, std::string("Wi-Fi Calling is now ") + OnOff(Toggle(s, "wifi_calling_enabled", false)) + ".");
      }),
      ReadTool("check_vpn_status", "Show whether a VPN is on and connected, with its details.", [](State& s) -> json {
        json& d = Dev(s);
        if (B(d, "vpn_connected")) {
          const json& v = d["vpn_details"];
          if (!v.is_object()) return "VPN is ON and connected (no specific details available).";
          return "VPN is ON and connected. Details: {'server_address': " + PyStr(v["server_address"]) + ", 'protocol': " + PyStr(v["protocol"]) +
                 ", 'server_performance': " + PerfEnum(S(v, "server_performance")) + "}";
        }
        if (B(d, "vpn_enabled_setting")) return "VPN is turned ON in settings, but currently not connected.";
        return "VPN is turned OFF.";
      }),
      WriteTool("connect_vpn", "Connect your VPN.", [](State& s) -> json {
        json& d = Dev(s);
        if (B(d, "vpn_connected")) return "VPN already connected.";
        d["vpn_connected"] = true;
        d["vpn_details"] = DefaultVpn();
        return WithBar(s, "VPN connected successfully.");
      }),
      WriteTool("disconnect_vpn", "Disconnect any active VPN connection.", [](State& s) -> json {
        return WithBar(s, DisconnectVpn(s) ? "VPN disconnected successfully." : "No active VPN connection to disconnect.");
      }),
      ReadTool("check_installed_apps", "List the apps installed on your phone.", [](State& s) -> json {
        std::string names;
        for (auto& [k, v] : Dev(s)["app_statuses"].items()) names += (names.empty() ? "" : ", ") + k;
        return "The following apps are installed on the phone: " + names;
      }),
      {"check_app_status", "Show an app's status and the permissions it has.", AppParams(), false,
       [](State& s, const json& a) -> json {
         std::string app = StrArg(a, "app_name");
         json& apps = Dev(s)["app_statuses"];
         if (!apps.contains(app)) return "App '" + app + "' not found on this phone.";
         std::string out = "Status for App: " + app;
         std::string allowed = AllowedPerms(apps[app]["permissions"], "\n   - ");
         if (allowed.empty()) out += "\n - Permissions: None granted.";
         else out += "\n - Permissions Granted:\n   - " + allowed;
         return out;
       }},
      {"check_app_permissions", "Show which permissions an app has.", AppParams(), false,
       [](State& s, const json& a) -> json {
         std::string app = StrArg(a, "app_name");
         json& apps = Dev(s)["app_statuses"];
         if (!apps.contains(app)) return "App '" + app + "' not found on this phone.";
         std::string allowed = AllowedPerms(apps[app]["permissions"], ", ");
         if (allowed.empty()) return "App '" + app + "' currently has no permissions granted.";
         return "App '" + app + "' has permission for: " + allowed + ".";
       }},
      {"grant_app_permission", "Give an app a permission (sms, storage, phone, network).",
       Params({{"app_name", StrProp("The app's name.")}, {"permission", StrProp("The permission, lower case.")}}, {"app_name", "permission"}),
       true, GrantPermission},
      ReadTool("can_send_mms", "Check whether your messaging app can send MMS (picture) messages.", [](State& s) -> json {
        return CanSendMms(s) ? "Your messaging app can send MMS messages." : "Your messaging app cannot send MMS messages.";
      }),
      WriteTool("reboot_device", "Restart your phone.", [](State& s) -> json { return Reboot(s); }),
      ReadTool("check_payment_request", "Check whether the agent has sent you a payment request.", [](State& s) -> json {
        const json& p = Sur(s)["payment_request"];
        if (!p.is_object()) return "No payment request has been made.";
        return "You have a payment request for bill " + S(p, "bill_id") + " of " + PyFloatRepr(p["amount_due"].get<double>()) + " USD.";
      }),
      WriteTool("make_payment", "Pay the bill the agent sent you a payment request for.", [](State& s) -> json {
        json& p = Sur(s)["payment_request"];
        if (!p.is_object()) return "You do not have a payment request.";
        p["paid"] = true;
        return "Payment of " + PyFloatRepr(p["amount_due"].get<double>()) + " USD has been made for bill " + S(p, "bill_id") + ".";
      }),
  };
}

void AddUserFunctions(Domain& d) {
  auto& f = d.user_functions;
  f["set_user_info"] = [](State& s, const json& a) -> json {
    Sur(s)["name"] = StrArg(a, "name");
    Sur(s)["phone_number"] = StrArg(a, "phone_number");
    return nullptr;
  };
  f["set_user_location"] = [](State& s, const json& a) -> json {
    Sur(s)["is_abroad"] = BoolArg(a, "abroad");
    return nullptr;
  };
  f["simulate_network_search"] = [](State& s, const json&) -> json {
    NetworkSearch(s);
    return nullptr;
  };
  f["turn_airplane_mode_on"] = [](State& s, const json&) -> json {
    if (!ToggleAirplane(s)) ToggleAirplane(s);
    return "Airplane Mode is now ON.";
  };
  f["turn_airplane_mode_off"] = [](State& s, const json&) -> json {
    if (ToggleAirplane(s)) ToggleAirplane(s);
    return "Airplane Mode is now OFF.";
  };
  f["unseat_sim_card"] = [](State& s, const json&) -> json {
    Dev(s)["sim_card_missing"] = true;
    NetworkSearch(s);
    return "SIM card un-seated successfully.";
  };
  f["lock_sim_card"] = [](State& s, const json& a) -> json {
    std::string mode = StrArg(a, "mode");
    if (mode == "pin") Dev(s)["sim_card_status"] = "locked_pin";
    else if (mode == "puk") Dev(s)["sim_card_status"] = "locked_puk";
    else Fail("mode must be 'pin' or 'puk'");
    NetworkSearch(s);
    return "SIM card locked successfully in " + mode + " mode.";
  };
  f["turn_data_on"] = [](State& s, const json&) -> json {
    Dev(s)["data_enabled"] = true;  // τ² sets the switch without a network search
    return "Data connection restored.";
  };
  f["turn_data_off"] = [](State& s, const json&) -> json {
    Force(s, "data_enabled", false, true);
    return "Data connection broken.";
  };
  f["turn_roaming_on"] = [](State& s, const json&) -> json {
    Force(s, "roaming_enabled", true, true);
    return "Data Roaming is now ON.";
  };
  f["turn_roaming_off"] = [](State& s, const json&) -> json {
    Force(s, "roaming_enabled", false, true);
    return "Data Roaming is now OFF.";
  };
  f["turn_data_saver_mode_on"] = [](State& s, const json&) -> json {
    Force(s, "data_saver_mode", true, false);
    return "Data Saver Mode is now ON.";
  };
  f["turn_data_saver_mode_off"] = [](State& s, const json&) -> json {
    Force(s, "data_saver_mode", false, false);
    return "Data Saver Mode is now OFF.";
  };
  f["break_apn_settings"] = [](State& s, const json&) -> json {
    Dev(s)["active_apn_settings"]["apn_name"] = "broken";
    NetworkSearch(s);
    if (Dev(s)["network_connection_status"] != "no_service") Fail("break_apn_settings: the phone still has service");
    return "APN settings broken. Please call reset_apn_settings() to fix.";
  };
  f["break_apn_mms_setting"] = [](State& s, const json&) -> json {
    Dev(s)["active_apn_settings"]["mmsc_url"] = nullptr;
    return "APN MMS setting broken. Please call reset_apn_settings() to fix.";
  };
  f["set_wifi_calling"] = [](State& s, const json& a) -> json {
    bool enabled = BoolArg(a, "enabled");
    Dev(s)["wifi_calling_enabled"] = enabled;
    std::string msg = std::string("Wi-Fi Calling is now ") + OnOff(enabled) + ".";
    if (a.contains("mms_over_wifi") && !a["mms_over_wifi"].is_null()) {
      bool mms = BoolArg(a, "mms_over_wifi");
      Dev(s)["wifi_calling_mms_over_wifi"] = mms;
      msg += std::string("\nMMS over Wi-Fi is now ") + OnOff(mms) + ".";
    }
    return msg;
  };
  f["break_vpn"] = [](State& s, const json&) -> json {
    json& d = Dev(s);
    if (!B(d, "vpn_connected")) {
      d["vpn_connected"] = true;
      d["vpn_details"] = DefaultVpn();
    }
    if (!d["vpn_details"].is_object()) Fail("break_vpn: the VPN has no details");
    d["vpn_details"]["server_performance"] = "poor";
    return "VPN connection broken.";
  };
  f["remove_app_permission"] = [](State& s, const json& a) -> json {
    std::string app = StrArg(a, "app_name"), perm = StrArg(a, "permission");
    for (auto& c : perm) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    json& apps = Dev(s)["app_statuses"];
    // τ² answers a (success, message) pair and never raises here.
    if (!apps.contains(app)) return json::array({false, "App '" + app + "' not found. Cannot remove permission."});
    if (std::find(kPermissions.begin(), kPermissions.end(), perm) == kPermissions.end())
      return json::array({false, "Permission '" + perm + "' not tracked for app '" + app + "'."});
    apps[app]["permissions"][perm] = false;
    return json::array({true, "Permission '" + perm + "' removed from app '" + app + "'."});
  };
  // Assertions.
  f["assert_airplane_mode_status"] = [](State& s, const json& a) -> json { return B(Dev(s), "airplane_mode") == BoolArg(a, "expected_status"); };
  f["assert_service_status"] = [](State& s, const json& a) -> json {
    std::string want = StrArg(a, "expected_status");
    if (want != "connected" && want != "searching" && want != "no_service" && want != "emergency_only")
      Fail("'" + want + "' is not a valid NetworkStatus");
    return Dev(s)["network_connection_status"] == want;
  };
  f["assert_mobile_data_status"] = [](State& s, const json& a) -> json { return MobileDataWorking(s) == BoolArg(a, "expected_status"); };
  f["assert_mobile_roaming_status"] = [](State& s, const json& a) -> json { return B(Dev(s), "roaming_enabled") == BoolArg(a, "expected_status"); };
  f["assert_mobile_data_saver_mode_status"] = [](State& s, const json& a) -> json {
    return B(Dev(s), "data_saver_mode") == BoolArg(a, "expected_status");
  };
  f["assert_internet_speed"] = [](State& s, const json& a) -> json {
    const json& want = Arg(a, "expected_speed");
    if (!want.is_number()) Fail("argument expected_speed must be a number");
    Speed r = SpeedTest(s);
    double v = r.mbps.value_or(0.0);
    if (!a.contains("expected_desc") || a["expected_desc"].is_null()) return v >= want.get<double>();
    std::string desc = StrArg(a, "expected_desc");
    auto lower = [](std::string x) {
      for (auto& c : x) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      return x;
    };
    return v >= want.get<double>() && lower(r.desc) == lower(desc);
  };
  f["assert_internet_not_excellent"] = [](State& s, const json&) -> json { return SpeedTest(s).desc != "Excellent"; };
  f["assert_can_send_mms"] = [](State& s, const json& a) -> json { return CanSendMms(s) == BoolArg(a, "expected_status"); };
  f["assert_mobile_data_usage_exceeded"] = [](State& s, const json& a) -> json {
    return B(Sur(s), "mobile_data_usage_exceeded") == BoolArg(a, "expected_status");
  };
}

}  // namespace

void FillDefaults(json& rec, const json& defaults) {
  for (auto& [k, v] : defaults.items())
    if (!rec.contains(k)) rec[k] = v;
}

Expected<json> TelecomUserDb(const json& file_db, const std::string& path) {
  json db = file_db.is_object() ? file_db : json::object();
  for (const char* k : {"device", "surroundings"}) {
    if (!db.contains(k)) db[k] = json::object();
    if (!db[k].is_object()) return InvalidArgument(path + ": " + k + ": expected a table");
  }
  json& d = db["device"];
  FillDefaults(d, {{"sim_card_status", "active"},
               {"sim_card_missing", false},
               {"airplane_mode", false},
               {"network_signal_strength", "good"},
               {"network_technology_connected", "5G"},
               {"network_connection_status", "connected"},
               {"battery_level", 80},
               {"data_enabled", true},
               {"roaming_enabled", false},
               {"network_mode_preference", "4g_5g_preferred"},
               {"active_apn_settings", DefaultApn()},
               {"wifi_enabled", false},
               {"wifi_connected", false},
               {"wifi_ssid", nullptr},
               {"wifi_signal_strength", "none"},
               {"wifi_calling_enabled", false},
               {"wifi_calling_mms_over_wifi", false},
               {"data_saver_mode", false},
               {"vpn_enabled_setting", false},
               {"vpn_connected", false},
               {"vpn_details", nullptr},
               {"app_statuses",
                {{"messaging", {{"app_name", "messaging"}, {"permissions", Perms(true, true, true, false)}}},
                 {"browser", {{"app_name", "browser"}, {"permissions", Perms(false, true, false, true)}}}}}});
  if (!d["active_apn_settings"].is_object()) return InvalidArgument(path + ": device.active_apn_settings: expected a table");
  FillDefaults(d["active_apn_settings"], DefaultApn());
  if (d["vpn_details"].is_object()) FillDefaults(d["vpn_details"], {{"server_address", nullptr}, {"protocol", nullptr}, {"server_performance", "unknown"}});
  if (!d["app_statuses"].is_object()) return InvalidArgument(path + ": device.app_statuses: expected a table");
  for (auto& [name, app] : d["app_statuses"].items()) {
    if (!app.is_object()) return InvalidArgument(path + ": device.app_statuses." + name + ": expected a table");
    FillDefaults(app, {{"app_name", name}, {"permissions", Perms(false, false, false, false)}});
    FillDefaults(app["permissions"], Perms(false, false, false, false));
  }
  for (const char* k : {"sim_card_missing", "airplane_mode", "data_enabled", "roaming_enabled", "wifi_enabled", "wifi_connected",
                        "wifi_calling_enabled", "wifi_calling_mms_over_wifi", "data_saver_mode", "vpn_enabled_setting", "vpn_connected"})
    if (!d[k].is_boolean()) return InvalidArgument(path + ": device." + k + ": expected a boolean");
  FillDefaults(db["surroundings"], {{"name", nullptr},
                                {"phone_number", nullptr},
                                {"is_abroad", false},
                                {"roaming_allowed", false},
                                {"signal_strength", {{"2G", "poor"}, {"3G", "fair"}, {"4G", "good"}, {"5G", "excellent"}}},
                                {"mobile_data_usage_exceeded", false},
                                {"line_active", true},
                                {"payment_request", nullptr}});
  return db;
}

void AddTelecomUserTools(Domain& d) {
  AddPhoneTools(d);
  AddUserFunctions(d);
}

}  // namespace k2::agents::tau2::detail
