//! The few random draws the crate needs, all from the caller's generator.

use rand_core::RngCore;

/// Uniform in `[0, 1)` with 53 random bits.
pub(crate) fn unit<R: RngCore + ?Sized>(rng: &mut R) -> f64 {
    (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// Uniform integer in `0..n` (`n > 0`), without modulo bias.
pub(crate) fn below<R: RngCore + ?Sized>(rng: &mut R, n: u64) -> u64 {
    debug_assert!(n > 0);
    // Accept only draws under the largest multiple of n that fits, so each residue is
    // equally likely.
    let zone = (u64::MAX / n) * n;
    loop {
        let x = rng.next_u64();
        if x < zone {
            return x % n;
        }
    }
}

/// `k` distinct indices out of `0..n`, uniformly, in ascending order (partial Fisher–Yates).
pub(crate) fn sample_without_replacement<R: RngCore + ?Sized>(
    rng: &mut R,
    n: usize,
    k: usize,
) -> Vec<usize> {
    let k = k.min(n);
    let mut pool: Vec<usize> = (0..n).collect();
    for i in 0..k {
        let j = i + below(rng, (n - i) as u64) as usize;
        pool.swap(i, j);
    }
    pool.truncate(k);
    pool.sort_unstable();
    pool
}

/// Each of `0..n` independently with probability `q` (Poisson sampling).
pub(crate) fn poisson_sample<R: RngCore + ?Sized>(rng: &mut R, n: usize, q: f64) -> Vec<usize> {
    (0..n).filter(|_| unit(rng) < q).collect()
}

/// Fills `out` with independent draws of `N(0, sigma²)` (Box–Muller, both outputs used).
pub(crate) fn fill_gaussian<R: RngCore + ?Sized>(rng: &mut R, out: &mut [f64], sigma: f64) {
    for pair in out.chunks_mut(2) {
        // 1 − u lies in (0, 1], so the logarithm is finite.
        let r = (-2.0 * (1.0 - unit(rng)).ln()).sqrt();
        let theta = std::f64::consts::TAU * unit(rng);
        pair[0] = sigma * r * theta.cos();
        if let Some(second) = pair.get_mut(1) {
            *second = sigma * r * theta.sin();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::rand_core::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    #[test]
    fn gaussian_has_the_requested_moments() {
        let mut rng = ChaCha20Rng::seed_from_u64(7);
        let mut xs = vec![0.0; 200_001];
        fill_gaussian(&mut rng, &mut xs, 3.0);
        let n = xs.len() as f64;
        let mean = xs.iter().sum::<f64>() / n;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
        assert!(mean.abs() < 0.03, "mean {mean}");
        assert!((var.sqrt() - 3.0).abs() < 0.03, "std {}", var.sqrt());
        // About 4.55% of draws lie beyond two standard deviations.
        let tail = xs.iter().filter(|x| x.abs() > 6.0).count() as f64 / n;
        assert!((tail - 0.0455).abs() < 0.003, "tail {tail}");
    }

    #[test]
    fn samples_are_distinct_and_in_range() {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let s = sample_without_replacement(&mut rng, 10, 4);
        assert_eq!(s.len(), 4);
        assert!(s.windows(2).all(|w| w[0] < w[1]) && s[3] < 10);
        assert_eq!(sample_without_replacement(&mut rng, 3, 9), vec![0, 1, 2]);
        let p = poisson_sample(&mut rng, 10_000, 0.1);
        assert!((900..1100).contains(&p.len()), "{}", p.len());
    }
}
