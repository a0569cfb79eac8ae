#include "errors.h"

#include <new>

namespace tk {

Napi::Error make_js_error(Napi::Env env, const char* code, const std::string& message) {
  Napi::Error error = Napi::Error::New(env, message);
  error.Set("code", Napi::String::New(env, code));
  return error;
}

CapturedError CapturedError::from_current_exception() {
  try {
    throw;
  } catch (const Error& e) {
    return {error_code_name(e.code()), e.what()};
  } catch (const std::bad_alloc&) {
    return {error_code_name(ErrorCode::OutOfMemory), "out of memory in native code"};
  } catch (const std::exception& e) {
    return {error_code_name(ErrorCode::Internal), e.what()};
  } catch (...) {
    return {error_code_name(ErrorCode::Internal), "unknown native error"};
  }
}

}  // namespace tk
