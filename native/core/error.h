// tunekit native errors.
// Why: native code must never abort the Node process. Every failure is a tk::Error carrying a
// stable machine-readable code; the addon layer turns it into a JS error with that `code`, and the
// TypeScript layer re-throws it as a TunekitError with the caller's own stack.
#pragma once
#include <stdexcept>
#include <string>

namespace tk {

// Codes are part of the public API (TunekitError.code); keep them stable.
enum class ErrorCode {
  InvalidArgument,  // a bad value, shape or dtype passed in
  OutOfMemory,      // an allocation failed or would exceed a limit
  Unsupported,      // valid request this build/CPU cannot serve
  Internal,         // a bug: an invariant did not hold
};

inline const char* error_code_name(ErrorCode c) {
  switch (c) {
    case ErrorCode::InvalidArgument: return "ERR_TUNEKIT_INVALID_ARGUMENT";
    case ErrorCode::OutOfMemory: return "ERR_TUNEKIT_OUT_OF_MEMORY";
    case ErrorCode::Unsupported: return "ERR_TUNEKIT_UNSUPPORTED";
    case ErrorCode::Internal: return "ERR_TUNEKIT_INTERNAL";
  }
  return "ERR_TUNEKIT_INTERNAL";
}

class Error : public std::runtime_error {
 public:
  Error(ErrorCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
  ErrorCode code() const { return code_; }

 private:
  ErrorCode code_;
};

[[noreturn]] inline void fail(ErrorCode code, const std::string& message) { throw Error(code, message); }

// Checks an argument; the message should say what was expected and what was received.
inline void check_arg(bool ok, const std::string& message) {
  if (!ok) fail(ErrorCode::InvalidArgument, message);
}

}  // namespace tk
