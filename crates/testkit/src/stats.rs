//! Figures over timing samples, for the benchmarks.

use std::time::Duration;

/// The `p` quantile (0.0 to 1.0) of `sorted` samples, nearest rank; zero for no samples.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_and_empty() {
        let ms = |n| Duration::from_millis(n);
        let v: Vec<Duration> = (1..=5).map(ms).collect();
        assert_eq!(percentile(&v, 0.5), ms(3));
        assert_eq!(percentile(&v, 0.95), ms(5));
        assert_eq!(percentile(&v, 0.0), ms(1));
        assert_eq!(percentile(&[], 0.5), Duration::ZERO);
    }
}
