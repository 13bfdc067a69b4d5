/* Includes the declaration file named by SD_REAL_DECL (a quoted path) twice: once for float, with
 * SD_T = float and SD_FN(name) = name, once for double, with SD_T = double and SD_FN(name) =
 * name_f64 (see core/real.h: the layers, losses and flows are compiled in both precisions).
 * Usage: #define SD_REAL_DECL "nn/nn_decl.h" then #include "core/real_decl.h". No guard on
 * purpose; SD_REAL_DECL is undefined at the end. */
#define SD_T float
#define SD_FN(name) name
#include SD_REAL_DECL
#undef SD_T
#undef SD_FN

#define SD_T double
#define SD_FN(name) name##_f64
#include SD_REAL_DECL
#undef SD_T
#undef SD_FN

#undef SD_REAL_DECL
