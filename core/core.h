// core: what every module shares. Include this one header, or the specific ones below.
#pragma once

#include "core/check.h"
#include "core/config.h"
#include "core/hash.h"
#include "core/json.h"
#include "core/message.h"
#include "core/metrics.h"
#include "core/progress.h"
#include "core/rng.h"
#include "core/status.h"
#include "core/store.h"
#include "core/thread_pool.h"
