//! Scalar transcendental functions used by the model.
//!
//! By default every function is the correctly rounded-or-close `libm` one. With
//! the `fast-math` feature, `exp` (and so `sigmoid`, `tanh` and rates) comes
//! from `micromath`'s approximation; its measured error is in `README.md`
//! and checked by this module's tests. `sqrt` and `ln` always use `libm`.

/// `e^x`.
#[inline]
pub fn exp(x: f32) -> f32 {
    #[cfg(feature = "fast-math")]
    {
        // micromath's exp leaves its exponent's range beyond about +-88 (a
        // debug assertion, garbage bits without one) and fails on NaN: there,
        // libm's exp (overflow to infinity, underflow through subnormals to 0,
        // NaN stays NaN for the decoder's non-finite check).
        if !(-87.0..=88.0).contains(&x) {
            return libm::expf(x);
        }
        micromath::F32Ext::exp(x)
    }
    #[cfg(not(feature = "fast-math"))]
    {
        libm::expf(x)
    }
}

/// Logistic sigmoid `1 / (1 + e^-x)`.
#[inline]
pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp(-x))
}

/// Hyperbolic tangent.
#[inline]
pub fn tanh(x: f32) -> f32 {
    #[cfg(feature = "fast-math")]
    {
        // tanh(x) = 1 - 2 / (e^{2x} + 1); saturates cleanly for large |x|.
        1.0 - 2.0 / (exp(2.0 * x) + 1.0)
    }
    #[cfg(not(feature = "fast-math"))]
    {
        libm::tanhf(x)
    }
}

/// Square root (always `libm`).
#[inline]
pub fn sqrt(x: f32) -> f32 {
    libm::sqrtf(x)
}

/// Extra absolute tolerance tests grant per transcendental call under
/// `fast-math` (micromath's measured error, with margin); 0 with `libm`.
#[cfg(test)]
pub(crate) const TEST_SLACK: f64 = if cfg!(feature = "fast-math") { 3e-3 } else { 0.0 };

#[cfg(test)]
mod tests {
    use super::*;

    /// Largest relative error of `f` against `reference` (f64) over a grid.
    fn max_rel_err(f: fn(f32) -> f32, reference: fn(f64) -> f64, lo: f32, hi: f32) -> f64 {
        let n = 20_001;
        let mut worst = 0.0f64;
        for i in 0..n {
            let x = lo + (hi - lo) * (i as f32) / ((n - 1) as f32);
            let want = reference(x as f64);
            let got = f(x) as f64;
            let err = (got - want).abs() / want.abs().max(1e-30);
            worst = worst.max(err);
        }
        worst
    }

    fn sigmoid64(x: f64) -> f64 {
        1.0 / (1.0 + (-x).exp())
    }

    #[test]
    fn exp_error_is_bounded() {
        let err = max_rel_err(exp, f64::exp, -30.0, 30.0);
        #[cfg(not(feature = "fast-math"))]
        assert!(err < 2e-7, "libm exp rel err {err}");
        // micromath's exp: measured 2.4e-3 worst relative error (README.md).
        #[cfg(feature = "fast-math")]
        assert!(err < 5e-3, "micromath exp rel err {err}");
    }

    /// Largest absolute error of `f` against `reference` (f64) over a grid.
    fn max_abs_err(f: fn(f32) -> f32, reference: fn(f64) -> f64, lo: f32, hi: f32) -> f64 {
        let n = 20_001;
        (0..n)
            .map(|i| {
                let x = lo + (hi - lo) * (i as f32) / ((n - 1) as f32);
                (f(x) as f64 - reference(x as f64)).abs()
            })
            .fold(0.0, f64::max)
    }

    #[test]
    fn sigmoid_and_tanh_errors_are_bounded() {
        let s = max_abs_err(sigmoid, sigmoid64, -20.0, 20.0);
        let t = max_abs_err(tanh, f64::tanh, -8.0, 8.0);
        #[cfg(not(feature = "fast-math"))]
        assert!(s < 1e-6 && t < 1e-6, "sigmoid {s} tanh {t}");
        // Measured 5.3e-4 (sigmoid) and 1.1e-3 (tanh) absolute.
        #[cfg(feature = "fast-math")]
        assert!(s < 1.5e-3 && t < 3e-3, "sigmoid {s} tanh {t}");
    }

    #[test]
    fn exp_saturates_without_nan() {
        assert_eq!(exp(1000.0), f32::INFINITY);
        assert_eq!(exp(-1000.0), 0.0);
        assert_eq!(tanh(1000.0), 1.0);
        assert_eq!(tanh(-1000.0), -1.0);
        assert_eq!(sigmoid(-1000.0), 0.0);
    }

    #[test]
    fn nan_stays_nan_without_a_panic() {
        assert!(exp(f32::NAN).is_nan() && sigmoid(f32::NAN).is_nan() && tanh(f32::NAN).is_nan());
    }

    #[test]
    fn every_finite_input_gives_a_value_in_range_without_a_panic() {
        // Every 1/64 from -200 to 100, the subnormal range of e^x included.
        for i in -12_800..=6_400 {
            let x = i as f32 / 64.0;
            let (e, want) = (exp(x), (x as f64).exp());
            if want > f32::MAX as f64 {
                assert_eq!(e, f32::INFINITY, "exp({x})");
            } else {
                assert!(e >= 0.0 && (e as f64 - want).abs() <= 5e-3 * want + 1.2e-38, "exp({x}) = {e}, e^x = {want}");
            }
            assert!((0.0..=1.0).contains(&sigmoid(x)) && (-1.0..=1.0).contains(&tanh(x)), "{x}");
        }
    }
}
