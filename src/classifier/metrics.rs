//! Evaluation measures: accuracy, per-label precision, recall and F1, their
//! macro and micro averages, and the confusion matrix (rows = true label,
//! columns = predicted), as scikit-learn's `classification_report` defines
//! them (a label never predicted has precision 0, and so F1 0).

use serde::{Deserialize, Serialize};

/// Scores of one label.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabelScores {
    pub label: String,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    /// True examples of this label.
    pub support: usize,
}

/// Averages over labels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Averages {
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
}

/// A full evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    /// Share of examples whose predicted label set equals the true one.
    pub accuracy: f64,
    /// Unweighted mean over labels.
    pub macro_avg: Averages,
    /// From the summed counts (equals accuracy for single-label data).
    pub micro_avg: Averages,
    pub per_label: Vec<LabelScores>,
    /// `confusion[t][p]`: examples of true label `t` predicted as `p`
    /// (single-label); for multi-label, per label `[[tn, fp], [fn, tp]]`
    /// flattened into one row per label.
    pub confusion: Vec<Vec<usize>>,
    /// Labels in the order of `per_label` and of the matrix.
    pub labels: Vec<String>,
    /// Examples evaluated.
    pub examples: usize,
}

fn f1(p: f64, r: f64) -> f64 {
    if p + r == 0.0 {
        0.0
    } else {
        2.0 * p * r / (p + r)
    }
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

/// Scores predictions against the truth; each is a set of label indexes
/// into `labels` (one index each for single-label data).
pub fn evaluate(labels: &[String], truth: &[Vec<usize>], predicted: &[Vec<usize>]) -> Metrics {
    let n = labels.len();
    let single = truth.iter().chain(predicted).all(|s| s.len() == 1);
    let mut tp = vec![0usize; n];
    let mut fp = vec![0usize; n];
    let mut fneg = vec![0usize; n];
    let mut support = vec![0usize; n];
    let mut exact = 0;
    let mut confusion = vec![vec![0usize; if single { n } else { 4 }]; n];
    for (t, p) in truth.iter().zip(predicted) {
        let mut t_sorted = t.clone();
        let mut p_sorted = p.clone();
        t_sorted.sort_unstable();
        p_sorted.sort_unstable();
        if t_sorted == p_sorted {
            exact += 1;
        }
        for l in 0..n {
            let (in_t, in_p) = (t.contains(&l), p.contains(&l));
            match (in_t, in_p) {
                (true, true) => tp[l] += 1,
                (false, true) => fp[l] += 1,
                (true, false) => fneg[l] += 1,
                (false, false) => {}
            }
            if in_t {
                support[l] += 1;
            }
            if !single {
                confusion[l][usize::from(in_t) * 2 + usize::from(in_p)] += 1;
            }
        }
        if single {
            confusion[t[0]][p[0]] += 1;
        }
    }
    let per_label: Vec<LabelScores> = (0..n)
        .map(|l| {
            let precision = ratio(tp[l], tp[l] + fp[l]);
            let recall = ratio(tp[l], tp[l] + fneg[l]);
            LabelScores {
                label: labels[l].clone(),
                precision,
                recall,
                f1: f1(precision, recall),
                support: support[l],
            }
        })
        .collect();
    let mean = |f: fn(&LabelScores) -> f64| per_label.iter().map(f).sum::<f64>() / n.max(1) as f64;
    let (stp, sfp, sfn) = (
        tp.iter().sum(),
        fp.iter().sum::<usize>(),
        fneg.iter().sum::<usize>(),
    );
    let micro_p = ratio(stp, stp + sfp);
    let micro_r = ratio(stp, stp + sfn);
    Metrics {
        accuracy: ratio(exact, truth.len()),
        macro_avg: Averages {
            precision: mean(|s| s.precision),
            recall: mean(|s| s.recall),
            f1: mean(|s| s.f1),
        },
        micro_avg: Averages {
            precision: micro_p,
            recall: micro_r,
            f1: f1(micro_p, micro_r),
        },
        per_label,
        confusion,
        labels: labels.to_vec(),
        examples: truth.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_a_hand_computed_report() {
        // Truth: a a a b b c; predicted: a a b b c c.
        let labels: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        let t = [0, 0, 0, 1, 1, 2].map(|i| vec![i]).to_vec();
        let p = [0, 0, 1, 1, 2, 2].map(|i| vec![i]).to_vec();
        let m = evaluate(&labels, &t, &p);
        assert!((m.accuracy - 4.0 / 6.0).abs() < 1e-12);
        // a: P 2/2, R 2/3; b: P 1/2, R 1/2; c: P 1/2, R 1/1.
        let f = |p: f64, r: f64| 2.0 * p * r / (p + r);
        let want = [(1.0, 2.0 / 3.0), (0.5, 0.5), (0.5, 1.0)];
        for (s, (p, r)) in m.per_label.iter().zip(want) {
            assert!((s.precision - p).abs() < 1e-12 && (s.recall - r).abs() < 1e-12);
            assert!((s.f1 - f(p, r)).abs() < 1e-12);
        }
        let macro_f1 = (f(1.0, 2.0 / 3.0) + 0.5 + f(0.5, 1.0)) / 3.0;
        assert!((m.macro_avg.f1 - macro_f1).abs() < 1e-12);
        assert!((m.micro_avg.f1 - m.accuracy).abs() < 1e-12);
        assert_eq!(
            m.confusion,
            vec![vec![2, 1, 0], vec![0, 1, 1], vec![0, 0, 1]]
        );
        assert_eq!(
            m.per_label.iter().map(|s| s.support).collect::<Vec<_>>(),
            vec![3, 2, 1]
        );
    }

    #[test]
    fn a_label_never_predicted_scores_zero() {
        let labels: Vec<String> = ["x", "y"].iter().map(|s| s.to_string()).collect();
        let m = evaluate(&labels, &[vec![0], vec![1]], &[vec![0], vec![0]]);
        assert_eq!(m.per_label[1].precision, 0.0);
        assert_eq!(m.per_label[1].f1, 0.0);
        assert_eq!(m.accuracy, 0.5);
    }
}
