// Declarations only (see include/LibFuzzerDriver.h); the definition is in libclang_rt.fuzzer,
// which `-sanitize=fuzzer` links into every harness. SwiftPM wants one source file per C target.
#include "LibFuzzerDriver.h"
