//! Sources of the standard-normal draws `e` of the posterior and the Langevin step.
//!
//! Draw order per trial (the golden fixtures' `noise_order`): at bin 0, `e_z [H]`
//! then `e_v [H]`; at every bin `t >= 1`, `e_t [H]`.
//!
//! - [`Mean`]: all zeros, the deterministic decoding of MODEL.md section 9.
//! - [`Seeded`]: xoshiro128++ seeded through SplitMix64, Box-Muller through
//!   `libm` (always `libm`, also under `fast-math`), so the host reproduces a
//!   device's draws bit for bit. Documented below, step by step.
//! - [`Provided`]: the caller's slice, consumed front to back (golden tests).

/// Why a noise source could not fill a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum NoiseError {
    /// A [`Provided`] source ran out: it held `available` draws, `requested` more were asked for.
    Exhausted {
        /// Draws left before the request.
        available: usize,
        /// Draws requested.
        requested: usize,
    },
}

impl core::fmt::Display for NoiseError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            NoiseError::Exhausted { available, requested } => {
                write!(f, "provided draws exhausted: {requested} requested, {available} left")
            }
        }
    }
}

impl core::error::Error for NoiseError {}

/// Fills buffers with independent standard-normal draws.
pub trait NoiseSource {
    /// Fill `out` with `out.len()` draws.
    fn fill(&mut self, out: &mut [f32]) -> Result<(), NoiseError>;
}

impl<T: NoiseSource + ?Sized> NoiseSource for &mut T {
    fn fill(&mut self, out: &mut [f32]) -> Result<(), NoiseError> {
        (**self).fill(out)
    }
}

/// Every draw is 0: mean-mode decoding.
#[derive(Clone, Copy, Debug, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Mean;

impl NoiseSource for Mean {
    fn fill(&mut self, out: &mut [f32]) -> Result<(), NoiseError> {
        out.fill(0.0);
        Ok(())
    }
}

/// The caller's draws, consumed front to back.
#[derive(Clone, Copy, Debug)]
pub struct Provided<'a> {
    draws: &'a [f32],
}

impl<'a> Provided<'a> {
    /// A source that hands out `draws` in order.
    pub fn new(draws: &'a [f32]) -> Self {
        Provided { draws }
    }

    /// Draws not consumed yet.
    pub fn remaining(&self) -> usize {
        self.draws.len()
    }
}

impl NoiseSource for Provided<'_> {
    fn fill(&mut self, out: &mut [f32]) -> Result<(), NoiseError> {
        let Some((head, rest)) = self.draws.split_at_checked(out.len()) else {
            return Err(NoiseError::Exhausted { available: self.draws.len(), requested: out.len() });
        };
        out.copy_from_slice(head);
        self.draws = rest;
        Ok(())
    }
}

/// A seeded Gaussian generator that host and device reproduce bit for bit.
///
/// 1. State: four `u32` words from SplitMix64 of the 64-bit seed; two SplitMix64
///    outputs `a, b` give `[a as u32, (a >> 32) as u32, b as u32, (b >> 32) as u32]`
///    (an all-zero state, which SplitMix64 never yields in practice, becomes `[1, 0, 0, 0]`).
/// 2. Uniforms: xoshiro128++ (Blackman & Vigna) gives `u32` words `w`;
///    `u1 = ((w1 >> 8) + 1) * 2^-24` in `(0, 1]`, `u2 = (w2 >> 8) * 2^-24` in `[0, 1)`.
/// 3. Box-Muller in f32 with `libm`: `r = sqrtf(-2 logf(u1))`, `th = 2 pi u2`,
///    draws `r cosf(th)` then `r sinf(th)`; a pair is always consumed in that order,
///    the second kept for the next draw.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Seeded {
    state: [u32; 4],
    spare: Option<u32>,
}

impl Seeded {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        let mut sm = seed;
        let a = splitmix64(&mut sm);
        let b = splitmix64(&mut sm);
        let mut state = [a as u32, (a >> 32) as u32, b as u32, (b >> 32) as u32];
        if state == [0; 4] {
            state[0] = 1;
        }
        Seeded { state, spare: None }
    }

    /// The next xoshiro128++ word.
    pub fn next_u32(&mut self) -> u32 {
        let s = &mut self.state;
        let result = s[0].wrapping_add(s[3]).rotate_left(7).wrapping_add(s[0]);
        let t = s[1] << 9;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(11);
        result
    }

    /// The next standard-normal draw.
    pub fn next_normal(&mut self) -> f32 {
        if let Some(bits) = self.spare.take() {
            return f32::from_bits(bits);
        }
        const TWO_POW_M24: f32 = 1.0 / 16_777_216.0;
        let u1 = ((self.next_u32() >> 8) + 1) as f32 * TWO_POW_M24;
        let u2 = (self.next_u32() >> 8) as f32 * TWO_POW_M24;
        let r = libm::sqrtf(-2.0 * libm::logf(u1));
        let theta = 2.0 * core::f32::consts::PI * u2;
        self.spare = Some((r * libm::sinf(theta)).to_bits());
        r * libm::cosf(theta)
    }

    /// The generator's whole state (for checkpoints): xoshiro words and the kept draw.
    pub fn state(&self) -> ([u32; 4], Option<f32>) {
        (self.state, self.spare.map(f32::from_bits))
    }

    /// Restore a state from [`Seeded::state`]. An all-zero word state is replaced as in [`Seeded::new`].
    pub fn from_state(mut state: [u32; 4], spare: Option<f32>) -> Self {
        if state == [0; 4] {
            state[0] = 1;
        }
        Seeded { state, spare: spare.map(f32::to_bits) }
    }
}

impl NoiseSource for Seeded {
    fn fill(&mut self, out: &mut [f32]) -> Result<(), NoiseError> {
        for x in out {
            *x = self.next_normal();
        }
        Ok(())
    }
}

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_xoshiro::rand_core::{Rng, SeedableRng};
    use rand_xoshiro::{SplitMix64, Xoshiro128PlusPlus};

    #[test]
    fn matches_the_reference_xoshiro128plusplus() {
        // Independent reference: the rand_xoshiro crate, seeded with our words.
        for seed in [0u64, 1, 42, u64::MAX] {
            let mut ours = Seeded::new(seed);
            let mut sm = SplitMix64::seed_from_u64(seed);
            let (a, b) = (sm.next_u64(), sm.next_u64());
            let mut bytes = [0u8; 16];
            bytes[..8].copy_from_slice(&a.to_le_bytes());
            bytes[8..].copy_from_slice(&b.to_le_bytes());
            let mut theirs = Xoshiro128PlusPlus::from_seed(bytes);
            for _ in 0..1000 {
                assert_eq!(ours.next_u32(), theirs.next_u32());
            }
        }
    }

    #[test]
    fn draws_are_standard_normal() {
        let mut g = Seeded::new(7);
        let n = 200_000;
        let (mut s1, mut s2, mut s4) = (0.0f64, 0.0f64, 0.0f64);
        for _ in 0..n {
            let x = g.next_normal() as f64;
            assert!(x.is_finite());
            s1 += x;
            s2 += x * x;
            s4 += x * x * x * x;
        }
        let (mean, var, kurt) = (s1 / n as f64, s2 / n as f64, s4 / n as f64);
        assert!(mean.abs() < 0.01, "mean {mean}");
        assert!((var - 1.0).abs() < 0.02, "var {var}");
        assert!((kurt - 3.0).abs() < 0.1, "fourth moment {kurt}");
    }

    #[test]
    fn state_round_trips_mid_pair() {
        let mut g = Seeded::new(3);
        g.next_normal();
        let (words, spare) = g.state();
        let mut h = Seeded::from_state(words, spare);
        for _ in 0..10 {
            assert_eq!(g.next_normal().to_bits(), h.next_normal().to_bits());
        }
    }

    #[test]
    fn provided_reports_exhaustion() {
        let draws = [1.0, 2.0, 3.0];
        let mut p = Provided::new(&draws);
        let mut out = [0.0; 2];
        p.fill(&mut out).unwrap();
        assert_eq!(out, [1.0, 2.0]);
        assert_eq!(p.fill(&mut out), Err(NoiseError::Exhausted { available: 1, requested: 2 }));
        let e = p.fill(&mut out).unwrap_err();
        assert_eq!(std::string::ToString::to_string(&e), "provided draws exhausted: 2 requested, 1 left");
        Mean.fill(&mut out).unwrap();
        assert_eq!(out, [0.0, 0.0]);
    }
}
