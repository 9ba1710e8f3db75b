//! Parameter groups of fine-tuning: which parameters get weight decay and
//! what share of the scheduled learning rate each one trains at.
//!
//! - **Weight decay on weight matrices only.** Biases and layer-norm gains
//!   and shifts are not decayed, as in BERT's reference optimizer
//!   (`exclude_from_weight_decay=["LayerNorm", "layer_norm", "bias"]` in
//!   google-research/bert `optimization.py`) and Hugging Face's `Trainer`.
//! - **Layer-wise learning-rate decay** (Sun et al. 2019, "How to Fine-Tune
//!   BERT for Text Classification", Sec. 5.3.2: η^(l−1) = ξ·η^l): the head,
//!   the pooler and the top transformer layer train at the scheduled rate η;
//!   each layer below at ξ times the rate of the one above, so layer `i` of
//!   `L` (0-based) at η·ξ^(L−1−i) and the embeddings at η·ξ^L. ξ = 1 (the
//!   default) turns it off.
//!
//! One AdamW (candle-nn's, decoupled decay after Loshchilov & Hutter 2019)
//! per (rate, decay) group; every group steps on the same gradients.

use candle_core::backprop::GradStore;
use candle_core::Var;
use candle_nn::{AdamW, Optimizer, ParamsAdamW};

/// How one parameter trains.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ParamRule {
    /// Its learning rate over the scheduled one: ξ^k, `k` given here.
    pub depth: u32,
    /// Whether weight decay applies.
    pub decay: bool,
}

/// The rule of a parameter named as in a Hugging Face BERT checkpoint
/// (`embeddings.…`, `encoder.layer.{i}.…`, `pooler.…`, `classifier.…`) in
/// an encoder of `layers` layers. Names that are none of these (the head)
/// train at the full rate.
pub fn rule(name: &str, layers: usize) -> ParamRule {
    let decay = !(name.ends_with(".bias")
        || name.ends_with("_bias")
        || name.contains("LayerNorm.")
        || name.contains("layer_norm."));
    let depth = if name.starts_with("embeddings.") {
        layers
    } else if let Some(i) = name
        .strip_prefix("encoder.layer.")
        .and_then(|rest| rest.split('.').next())
        .and_then(|i| i.parse::<usize>().ok())
    {
        layers.saturating_sub(i + 1)
    } else {
        0
    };
    ParamRule {
        depth: depth as u32,
        decay,
    }
}

struct Group {
    scale: f64,
    optimizer: AdamW,
}

/// AdamW over named parameters, one optimizer per [`ParamRule`].
pub struct GroupedAdamW {
    groups: Vec<Group>,
}

/// Why a layer decay is refused.
#[derive(Debug, thiserror::Error)]
#[error("--layer-lr-decay {0}: give a factor above 0 and at most 1 (1 = the same rate in every layer; 0.9 to 0.95 are usual)")]
pub struct LayerDecayError(pub f64);

/// Checks a layer-wise learning-rate decay factor.
///
/// # Errors
/// [`LayerDecayError`] outside (0, 1] (NaN included).
pub fn check_layer_decay(layer_decay: f64) -> Result<(), LayerDecayError> {
    if layer_decay > 0.0 && layer_decay <= 1.0 {
        Ok(())
    } else {
        Err(LayerDecayError(layer_decay))
    }
}

/// Why the optimizer groups could not be built.
#[derive(Debug, thiserror::Error)]
pub enum OptimError {
    /// A layer decay outside (0, 1].
    #[error(transparent)]
    LayerDecay(#[from] LayerDecayError),
    /// candle could not build an optimizer.
    #[error(transparent)]
    Tensor(#[from] candle_core::Error),
}

impl GroupedAdamW {
    /// Groups `params` (name, variable) of an encoder with `layers` layers
    /// by [`rule`]; `params.weight_decay` applies to the decayed groups only.
    ///
    /// # Errors
    /// [`OptimError::LayerDecay`] for a `layer_decay` outside (0, 1];
    /// [`OptimError::Tensor`] when candle cannot build an optimizer.
    pub fn new(
        params: Vec<(String, Var)>,
        layers: usize,
        layer_decay: f64,
        adamw: ParamsAdamW,
    ) -> Result<Self, OptimError> {
        check_layer_decay(layer_decay)?;
        let mut by_rule: Vec<((u32, bool), Vec<Var>)> = Vec::new();
        for (name, var) in params {
            let r = rule(&name, layers);
            // Without layer decay every depth trains at the same rate.
            let key = (if layer_decay < 1.0 { r.depth } else { 0 }, r.decay);
            match by_rule.iter_mut().find(|(k, _)| *k == key) {
                Some((_, vars)) => vars.push(var),
                None => by_rule.push((key, vec![var])),
            }
        }
        let groups = by_rule
            .into_iter()
            .map(|((depth, decay), vars)| {
                let params = ParamsAdamW {
                    weight_decay: if decay { adamw.weight_decay } else { 0.0 },
                    ..adamw.clone()
                };
                Ok(Group {
                    scale: layer_decay.powi(depth as i32),
                    optimizer: AdamW::new(vars, params)?,
                })
            })
            .collect::<candle_core::Result<_>>()?;
        Ok(Self { groups })
    }

    /// One AdamW step of every group at `lr` × its layer's scale.
    ///
    /// # Errors
    /// A candle error from an update (a shape mismatch means a bug).
    pub fn step(&mut self, lr: f64, grads: &GradStore) -> candle_core::Result<()> {
        for g in &mut self.groups {
            g.optimizer.set_learning_rate(lr * g.scale);
            g.optimizer.step(grads)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Tensor};

    #[test]
    fn biases_and_layer_norms_are_not_decayed_and_lower_layers_train_slower() {
        let r = |n| rule(n, 12);
        assert_eq!(
            r("classifier.weight"),
            ParamRule {
                depth: 0,
                decay: true
            }
        );
        assert_eq!(
            r("classifier.bias"),
            ParamRule {
                depth: 0,
                decay: false
            }
        );
        assert_eq!(
            r("pooler.dense.weight"),
            ParamRule {
                depth: 0,
                decay: true
            }
        );
        assert_eq!(
            r("encoder.layer.11.attention.self.query.weight"),
            ParamRule {
                depth: 0,
                decay: true
            }
        );
        assert_eq!(
            r("encoder.layer.10.output.LayerNorm.weight"),
            ParamRule {
                depth: 1,
                decay: false
            }
        );
        assert_eq!(
            r("encoder.layer.0.intermediate.dense.bias"),
            ParamRule {
                depth: 11,
                decay: false
            }
        );
        assert_eq!(
            r("embeddings.word_embeddings.weight"),
            ParamRule {
                depth: 12,
                decay: true
            }
        );
        assert_eq!(
            r("embeddings.LayerNorm.bias"),
            ParamRule {
                depth: 12,
                decay: false
            }
        );
    }

    /// On AdamW's first step every parameter moves by about its rate (the
    /// update is g/|g|) after shrinking by rate × decay, so each value
    /// shows the rate and the decay its group got.
    #[test]
    fn each_group_steps_at_its_rate_and_decays_only_weights() {
        let dev = Device::Cpu;
        let var = |v: f32| Var::from_tensor(&Tensor::new(&[v], &dev).unwrap()).unwrap();
        let names = [
            "encoder.layer.1.output.dense.weight",
            "encoder.layer.0.output.dense.weight",
            "embeddings.word_embeddings.weight",
            "encoder.layer.1.output.dense.bias",
        ];
        let vars: Vec<Var> = names.iter().map(|_| var(1.0)).collect();
        // Loss = the sum of the parameters: gradient 1 each.
        let loss = vars
            .iter()
            .map(|v| v.as_tensor().clone())
            .reduce(|a, b| (a + b).unwrap())
            .unwrap();
        let grads = loss.backward().unwrap();
        let adamw = ParamsAdamW {
            lr: 0.0,
            weight_decay: 0.5,
            ..ParamsAdamW::default()
        };
        let named = names
            .iter()
            .map(|n| n.to_string())
            .zip(vars.iter().cloned())
            .collect();
        let mut opt = GroupedAdamW::new(named, 2, 0.5, adamw.clone()).unwrap();
        assert_eq!(opt.groups.len(), 4);
        opt.step(0.1, &grads).unwrap();
        let value = |v: &Var| v.as_tensor().to_vec1::<f32>().unwrap()[0] as f64;
        // Decay then the Adam step: (1 − lr·wd) − lr.
        let expect = |lr: f64| (1.0 - lr * 0.5) - lr;
        assert!(
            (value(&vars[0]) - expect(0.1)).abs() < 1e-4,
            "{}",
            value(&vars[0])
        );
        assert!(
            (value(&vars[1]) - expect(0.05)).abs() < 1e-4,
            "{}",
            value(&vars[1])
        );
        assert!(
            (value(&vars[2]) - expect(0.025)).abs() < 1e-4,
            "{}",
            value(&vars[2])
        );
        assert!(
            (value(&vars[3]) - 0.9).abs() < 1e-4,
            "a bias is not decayed: {}",
            value(&vars[3])
        );

        // ξ = 1: one rate, two groups (decayed or not).
        let named = names
            .iter()
            .map(|n| n.to_string())
            .zip((0..4).map(|_| var(1.0)))
            .collect();
        let one_rate = GroupedAdamW::new(named, 2, 1.0, adamw.clone()).unwrap();
        assert_eq!(one_rate.groups.len(), 2);
        for bad in [0.0, -0.5, 1.5, f64::NAN] {
            let e = GroupedAdamW::new(Vec::new(), 2, bad, adamw.clone())
                .err()
                .expect("refused");
            assert!(e.to_string().contains("--layer-lr-decay"), "{e}");
        }
    }
}
