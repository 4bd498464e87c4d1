//! The statistics of a round-robin benchmark: medians over rounds, the visiting order of a round.

/// The median of `values` (the mean of the middle two for an even count), NaNs ignored;
/// `None` when nothing is left.
pub fn median(values: &[f64]) -> Option<f64> {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| !v.is_nan()).collect();
    if sorted.is_empty() {
        return None;
    }
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    Some(if sorted.len() % 2 == 1 {
        sorted[mid]
    } else {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    })
}

/// The order in which round `round` visits `servers`: rotated left by one per round, so that
/// no server always runs first.
pub fn rotation<T: Clone>(servers: &[T], round: usize) -> Vec<T> {
    let mut order = servers.to_vec();
    if !order.is_empty() {
        let by = round % order.len();
        order.rotate_left(by);
    }
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_of_odd_and_even_counts_ignore_nan() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[f64::NAN]), None);
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&[f64::NAN, 7.0]), Some(7.0));
    }

    #[test]
    fn rounds_rotate_the_server_order() {
        assert_eq!(rotation(&[1, 2, 3], 0), [1, 2, 3]);
        assert_eq!(rotation(&[1, 2, 3], 1), [2, 3, 1]);
        assert_eq!(rotation(&[1, 2, 3], 5), [3, 1, 2]);
        assert!(rotation::<u8>(&[], 3).is_empty());
    }
}
