//! Knowledge fusion: turning a text and the facts of its linked entities into
//! one encoder input. Knows nothing of HTTP or of how facts were found.
//!
//! Three modes ([`FusionMode`]):
//! - `kbert`: K-BERT's sentence tree (Liu et al., AAAI 2020, "K-BERT:
//!   Enabling Language Representation with Knowledge Graph", §3.2–3.3). Each
//!   fact of an entity becomes a *branch* of tokens ("predicate object")
//!   placed right after the entity's last token. *Soft positions*: the
//!   sentence's own tokens keep the positions they have without branches; a
//!   branch continues from its entity's last position. *Visible matrix*: the
//!   sentence's tokens see each other; a branch's tokens see their own
//!   branch and the tokens of its entity, and the entity's tokens see its
//!   branches; nothing else sees a branch, so the rest of the sentence is
//!   computed exactly as without knowledge.
//! - `append`: `[CLS] text [SEP] facts [SEP]`, facts as a second segment
//!   (token type 1), each fact as "subject predicate object".
//! - `none`: `[CLS] text [SEP]`, the plain baseline.
//!
//! Bounds ([`FusionLimits`]): facts per entity, tokens per fact, injected
//! tokens in total, and the whole length. Modes that inject reserve
//! `max_injected_tokens` (plus one `[SEP]` for `append`) of `max_tokens` for
//! facts, so how much of the text is kept never depends on the facts found:
//! a long text is cut to the same length with or without them, and facts
//! never displace text (give `none` a `max_tokens` smaller by the reserve to
//! feed it the same text).
//!
//! Which part of a text too long for its budget is kept ([`Truncation`]):
//! its start (the default), its end, or its start and its end with the middle
//! cut (Sun et al. 2019, "How to Fine-Tune BERT for Text Classification?",
//! §5.3.1: head+tail was the best of the three on IMDb and Sogou News).

use crate::encoder::{EncoderError, Sequence, TextTokenizer, Tokenized};
use std::collections::BTreeMap;
use std::ops::Range;

/// How facts enter the encoder's input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FusionMode {
    /// No facts: the plain fine-tuning baseline.
    None,
    /// Facts as a second segment after the text.
    Append,
    /// K-BERT: branches, soft positions, visible matrix.
    Kbert,
}

impl std::str::FromStr for FusionMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "none" => Ok(Self::None),
            "append" => Ok(Self::Append),
            "kbert" => Ok(Self::Kbert),
            _ => Err(format!(
                "unknown fusion mode \"{s}\" (none, append or kbert)"
            )),
        }
    }
}

impl std::fmt::Display for FusionMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::None => "none",
            Self::Append => "append",
            Self::Kbert => "kbert",
        })
    }
}

/// Which tokens of a text longer than its budget are kept.
///
/// Source: Sun, Qiu, Xu & Huang 2019, "How to Fine-Tune BERT for Text
/// Classification?" (CCL 2019), §5.3.1, where head+tail kept the first 128
/// and the last 382 of 510 tokens, about a quarter from the start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Truncation {
    /// The first tokens (the text's start).
    #[default]
    #[serde(rename = "head")]
    Head,
    /// The last tokens (the text's end).
    #[serde(rename = "tail")]
    Tail,
    /// A quarter of the budget (rounded down) from the start, the rest from
    /// the end; the middle is cut.
    #[serde(rename = "head+tail")]
    HeadTail,
}

impl Truncation {
    /// Tokens kept from the start and from the end of a text of `len`
    /// tokens with room for `budget`: `(head, tail)`, `head + tail =
    /// min(len, budget)`; `(len, 0)` when the text fits.
    pub fn split(self, len: usize, budget: usize) -> (usize, usize) {
        if len <= budget {
            return (len, 0);
        }
        match self {
            Self::Head => (budget, 0),
            Self::Tail => (0, budget),
            Self::HeadTail => (budget / 4, budget - budget / 4),
        }
    }
}

impl std::str::FromStr for Truncation {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "head" => Ok(Self::Head),
            "tail" => Ok(Self::Tail),
            "head+tail" => Ok(Self::HeadTail),
            _ => Err(format!(
                "unknown truncation \"{s}\" (head, tail or head+tail)"
            )),
        }
    }
}

impl std::fmt::Display for Truncation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Head => "head",
            Self::Tail => "tail",
            Self::HeadTail => "head+tail",
        })
    }
}

/// Bounds on what fusion injects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FusionLimits {
    /// The whole sequence, special tokens included.
    pub max_tokens: usize,
    /// Facts injected per entity mention.
    pub max_facts_per_entity: usize,
    /// Tokens of one fact (longer facts are cut).
    pub max_tokens_per_fact: usize,
    /// Injected tokens in one sequence, all facts together.
    pub max_injected_tokens: usize,
    /// Which part of a text too long for the input is kept (model folders
    /// written before this field keep the start).
    #[serde(default)]
    pub truncation: Truncation,
}

impl Default for FusionLimits {
    fn default() -> Self {
        Self {
            max_tokens: 128,
            max_facts_per_entity: 2,
            max_tokens_per_fact: 8,
            max_injected_tokens: 32,
            truncation: Truncation::Head,
        }
    }
}

/// One fact about an entity mention, ready to inject.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Injection {
    /// The mention's span in the text, Unicode scalar offsets (`start`
    /// inclusive, `end` exclusive).
    pub start: usize,
    pub end: usize,
    /// The subject's label, e.g. "Deutsche Bank" (used by `append`).
    pub subject: String,
    /// The predicate's label, e.g. "industry".
    pub predicate: String,
    /// The object's label, e.g. "Financial services".
    pub object: String,
}

/// A built input and what went into it.
#[derive(Debug, Clone, PartialEq)]
pub struct FusedInput {
    /// Ids, segment ids, soft positions and (for `kbert`) the visible matrix.
    pub sequence: Sequence,
    /// Indexes (into the injections given) of the facts that were injected.
    pub injected: Vec<usize>,
    /// Tokens of the text kept (special tokens not counted).
    pub text_tokens: usize,
    /// Whether the text itself was cut to fit `max_tokens`.
    pub truncated: bool,
}

/// Errors of fusion.
#[derive(Debug, thiserror::Error)]
pub enum FusionError {
    /// The tokenizer failed.
    #[error(transparent)]
    Tokenizer(#[from] EncoderError),
    /// The tokenizer adds no start and end tokens to a text.
    #[error("the tokenizer adds no [CLS]/[SEP] (or <s>/</s>) tokens: fusion needs them")]
    NoSpecialTokens,
    /// The limits leave no room for the text.
    #[error("max_tokens {max_tokens} leaves no room for text after {reserved} tokens reserved for facts")]
    TooShort { max_tokens: usize, reserved: usize },
}

/// Builds fused inputs for one tokenizer.
#[derive(Debug, Clone)]
pub struct Fuser {
    mode: FusionMode,
    limits: FusionLimits,
    cls: u32,
    sep: u32,
}

/// A text tokenized once for fusion, with what of it the input keeps:
/// [`Fuser::cut`] makes it, [`Cut::spans`] says what to link and
/// [`Fuser::build_cut`] builds the input from it.
pub struct Cut {
    piece: Tokenized,
    kept: Kept,
}

impl Cut {
    /// The kept parts of the text (see [`Fuser::kept_spans`]).
    pub fn spans(&self) -> &[Range<usize>] {
        &self.kept.spans
    }
}

/// The tokens of a text kept in the input.
struct Kept {
    /// Indexes of the kept tokens, in order.
    tokens: Vec<usize>,
    /// The kept parts of the text, Unicode scalar offsets (see
    /// [`Fuser::kept_spans`]).
    spans: Vec<Range<usize>>,
    /// Whether any token was cut.
    truncated: bool,
}

/// Where a token of the fused sequence comes from.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Origin {
    /// The sentence (trunk): special tokens and the text's tokens.
    Trunk,
    /// Branch `branch` of mention `mention`.
    Branch { mention: usize, branch: usize },
}

impl Fuser {
    /// A fuser for `tokenizer`'s special tokens.
    ///
    /// Errors: [`FusionError::NoSpecialTokens`] when encoding a text adds no
    /// start and end token; [`FusionError::TooShort`] for `max_tokens` < 3.
    pub fn new(
        tokenizer: &TextTokenizer,
        mode: FusionMode,
        limits: FusionLimits,
    ) -> Result<Self, FusionError> {
        let reserved = reserve(mode, &limits);
        if limits.max_tokens < 3 + reserved {
            return Err(FusionError::TooShort {
                max_tokens: limits.max_tokens,
                reserved,
            });
        }
        let empty = tokenizer.encode(&[""])?.remove(0).ids;
        let [cls, sep] = empty[..] else {
            return Err(FusionError::NoSpecialTokens);
        };
        Ok(Self {
            mode,
            limits,
            cls,
            sep,
        })
    }

    /// The fusion mode.
    pub fn mode(&self) -> FusionMode {
        self.mode
    }

    /// The limits.
    pub fn limits(&self) -> FusionLimits {
        self.limits
    }

    /// The parts of `text` whose tokens are kept in the input, as Unicode
    /// scalar offset ranges (`start` inclusive, `end` exclusive; an open end
    /// is `usize::MAX`): `[0..usize::MAX]` when the text fits, one range
    /// with `head` or `tail` truncation, two with `head+tail` (one when the
    /// room is under 4 tokens and nothing is kept from the start). Only mentions
    /// that lie wholly inside one of them get their facts injected. Errors:
    /// [`FusionError::Tokenizer`].
    pub fn kept_spans(
        &self,
        tokenizer: &TextTokenizer,
        text: &str,
    ) -> Result<Vec<Range<usize>>, FusionError> {
        Ok(self.cut(tokenizer, text)?.kept.spans)
    }

    /// Tokenizes `text` once and decides what of it the input keeps, for
    /// linking the kept parts ([`Cut::spans`]) and then building the input
    /// ([`Fuser::build_cut`]) without tokenizing again. Errors:
    /// [`FusionError::Tokenizer`].
    pub fn cut(&self, tokenizer: &TextTokenizer, text: &str) -> Result<Cut, FusionError> {
        let piece = tokenizer.encode_piece(text)?;
        let kept = self.kept(&piece.offsets);
        Ok(Cut { piece, kept })
    }

    /// Which tokens of a text tokenized into `offsets` are kept.
    fn kept(&self, offsets: &[(usize, usize)]) -> Kept {
        let n = offsets.len();
        let (head, tail) = self.limits.truncation.split(n, self.text_budget());
        let mut tokens: Vec<usize> = (0..head).collect();
        tokens.extend(n - tail..n);
        let truncated = head + tail < n;
        let mut spans = Vec::new();
        if !truncated {
            spans.push(0..usize::MAX);
        } else {
            if head > 0 {
                spans.push(0..offsets[head - 1].1);
            }
            if tail > 0 {
                spans.push(offsets[n - tail].0..usize::MAX);
            }
        }
        Kept {
            tokens,
            spans,
            truncated,
        }
    }

    /// Builds the input for `text` with `injections` (ignored in `none`
    /// mode). Facts of mentions that fall outside the kept text are dropped.
    ///
    /// Errors: [`FusionError::Tokenizer`].
    pub fn build(
        &self,
        tokenizer: &TextTokenizer,
        text: &str,
        injections: &[Injection],
    ) -> Result<FusedInput, FusionError> {
        self.build_cut(tokenizer, &self.cut(tokenizer, text)?, injections)
    }

    /// [`Fuser::build`] for a text already cut by [`Fuser::cut`] (with this
    /// fuser). Errors: [`FusionError::Tokenizer`] (tokenizing the facts).
    pub fn build_cut(
        &self,
        tokenizer: &TextTokenizer,
        cut: &Cut,
        injections: &[Injection],
    ) -> Result<FusedInput, FusionError> {
        let (piece, kept) = (&cut.piece, &cut.kept);
        let text_ids: Vec<u32> = kept.tokens.iter().map(|&t| piece.ids[t]).collect();
        let offsets: Vec<(usize, usize)> = kept.tokens.iter().map(|&t| piece.offsets[t]).collect();
        let (spans, truncated) = (&kept.spans, kept.truncated);
        match self.mode {
            FusionMode::None => Ok(self.plain(&text_ids, truncated)),
            FusionMode::Append => self.append(tokenizer, &text_ids, spans, truncated, injections),
            FusionMode::Kbert => {
                self.kbert(tokenizer, &text_ids, &offsets, spans, truncated, injections)
            }
        }
    }

    /// Text tokens an input may hold: `max_tokens` less the special tokens
    /// and the room reserved for facts.
    pub fn text_budget(&self) -> usize {
        self.limits.max_tokens - 2 - reserve(self.mode, &self.limits)
    }

    fn plain(&self, text_ids: &[u32], truncated: bool) -> FusedInput {
        let mut ids = Vec::with_capacity(text_ids.len() + 2);
        ids.push(self.cls);
        ids.extend_from_slice(text_ids);
        ids.push(self.sep);
        FusedInput {
            sequence: Sequence::plain(ids),
            injected: Vec::new(),
            text_tokens: text_ids.len(),
            truncated,
        }
    }

    /// Facts kept per mention, in the text's order: mention (start, end) →
    /// indexes into `injections`, at most `max_facts_per_entity` each, only
    /// mentions wholly inside one of the kept `spans` (Unicode scalar
    /// offsets).
    fn by_mention(
        &self,
        spans: &[Range<usize>],
        injections: &[Injection],
    ) -> BTreeMap<(usize, usize), Vec<usize>> {
        let mut mentions: BTreeMap<(usize, usize), Vec<usize>> = BTreeMap::new();
        for (i, inj) in injections.iter().enumerate() {
            let inside = spans
                .iter()
                .any(|r| r.start <= inj.start && inj.end <= r.end);
            if !inside || inj.start >= inj.end {
                continue;
            }
            let facts = mentions.entry((inj.start, inj.end)).or_default();
            if facts.len() < self.limits.max_facts_per_entity {
                facts.push(i);
            }
        }
        mentions
    }

    fn fact_tokens(&self, tokenizer: &TextTokenizer, words: &str) -> Result<Vec<u32>, FusionError> {
        let mut ids = tokenizer.encode_piece(words)?.ids;
        ids.truncate(self.limits.max_tokens_per_fact);
        Ok(ids)
    }

    fn append(
        &self,
        tokenizer: &TextTokenizer,
        text_ids: &[u32],
        spans: &[Range<usize>],
        truncated: bool,
        injections: &[Injection],
    ) -> Result<FusedInput, FusionError> {
        let mut out = self.plain(text_ids, truncated);
        if injections.is_empty() {
            return Ok(out);
        }
        // [CLS] text [SEP] facts [SEP]: one more [SEP] than the plain input.
        let room = self.limits.max_tokens.saturating_sub(text_ids.len() + 3);
        let budget = room.min(self.limits.max_injected_tokens);
        let mut facts: Vec<u32> = Vec::new();
        for indexes in self.by_mention(spans, injections).values() {
            for &i in indexes {
                let inj = &injections[i];
                let words = format!("{} {} {}", inj.subject, inj.predicate, inj.object);
                let tokens = self.fact_tokens(tokenizer, &words)?;
                if tokens.is_empty() || facts.len() + tokens.len() > budget {
                    continue;
                }
                facts.extend(tokens);
                out.injected.push(i);
            }
        }
        if facts.is_empty() {
            return Ok(out);
        }
        let s = &mut out.sequence;
        s.input_ids.extend(&facts);
        s.input_ids.push(self.sep);
        s.token_type_ids.resize(s.input_ids.len(), 1);
        Ok(out)
    }

    fn kbert(
        &self,
        tokenizer: &TextTokenizer,
        text_ids: &[u32],
        offsets: &[(usize, usize)],
        spans: &[Range<usize>],
        truncated: bool,
        injections: &[Injection],
    ) -> Result<FusedInput, FusionError> {
        let room = self.limits.max_tokens - text_ids.len() - 2;
        let budget = room.min(self.limits.max_injected_tokens);
        // Each mention: its text tokens and the branches after its last one.
        struct Mention {
            tokens: Vec<usize>,
            branches: Vec<Vec<u32>>,
        }
        let mut mentions: Vec<Mention> = Vec::new();
        let mut injected = Vec::new();
        let mut used = 0;
        let mut claimed = vec![false; text_ids.len()];
        for ((start, end), indexes) in self.by_mention(spans, injections) {
            let tokens: Vec<usize> = (0..text_ids.len())
                .filter(|&t| {
                    offsets[t].0 < end && offsets[t].1 > start && offsets[t].1 > offsets[t].0
                })
                .collect();
            // A token already anchoring an overlapping mention keeps it.
            if tokens.is_empty() || tokens.iter().any(|&t| claimed[t]) {
                continue;
            }
            let mut branches = Vec::new();
            for i in indexes {
                let inj = &injections[i];
                let ids =
                    self.fact_tokens(tokenizer, &format!("{} {}", inj.predicate, inj.object))?;
                if ids.is_empty() || used + ids.len() > budget {
                    continue;
                }
                used += ids.len();
                branches.push(ids);
                injected.push(i);
            }
            if !branches.is_empty() {
                for &t in &tokens {
                    claimed[t] = true;
                }
                mentions.push(Mention { tokens, branches });
            }
        }
        // Lay out: trunk in order, each mention's branches after its last token.
        let mut after: BTreeMap<usize, usize> = BTreeMap::new(); // last text token → mention
        for (m, mention) in mentions.iter().enumerate() {
            after.insert(*mention.tokens.last().expect("non-empty"), m);
        }
        let len = text_ids.len() + 2 + used;
        let mut ids = Vec::with_capacity(len);
        let mut positions = Vec::with_capacity(len);
        let mut origin = Vec::with_capacity(len);
        // Where each text token lands in the sequence (for mention membership).
        let mut slot_of_text = vec![0usize; text_ids.len()];
        ids.push(self.cls);
        positions.push(0);
        origin.push(Origin::Trunk);
        for (t, &id) in text_ids.iter().enumerate() {
            let pos = t as u32 + 1;
            slot_of_text[t] = ids.len();
            ids.push(id);
            positions.push(pos);
            origin.push(Origin::Trunk);
            if let Some(&m) = after.get(&t) {
                for (b, branch) in mentions[m].branches.iter().enumerate() {
                    for (j, &bid) in branch.iter().enumerate() {
                        ids.push(bid);
                        positions.push(pos + 1 + j as u32);
                        origin.push(Origin::Branch {
                            mention: m,
                            branch: b,
                        });
                    }
                }
            }
        }
        ids.push(self.sep);
        positions.push(text_ids.len() as u32 + 1);
        origin.push(Origin::Trunk);
        debug_assert_eq!(ids.len(), len);
        // Which sequence slots are each mention's own tokens.
        let mut mention_of_slot: Vec<Option<usize>> = vec![None; len];
        for (m, mention) in mentions.iter().enumerate() {
            for &t in &mention.tokens {
                mention_of_slot[slot_of_text[t]] = Some(m);
            }
        }
        let mut visible = vec![false; len * len];
        for i in 0..len {
            for j in 0..len {
                visible[i * len + j] = match (origin[i], origin[j]) {
                    (Origin::Trunk, Origin::Trunk) => true,
                    (
                        Origin::Branch { mention, branch },
                        Origin::Branch {
                            mention: m2,
                            branch: b2,
                        },
                    ) => mention == m2 && branch == b2,
                    (Origin::Branch { mention, .. }, Origin::Trunk) => {
                        mention_of_slot[j] == Some(mention)
                    }
                    (Origin::Trunk, Origin::Branch { mention, .. }) => {
                        mention_of_slot[i] == Some(mention)
                    }
                };
            }
        }
        Ok(FusedInput {
            sequence: Sequence {
                token_type_ids: vec![0; len],
                input_ids: ids,
                position_ids: Some(positions),
                visible: Some(visible),
            },
            injected,
            text_tokens: text_ids.len(),
            truncated,
        })
    }
}

/// Tokens of `max_tokens` kept for facts in `mode`.
fn reserve(mode: FusionMode, limits: &FusionLimits) -> usize {
    match mode {
        FusionMode::None => 0,
        FusionMode::Kbert => limits.max_injected_tokens,
        FusionMode::Append => limits.max_injected_tokens + 1,
    }
}

#[cfg(test)]
mod tests;
