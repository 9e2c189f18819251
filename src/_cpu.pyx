"""What this CPU can run, for choosing which build of the kernels pgfast loads
(pgfast/_loader.py). Compiled for the baseline instruction set, like its caller."""

cdef extern from *:
    """
    static int pgfast_has_x86_64_v3(void) {
    #if defined(__x86_64__) && ((defined(__clang__) && __clang_major__ >= 16) || \
                                (!defined(__clang__) && __GNUC__ >= 12))
        __builtin_cpu_init();
        return __builtin_cpu_supports("x86-64-v3");
    #else
        return 0;
    #endif
    }
    static int pgfast_has_x86_64_v4(void) {
    #if defined(__x86_64__) && ((defined(__clang__) && __clang_major__ >= 16) || \
                                (!defined(__clang__) && __GNUC__ >= 12))
        __builtin_cpu_init();
        return __builtin_cpu_supports("x86-64-v4");
    #else
        return 0;
    #endif
    }
    """
    int pgfast_has_x86_64_v3() nogil
    int pgfast_has_x86_64_v4() nogil


def has_x86_64_v3():
    """True when the CPU (and the OS) support every x86-64-v3 instruction:
    AVX, AVX2, BMI1/2, F16C, FMA, LZCNT, MOVBE, XSAVE."""
    return bool(pgfast_has_x86_64_v3())


def has_x86_64_v4():
    """True when the CPU (and the OS) support every x86-64-v4 instruction:
    x86-64-v3 and AVX-512 F, BW, CD, DQ and VL."""
    return bool(pgfast_has_x86_64_v4())
