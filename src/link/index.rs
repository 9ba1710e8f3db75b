//! [`LabelIndex`]: every label of the graph, normalised, in one
//! Aho-Corasick automaton, with the nodes each label names.
//!
//! Built in one pass over the label predicates of [`LinkConfig`] (all
//! graphs). Labels that can never be a mention are left out at build time:
//! stop-words, labels of one character, labels whose normalised form is empty,
//! and the labels of excluded nodes.

use super::config::{LabelKind, LinkConfig};
use super::normalize::normalize;
use crate::graph::{GraphError, GraphStore};
use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};
use oxigraph::model::{GraphName, NamedNode, NamedNodeRef, NamedOrBlankNode, Term};
use std::collections::{HashMap, HashSet};
use std::time::Instant;

/// One node named by a label.
#[derive(Debug, Clone)]
pub struct LabelEntry {
    /// Index into [`LabelIndex::node`].
    pub node: u32,
    pub kind: LabelKind,
    /// The label as written in the graph (NFKC, case kept), for case-exact checks.
    pub exact: Box<str>,
    /// The label's language tag, if any.
    pub lang: Option<Box<str>>,
}

/// A node that has at least one label, with what ranking needs to know of
/// it (gathered at build time, so linking never reads the store).
#[derive(Debug, Clone)]
pub struct NodeInfo {
    pub iri: NamedNode,
    /// Whether the node's labels come from a lexical graph (dictionary words).
    pub lexical: bool,
    /// How well the graph describes the node: its label, `rdf:type` and
    /// context-predicate triples, counted up to [`DEGREE_CAP`].
    pub degree: u32,
    /// The node's own key (see [`LabelIndex::key`]).
    pub key: u32,
    /// Keys of its `rdf:type` objects.
    pub types: Vec<u32>,
    /// Keys of the objects of its context predicates.
    pub context: Vec<u32>,
    /// Its preferred labels: (language tag, label as written).
    pub names: Vec<(Option<Box<str>>, Box<str>)>,
}

/// Degrees are counted up to this many triples.
pub const DEGREE_CAP: u32 = 1000;
const RDF_TYPE: &str = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type";

/// The label index over one generation of the store.
pub struct LabelIndex {
    generation: u64,
    automaton: AhoCorasick,
    /// Normalised label per pattern id.
    labels: Vec<Box<str>>,
    /// Nodes per pattern id.
    entries: Vec<Vec<LabelEntry>>,
    nodes: Vec<NodeInfo>,
    node_ids: HashMap<NamedNode, u32>,
    /// Interned IRIs of nodes, types and context objects.
    keys: Vec<Box<str>>,
    build_ms: u64,
}

/// What building the index cost.
#[derive(Debug, Clone, serde::Serialize)]
pub struct IndexStats {
    pub generation: u64,
    /// Distinct normalised labels (automaton patterns).
    pub labels: usize,
    /// (label, node) pairs.
    pub entries: usize,
    pub nodes: usize,
    /// Build wall time in milliseconds.
    pub build_ms: u64,
    /// Heap bytes of the index: the automaton plus the label and node tables (estimated).
    pub memory_bytes: usize,
}

impl LabelIndex {
    /// Builds the index from `store`. `progress` is called with the number of
    /// label triples read so far.
    ///
    /// # Errors
    /// [`GraphError::Storage`] when reading the store fails or the automaton
    /// cannot be built.
    pub fn build(
        store: &GraphStore,
        config: &LinkConfig,
        progress: &dyn Fn(u64),
    ) -> Result<Self, GraphError> {
        let start = Instant::now();
        let generation = store.generation();
        let excluded = excluded_nodes(store, config)?;
        let stop: HashSet<String> = config.stop_words.iter().map(|w| normalize(w)).collect();
        let lexical: HashSet<&str> = config.lexical_graphs.iter().map(String::as_str).collect();
        let mut node_ids: HashMap<NamedNode, u32> = HashMap::new();
        let mut nodes: Vec<NodeInfo> = Vec::new();
        let mut pattern_ids: HashMap<Box<str>, u32> = HashMap::new();
        let mut labels: Vec<Box<str>> = Vec::new();
        let mut entries: Vec<Vec<LabelEntry>> = Vec::new();
        let mut read = 0u64;
        for predicate in &config.label_predicates {
            let p = NamedNodeRef::new(&predicate.iri).map_err(|e| GraphError::InvalidIri {
                iri: predicate.iri.clone(),
                message: e.to_string(),
            })?;
            for quad in store.store().quads_for_pattern(None, Some(p), None, None) {
                let quad = quad?;
                read += 1;
                if read.is_multiple_of(100_000) {
                    progress(read);
                }
                let (NamedOrBlankNode::NamedNode(subject), Term::Literal(literal)) =
                    (quad.subject, quad.object)
                else {
                    continue;
                };
                if excluded.contains(&subject) {
                    continue;
                }
                let normalized = normalize(literal.value());
                if normalized.chars().count() < 2 || stop.contains(&normalized) {
                    continue;
                }
                let from_lexical = matches!(&quad.graph_name, GraphName::NamedNode(g) if lexical.contains(g.as_str()));
                let node = *node_ids.entry(subject.clone()).or_insert_with(|| {
                    nodes.push(NodeInfo {
                        iri: subject,
                        lexical: from_lexical,
                        degree: 0,
                        key: 0,
                        types: Vec::new(),
                        context: Vec::new(),
                        names: Vec::new(),
                    });
                    (nodes.len() - 1) as u32
                });
                nodes[node as usize].degree = (nodes[node as usize].degree + 1).min(DEGREE_CAP);
                if predicate.kind == LabelKind::Preferred {
                    let name: (Option<Box<str>>, Box<str>) =
                        (literal.language().map(Into::into), literal.value().into());
                    let names = &mut nodes[node as usize].names;
                    if !names.contains(&name) {
                        names.push(name);
                    }
                }
                let normalized: Box<str> = normalized.into();
                let pattern = *pattern_ids.entry(normalized.clone()).or_insert_with(|| {
                    labels.push(normalized);
                    entries.push(Vec::new());
                    (labels.len() - 1) as u32
                });
                let list = &mut entries[pattern as usize];
                let exact = nfkc(literal.value());
                if !list
                    .iter()
                    .any(|e| e.node == node && *e.exact == *exact && e.kind == predicate.kind)
                {
                    list.push(LabelEntry {
                        node,
                        kind: predicate.kind,
                        exact: exact.into(),
                        lang: literal.language().map(Into::into),
                    });
                }
            }
        }
        progress(read);
        let keys = describe_nodes(store, config, &node_ids, &mut nodes)?;
        let automaton = AhoCorasick::builder()
            .match_kind(MatchKind::Standard)
            .kind(Some(AhoCorasickKind::ContiguousNFA))
            .build(labels.iter().map(|l| l.as_bytes()))
            .map_err(|e| GraphError::Storage(format!("cannot build the label automaton: {e}")))?;
        Ok(Self {
            generation,
            automaton,
            labels,
            entries,
            nodes,
            node_ids,
            keys,
            build_ms: u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX),
        })
    }

    /// The store generation this index was built from.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The automaton over all normalised labels (overlapping matches).
    pub fn automaton(&self) -> &AhoCorasick {
        &self.automaton
    }

    /// The normalised label of pattern `id`.
    pub fn label(&self, id: usize) -> &str {
        &self.labels[id]
    }

    /// The nodes named by pattern `id`.
    pub fn entries(&self, id: usize) -> &[LabelEntry] {
        &self.entries[id]
    }

    /// A node by index.
    pub fn node(&self, id: u32) -> &NodeInfo {
        &self.nodes[id as usize]
    }

    /// The index of the labelled node `iri`, if it is one.
    pub fn node_id(&self, iri: NamedNodeRef<'_>) -> Option<u32> {
        self.node_ids.get(&iri.into_owned()).copied()
    }

    /// The IRI behind a key.
    pub fn key(&self, id: u32) -> &str {
        &self.keys[id as usize]
    }

    /// The node's preferred label in `lang`, else English, else untagged, else any.
    pub fn name(&self, node: u32, lang: &str) -> Option<&str> {
        let rank = |tag: &Option<Box<str>>| match tag.as_deref() {
            Some(t) if t == lang => 4,
            Some(t) if t.split('-').next() == Some(lang) => 3,
            Some("en") => 2,
            None => 1,
            Some(_) => 0,
        };
        self.node(node)
            .names
            .iter()
            .max_by_key(|(tag, _)| rank(tag))
            .map(|(_, name)| &**name)
    }

    /// Sizes, build time and memory.
    pub fn stats(&self) -> IndexStats {
        let entry_bytes: usize = self
            .entries
            .iter()
            .map(|list| {
                list.capacity() * std::mem::size_of::<LabelEntry>()
                    + list
                        .iter()
                        .map(|e| e.exact.len() + e.lang.as_ref().map_or(0, |l| l.len()))
                        .sum::<usize>()
            })
            .sum();
        let label_bytes: usize = self.labels.iter().map(|l| l.len() + 16).sum();
        let node_bytes: usize = self
            .nodes
            .iter()
            .map(|n| {
                std::mem::size_of::<NodeInfo>()
                    + n.iri.as_str().len()
                    + 4 * (n.types.capacity() + n.context.capacity())
                    + n.names
                        .iter()
                        .map(|(t, l)| 40 + l.len() + t.as_ref().map_or(0, |t| t.len()))
                        .sum::<usize>()
            })
            .sum();
        let key_bytes: usize = self.keys.iter().map(|k| k.len() + 16).sum();
        IndexStats {
            generation: self.generation,
            labels: self.labels.len(),
            entries: self.entries.iter().map(Vec::len).sum(),
            nodes: self.nodes.len(),
            build_ms: self.build_ms,
            memory_bytes: self.automaton.memory_usage()
                + entry_bytes
                + label_bytes
                + node_bytes
                + key_bytes
                + self.entries.capacity() * std::mem::size_of::<Vec<LabelEntry>>(),
        }
    }
}

/// NFKC without case folding: the exact form a case-exact match compares to.
pub fn nfkc(text: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    text.nfkc().collect()
}

fn excluded_nodes(
    store: &GraphStore,
    config: &LinkConfig,
) -> Result<HashSet<NamedNode>, GraphError> {
    let mut out = HashSet::new();
    for ex in &config.exclude {
        let Ok(p) = NamedNodeRef::new(&ex.predicate) else {
            continue;
        };
        let objects: Vec<Term> = match NamedNode::new(&ex.object) {
            Ok(iri) => vec![iri.into()],
            Err(_) => vec![oxigraph::model::Literal::new_simple_literal(&ex.object).into()],
        };
        for o in &objects {
            for quad in store
                .store()
                .quads_for_pattern(None, Some(p), Some(o.as_ref()), None)
            {
                if let NamedOrBlankNode::NamedNode(s) = quad?.subject {
                    out.insert(s);
                }
            }
        }
    }
    Ok(out)
}

/// The types and context objects of the labelled nodes, as interned keys,
/// and their degree. Returns the key table.
fn describe_nodes(
    store: &GraphStore,
    config: &LinkConfig,
    node_ids: &HashMap<NamedNode, u32>,
    nodes: &mut [NodeInfo],
) -> Result<Vec<Box<str>>, GraphError> {
    let mut key_ids: HashMap<Box<str>, u32> = HashMap::new();
    let mut keys: Vec<Box<str>> = Vec::new();
    let mut intern = |iri: &str| -> u32 {
        if let Some(id) = key_ids.get(iri) {
            return *id;
        }
        keys.push(iri.into());
        key_ids.insert(iri.into(), (keys.len() - 1) as u32);
        (keys.len() - 1) as u32
    };
    for info in nodes.iter_mut() {
        info.key = intern(info.iri.as_str());
    }
    // Only the quads of rdf:type and of the context predicates are read (each
    // quad read costs string look-ups in RocksDB); they also make the degree.
    let mut predicates = vec![RDF_TYPE];
    predicates.extend(config.context_predicates.iter().map(String::as_str));
    for predicate in predicates {
        let Ok(p) = NamedNodeRef::new(predicate) else {
            continue;
        };
        for quad in store.store().quads_for_pattern(None, Some(p), None, None) {
            let quad = quad?;
            let NamedOrBlankNode::NamedNode(subject) = &quad.subject else {
                continue;
            };
            let Some(&node) = node_ids.get(subject) else {
                continue;
            };
            let info = &mut nodes[node as usize];
            info.degree = (info.degree + 1).min(DEGREE_CAP);
            let Term::NamedNode(object) = &quad.object else {
                continue;
            };
            let key = intern(object.as_str());
            let list = if predicate == RDF_TYPE {
                &mut info.types
            } else {
                &mut info.context
            };
            if !list.contains(&key) {
                list.push(key);
            }
        }
    }
    Ok(keys)
}
