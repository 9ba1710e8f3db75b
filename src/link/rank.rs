//! Candidate ranking, confidence and NIL.
//!
//! For a mention m with candidate nodes c (the nodes its label names):
//!
//! ```text
//! s0(c) = 2·exact(c) + kind(c) + prior(c) + name(m)·domain(c)
//! s(c)  = s0(c) + 3·agreement(c)
//! p(c)  = softmax over m's candidates of s(c)
//! q(m)  = 0.35 + 0.35·exact(m) + 0.15·long_or_multiword(m) + 0.15·(m has ≥ 5 scalars)
//! confidence = p(best) · q(m);  NIL when below `min_confidence`
//! ```
//!
//! - `exact(c)` is 1 when the mention is written exactly as one of c's labels
//!   (case kept): "Apple" is the company's label, "apple" the fruit's.
//! - `kind(c)` is 1 for a preferred label, 0.85 for an alternative, 0.7 for a hidden one.
//! - `name(m)·domain(c)` is 1 when the mention starts with a capital letter
//!   (it looks like a name) and c is not from a lexical graph: named
//!   entities are what domain graphs describe, while the lexical graph
//!   describes words ("Germany" the country/DE node, not WordNet's synset).
//! - `prior(c) = min(1, ln(1 + degree) / ln(101))`, degree = c's label, type
//!   and context-predicate triples (counted up to 1,000): well-described nodes
//!   are likelier referents.
//! - `agreement(c)` is how well c fits the other entities of the text: the
//!   largest `p0(c') · sim(c, c')` over the candidates c' of the other mentions
//!   within `CONTEXT_WINDOW` mentions, where p0 is the softmax of s0 and
//!   `sim` is 1 when c and c' are linked by a context predicate or share an
//!   object of one (same industry, country, lexical domain, hypernym...), 0.5
//!   when they share a non-generic type, 0.1 when both are lexical or both are not.
//! - `q(m)` says how much a mention looks like a name at all: written as the
//!   graph writes it, several words (or Han/kana), not too short. Softmax
//!   shares p among senses, so a polysemous dictionary word ("day": 10 senses)
//!   stays NIL unless context picks one.
//!
//! The weights are set by hand (see `docs/linking.md` for their effect on the
//! hand-labelled set).

use super::config::{LabelKind, LinkConfig};
use super::detect::Mention;
use super::index::LabelIndex;
use super::normalize::is_unspaced_script;
use crate::graph::{GraphError, GraphStore};
use oxigraph::model::{NamedNodeRef, Term};
use std::collections::{HashMap, HashSet};

/// How many neighbouring mentions on each side count as context.
const CONTEXT_WINDOW: usize = 16;

/// A mention linked to a node.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct LinkedEntity {
    /// The mention as written in the text.
    pub mention: String,
    /// Unicode scalar offsets in the text (`start` inclusive, `end` exclusive).
    pub start: usize,
    pub end: usize,
    /// The node's IRI.
    pub iri: String,
    /// The node's label in the text's language (else English, else any).
    pub label: String,
    /// The node's `rdf:type` IRIs.
    pub types: Vec<String>,
    /// The confidence in [0, 1], rounded to three decimals.
    pub score: f64,
}

struct Scored {
    node: u32,
    exact: bool,
    kind: f32,
    prior: f32,
}

/// Ranks the candidates of each mention and keeps those above the threshold.
/// Reads only the index: no store access.
pub fn rank(
    index: &LabelIndex,
    config: &LinkConfig,
    mentions: &[Mention],
    lang: &str,
) -> Vec<LinkedEntity> {
    let generic: HashSet<&str> = config.generic_types.iter().map(String::as_str).collect();
    // Candidates per mention, one per node (its best label).
    let mut per_mention: Vec<Vec<Scored>> = Vec::with_capacity(mentions.len());
    for m in mentions {
        let mut by_node: HashMap<u32, Scored> = HashMap::new();
        for &(i, exact) in &m.candidates {
            let entry = &index.entries(m.pattern)[i];
            let kind = match entry.kind {
                LabelKind::Preferred => 1.0,
                LabelKind::Alternative => 0.85,
                LabelKind::Hidden => 0.7,
            };
            let s = by_node.entry(entry.node).or_insert(Scored {
                node: entry.node,
                exact,
                kind,
                prior: 0.0,
            });
            s.exact |= exact;
            s.kind = s.kind.max(kind);
        }
        if by_node.len() > config.max_candidates {
            per_mention.push(Vec::new()); // too ambiguous: NIL
            continue;
        }
        let mut scored: Vec<Scored> = by_node.into_values().collect();
        scored.sort_by_key(|s| s.node);
        for s in &mut scored {
            s.prior = ((1.0 + index.node(s.node).degree as f32).ln() / 101f32.ln()).min(1.0);
        }
        per_mention.push(scored);
    }
    let looks_like_name: Vec<bool> = mentions
        .iter()
        .map(|m| m.text.chars().next().is_some_and(char::is_uppercase))
        .collect();
    let s0 = |mi: usize, s: &Scored| {
        let domain = looks_like_name[mi] && !index.node(s.node).lexical;
        2.0 * f32::from(u8::from(s.exact)) + s.kind + s.prior + f32::from(u8::from(domain))
    };
    let p0: Vec<Vec<f32>> = per_mention
        .iter()
        .enumerate()
        .map(|(mi, c)| softmax(&c.iter().map(|s| s0(mi, s)).collect::<Vec<_>>()))
        .collect();
    let mut out = Vec::new();
    for (mi, m) in mentions.iter().enumerate() {
        let candidates = &per_mention[mi];
        if candidates.is_empty() {
            continue;
        }
        let lo = mi.saturating_sub(CONTEXT_WINDOW);
        let hi = (mi + CONTEXT_WINDOW + 1).min(mentions.len());
        let scores: Vec<f32> = candidates
            .iter()
            .map(|c| {
                let mut agreement = 0f32;
                for mj in (lo..hi).filter(|&j| j != mi) {
                    for (k, other) in per_mention[mj].iter().enumerate() {
                        if other.node == c.node {
                            continue;
                        }
                        let sim = similarity(index, &generic, c.node, other.node);
                        agreement = agreement.max(p0[mj][k] * sim);
                    }
                }
                s0(mi, c) + 3.0 * agreement
            })
            .collect();
        let p = softmax(&scores);
        let (best, p_best) = p
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map(|(i, p)| (i, *p))
            .unwrap_or((0, 0.0));
        let chars = m.end - m.start;
        let long_or_multiword =
            m.text.trim().contains(' ') || m.text.chars().any(is_unspaced_script);
        let q = 0.35
            + 0.35 * f32::from(u8::from(candidates.iter().any(|c| c.exact)))
            + 0.15 * f32::from(u8::from(long_or_multiword))
            + 0.15 * f32::from(u8::from(chars >= 5));
        let confidence = p_best * q;
        if confidence < config.min_confidence {
            continue;
        }
        let node = candidates[best].node;
        let info = index.node(node);
        out.push(LinkedEntity {
            mention: m.text.clone(),
            start: m.start,
            end: m.end,
            label: index
                .name(node, lang)
                .map_or_else(|| m.text.clone(), str::to_owned),
            iri: info.iri.as_str().to_owned(),
            types: info
                .types
                .iter()
                .map(|&k| index.key(k).to_owned())
                .collect(),
            score: (f64::from(confidence) * 1000.0).round() / 1000.0,
        });
    }
    if out.len() > config.max_entities {
        out.sort_by(|a, b| b.score.total_cmp(&a.score));
        out.truncate(config.max_entities);
        out.sort_by_key(|e| e.start);
    }
    out
}

fn softmax(scores: &[f32]) -> Vec<f32> {
    let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exp: Vec<f32> = scores.iter().map(|s| (s - max).exp()).collect();
    let sum: f32 = exp.iter().sum();
    exp.iter().map(|e| e / sum).collect()
}

fn similarity(index: &LabelIndex, generic: &HashSet<&str>, a: u32, b: u32) -> f32 {
    let (na, nb) = (index.node(a), index.node(b));
    if na.context.contains(&nb.key) || nb.context.contains(&na.key) {
        return 1.0;
    }
    if na.context.iter().any(|k| nb.context.contains(k)) {
        return 1.0;
    }
    if na
        .types
        .iter()
        .any(|k| nb.types.contains(k) && !generic.contains(index.key(*k)))
    {
        return 0.5;
    }
    if na.lexical == nb.lexical {
        0.1
    } else {
        0.0
    }
}

/// The node's preferred label in `lang`, else English, else any.
///
/// # Errors
/// [`GraphError`] when the store cannot be read.
pub fn display_label(
    store: &GraphStore,
    config: &LinkConfig,
    node: NamedNodeRef<'_>,
    lang: &str,
) -> Result<Option<String>, GraphError> {
    let mut best: Option<(u8, String)> = None;
    for p in config
        .label_predicates
        .iter()
        .filter(|p| p.kind == LabelKind::Preferred)
    {
        let Ok(p) = NamedNodeRef::new(&p.iri) else {
            continue;
        };
        for quad in store
            .store()
            .quads_for_pattern(Some(node.into()), Some(p), None, None)
        {
            let Term::Literal(l) = quad?.object else {
                continue;
            };
            let rank = match l.language() {
                Some(t) if t == lang => 4,
                Some(t) if t.starts_with(&format!("{lang}-")) => 3,
                Some("en") => 2,
                None => 1,
                Some(_) => 0,
            };
            if best.as_ref().is_none_or(|(r, _)| rank > *r) {
                best = Some((rank, l.value().to_owned()));
            }
        }
    }
    Ok(best.map(|(_, l)| l))
}
