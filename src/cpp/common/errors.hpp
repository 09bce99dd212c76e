// Typed exceptions of the core. The bindings map them to Python:
// ValueError for bad arguments (std::invalid_argument does that in pybind11),
// MemoryError for std::bad_alloc. The core never calls exit() or assert() on
// user data.
#pragma once
#include <stdexcept>
#include <string>

namespace bp {

struct ValueError : std::invalid_argument {
    using std::invalid_argument::invalid_argument;
};

// Throws ValueError("<what>: expected <expected>, got <got>") when !ok.
inline void require(bool ok, const std::string& what, const std::string& expected,
                    const std::string& got) {
    if (!ok) throw ValueError(what + ": expected " + expected + ", got " + got);
}

}  // namespace bp
