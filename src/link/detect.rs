//! Mention detection: every label occurrence in the normalised text that
//! respects word boundaries, then a non-overlapping choice.
//!
//! Rules (each tested):
//! 1. In scripts written with spaces, a mention starts and ends at a word
//!    boundary: "apple" is not found in "pineapple". Inside runs of Han or
//!    kana characters a mention may start and end anywhere.
//! 2. Labels of one character, stop-words and excluded nodes never enter the
//!    index (see [`super::index`]).
//! 3. Short labels (three characters or fewer in a spaced script, e.g. "US",
//!    "GE", "BP") and hidden labels (tickers, codes) match only with the
//!    exact case of the graph: "us" is not the United States, "aapl" is not Apple.
//! 4. A mention written in lower case that is a word of a lexical graph (a
//!    dictionary word: "apple", "shell") links only inside the lexical
//!    graphs: a proper name written in lower case is rare.
//! 5. A mention made only of digits ("17", "300750") matches only hidden
//!    labels (tickers, codes), never a word for a number.
//! 6. Overlaps are resolved greedily: longer mentions first (in Unicode
//!    scalars), then the mention whose best candidate is a better label
//!    (case-exact, preferred), then the earlier one.
//!
//! At most `MAX_RAW_MATCHES` label occurrences are examined per text, so a
//! text full of labels costs bounded time.

use super::config::LabelKind;
use super::index::{nfkc, LabelIndex};
use super::normalize::{is_unspaced_script, is_word_char, NormalizedText};

const MAX_RAW_MATCHES: usize = 200_000;

/// A detected mention with the nodes its label may name.
#[derive(Debug, Clone)]
pub struct Mention {
    /// Unicode scalar offsets in the original text, `start` inclusive, `end` exclusive.
    pub start: usize,
    pub end: usize,
    /// The original text of the mention.
    pub text: String,
    /// The automaton pattern (normalised label) that matched.
    pub pattern: usize,
    /// Candidates: (index into the pattern's entries, case-exact?).
    pub candidates: Vec<(usize, bool)>,
}

/// Finds the mentions of `text` (rules in the module docs).
pub fn detect(index: &LabelIndex, text: &NormalizedText) -> Vec<Mention> {
    let hay = text.text.as_str();
    let mut found = Vec::new();
    for m in index
        .automaton()
        .find_overlapping_iter(hay)
        .take(MAX_RAW_MATCHES)
    {
        let (s, e) = (m.start(), m.end());
        let first = hay[s..].chars().next();
        let last = hay[..e].chars().next_back();
        let before = hay[..s].chars().next_back();
        let after = hay[e..].chars().next();
        let cut = |inner: Option<char>, outer: Option<char>| matches!((inner, outer), (Some(i), Some(o)) if is_word_char(i) && is_word_char(o));
        if cut(first, before) || cut(last, after) {
            continue;
        }
        let (start, end) = (text.start_of(s), text.end_of(e));
        let original = text.original_slice(start, end);
        let exact_form = nfkc(&original);
        let label = index.label(m.pattern().as_usize());
        let short = label.chars().count() <= 3 && !label.chars().any(is_unspaced_script);
        let lower_case = original.chars().all(|c| !c.is_uppercase());
        let entries = index.entries(m.pattern().as_usize());
        let numeric = original
            .chars()
            .all(|c| c.is_ascii_digit() || c.is_whitespace());
        let dictionary_word = lower_case
            && entries
                .iter()
                .any(|e| index.node(e.node).lexical && *e.exact == *exact_form);
        let candidates: Vec<(usize, bool)> = entries
            .iter()
            .enumerate()
            .filter_map(|(i, entry)| {
                let exact = *entry.exact == *exact_form;
                let needs_exact = short || entry.kind == LabelKind::Hidden;
                if (needs_exact && !exact) || (numeric && entry.kind != LabelKind::Hidden) {
                    return None;
                }
                if dictionary_word && !index.node(entry.node).lexical {
                    return None;
                }
                Some((i, exact))
            })
            .collect();
        if candidates.is_empty() {
            continue;
        }
        found.push(Mention {
            start,
            end,
            text: original,
            pattern: m.pattern().as_usize(),
            candidates,
        });
    }
    resolve_overlaps(index, found)
}

fn resolve_overlaps(index: &LabelIndex, found: Vec<Mention>) -> Vec<Mention> {
    let quality = |m: &Mention| {
        m.candidates
            .iter()
            .map(|&(i, exact)| {
                let kind = match index.entries(m.pattern)[i].kind {
                    LabelKind::Preferred => 2,
                    LabelKind::Alternative => 1,
                    LabelKind::Hidden => 0,
                };
                u8::from(exact) * 4 + kind
            })
            .max()
            .unwrap_or(0)
    };
    let mut ranked: Vec<(u8, Mention)> = found.into_iter().map(|m| (quality(&m), m)).collect();
    ranked.sort_by(|(qa, a), (qb, b)| {
        (b.end - b.start)
            .cmp(&(a.end - a.start))
            .then_with(|| qb.cmp(qa))
            .then_with(|| a.start.cmp(&b.start))
    });
    let len = ranked.iter().map(|(_, m)| m.end).max().unwrap_or(0);
    let mut occupied = vec![false; len];
    let mut taken: Vec<Mention> = Vec::new();
    for (_, m) in ranked {
        if occupied[m.start..m.end].iter().all(|o| !o) {
            occupied[m.start..m.end].iter_mut().for_each(|o| *o = true);
            taken.push(m);
        }
    }
    taken.sort_by_key(|m| m.start);
    taken
}
