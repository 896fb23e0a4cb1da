// BFCL's VehicleControlAPI: engine, doors, climate, lights, brakes, cruise control and navigation of one
// car, loaded from a scenario as BFCL's _load_scenario loads it (config keys engineState, parkingBrakeForce,
// slopeAngle, brakePedalForce map to its attributes; the unlocked-door count is recomputed from the doors),
// with BFCL's result dicts and error texts. The brake forces and slope angle are private attributes in
// BFCL ("_"-prefixed, not compared); speeds and outside temperatures come from random.Random(random_seed).
#include <cmath>

#include "eval/fc/method.h"

namespace k2::eval::fc {
namespace {

json& St(json& s) { return s["VehicleControlAPI"]; }

json Uniform(json& st, double a, double b) {
  PyRandom rng = Rng(st);
  double v = rng.Uniform(a, b);
  SaveRng(st, rng);
  return v;
}

double D(const json& v) { return v.get<double>(); }

}  // namespace

Expected<json> LoadVehicleControlApi(const json& c, const std::string& w) {
  json st = {{"fuelLevel", 0.0},
             {"batteryVoltage", 12.6},
             {"engine_state", "stopped"},
             {"remainingUnlockedDoors", 4},
             {"doorStatus", {{"driver", "unlocked"}, {"passenger", "unlocked"}, {"rear_left", "unlocked"}, {"rear_right", "unlocked"}}},
             {"acTemperature", 25.0},
             {"fanSpeed", 50},
             {"acMode", "auto"},
             {"humidityLevel", 50.0},
             {"headLightStatus", "off"},
             {"parkingBrakeStatus", "released"},
             {"_parkingBrakeForce", 0.0},
             {"_slopeAngle", 0.0},
             {"brakePedalStatus", "released"},
             {"_brakePedalForce", 0.0},
             {"distanceToNextVehicle", 50.0},
             {"cruiseStatus", "inactive"},
             {"destination", "None"},
             {"frontLeftTirePressure", 32.0},
             {"frontRightTirePressure", 32.0},
             {"rearLeftTirePressure", 30.0},
             {"rearRightTirePressure", 30.0},
             {"_random_seed", 141053}};
  static const std::vector<std::pair<const char*, const char*>> kKeys = {
      {"fuelLevel", "fuelLevel"},           {"batteryVoltage", "batteryVoltage"},
      {"engineState", "engine_state"},      {"doorStatus", "doorStatus"},
      {"acTemperature", "acTemperature"},   {"fanSpeed", "fanSpeed"},
      {"acMode", "acMode"},                 {"humidityLevel", "humidityLevel"},
      {"headLightStatus", "headLightStatus"}, {"parkingBrakeStatus", "parkingBrakeStatus"},
      {"parkingBrakeForce", "_parkingBrakeForce"}, {"slopeAngle", "_slopeAngle"},
      {"brakePedalStatus", "brakePedalStatus"}, {"brakePedalForce", "_brakePedalForce"},
      {"distanceToNextVehicle", "distanceToNextVehicle"}, {"cruiseStatus", "cruiseStatus"},
      {"destination", "destination"},       {"frontLeftTirePressure", "frontLeftTirePressure"},
      {"frontRightTirePressure", "frontRightTirePressure"}, {"rearLeftTirePressure", "rearLeftTirePressure"},
      {"rearRightTirePressure", "rearRightTirePressure"}};
  for (auto& [from, to] : kKeys)
    if (c.contains(from)) st[to] = c[from];
  if (c.contains("random_seed")) {
    if (!c["random_seed"].is_number_unsigned()) return InvalidArgument(w + ".random_seed: expected a non-negative integer");
    st["_random_seed"] = c["random_seed"];
  }
  for (const char* k : {"fuelLevel", "batteryVoltage", "acTemperature", "fanSpeed", "humidityLevel", "_brakePedalForce", "frontLeftTirePressure",
                        "frontRightTirePressure", "rearLeftTirePressure", "rearRightTirePressure"})
    if (!st[k].is_number()) return InvalidArgument(w + "." + (k[0] == '_' ? k + 1 : k) + ": expected number");
  if (!st["doorStatus"].is_object()) return InvalidArgument(w + ".doorStatus: expected {door: \"locked\"|\"unlocked\"}");
  // remainingUnlockedDoors is recomputed from the doors whatever the scenario says.
  int64_t locked = 0;
  for (auto& [door, status] : st["doorStatus"].items()) locked += status == "locked";
  st["remainingUnlockedDoors"] = 4 - locked;
  return st;
}

std::vector<Method> VehicleControlApiMethods() {
  const char* C = "VehicleControlAPI";
  return {
      {C, "startEngine", "Starts the engine of the vehicle.", {{"ignitionMode", "string", "START or STOP.", true}},
       [](json& s, std::vector<std::string>&, const json& a) -> Result {
         json& st = St(s);
         std::string mode = a["ignitionMode"];
         if (mode == "STOP") st["engine_state"] = "stopped";
         if (D(st["remainingUnlockedDoors"]) > 0) {
           std::string doors;
           for (auto& [door, status] : st["doorStatus"].items())
             if (status == "unlocked") doors += (doors.empty() ? "" : ", ") + door;
           return json{{"error", "All doors must be locked before starting the engine. Here are the unlocked doors: " + doors}};
         }
         if (st["brakePedalStatus"] != "pressed") return json{{"error", "Brake pedal needs to be pressed when starting the engine."}};
         if (D(st["_brakePedalForce"]) != 1000.0) return json{{"error", "Must press the brake fully before starting the engine."}};
         if (D(st["fuelLevel"]) < 0.0) return json{{"error", "Fuel tank is empty."}};
         if (mode != "START") return json{{"error", "Invalid ignition mode."}};
         st["engine_state"] = "running";
         return json{{"engineState", st["engine_state"]}, {"fuelLevel", st["fuelLevel"]}, {"batteryVoltage", st["batteryVoltage"]}};
       }},
      {C, "fillFuelTank", "Fills the fuel tank of the vehicle (up to 50 gallons).", {{"fuelAmount", "float", "Gallons of fuel to add.", true}},
       [](json& s, std::vector<std::string>&, const json& a) -> Result {
         json& st = St(s);
         double add = D(a["fuelAmount"]), level = D(st["fuelLevel"]);
         if (add < 0) return json{{"error", "Fuel amount cannot be negative."}};
         if (level + add > 50) return json{{"error", "Cannot fill gas above the tank capacity."}};
         if (level + add < 0.0) return json{{"error", "Fuel tank is empty. Min fuel level is 0 gallons."}};
         st["fuelLevel"] = PyAdd(st["fuelLevel"], a["fuelAmount"]);
         return json{{"fuelLevel", st["fuelLevel"]}};
       }},
      {C, "lockDoors", "Locks or unlocks doors of the vehicle.",
       {{"unlock", "boolean", "True to unlock, False to lock.", true}, {"door", "array", "Doors: driver, passenger, rear_left, rear_right.", true}},
       [](json& s, std::vector<std::string>&, const json& a) -> Result {
         json& st = St(s);
         bool unlock = a["unlock"];
         const char* want = unlock ? "unlocked" : "locked";
         for (auto& d : a["door"]) {
           // An unknown door is a KeyError in BFCL after the doors before it changed; so here.
           if (!d.is_string() || !st["doorStatus"].contains(d.get<std::string>())) return Err(d.is_string() ? PyRepr(d.get<std::string>()) : d.dump());
           json& status = st["doorStatus"][d.get<std::string>()];
           if (status == want) continue;
           status = want;
           st["remainingUnlockedDoors"] = PyAdd(st["remainingUnlockedDoors"], 1, /*subtract=*/!unlock);
         }
         return json{{"lockStatus", want}, {"remainingUnlockedDoors", st["remainingUnlockedDoors"]}};
       }},
      {C, "adjustClimateControl", "Adjusts the climate control of the vehicle.",
       {{"temperature", "float", "The temperature to set in degree.", true},
        {"unit", "string", "celsius or fahrenheit.", false},
        {"fanSpeed", "integer", "The fan speed from 0 to 100.", false},
        {"mode", "string", "auto, cool, heat or defrost.", false}},
       [](json& s, std::vector<std::string>&, const json& a) -> Result {
         json& st = St(s);
         json fan = a.value("fanSpeed", json(50));
         if (!(D(fan) >= 0 && D(fan) <= 100)) return json{{"error", "Fan speed must be between 0 and 100."}};
         const json& t = a["temperature"];
         st["acTemperature"] = t;
         if (a.value("unit", std::string("celsius")) == "fahrenheit")
           st["acTemperature"] = t.is_number_integer() ? static_cast<double>((t.get<int64_t>() - 32) * 5) / 9 : (D(t) - 32) * 5 / 9;
         st["fanSpeed"] = fan;
         json mode = a.value("mode", json("auto"));
         st["acMode"] = mode;
         return json{{"currentACTemperature", t}, {"climateMode", mode}, {"humidityLevel", st["humidityLevel"]}};
       }},
      {C, "get_outside_temperature_from_google", "Gets the outside temperature.", {},
       [](json& s, std::vector<std::string>&, const json&) -> Result { return json{{"outsideTemperature", Uniform(St(s), -10.0, 40.0)}}; }},
      {C, "get_outside_temperature_from_weather_com", "Gets the outside temperature.", {},
       [](json&, std::vector<std::string>&, const json&) -> Result { return json{{"error", 404}}; }},
      {C, "setHeadlights", "Sets the headlights of the vehicle.", {{"mode", "string", "on, off or auto.", true}},
       [](json& s, std::vector<std::string>&, const json& a) -> Result {
         std::string mode = a["mode"];
         if (mode != "on" && mode != "off" && mode != "auto") return json{{"error", "Invalid headlight mode."}};
         St(s)["headLightStatus"] = mode == "on" ? "on" : "off";
         return json{{"headlightStatus", mode == "on" ? "on" : "off"}};
       }},
      {C, "displayCarStatus", "Displays the status of the vehicle based on the provided display option.",
       {{"option", "string", "fuel, battery, doors, climate, headlights, parkingBrake, brakePedal or engine.", true}},
       [](json& s, std::vector<std::string>&, const json& a) -> Result {
         json& st = St(s);
         std::string o = a["option"];
         if (o == "fuel") return json{{"fuelLevel", st["fuelLevel"]}};
         if (o == "battery") return json{{"batteryVoltage", st["batteryVoltage"]}};
         if (o == "doors") return json{{"doorStatus", st["doorStatus"]}};
         if (o == "climate")
           return json{{"currentACTemperature", st["acTemperature"]}, {"fanSpeed", st["fanSpeed"]}, {"climateMode", st["acMode"]}, {"humidityLevel", st["humidityLevel"]}};
         if (o == "headlights") return json{{"headlightStatus", st["headLightStatus"]}};
         if (o == "parkingBrake")
           return json{{"parkingBrakeStatus", st["parkingBrakeStatus"]}, {"parkingBrakeForce", st["_parkingBrakeForce"]}, {"slopeAngle", st["_slopeAngle"]}};
         if (o == "brakePedal") return json{{"brakePedalStatus", st["brakePedalStatus"]}, {"brakePedalForce", st["_brakePedalForce"]}};
         if (o == "engine") return json{{"engineState", st["engine_state"]}};
         return json{{"error", "Invalid option"}};
       }},
      {C, "activateParkingBrake", "Activates the parking brake of the vehicle.", {{"mode", "string", "engage or release.", true}},
       [](json& s, std::vector<std::string>&, const json& a) -> Result {
         json& st = St(s);
         std::string mode = a["mode"];
         if (mode != "engage" && mode != "release") return json{{"error", "Invalid mode"}};
         bool engage = mode == "engage";
         st["parkingBrakeStatus"] = engage ? "engaged" : "released";
         st["_parkingBrakeForce"] = engage ? 500.0 : 0.0;
         st["_slopeAngle"] = 10.0;
         return json{{"parkingBrakeStatus", st["parkingBrakeStatus"]}, {"_parkingBrakeForce", st["_parkingBrakeForce"]}, {"_slopeAngle", 10.0}};
       }},
      {C, "pressBrakePedal", "Presses the brake pedal based on pedal position.", {{"pedalPosition", "float", "Position between 0 and 1.", true}},
       [](json& s, std::vector<std::string>&, const json& a) -> Result {
         json& st = St(s);
         const json& p = a["pedalPosition"];
         if (!(D(p) >= 0 && D(p) <= 1)) return json{{"error", "Pedal position must be between 0 and 1."}};
         if (D(p) == 0) {
           st["brakePedalStatus"] = "released";
           st["_brakePedalForce"] = 0.0;
           return json{{"brakePedalStatus", "released"}, {"brakePedalForce", 0.0}};
         }
         json force = p.is_number_integer() ? json(p.get<int64_t>() * 1000) : json(D(p) * 1000);
         st["brakePedalStatus"] = "pressed";
         st["_brakePedalForce"] = force;
         return json{{"brakePedalStatus", "pressed"}, {"brakePedalForce", D(force)}};
       }},
      {C, "releaseBrakePedal", "Releases the brake pedal of the vehicle.", {},
       [](json& s, std::vector<std::string>&, const json&) -> Result {
         St(s)["brakePedalStatus"] = "released";
         St(s)["_brakePedalForce"] = 0.0;
         return json{{"brakePedalStatus", "released"}, {"brakePedalForce", 0.0}};
       }},
      {C, "setCruiseControl", "Sets the cruise control of the vehicle.",
       {{"speed", "float", "Speed in m/h, between 0 and 120, a multiple of 5.", true},
        {"activate", "boolean", "True to activate, False to deactivate.", true},
        {"distanceToNextVehicle", "float", "Distance to the next vehicle in meters.", true}},
       [](json& s, std::vector<std::string>&, const json& a) -> Result {
         json& st = St(s);
         double dist = D(a["distanceToNextVehicle"]), speed = D(a["speed"]);
         if (st["engine_state"] == "stopped") return json{{"error", "Start the engine before activating the cruise control."}};
         bool on = a["activate"];
         st["distanceToNextVehicle"] = dist;  // set before the speed check, as BFCL does
         if (on && (speed < 0 || speed > 120 || std::fmod(speed, 5.0) != 0)) return json{{"error", "Invalid speed"}};
         st["cruiseStatus"] = on ? "active" : "inactive";
         return json{{"cruiseStatus", st["cruiseStatus"]}, {"currentSpeed", speed}, {"distanceToNextVehicle", dist}};
       }},
      {C, "get_current_speed", "Gets the current speed of the vehicle.", {},
       [](json& s, std::vector<std::string>&, const json&) -> Result { return json{{"currentSpeed", Uniform(St(s), 0.0, 120.0)}}; }},
      {C, "display_log", "Displays the log messages.", {{"messages", "array", "The list of messages to display.", true}},
       [](json&, std::vector<std::string>&, const json& a) -> Result { return json{{"log", a["messages"]}}; }},
      {C, "estimate_drive_feasibility_by_mileage", "Estimates whether the vehicle can drive a distance.", {{"distance", "float", "Distance in miles.", true}},
       [](json& s, std::vector<std::string>&, const json& a) -> Result {
         return json{{"canDrive", !(D(St(s)["fuelLevel"]) * 20.0 < D(a["distance"]))}};
       }},
      {C, "liter_to_gallon", "Converts liters to gallons.", {{"liter", "float", "Liters to convert.", true}},
       [](json&, std::vector<std::string>&, const json& a) -> Result { return json{{"gallon", D(a["liter"]) * 0.264172}}; }},
      {C, "gallon_to_liter", "Converts gallons to liters.", {{"gallon", "float", "Gallons to convert.", true}},
       [](json&, std::vector<std::string>&, const json& a) -> Result { return json{{"liter", D(a["gallon"]) * 3.78541}}; }},
      {C, "estimate_distance", "Estimates the distance between two cities (zipcodes).",
       {{"cityA", "string", "The zipcode of the first city.", true}, {"cityB", "string", "The zipcode of the second city.", true}},
       [](json&, std::vector<std::string>&, const json& a) -> Result {
         static const std::vector<std::tuple<const char*, const char*, double>> kPairs = {
             {"83214", "74532", 750.0}, {"56108", "62947", 320.0}, {"71354", "83462", 450.0}, {"47329", "52013", 290.0},
             {"69238", "51479", 630.0}, {"94016", "83214", 980.0}, {"94016", "94704", 600.0}, {"94704", "08540", 2550.0},
             {"94016", "08540", 1950.0}, {"62947", "47329", 1053.0}, {"94016", "62947", 780.0}, {"74532", "94016", 880.0}};
         std::string x = a["cityA"], y = a["cityB"];
         for (auto& [p, q, d] : kPairs)
           if ((x == p && y == q) || (x == q && y == p)) return json{{"distance", d}};
         return json{{"error", "distance not found in database."}};
       }},
      {C, "get_zipcode_based_on_city", "Gets the zipcode based on the city.", {{"city", "string", "The name of the city.", true}},
       [](json&, std::vector<std::string>&, const json& a) -> Result {
         static const json kZip = {{"Rivermist", "83214"},   {"Stonebrook", "74532"},      {"Maplecrest", "56108"}, {"Silverpine", "62947"},
                                   {"Shadowridge", "71354"}, {"Sunset Valley", "83462"},   {"Oakendale", "47329"},  {"Willowbend", "52013"},
                                   {"Crescent Hollow", "69238"}, {"Autumnville", "51479"}, {"San Francisco", "94016"}};
         return json{{"zipcode", kZip.value(a["city"].get<std::string>(), "00000")}};
       }},
      {C, "set_navigation", "Navigates to the destination.", {{"destination", "string", "Street, city, state.", true}},
       [](json& s, std::vector<std::string>&, const json& a) -> Result {
         St(s)["destination"] = a["destination"];
         return json{{"status", "Navigating to " + a["destination"].get<std::string>()}};
       }},
      {C, "check_tire_pressure", "Checks the tire pressure of the vehicle.", {},
       [](json& s, std::vector<std::string>&, const json&) -> Result {
         json& st = St(s);
         double avg = (D(st["frontLeftTirePressure"]) + D(st["frontRightTirePressure"]) + D(st["rearLeftTirePressure"]) + D(st["rearRightTirePressure"])) / 4;
         return json{{"frontLeftTirePressure", st["frontLeftTirePressure"]}, {"frontRightTirePressure", st["frontRightTirePressure"]},
                     {"rearLeftTirePressure", st["rearLeftTirePressure"]},   {"rearRightTirePressure", st["rearRightTirePressure"]},
                     {"healthy_tire_pressure", 30 <= avg && avg <= 35},       {"car_info", json::object()}};
       }},
      {C, "find_nearest_tire_shop", "Finds the nearest tire shop.", {},
       [](json&, std::vector<std::string>&, const json&) -> Result { return json{{"shopLocation", "456 Oakwood Avenue, Rivermist, 83214"}}; }},
  };
}

}  // namespace k2::eval::fc
