//! The classifier: labelled data, fine-tuning with graph fusion, evaluation,
//! the saved model folder and prediction. Knows nothing of HTTP.
//!
//! - [`data`]: CSV / TSV / JSON Lines examples, checked line by line.
//! - [`train`](mod@train): AdamW, warm-up and decay, clipping, class weights,
//!   early stopping on dev macro-F1, frozen or full fine-tuning.
//! - [`optim`]: AdamW parameter groups (no decay on biases and layer norms;
//!   layer-wise learning-rate decay).
//! - [`checkpoint`]: a training run's state after each epoch, to resume it.
//! - [`pretrain`]: masked-LM further pre-training on a task's texts.
//! - [`metrics`]: accuracy, per-label P/R/F1, macro/micro, confusion matrix.
//! - [`model`]: `graft.json` and loading a trained folder; probabilities.
//! - [`report`]: the evaluation as JSON, Markdown and an SVG picture.

pub mod checkpoint;
pub mod data;
mod folder;
pub mod metrics;
pub mod model;
pub mod optim;
pub mod pretrain;
pub mod report;
pub mod train;

pub use data::{DataError, DataFormat, Example};
pub use metrics::{evaluate, Metrics};
pub use model::{Classifier, ClassifierError, ModelCard, Scored};
pub use train::{TrainOptions, Trained};

use crate::fusion::Injection;
use crate::knowledge::LinkAnswer;

/// The facts of a linking answer as fusion injections: each fact anchored
/// at the first mention of its subject, in the text's order.
pub fn injections(answer: &LinkAnswer) -> Vec<Injection> {
    let mut out = Vec::new();
    for fact in &answer.facts {
        if let Some(e) = answer.entities.iter().find(|e| e.iri == fact.subject) {
            out.push(Injection {
                start: e.start,
                end: e.end,
                subject: e.label.clone(),
                predicate: fact.predicate_label.clone(),
                object: fact.object_label.clone(),
            });
        }
    }
    out.sort_by_key(|i| (i.start, i.end));
    out
}
