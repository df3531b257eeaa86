/* craft_hash.h: the integer hashes and the counter-based random stream that the engine
 * and the app share. Outputs are part of the contract of seeded runs (synthetic data,
 * splits, dropout masks): changing one changes every seeded result. */
#ifndef CRAFT_HASH_H
#define CRAFT_HASH_H

#include <stddef.h>
#include <stdint.h>

#define CRAFT_GOLDEN_GAMMA 0x9e3779b97f4a7c15ull
#define CRAFT_FNV_OFFSET 1469598103934665603ull
#define CRAFT_FNV_PRIME 1099511628211ull

/* SplitMix64's finalizer: a bijective mix of z. */
static inline uint64_t craft_mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* SplitMix64's output for state z: the increment, then the finalizer (a hash of z). */
static inline uint64_t craft_hash64(uint64_t z) { return craft_mix64(z + CRAFT_GOLDEN_GAMMA); }

/* The next value of the SplitMix64 stream whose state is *s. */
static inline uint64_t craft_splitmix64(uint64_t *s) { return craft_mix64(*s += CRAFT_GOLDEN_GAMMA); }

/* Uniform in [0, 1) with 53 bits from the stream *s. */
static inline double craft_unit(uint64_t *s) { return (double)(craft_splitmix64(s) >> 11) * (1.0 / 9007199254740992.0); }

/* FNV-1a over n bytes, continuing from h (start with CRAFT_FNV_OFFSET). */
static inline uint64_t craft_fnv1a(uint64_t h, const void *p, size_t n)
{
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ s[i]) * CRAFT_FNV_PRIME;
    return h;
}

/* FNV-1a of a NUL-terminated string. */
static inline uint64_t craft_fnv1a_str(const char *s)
{
    uint64_t h = CRAFT_FNV_OFFSET;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * CRAFT_FNV_PRIME;
    return h;
}

#endif
