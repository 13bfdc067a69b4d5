/* Training losses of SDUMC (MODEL.md section 4): MSE, RMSE and Rank-N-Contrast.
 *
 * Every function exists in two precisions: float (the product) and double (suffix _f64,
 * used by the gradient checks). loss_decl.h holds the declarations once, written with SD_T
 * for the scalar type and SD_FN(name) for the name; this header includes it twice.
 *
 * Conventions (as in src/nn/nn.h):
 * - Forwards return the loss value; sums are accumulated in double whatever SD_T is.
 * - Backwards ADD scale * dL/dx into the gradient buffers (scale is the loss weight, times
 *   the upstream gradient); a NULL gradient pointer means "not needed" (stop-gradient).
 * - Backwards recompute what they need from the inputs: no state is kept between a forward
 *   and its backward.
 *
 * Dimension letters: n elements (MSE, RMSE) or rows (RnC: n = 2B), d feature dim of RnC. */
#ifndef SD_LOSS_H
#define SD_LOSS_H

#include <stddef.h>

#define SD_REAL_DECL "loss/loss_decl.h"
#include "core/real_decl.h"

#endif
