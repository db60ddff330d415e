// Test data for the emulated-kernel tests: a small linear congruential generator (24-bit
// outputs) and uniform floats from it. Not the runner's RNG; only deterministic fill.
#ifndef RN_EMU_RANDOM_H
#define RN_EMU_RANDOM_H

#include <cstdint>

namespace rn_emu_test {

inline uint32_t lcg(uint32_t &s)
{
    s = s * 1664525u + 1013904223u;
    return s >> 8;
}

inline float uniform(uint32_t &s, float lo, float hi)
{
    return lo + (hi - lo) * static_cast<float>(lcg(s) * (1.0 / 16777216.0));
}

}  // namespace rn_emu_test

#endif
