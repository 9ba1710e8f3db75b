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
//! AdamW (Loshchilov & Hutter 2019: Adam's bias-corrected moments,
//! decoupled weight decay; the same arithmetic, in the same order, as
//! candle-nn's `AdamW`, bit for bit) per (rate, decay) group; every group
//! steps on the same gradients. Each parameter is updated in place in one
//! pass over its values, gradient and moments: about 5× faster than
//! candle-nn's tensor arithmetic on 22.7 M parameters (`cargo bench --bench
//! adamw`: 23 against 115 ms a step on an idle machine; one
//! thread, as fast as two here, the pass being memory-bound, and it leaves
//! the other core to candle's spinning pool). In a whole training step of
//! all-MiniLM-L6-v2 (≈ 1.8 s) that is ≈ 0.1 s, within this machine's
//! run-to-run spread (`docs/performance.md`). The moments are named after their parameters so a
//! training state can be saved and resumed ([`GroupedAdamW::moments`],
//! [`GroupedAdamW::restore`]).

use candle_core::backprop::GradStore;
use candle_core::{Tensor, Var};
use candle_nn::ParamsAdamW;
use std::collections::HashMap;

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

/// One parameter and its first and second moments (as many values, f32,
/// in the parameter's row-major order).
struct Slot {
    name: String,
    var: Var,
    m: Vec<f32>,
    v: Vec<f32>,
}

/// One AdamW update of a parameter, in place, in one pass over its values,
/// its gradient and its moments (candle's tensor arithmetic would make a
/// dozen temporary tensors of the parameter's size per step). Each value
/// goes through the same f32 operations, in the same order, as candle-nn's
/// `AdamW` (a tensor times a scalar is `x · a + 0`, plus a scalar
/// `x · 1 + a`), so the results are the same bit for bit.
struct Update<'a> {
    moments: std::sync::Mutex<(&'a mut [f32], &'a mut [f32])>,
    beta1: f32,
    one_minus_beta1: f32,
    beta2: f32,
    one_minus_beta2: f32,
    scale_m: f32,
    scale_v: f32,
    decay: f32,
    eps: f32,
    lr: f32,
}

impl candle_core::InplaceOp2 for Update<'_> {
    fn name(&self) -> &'static str {
        "graft-adamw"
    }

    fn cpu_fwd(
        &self,
        theta: &mut candle_core::CpuStorage,
        theta_layout: &candle_core::Layout,
        grad: &candle_core::CpuStorage,
        grad_layout: &candle_core::Layout,
    ) -> candle_core::Result<()> {
        let grad = crate::encoder::kernels::contiguous_f32(grad, grad_layout, "adamw gradient")?;
        let Some((start, end)) = theta_layout.contiguous_offsets() else {
            candle_core::bail!("adamw: the parameter must be contiguous");
        };
        let candle_core::CpuStorage::F32(theta) = theta else {
            candle_core::bail!("adamw: the parameter must be f32");
        };
        let theta = &mut theta[start..end];
        let mut moments = self.moments.lock().unwrap_or_else(|e| e.into_inner());
        let (m, v) = &mut *moments;
        if grad.len() != theta.len() || m.len() != theta.len() || v.len() != theta.len() {
            candle_core::bail!("adamw: parameter, gradient and moments differ in size");
        }
        const CHUNK: usize = 16 * 1024;
        theta
            .chunks_mut(CHUNK)
            .zip(m.chunks_mut(CHUNK))
            .zip(v.chunks_mut(CHUNK))
            .zip(grad.chunks(CHUNK))
            .for_each(|(((theta, m), v), grad)| {
                for i in 0..theta.len() {
                    let g = grad[i];
                    let mi = (m[i] * self.beta1 + 0.0) + (g * self.one_minus_beta1 + 0.0);
                    let vi = (v[i] * self.beta2 + 0.0) + ((g * g) * self.one_minus_beta2 + 0.0);
                    let m_hat = mi * self.scale_m + 0.0;
                    let v_hat = vi * self.scale_v + 0.0;
                    let decayed = theta[i] * self.decay + 0.0;
                    let update = m_hat / (v_hat.sqrt() * 1.0 + self.eps);
                    m[i] = mi;
                    v[i] = vi;
                    theta[i] = decayed - (update * self.lr + 0.0);
                }
            });
        Ok(())
    }
}

struct Group {
    scale: f64,
    params: ParamsAdamW,
    slots: Vec<Slot>,
}

/// AdamW over named parameters, one optimizer per [`ParamRule`].
pub struct GroupedAdamW {
    groups: Vec<Group>,
    /// Steps taken (the bias corrections' t).
    step_t: usize,
}

/// Why a saved optimizer state does not fit the parameters.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    /// A parameter has no saved moment.
    #[error("no saved moments for {0}")]
    Missing(String),
    /// A saved moment's shape is not its parameter's.
    #[error("the saved moments of {name} are {saved:?}, the parameter is {shape:?}")]
    Shape {
        name: String,
        saved: Vec<usize>,
        shape: Vec<usize>,
    },
    /// candle could not set a variable.
    #[error(transparent)]
    Tensor(#[from] candle_core::Error),
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
        let mut groups: Vec<((u32, bool), Group)> = Vec::new();
        for (name, var) in params {
            let r = rule(&name, layers);
            // Without layer decay every depth trains at the same rate.
            let key = (if layer_decay < 1.0 { r.depth } else { 0 }, r.decay);
            if var.dtype() != candle_core::DType::F32 {
                return Err(candle_core::Error::Msg(format!(
                    "AdamW: {name} is {:?}, graft trains f32",
                    var.dtype()
                ))
                .into());
            }
            let slot = Slot {
                name,
                m: vec![0.0; var.elem_count()],
                v: vec![0.0; var.elem_count()],
                var,
            };
            match groups.iter_mut().find(|(k, _)| *k == key) {
                Some((_, g)) => g.slots.push(slot),
                None => groups.push((
                    key,
                    Group {
                        scale: layer_decay.powi(key.0 as i32),
                        params: ParamsAdamW {
                            weight_decay: if key.1 { adamw.weight_decay } else { 0.0 },
                            ..adamw.clone()
                        },
                        slots: vec![slot],
                    },
                )),
            }
        }
        Ok(Self {
            groups: groups.into_iter().map(|(_, g)| g).collect(),
            step_t: 0,
        })
    }

    /// One AdamW step of every group at `lr` × its layer's scale:
    /// m ← β₁m + (1−β₁)g, v ← β₂v + (1−β₂)g², θ ← θ(1 − ηλ) − η·m̂/(√v̂ + ε)
    /// with m̂ = m/(1−β₁ᵗ), v̂ = v/(1−β₂ᵗ). Parameters without a gradient
    /// keep their value and moments.
    ///
    /// # Errors
    /// A candle error from an update (a shape mismatch means a bug).
    pub fn step(&mut self, lr: f64, grads: &GradStore) -> candle_core::Result<()> {
        self.step_t += 1;
        let t = self.step_t as i32;
        for g in &mut self.groups {
            let p = &g.params;
            let lr = lr * g.scale;
            let scale_m = 1.0 / (1.0 - p.beta1.powi(t));
            let scale_v = 1.0 / (1.0 - p.beta2.powi(t));
            for slot in &mut g.slots {
                let Some(grad) = grads.get(&slot.var) else {
                    continue;
                };
                // f64 → f32 as candle converts a scalar operand.
                let update = Update {
                    moments: std::sync::Mutex::new((&mut slot.m, &mut slot.v)),
                    beta1: p.beta1 as f32,
                    one_minus_beta1: (1.0 - p.beta1) as f32,
                    beta2: p.beta2 as f32,
                    one_minus_beta2: (1.0 - p.beta2) as f32,
                    scale_m: scale_m as f32,
                    scale_v: scale_v as f32,
                    decay: (1.0 - lr * p.weight_decay) as f32,
                    eps: p.eps as f32,
                    lr: lr as f32,
                };
                let grad = grad.contiguous()?;
                slot.var.as_tensor().inplace_op2(&grad, &update)?;
            }
        }
        Ok(())
    }

    /// Steps taken so far.
    pub fn steps(&self) -> usize {
        self.step_t
    }

    /// Every parameter's name with its first and second moments (tensors
    /// of the parameter's shape, copies), for saving a training state.
    ///
    /// # Errors
    /// A candle error building a tensor (none expected: the sizes match).
    pub fn moments(&self) -> candle_core::Result<Vec<(&str, Tensor, Tensor)>> {
        self.groups
            .iter()
            .flat_map(|g| &g.slots)
            .map(|s| {
                let shape = s.var.shape();
                Ok((
                    s.name.as_str(),
                    Tensor::from_slice(&s.m, shape, s.var.device())?,
                    Tensor::from_slice(&s.v, shape, s.var.device())?,
                ))
            })
            .collect()
    }

    /// Puts back a saved state: `steps` taken and, by parameter name, the
    /// (first, second) moments.
    ///
    /// # Errors
    /// [`RestoreError::Missing`] when a parameter has no moments,
    /// [`RestoreError::Shape`] when they do not fit it.
    pub fn restore(
        &mut self,
        steps: usize,
        moments: &HashMap<String, (Tensor, Tensor)>,
    ) -> Result<(), RestoreError> {
        for slot in self.groups.iter_mut().flat_map(|g| &mut g.slots) {
            let (m, v) = moments
                .get(&slot.name)
                .ok_or_else(|| RestoreError::Missing(slot.name.clone()))?;
            for saved in [m, v] {
                if saved.dims() != slot.var.dims() {
                    return Err(RestoreError::Shape {
                        name: slot.name.clone(),
                        saved: saved.dims().to_vec(),
                        shape: slot.var.dims().to_vec(),
                    });
                }
            }
            slot.m = m.flatten_all()?.to_vec1::<f32>()?;
            slot.v = v.flatten_all()?.to_vec1::<f32>()?;
        }
        self.step_t = steps;
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

    /// A quadratic loss Σ (w − target)² over two named parameters: its
    /// gradients, for optimizer steps.
    fn quadratic(vars: &[Var]) -> GradStore {
        let dev = Device::Cpu;
        let target = Tensor::new(&[0.3f32, -1.2, 2.0], &dev).unwrap();
        vars.iter()
            .map(|v| {
                (v.as_tensor()
                    .broadcast_sub(&target.narrow(0, 0, v.dim(0).unwrap()).unwrap()))
                .unwrap()
                .sqr()
                .unwrap()
                .sum_all()
                .unwrap()
            })
            .reduce(|a, b| (a + b).unwrap())
            .unwrap()
            .backward()
            .unwrap()
    }

    fn pair(dev: &Device) -> Vec<(String, Var)> {
        vec![
            (
                "encoder.layer.0.output.dense.weight".into(),
                Var::new(&[1.0f32, 0.5, -0.25], dev).unwrap(),
            ),
            (
                "encoder.layer.0.output.dense.bias".into(),
                Var::new(&[0.1f32, -0.4], dev).unwrap(),
            ),
        ]
    }

    fn values(vars: &[(String, Var)]) -> Vec<Vec<f32>> {
        vars.iter()
            .map(|(_, v)| v.as_tensor().to_vec1::<f32>().unwrap())
            .collect()
    }

    /// graft's AdamW is candle-nn's arithmetic: the same values, bit for bit.
    #[test]
    fn the_same_steps_as_candle_nn_adamw() {
        use candle_nn::Optimizer;
        let dev = Device::Cpu;
        let params = ParamsAdamW {
            lr: 0.01,
            weight_decay: 0.1,
            ..ParamsAdamW::default()
        };
        let ours_vars = pair(&dev);
        let theirs_vars = pair(&dev);
        let mut ours = GroupedAdamW::new(ours_vars.clone(), 1, 1.0, params.clone()).unwrap();
        // The same two groups by hand: decayed weights, undecayed biases.
        let mut decayed =
            candle_nn::AdamW::new(vec![theirs_vars[0].1.clone()], params.clone()).unwrap();
        let mut undecayed = candle_nn::AdamW::new(
            vec![theirs_vars[1].1.clone()],
            ParamsAdamW {
                weight_decay: 0.0,
                ..params.clone()
            },
        )
        .unwrap();
        for step in 0..5 {
            let lr = 0.01 * (step + 1) as f64;
            let vars: Vec<Var> = ours_vars.iter().map(|(_, v)| v.clone()).collect();
            ours.step(lr, &quadratic(&vars)).unwrap();
            let vars: Vec<Var> = theirs_vars.iter().map(|(_, v)| v.clone()).collect();
            let grads = quadratic(&vars);
            decayed.set_learning_rate(lr);
            undecayed.set_learning_rate(lr);
            decayed.step(&grads).unwrap();
            undecayed.step(&grads).unwrap();
            assert_eq!(values(&ours_vars), values(&theirs_vars), "step {step}");
        }
        assert_eq!(ours.steps(), 5);
    }

    /// The same over a parameter of many chunks (the update runs in
    /// parallel over chunks of 16k values) with varied gradients.
    #[test]
    fn the_same_steps_as_candle_nn_adamw_on_a_large_parameter() {
        use candle_nn::Optimizer;
        let dev = Device::Cpu;
        let n = 50_003;
        let init = Tensor::randn(0f32, 1.0, n, &dev).unwrap();
        let coef = Tensor::randn(0f32, 1.0, n, &dev).unwrap();
        let ours = Var::from_tensor(&init).unwrap();
        let theirs = Var::from_tensor(&init.copy().unwrap()).unwrap();
        let params = ParamsAdamW {
            lr: 0.003,
            weight_decay: 0.01,
            ..ParamsAdamW::default()
        };
        let grads = |w: &Var| {
            ((w.as_tensor() * &coef).unwrap().sum_all().unwrap()
                + (w.as_tensor().sqr().unwrap().sum_all().unwrap() * 0.05).unwrap())
            .unwrap()
            .backward()
            .unwrap()
        };
        let mut a = GroupedAdamW::new(
            vec![("encoder.layer.0.output.dense.weight".into(), ours.clone())],
            1,
            1.0,
            params.clone(),
        )
        .unwrap();
        let mut b = candle_nn::AdamW::new(vec![theirs.clone()], params).unwrap();
        for step in 0..4 {
            let lr = 0.003 / (step + 1) as f64;
            a.step(lr, &grads(&ours)).unwrap();
            b.set_learning_rate(lr);
            b.step(&grads(&theirs)).unwrap();
            let (x, y) = (
                ours.as_tensor().to_vec1::<f32>().unwrap(),
                theirs.as_tensor().to_vec1::<f32>().unwrap(),
            );
            assert!(
                x.iter().zip(&y).all(|(p, q)| p.to_bits() == q.to_bits()),
                "step {step}"
            );
        }
    }

    /// Stepping 2 times, saving the moments, and stepping 3 more from a new
    /// optimizer restored from them is stepping 5 times.
    #[test]
    fn a_restored_state_continues_where_it_stopped() {
        let dev = Device::Cpu;
        let params = ParamsAdamW {
            lr: 0.05,
            weight_decay: 0.01,
            ..ParamsAdamW::default()
        };
        let straight = pair(&dev);
        let mut opt = GroupedAdamW::new(straight.clone(), 1, 0.9, params.clone()).unwrap();
        let step = |opt: &mut GroupedAdamW, vars: &[(String, Var)], i: usize| {
            let v: Vec<Var> = vars.iter().map(|(_, v)| v.clone()).collect();
            opt.step(0.05 / (i + 1) as f64, &quadratic(&v)).unwrap();
        };
        for i in 0..5 {
            step(&mut opt, &straight, i);
        }

        let resumed = pair(&dev);
        let mut first = GroupedAdamW::new(resumed.clone(), 1, 0.9, params.clone()).unwrap();
        for i in 0..2 {
            step(&mut first, &resumed, i);
        }
        let saved: HashMap<String, (Tensor, Tensor)> = first
            .moments()
            .unwrap()
            .into_iter()
            .map(|(n, m, v)| (n.to_owned(), (m, v)))
            .collect();
        // A new process: fresh variables set to the saved values.
        let again = pair(&dev);
        for ((_, fresh), (_, old)) in again.iter().zip(&resumed) {
            fresh.set(old.as_tensor()).unwrap();
        }
        let mut second = GroupedAdamW::new(again.clone(), 1, 0.9, params.clone()).unwrap();
        second.restore(first.steps(), &saved).unwrap();
        for i in 2..5 {
            step(&mut second, &again, i);
        }
        assert_eq!(values(&again), values(&straight));

        // Moments that do not fit are refused by name.
        let mut other = GroupedAdamW::new(pair(&dev), 1, 0.9, params.clone()).unwrap();
        let mut missing = saved.clone();
        missing.remove("encoder.layer.0.output.dense.bias");
        let e = other.restore(2, &missing).unwrap_err();
        assert!(
            matches!(e, RestoreError::Missing(ref n) if n.ends_with("dense.bias")),
            "{e}"
        );
        let mut wrong = saved.clone();
        let z = Tensor::zeros(4, candle_core::DType::F32, &dev).unwrap();
        wrong.insert("encoder.layer.0.output.dense.bias".into(), (z.clone(), z));
        let e = other.restore(2, &wrong).unwrap_err();
        assert!(e.to_string().contains("[4]"), "{e}");
    }
}
