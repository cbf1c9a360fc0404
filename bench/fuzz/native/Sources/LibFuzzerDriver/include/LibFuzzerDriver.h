#ifndef CAIRN_FUZZ_LIBFUZZER_DRIVER_H
#define CAIRN_FUZZ_LIBFUZZER_DRIVER_H
// libFuzzer's documented entry for programs that own `main` (compiler-rt, FuzzerInterface.h):
// parses libFuzzer's command-line flags from argc/argv and runs `callback` on every input.
//
// SwiftPM links an executable target with `main` aliased to `<Target>_main`, so libFuzzer's own
// `main` is never the entry point; each harness defines `<Target>_main` and calls this instead.
#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));

#endif
