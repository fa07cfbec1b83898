//! The trainer's `exp`, `sigmoid` and `tanh`: branch-light polynomial forms
//! (Cephes' single-precision ones) that the compiler inlines and vectorises,
//! instead of `libm`'s calls. Each is within a few ulp of the exact value
//! (tests below, against f64); the device keeps `lflow_core::math`, and the
//! host-equals-core checks in `tests/` bound the difference.

/// `log2(e)`.
const LOG2E: f32 = std::f32::consts::LOG2_E;
/// `ln 2` split in two (Cody-Waite): `C1` exact in few bits, `C1 + C2 = ln 2`.
const C1: f32 = 0.693_359_4;
const C2: f32 = -2.121_944_4e-4;
/// Above this `e^x` overflows f32.
const MAX_X: f32 = 88.722_84;
/// Below this `e^x` is sub-normal; returned as 0.
const MIN_X: f32 = -87.336_55;

/// `e^x`: relative error below 3e-7 on `[-87.3, 88.7]`, `+inf` above, 0 below
/// (where the exact value is sub-normal, under 1.2e-38), NaN for NaN.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    // Branch-free (selects, no early returns) so that loops over it vectorise.
    let xc = x.clamp(MIN_X, MAX_X);
    // Round to nearest by the 1.5 * 2^23 trick (no call, vectorises).
    const SHIFTER: f32 = 12_582_912.0;
    let n = (xc * LOG2E + SHIFTER) - SHIFTER;
    let r = xc - n * C1 - n * C2;
    let mut p = 1.987_569_1e-4f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 0.5;
    let y = p * r * r + r + 1.0;
    // 2^n for n in [-126, 128] as two exponent fields (2^128 alone overflows one);
    // a NaN `x` gives n = 0 here and stays NaN through `y`.
    let n = n as i32;
    let half = n >> 1;
    let scale = |k: i32| f32::from_bits(((k + 127) as u32) << 23);
    let e = y * scale(half) * scale(n - half);
    let e = if x > MAX_X { f32::INFINITY } else { e };
    if x < MIN_X {
        0.0
    } else {
        e
    }
}

/// Logistic sigmoid `1 / (1 + e^-x)`.
#[inline(always)]
pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp(-x))
}

/// Hyperbolic tangent: an odd polynomial below `|x| = 0.625` (no cancellation
/// near 0), `1 - 2 / (e^{2|x|} + 1)` with the sign of `x` above.
#[inline(always)]
pub fn tanh(x: f32) -> f32 {
    // Both forms, then a select: no branch, so that loops over it vectorise.
    let a = x.abs();
    let z = x * x;
    let mut p = -5.704_988_7e-3f32;
    p = p * z + 2.063_909e-2;
    p = p * z - 5.373_971_6e-2;
    p = p * z + 1.333_144_2e-1;
    p = p * z - 0.333_332_8;
    let small = x + x * z * p;
    let large = (1.0 - 2.0 / (exp(2.0 * a) + 1.0)).copysign(x);
    if a < 0.625 {
        small
    } else {
        large
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Largest relative error of `f` against the f64 reference over `n` points of `[lo, hi]`.
    fn worst(f: fn(f32) -> f32, reference: fn(f64) -> f64, lo: f32, hi: f32) -> f64 {
        let n = 200_001;
        (0..n)
            .map(|i| {
                let x = lo + (hi - lo) * i as f32 / (n - 1) as f32;
                let want = reference(x as f64);
                ((f(x) as f64 - want) / want.abs().max(1e-300)).abs()
            })
            .fold(0.0, f64::max)
    }

    #[test]
    fn exp_within_a_few_ulp_of_f64() {
        let e = worst(exp, f64::exp, -87.0, 88.7);
        assert!(e < 3e-7, "exp: {e:.3e}");
        let e = worst(exp, f64::exp, -1.0, 1.0);
        assert!(e < 2e-7, "exp near 0: {e:.3e}");
        assert_eq!(exp(0.0), 1.0);
        assert_eq!(exp(89.0), f32::INFINITY);
        assert_eq!(exp(f32::INFINITY), f32::INFINITY);
        assert_eq!(exp(-100.0), 0.0);
        assert_eq!(exp(f32::NEG_INFINITY), 0.0);
        assert!(exp(f32::NAN).is_nan());
        // The largest finite case: 2^128 would overflow one exponent field.
        let (x, top) = (88.72f32, exp(88.72));
        let want = (x as f64).exp();
        assert!(top.is_finite() && ((top as f64 - want) / want).abs() < 3e-7, "{top} vs {want}");
    }

    #[test]
    fn sigmoid_and_tanh_within_a_few_ulp_of_f64() {
        let e = worst(sigmoid, |x| 1.0 / (1.0 + (-x).exp()), -80.0, 80.0);
        assert!(e < 5e-7, "sigmoid: {e:.3e}");
        let e = worst(tanh, f64::tanh, -9.0, 9.0);
        assert!(e < 5e-7, "tanh: {e:.3e}");
        // Relative accuracy holds near 0, where 1 - 2 / (e^2x + 1) would cancel.
        let e = worst(tanh, f64::tanh, -1e-3, 1e-3);
        assert!(e < 2e-7, "tanh near 0: {e:.3e}");
        assert_eq!((tanh(50.0), tanh(-50.0), tanh(0.0)), (1.0, -1.0, 0.0));
        assert_eq!((sigmoid(-200.0), sigmoid(200.0)), (0.0, 1.0));
    }
}
