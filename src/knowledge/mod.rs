//! The knowledge part: which facts of the linked entities to use, and how to
//! say them in words.
//!
//! For each entity, its facts are fetched with one SPARQL query over the
//! configured predicates (`fact_predicates` of [`LinkConfig`]). Ranking rule:
//! the configured predicate order first, then the entity's link confidence,
//! then the object's prior (its degree: well-described objects first). At
//! most `max_facts_per_entity` per entity and `max_facts_per_text` (or the
//! request's `max_facts`) per text are kept. Labels of predicate and object
//! are taken in the text's language when the graph has them, else English,
//! else the IRI's local name. Knows nothing of HTTP.

use crate::graph::{GraphError, GraphStore, QueryRequest, SparqlOptions};
use crate::link::rank::display_label;
use crate::link::{guess_lang, LabelIndex, LinkConfig, LinkError, LinkedEntity, Linker};
use oxigraph::model::{NamedNodeRef, Term};
use oxigraph::sparql::QueryResults;
use std::collections::HashMap;

const RDF_TYPE: &str = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type";

/// One fact about a linked entity, with its verbalisation.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct Fact {
    /// The entity's IRI.
    pub subject: String,
    /// The predicate's IRI.
    pub predicate: String,
    /// The object: an IRI, or a literal's value.
    pub object: String,
    /// The predicate's label in the text's language, e.g. "industry".
    pub predicate_label: String,
    /// The object's label (or a literal's value), e.g. "Internet services".
    pub object_label: String,
    /// "subject label — predicate label — object label", e.g.
    /// "Tencent — industry — Internet services".
    pub text: String,
}

/// The entities of a text and their facts: what `graft link` prints and
/// `POST /v1/link` answers.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct LinkAnswer {
    pub entities: Vec<LinkedEntity>,
    pub facts: Vec<Fact>,
    /// The store generation the label index was built from.
    pub graph_generation: u64,
}

/// Links `text` and fetches the facts of its entities (at most `max_facts`).
///
/// # Errors
/// As [`Linker::link`] and [`facts_for`].
pub fn link_text(
    linker: &Linker,
    text: &str,
    lang: Option<&str>,
    max_facts: Option<usize>,
) -> Result<LinkAnswer, LinkError> {
    let linked = linker.link(text, lang)?;
    let facts = facts_for(
        linker.store(),
        &*linker.index()?,
        linker.config(),
        &linked.entities,
        &linked.lang,
        max_facts,
    )?;
    Ok(LinkAnswer {
        entities: linked.entities,
        facts,
        graph_generation: linked.graph_generation,
    })
}

/// Links only the parts of `text` in `spans` (Unicode scalar ranges,
/// `start` inclusive, `end` exclusive, an end past the text meaning its end;
/// in the text's order, not overlapping; an empty or reversed range is
/// skipped) and fetches the facts of their entities (at most `max_facts`):
/// what a classifier whose input keeps only those parts can use (see
/// [`crate::fusion::Fuser::kept_spans`]). Entity offsets are in the whole
/// text. Each part is linked on its own, so a mention never runs across a
/// cut. As for the whole text: without `lang`, labels are in `zh` when any
/// kept part has Han or kana characters, else `en`
/// ([`crate::link::guess_lang`]); at most `max_entities` entities (the
/// highest scores, then in the text's order); a text over `max_text_chars`
/// is refused even when little of it is kept. `[0..usize::MAX]` links the
/// whole text, as [`link_text`].
///
/// # Errors
/// As [`Linker::link`] and [`facts_for`].
pub fn link_spans(
    linker: &Linker,
    text: &str,
    spans: &[std::ops::Range<usize>],
    lang: Option<&str>,
    max_facts: Option<usize>,
) -> Result<LinkAnswer, LinkError> {
    let chars = text.chars().count();
    if let [whole] = spans {
        if whole.start == 0 && whole.end >= chars {
            return link_text(linker, text, lang, max_facts);
        }
    }
    let config = linker.config();
    if chars > config.max_text_chars {
        return Err(LinkError::TextTooLong {
            chars,
            limit: config.max_text_chars,
        });
    }
    // Byte offset of each Unicode scalar offset (and of the end).
    let bytes: Vec<usize> = text
        .char_indices()
        .map(|(b, _)| b)
        .chain(std::iter::once(text.len()))
        .collect();
    let byte = |scalar: usize| bytes[scalar.min(chars)];
    let parts: Vec<(usize, &str)> = spans
        .iter()
        .filter(|r| r.start < r.end.min(chars))
        .map(|r| (r.start, &text[byte(r.start)..byte(r.end)]))
        .collect();
    let lang = match lang {
        Some(l) => l.to_owned(),
        None if parts.iter().any(|(_, p)| guess_lang(p) == "zh") => "zh".to_owned(),
        None => "en".to_owned(),
    };
    let mut entities = Vec::new();
    let mut graph_generation = None;
    for (start, part) in parts {
        let linked = linker.link(part, Some(&lang))?;
        graph_generation.get_or_insert(linked.graph_generation);
        entities.extend(linked.entities.into_iter().map(|mut e| {
            e.start += start;
            e.end += start;
            e
        }));
    }
    let Some(graph_generation) = graph_generation else {
        // Nothing kept: nothing to link.
        return link_text(linker, "", Some(&lang), max_facts);
    };
    if entities.len() > config.max_entities {
        entities.sort_by(|a, b| b.score.total_cmp(&a.score));
        entities.truncate(config.max_entities);
        entities.sort_by_key(|e| (e.start, e.end));
    }
    let facts = facts_for(
        linker.store(),
        &*linker.index()?,
        config,
        &entities,
        &lang,
        max_facts,
    )?;
    Ok(LinkAnswer {
        entities,
        facts,
        graph_generation,
    })
}

struct Candidate {
    fact: Fact,
    predicate_rank: usize,
    entity_score: f64,
    object_prior: u32,
    entity: usize,
}

/// Fetches and ranks the facts of `entities` (see the module docs). Labels
/// and priors of labelled nodes come from `index`; the store is read for
/// the facts themselves and for terms the index does not know.
///
/// # Errors
/// [`GraphError`] when the store cannot be read.
pub fn facts_for(
    store: &GraphStore,
    index: &LabelIndex,
    config: &LinkConfig,
    entities: &[LinkedEntity],
    lang: &str,
    max_facts: Option<usize>,
) -> Result<Vec<Fact>, GraphError> {
    let per_text = max_facts.unwrap_or(config.max_facts_per_text);
    if per_text == 0 || entities.is_empty() || config.fact_predicates.is_empty() {
        return Ok(Vec::new());
    }
    let values: String = config
        .fact_predicates
        .iter()
        .filter(|p| NamedNodeRef::new(p.as_str()).is_ok())
        .map(|p| format!("<{p}> "))
        .collect();
    let mut labels: HashMap<String, String> = HashMap::new();
    let mut label_of = |iri: &str| -> Result<String, GraphError> {
        if let Some(l) = labels.get(iri) {
            return Ok(l.clone());
        }
        let label = match NamedNodeRef::new(iri) {
            Ok(node) => match index.node_id(node) {
                Some(id) => index.name(id, lang).map(str::to_owned),
                None => display_label(store, config, node, lang)?,
            },
            Err(_) => None,
        }
        .unwrap_or_else(|| builtin_label(iri, lang));
        labels.insert(iri.to_owned(), label.clone());
        Ok(label)
    };
    let mut seen = std::collections::HashSet::new();
    let mut candidates = Vec::new();
    for (e, entity) in entities.iter().enumerate() {
        if !seen.insert(entity.iri.clone()) {
            continue; // the same entity mentioned twice: its facts once
        }
        let query = format!(
            "SELECT DISTINCT ?p ?o WHERE {{ VALUES ?p {{ {values}}} <{}> ?p ?o }}",
            entity.iri
        );
        let prepared = store.prepare_query(
            &QueryRequest {
                query,
                ..QueryRequest::default()
            },
            // All graphs, the default one included.
            &SparqlOptions {
                union_default_graph: true,
                ..SparqlOptions::default()
            },
        )?;
        let QueryResults::Solutions(solutions) = prepared.execute_raw(store)? else {
            continue;
        };
        for solution in solutions {
            let solution = solution.map_err(|e| GraphError::Evaluation(e.to_string()))?;
            let (Some(Term::NamedNode(p)), Some(o)) = (solution.get("p"), solution.get("o")) else {
                continue;
            };
            if p.as_str() == RDF_TYPE
                && matches!(o, Term::NamedNode(t) if config.generic_types.iter().any(|g| g == t.as_str()))
            {
                continue; // "X — type — Concept" tells the model nothing
            }
            let (object, object_label, object_prior) = match o {
                Term::NamedNode(n) => (
                    n.as_str().to_owned(),
                    label_of(n.as_str())?,
                    index
                        .node_id(n.as_ref())
                        .map_or(0, |id| index.node(id).degree),
                ),
                Term::Literal(l) => (l.value().to_owned(), l.value().to_owned(), 0),
                _ => continue,
            };
            let predicate_label = label_of(p.as_str())?;
            candidates.push(Candidate {
                fact: Fact {
                    subject: entity.iri.clone(),
                    predicate: p.as_str().to_owned(),
                    object,
                    text: format!("{} — {predicate_label} — {object_label}", entity.label),
                    predicate_label,
                    object_label,
                },
                predicate_rank: config
                    .fact_predicates
                    .iter()
                    .position(|q| q == p.as_str())
                    .unwrap_or(usize::MAX),
                entity_score: entity.score,
                object_prior,
                entity: e,
            });
        }
    }
    candidates.sort_by(|a, b| {
        a.predicate_rank
            .cmp(&b.predicate_rank)
            .then_with(|| b.entity_score.total_cmp(&a.entity_score))
            .then_with(|| b.object_prior.cmp(&a.object_prior))
            .then_with(|| a.fact.object.cmp(&b.fact.object))
    });
    let mut per_entity: HashMap<usize, usize> = HashMap::new();
    let mut out = Vec::new();
    for c in candidates {
        let n = per_entity.entry(c.entity).or_default();
        if *n >= config.max_facts_per_entity {
            continue;
        }
        *n += 1;
        out.push(c.fact);
        if out.len() >= per_text {
            break;
        }
    }
    Ok(out)
}

/// A label for a term the graph does not label: `rdf:type` in a few
/// languages, else the IRI's local name.
fn builtin_label(iri: &str, lang: &str) -> String {
    if iri == RDF_TYPE {
        return if lang.starts_with("zh") {
            "类型"
        } else {
            "type"
        }
        .to_owned();
    }
    iri.rsplit(['#', '/'])
        .next()
        .unwrap_or(iri)
        .replace(['_', '-'], " ")
}
