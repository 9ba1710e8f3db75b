//! Dynamic batching: the encoder inputs of concurrent requests are run in
//! one encoder pass, so throughput under load approaches the encoder's
//! batch throughput instead of its batch-1 throughput.
//!
//! One worker thread per served model takes the first waiting job, then
//! keeps taking jobs while the batch holds fewer than `max_batch_tokens`
//! tokens (the job that crosses the bound still joins) and `max_wait` has
//! not passed since the first; jobs queued while a batch runs are taken at
//! once by the next. The batch is then run by
//! [`Classifier::probabilities`], which sorts it by length and splits it
//! into encoder passes of at most 32 sequences and 8192 padded tokens.
//! Jobs whose requester has gone (the client disconnected) are skipped, so
//! a cancelled request costs no encoder time. The queue is bounded: when it
//! is full, [`Batcher::submit`] refuses at once.

use super::{Observer, ServeError};
use crate::classifier::Classifier;
use crate::encoder::Sequence;
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// Bounds of one batch.
#[derive(Debug, Clone, Copy)]
pub struct BatchConfig {
    /// Tokens (the sum of input lengths) past which a batch takes no more
    /// jobs. A single job larger than this runs alone.
    pub max_batch_tokens: usize,
    /// Longest time the first job of a batch waits for company.
    pub max_wait: Duration,
    /// Most jobs waiting; more are refused with [`ServeError::Overloaded`].
    pub max_queue: usize,
}

impl Default for BatchConfig {
    fn default() -> Self {
        Self {
            max_batch_tokens: 8192,
            max_wait: Duration::from_millis(2),
            max_queue: 1024,
        }
    }
}

/// Label probabilities `[inputs, labels]` of one job, in input order.
pub type Probabilities = Vec<Vec<f32>>;

struct Job {
    inputs: Vec<Sequence>,
    tokens: usize,
    reply: oneshot::Sender<Result<Probabilities, ServeError>>,
}

/// The queue in front of one model's worker thread. Dropping it lets the
/// worker finish the jobs already queued, then exit.
pub struct Batcher {
    tx: SyncSender<Job>,
}

impl Batcher {
    /// Starts the worker thread of `classifier`.
    pub fn start(
        name: &str,
        classifier: Arc<Classifier>,
        config: BatchConfig,
        observer: Arc<dyn Observer>,
    ) -> Self {
        let (tx, rx) = sync_channel(config.max_queue.max(1));
        let thread_name = format!("batch-{name}");
        std::thread::Builder::new()
            .name(thread_name)
            .spawn(move || run(rx, &classifier, config, &*observer))
            .expect("spawning a thread");
        Self { tx }
    }

    /// Queues `inputs` and waits for their probabilities.
    ///
    /// # Errors
    /// [`ServeError::Overloaded`] when the queue is full;
    /// [`ServeError::Internal`] when the encoder fails or the worker is gone.
    pub async fn submit(&self, inputs: Vec<Sequence>) -> Result<Probabilities, ServeError> {
        if inputs.is_empty() {
            return Ok(Vec::new());
        }
        let (reply, answer) = oneshot::channel();
        let tokens = inputs.iter().map(|s| s.input_ids.len()).sum();
        match self.tx.try_send(Job {
            inputs,
            tokens,
            reply,
        }) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => return Err(ServeError::Overloaded),
            Err(TrySendError::Disconnected(_)) => {
                return Err(ServeError::Internal(
                    "the model's worker has stopped".into(),
                ))
            }
        }
        answer
            .await
            .map_err(|_| ServeError::Internal("the model's worker dropped a job".into()))?
    }
}

fn run(rx: Receiver<Job>, classifier: &Classifier, config: BatchConfig, observer: &dyn Observer) {
    while let Ok(first) = rx.recv() {
        let deadline = Instant::now() + config.max_wait;
        let mut tokens = first.tokens;
        let mut jobs = vec![first];
        while tokens < config.max_batch_tokens {
            let next = match rx.try_recv() {
                Ok(job) => job,
                Err(_) => match rx.recv_timeout(deadline.saturating_duration_since(Instant::now()))
                {
                    Ok(job) => job,
                    Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => break,
                },
            };
            tokens += next.tokens;
            jobs.push(next);
        }
        // Requests whose client went away get nothing computed.
        jobs.retain(|j| !j.reply.is_closed());
        if jobs.is_empty() {
            continue;
        }
        let inputs: Vec<Sequence> = jobs.iter().flat_map(|j| j.inputs.iter().cloned()).collect();
        let started = Instant::now();
        // A panic in the encoder fails this batch, not the worker (which
        // would leave the model unable to answer until a reload).
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            classifier.probabilities(&inputs)
        }))
        .unwrap_or_else(|_| {
            Err(crate::classifier::ClassifierError::Other(
                "the encoder panicked on this batch".into(),
            ))
        });
        observer.batch(
            inputs.len(),
            inputs.iter().map(|s| s.input_ids.len()).sum(),
            started.elapsed(),
        );
        match result {
            Ok(probs) => {
                let mut probs = probs.into_iter();
                for job in jobs {
                    let part: Probabilities = probs.by_ref().take(job.inputs.len()).collect();
                    let _ = job.reply.send(Ok(part));
                }
            }
            Err(e) => {
                let message = e.to_string();
                for job in jobs {
                    let _ = job
                        .reply
                        .send(Err(ServeError::Internal(format!("encoder: {message}"))));
                }
            }
        }
    }
}
