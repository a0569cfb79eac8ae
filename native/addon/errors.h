// Turning C++ failures into JS exceptions.
// Why: an exception escaping into N-API would terminate the process. Every entry point runs its
// body through `guarded`, which converts tk::Error (with its code) and any std::exception into a
// thrown JS Error with a `code` property; lib/errors.ts re-types it as TunekitError.
#pragma once
#include <napi.h>

#include <string>

#include "../core/error.h"

namespace tk {

Napi::Error make_js_error(Napi::Env env, const char* code, const std::string& message);

// Captures the code and message of the exception being handled (call inside catch).
struct CapturedError {
  std::string code;
  std::string message;
  static CapturedError from_current_exception();
};

template <class Fn>
Napi::Value guarded(const Napi::CallbackInfo& info, Fn&& fn) {
  try {
    return fn();
  } catch (const Napi::Error&) {
    throw;  // already a JS exception
  } catch (...) {
    CapturedError e = CapturedError::from_current_exception();
    throw make_js_error(info.Env(), e.code.c_str(), e.message);
  }
}

}  // namespace tk
