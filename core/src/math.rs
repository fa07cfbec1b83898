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
        // micromath's exp misbehaves far outside f32's finite range of e^x.
        if x > 88.8 {
            return f32::INFINITY;
        }
        if x < -103.0 {
            return 0.0;
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
}
